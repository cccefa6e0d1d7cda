"""Loads a model's ``tokenizer.json`` (Hugging Face tokenizers) and wraps encode/decode."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tokenizers import Tokenizer as _HFTokenizer

from engine.errors import ConfigError, TokenizerError


class Tokenizer:
    """A thin wrapper whose errors name the tokenizer file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.is_file():
            raise TokenizerError(f"{path}: tokenizer file is missing; re-export the model folder")
        try:
            self._tokenizer = _HFTokenizer.from_file(str(path))
        except Exception as error:  # the Rust library raises plain Exceptions
            first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise TokenizerError(
                f"{path}: not a valid tokenizer.json ({first_line}); re-export the model folder"
            ) from None
        # A tokenizer.json may carry padding and truncation settings (sentence-transformers
        # files pad every text to 128 tokens): the engine pads and cuts for itself.
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()

    @property
    def vocab_size(self) -> int:
        """Number of ids the tokenizer can produce, added tokens included."""
        return int(self._tokenizer.get_vocab_size(with_added_tokens=True))

    def encode(self, text: str) -> list[int]:
        """Token ids for text; special tokens written in the text (``<|im_start|>``) map to
        their ids, and no BOS/EOS is added (callers decide that from the manifest).

        Raises:
            ConfigError: text that is not valid Unicode (lone surrogates, which is how Python
                hands over undecodable bytes), which the tokenizer library cannot take.
        """
        try:
            return list(self._tokenizer.encode(text, add_special_tokens=False).ids)
        except TypeError:
            if not isinstance(text, str):
                raise
            raise ConfigError("the text is not valid Unicode (it holds bytes that are not UTF-8, "
                              "seen as lone surrogates); pass UTF-8 text") from None

    def encode_many(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text with the tokenizer's own special tokens around it (an
        encoder's ``[CLS] ... [SEP]``), encoded in parallel by the library.

        Raises:
            ConfigError: a text that is not valid Unicode (see ``encode``).
        """
        try:
            return [list(e.ids) for e in self._tokenizer.encode_batch(texts,
                                                                       add_special_tokens=True)]
        except TypeError:
            raise ConfigError("a text is not valid Unicode (it holds bytes that are not UTF-8, "
                              "seen as lone surrogates); pass UTF-8 text") from None

    def decode(self, ids: Sequence[int]) -> str:
        return str(self._tokenizer.decode(list(ids), skip_special_tokens=True))

    def token_to_id(self, token: str) -> int | None:
        return self._tokenizer.token_to_id(token)

    def id_to_token(self, token_id: int) -> str | None:
        return self._tokenizer.id_to_token(token_id)
