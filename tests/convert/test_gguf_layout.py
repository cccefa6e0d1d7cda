"""GGUF layout checks: overlapping or misaligned tensor data and vocabularies that don't agree.

The reader refuses what llama.cpp's gguf.cpp refuses about the tensor directory's layout (data
offsets off the alignment, tensors sharing bytes, data past the end of the file, a name twice),
before any tensor is read. The importer refuses a tokenizer with more tokens than the embedding
has rows, and cuts padding rows (more rows than tokens), saying so in the import report.
Hostile directories are written byte by byte (``test_gguf_reader``'s builders) or patched into a
model written by llama.cpp's own writer (``test_gguf_import``'s ``build_gguf``).
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import gguf
import numpy as np
import pytest
from gguf import GGUFValueType
from test_gguf_import import (
    PROMPT,
    Override,
    Vocabulary,
    _config,
    _report,
    build_gguf,
    engine_logits,
    reference_logits,
    reference_model,
    train_vocabulary,
)
from test_gguf_reader import _check_refused, gguf_bytes, kv_u32, tensor_info

from commands.main import main
from convert.importers.gguf_model import read_gguf_model
from convert.importers.gguf_reader import GGUFFile
from convert.importers.imported import weight_shape, write_model_folder
from convert.importers.service import import_model
from convert.quantize import PackedWeight
from engine.errors import ModelFormatError
from engine.generation import prompt_ids
from engine.model import load_model

F32 = 0  # ggml tensor type; 4 bytes an element


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    return train_vocabulary()


def _layout(path: Path, tensors: list[tuple[str, int, int]], data_bytes: int = 1024,
            alignment: int | None = None) -> int:
    """Writes a file of 1-D F32 tensors (name, elements, offset into the data section) over
    ``data_bytes`` of data; returns the data section's file offset."""
    kvs = [] if alignment is None else [kv_u32("general.alignment", alignment)]
    infos = [tensor_info(name, [elements], F32, offset) for name, elements, offset in tensors]
    start = len(gguf_bytes(kvs, infos, alignment=alignment or 32))
    path.write_bytes(gguf_bytes(kvs, infos, data=b"\0" * data_bytes, alignment=alignment or 32))
    return start


# Overlapping tensors --------------------------------------------------------------------------

# case: (tensors, first and last shared byte in the data section, the pair the message names)
OVERLAPS: dict[str, tuple[list[tuple[str, int, int]], tuple[int, int], tuple[str, str]]] = {
    "same bytes": ([("a", 64, 0), ("b", 64, 0)], (0, 255), ("a", "b")),
    "same offset, shorter": ([("a", 64, 0), ("b", 32, 0)], (0, 127), ("a", "b")),
    "partial": ([("a", 64, 0), ("b", 64, 128)], (128, 255), ("a", "b")),
    "one inside the other": ([("a", 128, 0), ("b", 32, 256)], (256, 383), ("a", "b")),
    "out of directory order": ([("b", 64, 384), ("c", 32, 640), ("a", 128, 0)], (384, 511),
                               ("a", "b")),
    "third over the first only": ([("a", 128, 0), ("b", 32, 512), ("c", 16, 448)], (448, 511),
                                  ("a", "c")),
}


@pytest.mark.parametrize("case", list(OVERLAPS))
def test_overlapping_tensors_are_refused(tmp_path: Path, case: str) -> None:
    tensors, (first, last), (one, other) = OVERLAPS[case]
    path = tmp_path / "overlap.gguf"
    start = _layout(path, tensors)
    error = _check_refused(path, "overlap")
    assert str(error) == (f"{path}: tensors '{one}' and '{other}' overlap (bytes {start + first}-"
                          f"{start + last} of the file); the file is damaged or hostile, "
                          "download it again")


def test_adjacent_and_spaced_tensors_are_fine(tmp_path: Path) -> None:
    """Touching is not overlapping; gaps and another order than the directory's are allowed
    (llama.cpp wants them packed in directory order; a reader that seeks doesn't care)."""
    path = tmp_path / "fine.gguf"
    start = _layout(path, [("c", 32, 768), ("a", 64, 0), ("b", 64, 256)])
    with GGUFFile(path) as model:
        assert {n: t.offset - start for n, t in model.tensors.items()} == \
            {"a": 0, "b": 256, "c": 768}


# Misaligned offsets, data past the end, names twice -------------------------------------------


