"""Builds a Hugging Face ``tokenizers`` tokenizer from a GGUF file's tokenizer metadata.

A GGUF carries no ``tokenizer.json``: llama.cpp keeps the vocabulary, token types, merges or
scores and the special-token ids as ``tokenizer.ggml.*`` metadata. This module rebuilds from them
a :class:`tokenizers.Tokenizer` that encodes and decodes the way llama.cpp does
(``src/llama-vocab.cpp``), which for the supported vocabularies is also how the model's original
Hugging Face tokenizer does:

* ``gpt2``: byte-level BPE. The text is split by the regexes llama.cpp uses for the file's
  ``tokenizer.ggml.pre`` variant, applied one after another, each within the pieces of the one
  before (``unicode_regex_split``), then mapped to the byte alphabet and merged by rank.
* ``llama``: SentencePiece BPE with byte fallback. llama.cpp merges, inside each stretch of text
  between special tokens, the adjacent pair whose joined token has the highest score; we turn the
  scores into a ranked merge list, as transformers' GGUF converter does, and prepend ``▁`` to every
  such stretch, as llama.cpp does after each special token.

Control (and unknown) tokens become special added tokens and user-defined tokens plain added
tokens, so ``<|im_start|>`` written in a prompt maps to its id. No BOS/EOS is added on encode: the
engine adds BOS itself from the manifest.
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

__all__ = [
    "SUPPORTED_MODELS",
    "SUPPORTED_PRE_TOKENIZERS",
    "adds_bos_token",
    "build_tokenizer",
    "special_token_strings",
    "stop_token_strings",
]

# Token types as gguf-py's TokenType / llama.cpp's LLAMA_TOKEN_TYPE_* number them.
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6

MODEL_KEY = "tokenizer.ggml.model"
PRE_KEY = "tokenizer.ggml.pre"
TOKENS_KEY = "tokenizer.ggml.tokens"
TYPES_KEY = "tokenizer.ggml.token_type"
MERGES_KEY = "tokenizer.ggml.merges"
SCORES_KEY = "tokenizer.ggml.scores"
ADD_BOS_KEY = "tokenizer.ggml.add_bos_token"
ADD_SPACE_PREFIX_KEY = "tokenizer.ggml.add_space_prefix"
_SPECIAL_ID_KEYS = {
    "bos": "tokenizer.ggml.bos_token_id",
    "eos": "tokenizer.ggml.eos_token_id",
    "pad": "tokenizer.ggml.padding_token_id",
    "unk": "tokenizer.ggml.unknown_token_id",
}
# Turn-ending ids some converters write besides EOS (Llama 3.1 `<|eom_id|>`, ...).
_EXTRA_STOP_ID_KEYS = ("tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id")

# Tokens that end a turn, by text; llama.cpp detects its end-of-generation set the same way.
_TURN_END_TOKENS = (
    "<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<|end_of_text|>", "<|endoftext|>", "</s>",
    "<end_of_turn>", "<|end|>", "<EOT>", "<｜end▁of▁sentence｜>",
)

# Pre-tokenizer regexes, copied from llama.cpp's llm_tokenizer_bpe. llama.cpp spells the
# contractions `'[sS]` because std::regex lacks `(?i:...)`; Oniguruma reads both the same.
_GPT2_SPLIT = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"
_LLAMA3_SPLIT = (
    r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+"
    r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# As Llama 3's, but digits one at a time.
_QWEN2_SPLIT = _LLAMA3_SPLIT.replace(r"\p{N}{1,3}", r"\p{N}")


@dataclass(frozen=True)
class _PreTokenizer:
    splits: tuple[str, ...]  # regexes applied in turn, each inside the pieces of the previous
    ignore_merges: bool = False  # a piece that is itself a token is kept whole (Llama 3)


_GPT2 = _PreTokenizer((_GPT2_SPLIT,))
_LLAMA3 = _PreTokenizer((_LLAMA3_SPLIT,), ignore_merges=True)
_QWEN2 = _PreTokenizer((_QWEN2_SPLIT,))
# StarCoder / SmolLM: every digit on its own, then GPT-2's regex (HF: Digits + ByteLevel).
_DIGITS_THEN_GPT2 = _PreTokenizer((r"\p{N}", _GPT2_SPLIT))

_PRE_TOKENIZERS: dict[str, _PreTokenizer] = {
    # "default" is what llama.cpp assumes for files older than `tokenizer.ggml.pre`. Its own
    # fallback is a guess it warns about; GPT-2's regex is what transformers uses for such files
    # and what those models' original tokenizers mostly used.
    "default": _GPT2,
    "gpt2": _GPT2,
    "gpt-2": _GPT2,
    "phi-2": _GPT2,
    "mpt": _GPT2,
    "olmo": _GPT2,
    "llama3": _LLAMA3,
    "llama-v3": _LLAMA3,
    "llama-bpe": _LLAMA3,
    # Same regex, but llama.cpp does not set ignore_merges for these two.
    "dbrx": _PreTokenizer((_LLAMA3_SPLIT,)),
    "smaug-bpe": _PreTokenizer((_LLAMA3_SPLIT,)),
    "qwen2": _QWEN2,
    "deepseek-r1-qwen": _QWEN2,
    "smollm": _DIGITS_THEN_GPT2,
    "starcoder": _DIGITS_THEN_GPT2,
    "refact": _DIGITS_THEN_GPT2,
    "command-r": _DIGITS_THEN_GPT2,
    "codeshell": _DIGITS_THEN_GPT2,
}
SUPPORTED_PRE_TOKENIZERS: tuple[str, ...] = tuple(sorted(_PRE_TOKENIZERS))
SUPPORTED_MODELS: tuple[str, ...] = ("gpt2", "llama")
# llama.cpp adds BOS by default for SentencePiece vocabularies and for the Llama 3 family.
_BOS_BY_DEFAULT_PRE = frozenset({"llama3", "llama-v3", "llama-bpe"})


def build_tokenizer(metadata: Mapping[str, Any]) -> Tokenizer:
    """A tokenizer that encodes and decodes like llama.cpp does for this GGUF vocabulary.

    Args:
        metadata: GGUF key/value metadata as plain Python values; only ``tokenizer.ggml.*``
            keys are read.

    Returns:
        The tokenizer. ``encode(text, add_special_tokens=False)`` gives exactly the content
        tokens (special tokens written in the text included); no BOS/EOS is ever added.

    Raises:
        ValueError: A key is missing, malformed or inconsistent, or the tokenizer model or
            pre-tokenizer variant is not supported; the message names the key.
    """
    model = _text(metadata, MODEL_KEY)
    if model not in SUPPORTED_MODELS:
        raise ValueError(
            f"unsupported tokenizer model {model!r} in '{MODEL_KEY}' "
            f"(supported: {', '.join(SUPPORTED_MODELS)})"
        )
    tokens, types = _vocabulary(metadata)
    special_token_strings(metadata)  # checks the special ids against the vocabulary
    if model == "gpt2":
        tokenizer = _byte_level_tokenizer(metadata, tokens, types)
    else:
        tokenizer = _sentencepiece_tokenizer(metadata, tokens, types)
    _add_special_tokens(tokenizer, tokens, types)
    return tokenizer


def special_token_strings(metadata: Mapping[str, Any]) -> dict[str, str | None]:
    """The bos/eos/pad/unk token strings the metadata names by id (``None`` when absent).

    No defaults are filled in: llama.cpp's fallbacks (BOS 1, EOS 2 for SentencePiece) are guesses
    the manifest should not inherit.

    Raises:
        ValueError: The vocabulary is missing, or an id is not an integer inside it.
    """
    tokens, _ = _vocabulary(metadata)
    return {
        name: None if (token_id := _token_id(metadata, key, len(tokens))) is None
        else tokens[token_id]
        for name, key in _SPECIAL_ID_KEYS.items()
    }


def stop_token_strings(metadata: Mapping[str, Any]) -> list[str]:
    """EOS, then every turn-ending token the vocabulary has (``<|im_end|>``, ``<|eot_id|>``, ...).

    A turn-ending token counts only when it is a control or user-defined token, so a plain
    ``</s>`` learned from HTML in a byte-level vocabulary is not taken for one.

    Raises:
        ValueError: The vocabulary is missing, or an id is not an integer inside it.
    """
    tokens, types = _vocabulary(metadata)
    stops: list[str] = []
    for key in (_SPECIAL_ID_KEYS["eos"], *_EXTRA_STOP_ID_KEYS):
        token_id = _token_id(metadata, key, len(tokens))
        if token_id is not None and tokens[token_id] not in stops:
            stops.append(tokens[token_id])
    added = {t for t, kind in zip(tokens, types, strict=True) if kind in (CONTROL, USER_DEFINED)}
    stops.extend(t for t in _TURN_END_TOKENS if t in added and t not in stops)
    return stops


def adds_bos_token(metadata: Mapping[str, Any]) -> bool:
    """Whether llama.cpp puts BOS before a prompt for this vocabulary.

    ``tokenizer.ggml.add_bos_token`` decides when present; otherwise llama.cpp's default: yes for
    SentencePiece and the Llama 3 family, no for other byte-level BPE vocabularies.
    """
    explicit = metadata.get(ADD_BOS_KEY)
    if explicit is not None:
        return _flag(metadata, ADD_BOS_KEY, default=False)
    model = metadata.get(MODEL_KEY)
    return model == "llama" or (model == "gpt2" and metadata.get(PRE_KEY) in _BOS_BY_DEFAULT_PRE)


def _byte_level_tokenizer(
    metadata: Mapping[str, Any], tokens: list[str], types: list[int]
) -> Tokenizer:
    variant = metadata.get(PRE_KEY, "default")  # llama.cpp reads a missing key as "default"
    if not isinstance(variant, str) or variant not in _PRE_TOKENIZERS:
        raise ValueError(
            f"unsupported pre-tokenizer {variant!r} in '{PRE_KEY}' "
            f"(supported: {', '.join(SUPPORTED_PRE_TOKENIZERS)})"
        )
    pre = _PRE_TOKENIZERS[variant]
    alphabet = _byte_alphabet()
    vocab: dict[str, int] = {}
    for token_id, (token, kind) in enumerate(zip(tokens, types, strict=True)):
        if kind not in (CONTROL, USER_DEFINED, UNKNOWN) and not set(token) <= alphabet.keys():
            # A model token must be in byte-alphabet spelling to be reachable by BPE; llama.cpp
            # files occasionally hold one in plain text (transformers respells these too).
            token = _to_byte_alphabet(token)
        # Added tokens stay in plain text, the spelling they are matched and decoded in.
        _put(vocab, token, token_id)
    merges = _merges(metadata, vocab)
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges, ignore_merges=pre.ignore_merges))
    splits = [pre_tokenizers.Split(Regex(p), behavior="isolated") for p in pre.splits]
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [*splits, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]
    )
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer


def _sentencepiece_tokenizer(
    metadata: Mapping[str, Any], tokens: list[str], types: list[int]
) -> Tokenizer:
    scores = _per_token_list(metadata, SCORES_KEY, len(tokens), numbers.Real, "numbers")
    vocab: dict[str, int] = {}
    for token_id, token in enumerate(tokens):
        _put(vocab, token, token_id)
    unk_id = _token_id(metadata, _SPECIAL_ID_KEYS["unk"], len(tokens))
    if unk_id is None:
        unk_id = next((i for i, kind in enumerate(types) if kind == UNKNOWN), None)
    tokenizer = Tokenizer(
        models.BPE(
            vocab=vocab,
            merges=_merges_from_scores(tokens, [float(s) for s in scores], vocab),
            unk_token=None if unk_id is None else tokens[unk_id],
            fuse_unk=True,
            byte_fallback=True,  # characters missing from the vocabulary become <0xNN> tokens
        )
    )
    add_space_prefix = _flag(metadata, ADD_SPACE_PREFIX_KEY, default=True)
    # A normalizer (not Metaspace) because it runs on each stretch between special tokens, so
    # the text after `<s>` or `[INST]` gets its ▁ too, exactly as llama.cpp tokenizes it.
    escape = [normalizers.Replace(" ", "▁")]
    prefix = [normalizers.Prepend("▁")] if add_space_prefix else []
    tokenizer.normalizer = normalizers.Sequence([*prefix, *escape])
    tokenizer.pre_tokenizer = None  # SentencePiece treats the whole stretch as one word
    strip = [decoders.Strip(" ", 1, 0)] if add_space_prefix else []  # undo the prepended ▁
    tokenizer.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), *strip]
    )
    return tokenizer


def _merges_from_scores(
    tokens: Sequence[str], scores: Sequence[float], vocab: Mapping[str, int]
) -> list[tuple[str, str]]:
    """Every way to cut a token into two tokens, best score of the joined token first.

    llama.cpp merges whichever adjacent pair joins into the highest-scoring token; a BPE model
    whose ranks follow those scores does the same. Ties are ordered as transformers'
    ``generate_merges`` orders them (longer left part first, then by the parts' ids).
    """
    merges: list[tuple[float, str, str]] = []
    for token, score in zip(tokens, scores, strict=True):
        cuts = [
            (token[:i], token[i:]) for i in range(1, len(token))
            if token[:i] in vocab and token[i:] in vocab
        ]
        cuts.sort(key=lambda cut: (vocab[cut[0]], vocab[cut[1]]))
        merges.extend((score, left, right) for left, right in cuts)
    # A stable sort in reverse keeps the per-token order above for equal keys.
    merges.sort(key=lambda m: (m[0], len(m[1]), len(m[2])), reverse=True)
    return [(left, right) for _, left, right in merges]


def _merges(metadata: Mapping[str, Any], vocab: Mapping[str, int]) -> list[tuple[str, str]]:
    if MERGES_KEY not in metadata:
        raise ValueError(f"'{MERGES_KEY}' is missing; byte-level BPE ('gpt2') needs merges")
    merges: list[tuple[str, str]] = []
    for index, merge in enumerate(_list(metadata, MERGES_KEY)):
        # llama.cpp cuts at the first space after the first character.
        cut = merge.find(" ", 1) if isinstance(merge, str) else -1
        left, right = (merge[:cut], merge[cut + 1 :]) if cut > 0 else ("", "")
        if not left or not right or any(p not in vocab for p in (left, right, left + right)):
            raise ValueError(
                f"'{MERGES_KEY}[{index}]' = {merge!r} is not two tokens of '{TOKENS_KEY}' "
                "joining into a third"
            )
        merges.append((left, right))
    return merges


def _add_special_tokens(tokenizer: Tokenizer, tokens: list[str], types: list[int]) -> None:
    """Make control/unknown tokens special and user-defined ones plain added tokens.

    Each keeps its id because its text is already a key of the model's vocabulary; added tokens
    are matched in the raw text before any normalizer or pre-tokenizer runs, as llama.cpp does.
    """
    special = [
        AddedToken(t, special=True, normalized=False)
        for t, kind in zip(tokens, types, strict=True) if kind in (CONTROL, UNKNOWN)
    ]
    plain = [
        AddedToken(t, special=False, normalized=False)
        for t, kind in zip(tokens, types, strict=True) if kind == USER_DEFINED
    ]
    tokenizer.add_special_tokens(special)
    tokenizer.add_tokens(plain)


def _vocabulary(metadata: Mapping[str, Any]) -> tuple[list[str], list[int]]:
    tokens = _list(metadata, TOKENS_KEY)
    if not tokens or not all(isinstance(t, str) for t in tokens):
        raise ValueError(f"'{TOKENS_KEY}' must be a non-empty list of strings")
    # llama.cpp renames an empty token so that every id keeps a distinct text.
    tokens = [t or f"[EMPTY_{i}]" for i, t in enumerate(tokens)]
    if TYPES_KEY not in metadata:
        return tokens, [NORMAL] * len(tokens)  # llama.cpp: without types every token is normal
    types = _per_token_list(metadata, TYPES_KEY, len(tokens), numbers.Integral, "integers")
    return tokens, [int(k) for k in types]


def _put(vocab: dict[str, int], token: str, token_id: int) -> None:
    if token in vocab:
        # llama.cpp refuses such a file too (one text must map to one id).
        raise ValueError(f"'{TOKENS_KEY}' has {token!r} twice (ids {vocab[token]} and {token_id})")
    vocab[token] = token_id


def _token_id(metadata: Mapping[str, Any], key: str, vocab_size: int) -> int | None:
    value = metadata.get(key)
    if value is None:
        return None
    # numbers.Integral also admits numpy integers, which some GGUF readers hand out.
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise ValueError(f"'{key}' = {value!r} is not a token id")
    if not 0 <= value < vocab_size:
        raise ValueError(f"'{key}' = {value} is outside the vocabulary (0..{vocab_size - 1})")
    return int(value)


def _text(metadata: Mapping[str, Any], key: str) -> str:
    value = metadata.get(key)
    if not isinstance(value, str) or not value:
        problem = "is missing" if value is None else f"must be a string, got {value!r}"
        raise ValueError(f"'{key}' {problem}")
    return value


def _list(metadata: Mapping[str, Any], key: str) -> list[Any]:
    value = metadata.get(key)
    if not isinstance(value, (list, tuple)):
        problem = "is missing" if value is None else f"must be a list, got {type(value).__name__}"
        raise ValueError(f"'{key}' {problem}")
    return list(value)


def _per_token_list(metadata: Mapping[str, Any], key: str, count: int, kind: type,
                    kind_name: str) -> list[Any]:
    """A list with one entry of ``kind`` per token (scores, token types)."""
    values = _list(metadata, key)
    if len(values) != count:
        raise ValueError(f"'{key}' has {len(values)} entries but '{TOKENS_KEY}' has {count}")
    if not all(isinstance(v, kind) and not isinstance(v, bool) for v in values):
        raise ValueError(f"'{key}' must be a list of {kind_name}")
    return values


def _flag(metadata: Mapping[str, Any], key: str, *, default: bool) -> bool:
    value = metadata.get(key, default)
    if not isinstance(value, bool):
        raise ValueError(f"'{key}' must be true or false, got {value!r}")
    return value


@functools.cache
def _byte_alphabet() -> dict[str, int]:
    """GPT-2's printable stand-in character for each byte, as char -> byte."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    chars = {byte: byte for byte in printable}
    shifted = 0
    for byte in range(256):
        if byte not in chars:
            chars[byte] = 256 + shifted
            shifted += 1
    return {chr(code): byte for byte, code in chars.items()}


def _to_byte_alphabet(text: str) -> str:
    by_byte = {byte: char for char, byte in _byte_alphabet().items()}
    return "".join(by_byte[byte] for byte in text.encode("utf-8"))
