"""Reads a SentencePiece model file (``.spm`` / ``.model``) and builds a ``tokenizers`` tokenizer.

The file is a protobuf ``ModelProto``; the few fields needed (pieces with scores and types, the
model type, the normalizer's precompiled character map and whitespace flags) are read here with a
small bounds-checked wire-format reader, so importing needs neither ``sentencepiece`` nor
generated protobuf code, and a damaged or hostile file fails with a one-line error.

:func:`marian_tokenizer` builds the tokenizer a Marian (OPUS-MT) model needs on one side: the
side's SentencePiece unigram segmentation, with the pieces' ids taken from the model's shared
``vocab.json`` as transformers' ``MarianTokenizer`` does. It is a ``tokenizers`` Unigram model
whose vocabulary is ``vocab.json`` in id order (so every id decodes to its piece): pieces of this
side keep their SentencePiece scores; pieces only the other side has get -1e6 per character, so
segmentation never prefers them to this side's pieces and uses them only as single characters
this side lacks. That matches MarianTokenizer, for which SentencePiece emits such a character as
an unknown piece that is then looked up in ``vocab.json``, except for runs of two or more such
characters, which SentencePiece emits as one piece (usually ``<unk>`` after the lookup) and this
tokenizer as one id per character. Characters neither side knows become one ``<unk>`` per run,
as there. ``</s>``, ``<unk>`` and ``<pad>`` are special; ``>>xx<<`` language codes stay whole.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from tokenizers import (
    AddedToken,
    Regex,
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
)

from engine.errors import ModelFormatError

MAX_FILE_BYTES = 64 * 1024 * 1024
# SentencePiece piece types (sentencepiece_model.proto)
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
UNIGRAM = 1
_OTHER_SIDE_SCORE = -1.0e6  # per character: far below any path of this side's pieces


@dataclass(frozen=True)
class SentencePieceModel:
    """The parts of a SentencePiece ModelProto a tokenizer needs."""

    pieces: tuple[tuple[str, float, int], ...]  # (piece, score, type) in SentencePiece id order
    model_type: int = UNIGRAM
    byte_fallback: bool = False
    precompiled_charsmap: bytes = b""
    add_dummy_prefix: bool = True
    remove_extra_whitespaces: bool = True
    escape_whitespaces: bool = True


class _WireError(ValueError):
    pass


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise _WireError("truncated or overlong varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of a protobuf message; value is an int for varints,
    the raw bytes otherwise. Every length is checked against the buffer."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            yield number, wire, value
            continue
        if wire == 2:
            size, pos = _varint(data, pos)
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
        else:
            raise _WireError(f"unsupported wire type {wire}")
        if pos + size > len(data):
            raise _WireError("a field runs past the end of its message")
        yield number, wire, data[pos:pos + size]
        pos += size


def _piece(data: bytes) -> tuple[str, float, int]:
    text, score, kind = None, 0.0, NORMAL
    for number, wire, value in _fields(data):
        if number == 1 and wire == 2:
            assert isinstance(value, bytes)
            text = value.decode("utf-8")
        elif number == 2 and wire == 5:
            assert isinstance(value, bytes)
            score = struct.unpack("<f", value)[0]
        elif number == 3 and wire == 0:
            assert isinstance(value, int)
            kind = value
    if text is None:
        raise _WireError("a piece has no text")
    return text, float(score), kind


def parse_sentencepiece(data: bytes) -> SentencePieceModel:
    """Parses a serialized ModelProto. Raises ValueError on malformed data."""
    pieces: list[tuple[str, float, int]] = []
    spec: dict[str, object] = {}
    try:
        for number, wire, value in _fields(data):
            if wire != 2:
                continue
            assert isinstance(value, bytes)
            if number == 1:
                pieces.append(_piece(value))
            elif number == 2:  # TrainerSpec
                for sub, sub_wire, sub_value in _fields(value):
                    if sub == 3 and sub_wire == 0:
                        spec["model_type"] = sub_value
                    elif sub == 35 and sub_wire == 0:
                        spec["byte_fallback"] = bool(sub_value)
            elif number == 3:  # NormalizerSpec
                for sub, sub_wire, sub_value in _fields(value):
                    if sub == 2 and sub_wire == 2:
                        spec["precompiled_charsmap"] = bytes(sub_value)  # type: ignore[arg-type]
                    elif sub in (3, 4, 5) and sub_wire == 0:
                        name = {3: "add_dummy_prefix", 4: "remove_extra_whitespaces",
                                5: "escape_whitespaces"}[sub]
                        spec[name] = bool(sub_value)
    except (_WireError, UnicodeDecodeError) as error:
        raise ValueError(f"not a SentencePiece model ({error})") from None
    if not pieces:
        raise ValueError("not a SentencePiece model (no pieces)")
    return SentencePieceModel(pieces=tuple(pieces), **spec)  # type: ignore[arg-type]


def read_sentencepiece(path: Path) -> SentencePieceModel:
    """Reads a ``.spm`` file; errors are one-line ModelFormatErrors naming the file."""
    if not path.is_file():
        raise ModelFormatError(f"{path}: SentencePiece model is missing; the folder is "
                               "incomplete (download it again)")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ModelFormatError(f"{path}: {size} bytes is too large for a SentencePiece model")
    try:
        return parse_sentencepiece(path.read_bytes())
    except ValueError as error:
        raise ModelFormatError(f"{path}: {error}; the file is damaged") from None


def _normalizer(model: SentencePieceModel) -> normalizers.Normalizer | None:
    steps: list[normalizers.Normalizer] = []
    if model.precompiled_charsmap:
        steps.append(normalizers.Precompiled(model.precompiled_charsmap))
    if model.remove_extra_whitespaces:
        # SentencePiece drops leading/trailing whitespace and collapses runs (after the map).
        steps += [normalizers.Strip(left=True, right=True),
                  normalizers.Replace(Regex(" {2,}"), " ")]
    return normalizers.Sequence(steps) if steps else None


def marian_tokenizer(model: SentencePieceModel, vocab: Mapping[str, int], *,
                     unk_token: str = "<unk>", eos_token: str = "</s>", pad_token: str = "<pad>",
                     append_eos: bool = False) -> Tokenizer:
    """One side's tokenizer of a Marian model (see the module docstring).

    Args:
        model: that side's SentencePiece model (unigram).
        vocab: the model's ``vocab.json``: piece -> id, ids 0..V-1.
        append_eos: add a post-processor appending EOS when encoding with special tokens
            (transformers' behaviour for the source side; the engine appends EOS itself).

    Raises:
        ValueError: not a unigram model, or a vocabulary with gaps or without the unknown token.
    """
    if model.model_type != UNIGRAM:
        raise ValueError(f"SentencePiece model type {model.model_type} is not supported "
                         "(Marian models use unigram, type 1)")
    size = len(vocab)
    by_id = {int(i): piece for piece, i in vocab.items()}
    if sorted(by_id) != list(range(size)):
        raise ValueError("vocab.json ids must be 0..N-1 without gaps or repeats")
    if unk_token not in vocab:
        raise ValueError(f"vocab.json has no unknown token {unk_token!r}")
    scores = {piece: score for piece, score, kind in model.pieces
              if kind in (NORMAL, USER_DEFINED)}
    entries = [(by_id[i], scores[by_id[i]] if by_id[i] in scores
                else _OTHER_SIDE_SCORE * len(by_id[i]) - 1.0) for i in range(size)]
    tokenizer = Tokenizer(models.Unigram(entries, unk_id=vocab[unk_token], byte_fallback=False))
    normalizer = _normalizer(model)
    if normalizer is not None:
        tokenizer.normalizer = normalizer
    scheme = "always" if model.add_dummy_prefix else "never"
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme=scheme)
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme=scheme)
    specials = [t for t in (eos_token, unk_token, pad_token) if t in vocab]
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False)
                                  for t in specials])
    codes = [p for p in vocab if p.startswith(">>") and p.endswith("<<") and len(p) > 4]
    if codes:
        tokenizer.add_tokens([AddedToken(c, special=False, normalized=False) for c in codes])
    if append_eos and eos_token in vocab:
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"$A {eos_token}", pair=f"$A $B {eos_token}",
            special_tokens=[(eos_token, vocab[eos_token])])
    return tokenizer
