"""The defensive GGUF reader: hostile and broken files fail fast, valid files read back exactly.

Hostile files are written byte by byte with ``struct`` (small, each aimed at one check); every one
must raise a one-line ModelFormatError naming the file within a second, and never allocate what a
count in the file claims (a MemoryError, or a long stall, would mean a size was trusted). Valid
files come from llama.cpp's own writer (``gguf.GGUFWriter``) and its reader is the reference.
"""

from __future__ import annotations

import re
import struct
import time
from collections.abc import Callable
from pathlib import Path

import gguf
import numpy as np
import pytest
from gguf import GGMLQuantizationType, GGUFValueType
from gguf import quants as reference_quants

from convert.importers.ggml_quants import dequantize
from convert.importers.gguf_reader import GGUFFile
from engine.errors import ModelFormatError

T = GGMLQuantizationType
U8, U32, U64, F32_VALUE, STRING, ARRAY = 0, 4, 10, 6, 8, 9  # GGUF metadata value types
F32, Q4_0 = 0, 2  # ggml tensor types


# Byte-level builders --------------------------------------------------------------------------


def gguf_string(text: str | bytes) -> bytes:
    raw = text.encode("utf-8") if isinstance(text, str) else text
    return struct.pack("<Q", len(raw)) + raw


def header(tensors: int = 0, kvs: int = 0, version: int = 3, magic: bytes = b"GGUF") -> bytes:
    return magic + struct.pack("<IQQ", version, tensors, kvs)


def kv(key: str, value_type: int, payload: bytes) -> bytes:
    return gguf_string(key) + struct.pack("<I", value_type) + payload


def kv_u32(key: str, value: int) -> bytes:
    return kv(key, U32, struct.pack("<I", value))


def array(element_type: int, count: int, payload: bytes = b"") -> bytes:
    return struct.pack("<IQ", element_type, count) + payload


def tensor_info(name: str, dims: list[int], ggml_type: int = F32, offset: int = 0,
                n_dims: int | None = None) -> bytes:
    n_dims = len(dims) if n_dims is None else n_dims
    return (gguf_string(name) + struct.pack("<I", n_dims) + struct.pack(f"<{len(dims)}Q", *dims)
            + struct.pack("<IQ", ggml_type, offset))


def gguf_bytes(kvs: tuple[bytes, ...] | list[bytes] = (),
               infos: tuple[bytes, ...] | list[bytes] = (), data: bytes = b"",
               alignment: int = 32, kv_count: int | None = None) -> bytes:
    """A whole file: header, metadata, tensor infos, padding to ``alignment``, tensor data."""
    count = len(kvs) if kv_count is None else kv_count
    body = header(tensors=len(infos), kvs=count) + b"".join(kvs) + b"".join(infos)
    return body + b"\0" * (-len(body) % alignment) + data


def one_tensor(dims: list[int], ggml_type: int = F32, offset: int = 0, data_bytes: int = 4096,
               **info_fields: int) -> bytes:
    return gguf_bytes(infos=[tensor_info("w", dims, ggml_type, offset, **info_fields)],
                      data=b"\x01" * data_bytes)


def padded(raw: bytes, size: int) -> bytes:
    return raw + b"\0" * (size - len(raw))


# Hostile and broken files ---------------------------------------------------------------------

