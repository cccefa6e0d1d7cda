"""A defensive GGUF reader: metadata and tensor directory, every size checked before use.

llama.cpp's 2024 GGUF vulnerabilities all came from trusting a count, length or offset in the
file. Here every count, string length, array length, dimension count, shape product and tensor
offset is checked against the bytes that are actually left in the file *before* anything is
allocated, so a hostile file fails fast with a one-line ModelFormatError. The tensor directory's
layout is checked too, as llama.cpp's gguf.cpp does: every data offset is a multiple of the
alignment, every tensor lies inside the data section, no name appears twice and no two tensors
share a byte (a tensor aliasing another's bytes would silently feed one weight another's numbers).
Tensor data is not read here: it stays memory-mapped until a tensor is asked for.
"""

from __future__ import annotations

import contextlib
import mmap
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from convert.importers.ggml_quants import ggml_type_name, is_supported, tensor_nbytes
from engine.errors import ModelFormatError

MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
MAX_DIMS = 4  # GGML_MAX_DIMS
DEFAULT_ALIGNMENT = 32
MAX_KEY_LENGTH = 65_535
MAX_ARRAY_NESTING = 2

# Value types: id -> (struct format, size) for fixed-size scalars.
_SCALARS = {
    0: ("<B", 1), 1: ("<b", 1), 2: ("<H", 2), 3: ("<h", 2), 4: ("<I", 4), 5: ("<i", 4),
    6: ("<f", 4), 7: ("<?", 1), 10: ("<Q", 8), 11: ("<q", 8), 12: ("<d", 8),
}
_NUMPY_TYPES = {0: "<u1", 1: "<i1", 2: "<u2", 3: "<i2", 4: "<u4", 5: "<i4", 6: "<f4", 7: "<u1",
                10: "<u8", 11: "<i8", 12: "<f8"}
_STRING, _ARRAY = 8, 9


