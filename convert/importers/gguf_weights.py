"""The weights of a GGUF file as a mapping that reads each tensor from the file when asked.

A Q4 file decoded to float32 is seven times its size: holding every tensor while the graph was
built (and quantized again) and the import check ran took ``models pull`` of a 135M model to
1.5 GB. Here ``read_gguf_model`` only plans the tensors (name, type, shape: all checked against
the metadata up front); each lookup reads one tensor's bytes with ``pread`` (not through the
memory map, whose pages would stay resident), decodes or repacks it and keeps nothing, so the
graph builder and the import check hold one tensor at a time.

The file stays open (the same open file the directory was parsed from, so a file replaced after
reading can't be mixed in) until ``close()`` or until the mapping is collected.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from convert.importers import ggml_quants
from convert.importers.gguf_reader import GGUFFile, TensorInfo
from convert.importers.imported import LazyWeights
from convert.quantize import PackedWeight
from engine.errors import ModelFormatError


def unpermute_index(rows: int, heads: int) -> np.ndarray:
    """Row order that undoes llama.cpp's ``permute`` of a query/key projection.

    llama.cpp stores each head's rows as interleaved rotary pairs; Hugging Face Llama stores the
    first halves of all pairs, then the second halves (rotate-half).
    """
    half = rows // heads // 2
    return np.arange(rows).reshape(heads, half, 2).swapaxes(1, 2).reshape(-1)


def take_rows(weight: np.ndarray | PackedWeight, index: np.ndarray) -> np.ndarray | PackedWeight:
    if isinstance(weight, np.ndarray):
        return np.ascontiguousarray(weight[index])
    blocks = weight.data.shape[1]
    zero_points = None if weight.zero_points is None else \
        weight.zero_points.reshape(-1, blocks)[index].reshape(-1)
    return PackedWeight(np.ascontiguousarray(weight.data[index]),
                        weight.scales.reshape(-1, blocks)[index].reshape(-1),
                        weight.in_features, weight.out_features, weight.bits, weight.block_size,
                        zero_points)


@dataclass(frozen=True)
class PlannedTensor:
    """How one weight is made from one GGUF tensor."""

    info: TensorInfo
    repack: bool  # MatMulNBits blocks without loss; else float32
    permute_heads: int | None = None  # llama.cpp's q/k row permutation to undo, per head count


class GGUFWeights(LazyWeights):
    """Llama-named weights (see ``ImportedModel.weights``), read from an open GGUF file."""

    def __init__(self, gguf: GGUFFile, plan: dict[str, PlannedTensor]) -> None:
        self._gguf = gguf
        self._plan = plan
        self._finalizer = weakref.finalize(self, gguf.close)

    def close(self) -> None:
        self._finalizer()  # closes the file once; later lookups raise ValueError

    def __len__(self) -> int:
        return len(self._plan)

    def __iter__(self) -> Iterator[str]:
        return iter(self._plan)

    def __contains__(self, name: object) -> bool:
        return name in self._plan

    def __getitem__(self, name: str) -> np.ndarray | PackedWeight:
        planned = self._plan[name]
        info = planned.info
        raw = self._read(info, info.offset, info.nbytes)
        weight: np.ndarray | PackedWeight = \
            ggml_quants.repack(info.ggml_type, raw, info.shape) if planned.repack else \
            ggml_quants.dequantize(info.ggml_type, raw, info.shape)
        if planned.permute_heads is not None:
            weight = take_rows(weight, unpermute_index(info.shape[0], planned.permute_heads))
        return weight

    def shape(self, name: str) -> tuple[int, ...]:
        return self._plan[name].info.shape

    def float_rows(self, name: str, rows: list[int]) -> np.ndarray:
        """Rows of a float matrix, reading only those: the same numbers as
        ``self[name][rows]`` (GGML rows are whole blocks)."""
        planned = self._plan[name]
        info = planned.info
        if planned.repack or planned.permute_heads is not None or len(info.shape) != 2:
            return np.asarray(self[name])[rows]
        row_bytes = info.nbytes // info.shape[0]
        raw = np.empty((len(rows), row_bytes), np.uint8)
        for slot, row in enumerate(rows):
            if not 0 <= row < info.shape[0]:
                raise IndexError(f"row {row} of {name!r}, which has {info.shape[0]}")
            raw[slot] = self._read(info, info.offset + row * row_bytes, row_bytes)
        return ggml_quants.dequantize(info.ggml_type, raw.reshape(-1),
                                      (len(rows), info.shape[1]))

    def row_range(self, name: str, start: int, stop: int) -> np.ndarray | PackedWeight:
        """Output rows start:stop, reading only those (the same numbers as the whole weight's
        rows: repacking and decoding work block by block)."""
        planned = self._plan[name]
        info = planned.info
        if planned.permute_heads is not None or len(info.shape) != 2:
            return super().row_range(name, start, stop)
        if not 0 <= start <= stop <= info.shape[0]:
            raise IndexError(f"rows {start}:{stop} of {name!r}, which has {info.shape[0]}")
        row_bytes = info.nbytes // info.shape[0]
        raw = self._read(info, info.offset + start * row_bytes, (stop - start) * row_bytes)
        shape = (stop - start, info.shape[1])
        return ggml_quants.repack(info.ggml_type, raw, shape) if planned.repack else \
            ggml_quants.dequantize(info.ggml_type, raw, shape)

    def _read(self, info: TensorInfo, offset: int, count: int) -> np.ndarray:
        data = os.pread(self._gguf.fileno(), count, offset)
        if len(data) != count:
            raise ModelFormatError(f"{self._gguf.path}: tensor {info.name!r} is cut short; the "
                                   "file changed or was truncated after it was read")
        return np.frombuffer(data, dtype=np.uint8)