HOSTILE: dict[str, tuple[Callable[[], bytes], str]] = {
    # name: (file contents, a regex the message must match)
    "empty file": (lambda: b"", "0 bytes"),
    "ten bytes": (lambda: b"GGUF\x03\0\0\0\0\0", "10 bytes"),
    "wrong magic": (lambda: padded(header(magic=b"GGML"), 64), "not a GGUF"),
    "version 1": (lambda: padded(header(version=1), 64), "version 1 "),
    "version 4": (lambda: padded(header(version=4), 64), "version 4 "),
    "big-endian version": (lambda: padded(b"GGUF" + struct.pack(">IQQ", 3, 0, 0), 64),
                           "version 50331648"),
    "tensor count 2**64-1": (lambda: padded(header(tensors=2**64 - 1), 1024),
                             "18446744073709551615 tensor entries"),
    "metadata count 2**64-1": (lambda: padded(header(kvs=2**64 - 1), 1024),
                               "18446744073709551615 metadata entries"),
    "metadata count past the end": (lambda: header(kvs=2) + kv_u32("a", 1),
                                    "2 metadata entries"),
    "key length 2**40": (lambda: padded(header(kvs=1) + struct.pack("<Q", 2**40), 1024),
                         "metadata key 0 is 1099511627776 bytes long"),
    "string length 2**40": (
        lambda: padded(gguf_bytes([kv("s", STRING, struct.pack("<Q", 2**40))]), 1024),
        "needs 1099511627776 bytes"),
    "array count 2**62 of u8": (
        lambda: padded(gguf_bytes([kv("a", ARRAY, array(U8, 2**62))]), 1024),
        "4611686018427387904 elements"),
    "array count 2**62 of u64": (
        lambda: padded(gguf_bytes([kv("a", ARRAY, array(U64, 2**62))]), 1024),
        "4611686018427387904 elements"),
    "array count 2**62 of strings": (
        lambda: padded(gguf_bytes([kv("a", ARRAY, array(STRING, 2**62))]), 1024),
        "4611686018427387904 elements"),
    "array count 2**62 of arrays": (
        lambda: padded(gguf_bytes([kv("a", ARRAY, array(ARRAY, 2**62))]), 1024),
        "4611686018427387904 elements"),
    "string in an array longer than the file": (
        lambda: padded(gguf_bytes([kv("a", ARRAY, array(STRING, 2, gguf_string("x")
                                                         + struct.pack("<Q", 2**40)))]), 256),
        r"'a'\[1\] needs 1099511627776 bytes"),
    "unknown value type": (lambda: padded(gguf_bytes([kv("v", 13, b"\0" * 8)]), 128),
                           "unknown value type 13"),
    "unknown array element type": (
        lambda: padded(gguf_bytes([kv("a", ARRAY, array(99, 1, b"\0" * 8))]), 128),
        "unknown element type 99"),
    "arrays nested too deep": (
        lambda: padded(gguf_bytes([kv("a", ARRAY, array(ARRAY, 1, array(ARRAY, 1, array(
            ARRAY, 1, array(U8, 1, b"\0")))))]), 128),
        "nests arrays too deeply"),
    "alignment not a power of two": (
        lambda: gguf_bytes([kv_u32("general.alignment", 24)], alignment=24), "power of two"),
    "alignment zero": (lambda: gguf_bytes([kv_u32("general.alignment", 0)]), "power of two"),
    "alignment a string": (lambda: gguf_bytes([kv("general.alignment", STRING, gguf_string("x"))]),
                           "general.alignment"),
    "alignment a numeric string": (
        lambda: gguf_bytes([kv("general.alignment", STRING, gguf_string("32"))]),
        "general.alignment"),
    "alignment an array": (
        lambda: gguf_bytes([kv("general.alignment", ARRAY, array(U32, 1, b"\x20\0\0\0"))]),
        "general.alignment"),
    "alignment a long array": (
        lambda: gguf_bytes([kv("general.alignment", ARRAY, array(U32, 600, b"\x20\0\0\0" * 600))]),
        "general.alignment is a ndarray"),
    "alignment a float": (
        lambda: gguf_bytes([kv("general.alignment", F32_VALUE, struct.pack("<f", 32.0))]),
        "general.alignment"),
    "tensor infos past the end": (lambda: padded(header(tensors=10), 100),
                                  "10 tensor entries"),
    "n_dims 9": (lambda: one_tensor([1] * 9), "9 dimensions"),
    "n_dims 0": (lambda: one_tensor([], n_dims=0), "0 dimensions"),
    "n_dims 2**32-1": (lambda: one_tensor([1], n_dims=2**32 - 1), "4294967295 dimensions"),
    "a zero dimension": (lambda: one_tensor([32, 0]), "zero or negative dimension"),
    "huge dimension product": (lambda: one_tensor([2**32, 2**32]), "larger than the file"),
    "dimension product past 2**64": (lambda: one_tensor([2**63, 2**63, 2**63, 2**63]),
                                     "larger than the file"),
    "dimensions just too big for the data": (lambda: one_tensor([1025], data_bytes=4096),
                                             "lies outside the data section"),
    "offset past the end": (lambda: one_tensor([32], offset=1 << 20), "lies outside"),
    "offset 2**64-32": (lambda: one_tensor([32], offset=2**64 - 32), "lies outside"),
    "misaligned offset": (lambda: one_tensor([32], offset=4), "offset 4"),
    "unsupported type Q2_K": (lambda: one_tensor([256], ggml_type=10), "Q2_K"),
    "unsupported type IQ2_XXS": (lambda: one_tensor([256], ggml_type=16), "IQ2_XXS"),
    "removed type Q4_2": (lambda: one_tensor([32], ggml_type=4), "Q4_2"),
    "unknown type id 99": (lambda: one_tensor([32], ggml_type=99), "unknown type 99"),
    "unknown type id 2**32-1": (lambda: one_tensor([32], ggml_type=2**32 - 1),
                                "unknown type 4294967295"),
    "partial quant block": (lambda: one_tensor([33], ggml_type=Q4_0), "multiple of 32"),
    "rows of partial quant blocks": (lambda: one_tensor([16, 2], ggml_type=Q4_0),
                                     "multiple of 32 elements, got 16"),
    "tensor info truncated": (lambda: header(tensors=1) + gguf_string("w")
                              + struct.pack("<I", 2) + b"\0" * 10, "tensor"),
}