@dataclass(frozen=True)
class TensorInfo:
    name: str
    ggml_type: int
    shape: tuple[int, ...]  # numpy order (GGUF's ne reversed): (rows, columns) for matrices
    offset: int  # absolute offset of the first byte in the file
    nbytes: int

    @property
    def n_elements(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def type_name(self) -> str:
        return ggml_type_name(self.ggml_type)


class _Cursor:
    """Reads little-endian values from a buffer; every read is bounds-checked first."""

    def __init__(self, buffer: Any, path: Path) -> None:
        self.buffer, self.path, self.pos, self.size = buffer, path, 0, len(buffer)

    def fail(self, what: str) -> ModelFormatError:
        return ModelFormatError(f"{self.path}: {what}; the GGUF file is damaged or not a GGUF")

    def hostile(self, what: str) -> ModelFormatError:
        """A file that parses but whose layout no GGUF writer produces."""
        return ModelFormatError(f"{self.path}: {what}; the file is damaged or hostile, download "
                                "it again")

    def need(self, count: int, what: str) -> None:
        if count < 0 or count > self.size - self.pos:
            raise self.fail(f"{what} needs {count} bytes at offset {self.pos} but the file has "
                            f"{self.size - self.pos} left")

    def scalar(self, type_id: int, what: str) -> Any:
        fmt, size = _SCALARS[type_id]
        self.need(size, what)
        (value,) = struct.unpack_from(fmt, self.buffer, self.pos)
        self.pos += size
        return value

    def u32(self, what: str) -> int:
        return int(self.scalar(4, what))

    def u64(self, what: str) -> int:
        return int(self.scalar(10, what))

    def string(self, what: str, limit: int | None = None) -> str:
        length = self.u64(f"{what} length")
        if limit is not None and length > limit:
            raise self.fail(f"{what} is {length} bytes long (at most {limit} allowed)")
        self.need(length, what)
        raw = bytes(self.buffer[self.pos:self.pos + length])
        self.pos += length
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            # Tokens may hold partial UTF-8 (byte tokens); keep them lossless.
            return raw.decode("utf-8", errors="surrogateescape")

    def value(self, type_id: int, what: str, depth: int = 0) -> Any:
        if type_id in _SCALARS:
            return self.scalar(type_id, what)
        if type_id == _STRING:
            return self.string(what)
        if type_id == _ARRAY:
            if depth >= MAX_ARRAY_NESTING:
                raise self.fail(f"{what} nests arrays too deeply")
            element_type = self.u32(f"{what} element type")
            count = self.u64(f"{what} count")
            if element_type in _SCALARS:
                size = _SCALARS[element_type][1]
                self.need(count * size, f"{what} ({count} elements)")
                array = np.frombuffer(self.buffer, dtype=_NUMPY_TYPES[element_type], count=count,
                                      offset=self.pos).copy()
                self.pos += count * size
                return array.astype(bool) if element_type == 7 else array
            if element_type not in (_STRING, _ARRAY):
                raise self.fail(f"{what} has unknown element type {element_type}")
            # Each string or array element takes at least 8 bytes (its length or count).
            self.need(count * 8, f"{what} ({count} elements)")
            return [self.value(element_type, f"{what}[{i}]", depth + 1) for i in range(count)]
        raise self.fail(f"{what} has unknown value type {type_id}")


def _check_no_overlap(cursor: _Cursor, tensors: Iterable[TensorInfo]) -> None:
    """Refuses two tensors that share bytes: sorted by offset, each must start at or after
    the end of the one before (O(n log n), no tensor data read).

    llama.cpp goes further and wants the tensors packed in directory order; gaps and another
    order are harmless to a reader that seeks to each offset, so they are allowed here.
    """
    previous: TensorInfo | None = None
    for info in sorted(tensors, key=lambda t: t.offset):  # stable: ties keep directory order
        if previous is not None and info.offset < previous.offset + previous.nbytes:
            end = min(info.offset + info.nbytes, previous.offset + previous.nbytes)
            raise cursor.hostile(f"tensors {previous.name!r} and {info.name!r} overlap (bytes "
                                 f"{info.offset}-{end - 1} of the file)")
        previous = info


class GGUFFile:
    """An open GGUF file: ``metadata`` (key -> value) and ``tensors`` (name -> TensorInfo).

    Use as a context manager, or call ``close()``; arrays returned by ``tensor_bytes`` are views
    of the memory map and must not outlive it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._file = path.open("rb")
        except OSError as error:
            raise ModelFormatError(f"{path}: cannot open ({error.strerror})") from None
        try:
            size = path.stat().st_size
            if size < 24:
                raise ModelFormatError(f"{path}: only {size} bytes; not a GGUF file")
            self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
            self.metadata, self.tensors = self._parse(_Cursor(self._map, path))
        except BaseException:
            self.close()
            raise

    def _parse(self, cursor: _Cursor) -> tuple[dict[str, Any], dict[str, TensorInfo]]:
        cursor.need(4, "magic")
        if bytes(cursor.buffer[0:4]) != MAGIC:
            raise ModelFormatError(f"{self.path}: not a GGUF file (it does not start with 'GGUF')")
        cursor.pos = 4
        version = cursor.u32("version")
        if version not in SUPPORTED_VERSIONS:
            raise ModelFormatError(f"{self.path}: GGUF version {version} is not supported "
                                   f"(supported: 2, 3; big-endian files are not)")
        tensor_count = cursor.u64("tensor count")
        kv_count = cursor.u64("metadata count")
        # Each metadata entry takes >= 12 bytes and each tensor entry >= 24: a count the file
        # can't hold is refused before any loop runs.
        cursor.need(kv_count * 12, f"{kv_count} metadata entries")
        metadata: dict[str, Any] = {}
        for index in range(kv_count):
            key = cursor.string(f"metadata key {index}", MAX_KEY_LENGTH)
            metadata[key] = cursor.value(cursor.u32(f"type of {key!r}"), f"metadata {key!r}")
        cursor.need(tensor_count * 24, f"{tensor_count} tensor entries")
        raw_infos = []
        names: set[str] = set()
        for index in range(tensor_count):
            name = cursor.string(f"tensor {index} name", MAX_KEY_LENGTH)
            if name in names:
                # A dict would keep the last entry silently; llama.cpp refuses the file too.
                raise cursor.hostile(f"tensor {name!r} appears twice in the tensor directory")
            names.add(name)
            n_dims = cursor.u32(f"tensor {name!r} dimension count")
            if not 1 <= n_dims <= MAX_DIMS:
                raise cursor.fail(f"tensor {name!r} has {n_dims} dimensions (1 to {MAX_DIMS} "
                                  "allowed)")
            dims = [cursor.u64(f"tensor {name!r} dimension") for _ in range(n_dims)]
            ggml_type = cursor.u32(f"tensor {name!r} type")
            offset = cursor.u64(f"tensor {name!r} offset")
            raw_infos.append((name, dims, ggml_type, offset))
        alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
        if isinstance(alignment, bool) or not isinstance(alignment, int):  # int() could crash
            raise cursor.fail(f"general.alignment is a {type(alignment).__name__}, not an "
                              "integer")
        if alignment <= 0 or alignment & (alignment - 1):
            raise cursor.fail(f"general.alignment {alignment} is not a power of two")
        data_start = -(-cursor.pos // alignment) * alignment
        data_size = cursor.size - data_start
        tensors: dict[str, TensorInfo] = {}
        for name, dims, ggml_type, offset in raw_infos:
            tensors[name] = self._tensor_info(cursor, name, dims, ggml_type, offset, data_start,
                                              data_size, alignment)
        _check_no_overlap(cursor, tensors.values())
        return metadata, tensors

    def _tensor_info(self, cursor: _Cursor, name: str, dims: list[int], ggml_type: int,
                     offset: int, data_start: int, data_size: int, alignment: int) -> TensorInfo:
        if offset % alignment:
            # Every writer pads to the alignment (llama.cpp refuses anything else): an offset
            # off it was made by hand, and memory-mapped readers would get unaligned blocks.
            raise cursor.hostile(f"tensor {name!r} data offset {offset} is not a multiple of the "
                                 f"alignment ({alignment} bytes)")
        if any(d <= 0 for d in dims):
            raise cursor.fail(f"tensor {name!r} has a zero or negative dimension {dims}")
        elements = 1
        for d in dims:
            elements *= d
            if elements > data_size * 8:  # > 8 elements per byte can't fit any type
                raise cursor.fail(f"tensor {name!r} shape {dims} is larger than the file")
        if not is_supported(ggml_type):
            raise ModelFormatError(
                f"{self.path}: tensor {name!r} uses {ggml_type_name(ggml_type)}, which Nightlamp "
                "cannot read yet (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, "
                "Q5_K, Q6_K); use a file with another quantization"
            )
        try:
            tensor_nbytes(ggml_type, dims[0])  # rows are whole blocks (llama.cpp checks it too)
            nbytes = tensor_nbytes(ggml_type, elements)
        except ValueError as error:
            raise cursor.fail(f"tensor {name!r}: {error}") from None
        if offset > data_size or nbytes > data_size - offset:
            raise cursor.fail(f"tensor {name!r} (offset {offset}, {nbytes} bytes) lies outside the "
                              f"data section of {data_size} bytes")
        return TensorInfo(name, ggml_type, tuple(reversed(dims)), data_start + offset, nbytes)

    def tensor_bytes(self, name: str) -> np.ndarray:
        """The raw bytes of a tensor as a uint8 view of the memory map."""
        info = self.tensors[name]
        return np.frombuffer(self._map, dtype=np.uint8, count=info.nbytes, offset=info.offset)

    def fileno(self) -> int:
        """The open file's descriptor, for reading tensors without the memory map."""
        return self._file.fileno()

    def close(self) -> None:
        if getattr(self, "_map", None) is not None:
            # A tensor view may still be alive; the map then closes when it is collected.
            with contextlib.suppress(BufferError):
                self._map.close()
            self._map = None
        self._file.close()

    def __enter__(self) -> GGUFFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