@pytest.mark.parametrize(("alignment", "offset"), [(None, 4), (None, 16), (64, 32), (64, 100)])
def test_misaligned_offset_is_refused(tmp_path: Path, alignment: int | None, offset: int) -> None:
    path = tmp_path / "misaligned.gguf"
    # The first tensor is fine: the check must look at every tensor, not only the first.
    _layout(path, [("fine", 8, 0), ("w", 8, 256 + offset)], alignment=alignment)
    _check_refused(path, re.escape(f"tensor 'w' data offset {256 + offset} is not a multiple of "
                                   f"the alignment ({alignment or 32} bytes); the file is "
                                   "damaged or hostile"))


def test_second_tensor_past_the_end_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "short.gguf"
    # 'b' needs bytes 512-1024 of a 1024-byte data section: one too many.
    _layout(path, [("a", 128, 0), ("b", 128, 512)], data_bytes=1023)
    _check_refused(path, re.escape("tensor 'b' (offset 512, 512 bytes) lies outside the data "
                                   "section of 1023 bytes"))
    _layout(path, [("a", 128, 0), ("b", 128, 512)], data_bytes=1024)
    GGUFFile(path).close()  # and with that byte it is fine


def test_a_tensor_name_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "twice.gguf"
    _layout(path, [("w", 32, 0), ("w", 32, 128)])
    _check_refused(path, "tensor 'w' appears twice in the tensor directory")


# The same through the model importer ----------------------------------------------------------


def _offset_field(raw: bytes | bytearray, name: str) -> int:
    """Where tensor ``name``'s data offset is stored in the tensor directory."""
    encoded = name.encode()
    position = raw.index(struct.pack("<Q", len(encoded)) + encoded) + 8 + len(encoded)
    (n_dims,) = struct.unpack_from("<I", raw, position)
    return position + 4 + 8 * n_dims + 4  # past n_dims, the dimensions and the type