def _check_refused(path: Path, pattern: str) -> ModelFormatError:
    started = time.perf_counter()
    try:
        GGUFFile(path).close()
    except MemoryError:  # a count from the file was trusted
        pytest.fail(f"{path.name}: MemoryError instead of a ModelFormatError")
    except ModelFormatError as error:
        elapsed = time.perf_counter() - started
        message = str(error)
        assert elapsed < 1.0, f"took {elapsed:.2f} s"
        assert "\n" not in message and str(path) in message, message
        assert re.search(pattern, message), message
        return error
    raise AssertionError(f"{path.name} was accepted")


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_file_is_refused_fast(tmp_path: Path, case: str) -> None:
    contents, pattern = HOSTILE[case]
    path = tmp_path / "hostile.gguf"
    path.write_bytes(contents())
    assert path.stat().st_size <= 4096 + 512  # small files: only the claims inside are huge
    _check_refused(path, pattern)


def _write_valid(path: Path, alignment: int | None = None) -> dict[str, np.ndarray]:
    """A small valid file from llama.cpp's writer; returns the tensors it holds (raw form)."""
    rng = np.random.default_rng(0)
    tensors = {
        "f32.matrix": rng.standard_normal((3, 40)).astype(np.float32),
        "f32.vector": rng.standard_normal(7).astype(np.float32),
        "f16.cube": rng.standard_normal((2, 3, 32)).astype(np.float16),
        "q8_0.matrix": reference_quants.quantize(rng.standard_normal((4, 64)).astype(np.float32),
                                                 T.Q8_0),
        "bf16.matrix": reference_quants.quantize(rng.standard_normal((5, 16)).astype(np.float32),
                                                 T.BF16),
    }
    writer = gguf.GGUFWriter(path, "llama")
    if alignment is not None:
        writer.add_custom_alignment(alignment)
    writer.add_uint8("t.u8", 200)
    writer.add_int8("t.i8", -100)
    writer.add_uint16("t.u16", 60000)
    writer.add_int16("t.i16", -30000)
    writer.add_uint32("t.u32", 4_000_000_000)
    writer.add_int32("t.i32", -2_000_000_000)
    writer.add_float32("t.f32", 0.25)
    writer.add_uint64("t.u64", 2**63 + 5)
    writer.add_int64("t.i64", -(2**62))
    writer.add_float64("t.f64", 1 / 3)
    writer.add_bool("t.true", True)
    writer.add_bool("t.false", False)
    writer.add_string("t.str", "héllo 🌙")
    writer.add_key_value("t.empty", "", GGUFValueType.STRING)  # add_string skips empty ones
    writer.add_array("t.strings", ["a", "", "<|im_end|>", "夜"])
    writer.add_array("t.ints", [1, -2, 3])
    writer.add_array("t.floats", [0.5, -1.5])
    writer.add_array("t.bools", [True, False, True])
    writer.add_key_value("t.u64s", [2**64 - 1, 0], GGUFValueType.ARRAY, GGUFValueType.UINT64)
    writer.add_key_value("t.f64s", [0.1, 2.5], GGUFValueType.ARRAY, GGUFValueType.FLOAT64)
    writer.add_array("t.nested", [[1, 2], [3]])
    for name, value in tensors.items():
        raw_dtype = {"q8_0.matrix": T.Q8_0, "bf16.matrix": T.BF16}.get(name)
        writer.add_tensor(name, value, raw_dtype=raw_dtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return tensors


EXPECTED_METADATA = {
    "general.architecture": "llama", "t.u8": 200, "t.i8": -100, "t.u16": 60000, "t.i16": -30000,
    "t.u32": 4_000_000_000, "t.i32": -2_000_000_000, "t.f32": 0.25, "t.u64": 2**63 + 5,
    "t.i64": -(2**62), "t.f64": 1 / 3, "t.true": True, "t.false": False, "t.str": "héllo 🌙",
    "t.empty": "", "t.strings": ["a", "", "<|im_end|>", "夜"],
}
EXPECTED_ARRAYS = {
    "t.ints": np.array([1, -2, 3], dtype=np.int32),
    "t.floats": np.array([0.5, -1.5], dtype=np.float32),
    "t.bools": np.array([True, False, True]),
    "t.u64s": np.array([2**64 - 1, 0], dtype=np.uint64),
    "t.f64s": np.array([0.1, 2.5], dtype=np.float64),
}
EXPECTED_SHAPES = {"f32.matrix": (3, 40), "f32.vector": (7,), "f16.cube": (2, 3, 32),
                   "q8_0.matrix": (4, 64), "bf16.matrix": (5, 16)}
EXPECTED_TYPES = {"f32.matrix": "F32", "f32.vector": "F32", "f16.cube": "F16",
                  "q8_0.matrix": "Q8_0", "bf16.matrix": "BF16"}


@pytest.mark.parametrize("alignment", [None, 64])
def test_valid_file_reads_back(tmp_path: Path, alignment: int | None) -> None:
    path = tmp_path / "valid.gguf"
    written = _write_valid(path, alignment)
    reference = gguf.GGUFReader(path)
    with GGUFFile(path) as model:
        metadata = model.metadata
        for key, value in EXPECTED_METADATA.items():
            assert metadata[key] == value, key
            assert type(metadata[key]) is type(value), key
        for key, value in EXPECTED_ARRAYS.items():
            assert isinstance(metadata[key], np.ndarray), key
            assert metadata[key].dtype == value.dtype, key
            np.testing.assert_array_equal(metadata[key], value)
        assert [list(inner) for inner in metadata["t.nested"]] == [[1, 2], [3]]
        assert metadata.get("general.alignment") == alignment

        assert set(model.tensors) == set(written)
        for entry in reference.tensors:
            info = model.tensors[entry.name]
            assert info.shape == EXPECTED_SHAPES[entry.name]
            # numpy order is GGUF's ne reversed (ne[0] is the fastest-varying axis).
            assert info.shape == tuple(int(d) for d in reversed(entry.shape))
            assert info.type_name == EXPECTED_TYPES[entry.name]
            assert info.n_elements == entry.n_elements
            assert info.offset == entry.data_offset and info.offset % (alignment or 32) == 0
            raw = model.tensor_bytes(entry.name)
            assert raw.dtype == np.uint8 and raw.size == info.nbytes == entry.n_bytes
            expected = np.ascontiguousarray(written[entry.name]).view(np.uint8).reshape(-1)
            np.testing.assert_array_equal(raw, expected)
        np.testing.assert_array_equal(model.tensor_bytes("f32.matrix").view("<f4").reshape(3, 40),
                                      written["f32.matrix"])
        q8 = model.tensors["q8_0.matrix"]
        np.testing.assert_array_equal(
            dequantize(q8.ggml_type, model.tensor_bytes(q8.name), q8.shape),
            reference_quants.dequantize(written["q8_0.matrix"], T.Q8_0))
        del raw  # views of the map must go before it closes


def test_truncated_valid_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "valid.gguf"
    _write_valid(path)
    with GGUFFile(path):
        pass  # the whole file is fine
    full = path.read_bytes()
    path.write_bytes(full[:-1])
    _check_refused(path, "lies outside the data section")
    # Cut inside the header, the metadata and the tensor infos too: always an error.
    for size in (30, 100, 400, len(full) // 2):
        path.write_bytes(full[:size])
        _check_refused(path, "GGUF|outside")


def test_every_prefix_of_a_small_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "small.gguf"
    full = gguf_bytes([kv_u32("a", 1), kv("s", ARRAY, array(STRING, 2, gguf_string("x") * 2))],
                      [tensor_info("w", [8, 4])], data=b"\0" * 128)
    path.write_bytes(full)
    with GGUFFile(path) as model:
        assert model.tensors["w"].shape == (4, 8)
    for size in range(len(full)):
        path.write_bytes(full[:size])
        _check_refused(path, ".")


def test_missing_file_and_folder(tmp_path: Path) -> None:
    for path in (tmp_path / "missing.gguf", tmp_path):
        with pytest.raises(ModelFormatError, match="cannot open") as error:
            GGUFFile(path)
        assert str(path) in str(error.value)
