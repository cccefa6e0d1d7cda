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

    def decode(self, ids: Sequence[int]) -> str:
        return str(self._tokenizer.decode(list(ids), skip_special_tokens=True))

    def token_to_id(self, token: str) -> int | None:
        return self._tokenizer.token_to_id(token)

    def id_to_token(self, token_id: int) -> str | None:
        return self._tokenizer.id_to_token(token_id)