@pytest.mark.parametrize(("shift", "pattern"), [
    (0, "tensors 'blk.0.attn_q.weight' and 'blk.0.attn_k.weight' overlap (bytes {q}-{q_k_end} "
        "of the file)"),
    (4096, "tensors 'blk.0.attn_q.weight' and 'blk.0.attn_k.weight' overlap (bytes {q_4096}-"
           "{q_4096_k_end} of the file)"),
    (4100, "tensor 'blk.0.attn_k.weight' data offset {q_rel_4100} is not a multiple of the "
           "alignment (32 bytes)"),
], ids=["full overlap", "partial overlap", "misaligned"])
def test_patched_model_is_refused(tmp_path: Path, vocabulary: Vocabulary, shift: int,
                                  pattern: str) -> None:
    """attn_k's offset is pointed ``shift`` bytes into attn_q's in a model written by
    llama.cpp's writer; the import stops at the tensor directory."""
    original = tmp_path / "original.gguf"
    build_gguf(original, _config("llama", "F32"), vocabulary, "F32")
    reader = gguf.GGUFReader(original)
    q_start = next(int(t.data_offset) for t in reader.tensors if t.name == "blk.0.attn_q.weight")
    k_bytes = next(int(t.n_bytes) for t in reader.tensors if t.name == "blk.0.attn_k.weight")
    del reader
    raw = bytearray(original.read_bytes())
    q_field = _offset_field(raw, "blk.0.attn_q.weight")
    (q_relative,) = struct.unpack_from("<Q", raw, q_field)
    struct.pack_into("<Q", raw, _offset_field(raw, "blk.0.attn_k.weight"), q_relative + shift)
    path = tmp_path / "model.gguf"
    path.write_bytes(bytes(raw))
    expected = pattern.format(q=q_start, q_k_end=q_start + k_bytes - 1, q_4096=q_start + 4096,
                              q_4096_k_end=q_start + 4096 + k_bytes - 1,
                              q_rel_4100=q_relative + 4100)
    with pytest.raises(ModelFormatError) as error:
        read_gguf_model(path, "fp32")
    message = str(error.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert expected in message
    assert message.endswith("the file is damaged or hostile, download it again")


# Vocabulary size ------------------------------------------------------------------------------


def _padded(tokens: int) -> int:
    """The next multiple of 64 above ``tokens``, as padded checkpoints have."""
    return (tokens // 64 + 1) * 64


@pytest.mark.parametrize("tied", [True, False])
def test_fewer_embedding_rows_than_tokens_is_refused(tmp_path: Path, vocabulary: Vocabulary,
                                                     tied: bool) -> None:
    tokens = len(vocabulary.tokens)
    path = tmp_path / "short-vocab.gguf"
    build_gguf(path, _config("llama", "F32", tied), vocabulary, "F32",
               embedding_rows=tokens - 3)
    with pytest.raises(ModelFormatError) as error:
        import_model(path, "short", precision="fp32")
    message = str(error.value)
    assert message == (f"{path}: token embedding has {tokens - 3} rows but the tokenizer has "
                       f"{tokens} tokens (ids {tokens - 3}-{tokens - 1} have no embedding); the "
                       "file is damaged or not a supported model")


@pytest.mark.parametrize(("declared", "rows"), [(1, 0), (-3, 0), (0, 64)])
def test_vocab_size_key_must_match_the_embedding(tmp_path: Path, vocabulary: Vocabulary,
                                                 declared: int, rows: int) -> None:
    """``llama.vocab_size`` against the embedding's rows (both given as tokens + n): the key
    describes the weights, padding included, as llama.cpp reads it."""
    tokens = len(vocabulary.tokens)
    path = tmp_path / "vocab-size.gguf"
    build_gguf(path, _config("llama", "F32"), vocabulary, "F32", embedding_rows=tokens + rows,
               metadata={"llama.vocab_size": (tokens + declared, GGUFValueType.UINT32)})
    with pytest.raises(ModelFormatError, match=re.escape(
            f"'llama.vocab_size' is {tokens + declared} but 'token_embd.weight' has "
            f"{tokens + rows} rows")) as error:
        read_gguf_model(path, "fp32")
    assert str(path) in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("tied", [True, False])
def test_padding_rows_are_cut_and_reported(tmp_path: Path, vocabulary: Vocabulary,
                                           tied: bool) -> None:
    tokens = len(vocabulary.tokens)
    rows = _padded(tokens)
    assert rows > tokens
    path = tmp_path / "padded.gguf"
    # The tied file also says its (padded) vocab_size, as converters write it.
    metadata: dict[str, Override] | None = \
        {"llama.vocab_size": (rows, GGUFValueType.UINT32)} if tied else None
    case = build_gguf(path, _config("llama", "Q8_0", tied), vocabulary, "Q8_0",
                      embedding_rows=rows, metadata=metadata)
    note = (f"token embedding has {rows} rows, tokenizer has {tokens} tokens: {rows - tokens} "
            "padding rows are never generated (they were left out of the model)")

    result = import_model(path, "padded", precision="fp32")
    assert result.check is not None and result.check.greedy_identical
    assert _report(result.folder)["notes"] == [note]
    model = load_model(result.folder, device="cpu", threads=1)
    assert model.manifest.vocab_size == tokens
    ids = prompt_ids(model, PROMPT)
    got = engine_logits(result.folder, ids)
    # Only the tokenizer's ids have logits, and they are the padded model's.
    expected = reference_logits(reference_model(case, rows), ids)
    assert got.shape == (len(ids), tokens) and expected.shape == (len(ids), rows)
    np.testing.assert_allclose(got, expected[:, :tokens], atol=1e-3, rtol=0)

    # Repacked for int8, the (tied or own) output head is cut the same way.
    imported = read_gguf_model(path, "int8")
    assert imported.tensor_report["notes"] == [note]
    hidden = case.config.hidden
    assert weight_shape(imported.weights, "embed_tokens.weight") == (tokens, hidden)
    assert weight_shape(imported.weights, "lm_head.weight") == (tokens, hidden)
    head = imported.weights["lm_head.weight"]
    assert isinstance(head, PackedWeight) and head.out_features == tokens  # read back: cut too
    packed = write_model_folder(imported, tmp_path / "int8", "int8", int8_activations=False)
    imported.close()
    assert _report(packed)["notes"] == [note]
    int8_logits = engine_logits(packed, ids)
    assert int8_logits.shape == got.shape
    if tied:  # the repacked head is exact; an untied file's float table is quantized (close)
        np.testing.assert_allclose(int8_logits, got, atol=1e-3, rtol=0)
    else:
        assert np.abs(int8_logits - got).max() < 0.1 * np.abs(got).max()


def test_no_padding_no_note(tmp_path: Path, vocabulary: Vocabulary) -> None:
    path = tmp_path / "exact.gguf"
    build_gguf(path, _config("llama", "Q8_0"), vocabulary, "Q8_0",
               metadata={"llama.vocab_size": (len(vocabulary.tokens), GGUFValueType.UINT32)})
    imported = read_gguf_model(path, "int8")
    assert "notes" not in imported.tensor_report
    imported.close()


def test_the_command_line_prints_the_padding_note(tmp_path: Path, vocabulary: Vocabulary,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    tokens = len(vocabulary.tokens)
    rows = _padded(tokens)
    path = tmp_path / "padded.gguf"
    build_gguf(path, _config("llama", "F32"), vocabulary, "F32", embedding_rows=rows)
    assert main(["models", "import", str(path), "--name", "padded", "--precision", "fp32",
                 "--no-check"]) == 0
    assert f"note: token embedding has {rows} rows, tokenizer has {tokens} tokens" in \
        capsys.readouterr().err
