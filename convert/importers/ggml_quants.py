"""GGML tensor types: their sizes, dequantization to float32, and lossless MatMulNBits repacking.

Block layouts and arithmetic follow llama.cpp's ggml-common.h and ggml-quants.c
(``dequantize_row_*``) operation for operation, so the floats are bit-identical to llama.cpp's
Python package (``gguf.quants.dequantize``), which the tests use as the reference. Each block type
is a numpy structured dtype; a tensor's bytes are viewed as an array of blocks and decoded field
by field, a bounded number of blocks at a time, with no Python loop over blocks.

Repacking turns a GGML weight straight into ONNX Runtime's ``MatMulNBits`` layout (see
``convert.quantize.PackedWeight``) without a float round trip: integer codes are kept and only
moved, so nothing is quantized twice. Only symmetric types (Q4_0, Q5_0, Q6_K, Q8_0) repack,
bit-exact with the default zero point. Types whose value is ``q * scale + offset`` (Q4_1, Q4_K)
need float zero points, and ONNX Runtime's fast CPU kernels (int8 activations) take integer ones
only: those are dequantized and quantized again (asymmetric int4, integer zero points).

Shapes are numpy order throughout: a GGUF tensor with ``ne = [K, N]`` is ``(N, K)`` here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from convert.quantize import PackedWeight

QK_K = 256  # super-block size of the K-quants


@dataclass(frozen=True)
class GGMLType:
    name: str
    type_id: int
    block_size: int  # elements per block (1 for plain float types)
    type_size: int  # bytes per block
    supported: bool  # whether `dequantize` decodes it


def _type(name: str, type_id: int, block_size: int, type_size: int,
          supported: bool = False) -> tuple[int, GGMLType]:
    return type_id, GGMLType(name, type_id, block_size, type_size, supported)


# Every type a GGUF file may hold (ggml.h), with sizes from ggml-common.h. Sizes of the
# unsupported ones still matter: a reader checks every tensor's extent against the file size.
GGML_TYPES: dict[int, GGMLType] = dict([
    _type("F32", 0, 1, 4, True),
    _type("F16", 1, 1, 2, True),
    _type("Q4_0", 2, 32, 2 + 16, True),
    _type("Q4_1", 3, 32, 2 + 2 + 16, True),
    _type("Q5_0", 6, 32, 2 + 4 + 16, True),
    _type("Q5_1", 7, 32, 2 + 2 + 4 + 16, True),
    _type("Q8_0", 8, 32, 2 + 32, True),
    _type("Q8_1", 9, 32, 2 + 2 + 32),  # two halves since 2024 (gguf-py still says 40)
    _type("Q2_K", 10, QK_K, 2 + 2 + QK_K // 16 + QK_K // 4),
    _type("Q3_K", 11, QK_K, 2 + QK_K // 4 + QK_K // 8 + 12),
    _type("Q4_K", 12, QK_K, 2 + 2 + 12 + QK_K // 2, True),
    _type("Q5_K", 13, QK_K, 2 + 2 + 12 + QK_K // 8 + QK_K // 2, True),
    _type("Q6_K", 14, QK_K, QK_K // 2 + QK_K // 4 + QK_K // 16 + 2, True),
    _type("Q8_K", 15, QK_K, 4 + QK_K + QK_K // 8),
    _type("IQ2_XXS", 16, QK_K, 2 + QK_K // 4),
    _type("IQ2_XS", 17, QK_K, 2 + QK_K // 4 + QK_K // 32),
    _type("IQ3_XXS", 18, QK_K, 2 + QK_K // 4 + QK_K // 8),
    _type("IQ1_S", 19, QK_K, 2 + QK_K // 8 + QK_K // 16),
    _type("IQ4_NL", 20, 32, 2 + 16),
    _type("IQ3_S", 21, QK_K, 2 + QK_K // 4 + QK_K // 8 + QK_K // 32 + 4),
    _type("IQ2_S", 22, QK_K, 2 + QK_K // 4 + QK_K // 16),
    _type("IQ4_XS", 23, QK_K, 2 + 2 + QK_K // 2 + QK_K // 64),
    _type("I8", 24, 1, 1),
    _type("I16", 25, 1, 2),
    _type("I32", 26, 1, 4),
    _type("I64", 27, 1, 8),
    _type("F64", 28, 1, 8),
    _type("IQ1_M", 29, QK_K, QK_K // 8 + QK_K // 16 + QK_K // 32),
    _type("BF16", 30, 1, 2, True),
    _type("TQ1_0", 34, QK_K, 2 + 4 * 13),
    _type("TQ2_0", 35, QK_K, 2 + QK_K // 4),
    _type("MXFP4", 39, 32, 1 + 16),
    _type("NVFP4", 40, 64, 4 + 32),
    _type("Q1_0", 41, 128, 2 + 16),
])
# Ids ggml has retired; GGUF files must not use them, but an error can still name them.
_REMOVED_TYPES = {4: "Q4_2", 5: "Q4_3", 31: "Q4_0_4_4", 32: "Q4_0_4_8", 33: "Q4_0_8_8",
                  36: "IQ4_NL_4_4", 37: "IQ4_NL_4_8", 38: "IQ4_NL_8_8"}

# Blocks decoded per step: 2**22 elements is 16 MB of float32 output, and the intermediates of
# the widest decoder (Q5_K) stay within a few times that.
CHUNK_ELEMENTS = 1 << 22

# Block layouts (ggml-common.h). Unaligned, little-endian: exactly the bytes in the file.
_BLOCK_DTYPES: dict[str, np.dtype] = {
    "Q4_0": np.dtype([("d", "<f2"), ("qs", "u1", 16)]),
    "Q4_1": np.dtype([("d", "<f2"), ("m", "<f2"), ("qs", "u1", 16)]),
    "Q5_0": np.dtype([("d", "<f2"), ("qh", "<u4"), ("qs", "u1", 16)]),
    "Q5_1": np.dtype([("d", "<f2"), ("m", "<f2"), ("qh", "<u4"), ("qs", "u1", 16)]),
    "Q8_0": np.dtype([("d", "<f2"), ("qs", "i1", 32)]),
    "Q4_K": np.dtype([("d", "<f2"), ("dmin", "<f2"), ("scales", "u1", 12), ("qs", "u1", 128)]),
    "Q5_K": np.dtype([("d", "<f2"), ("dmin", "<f2"), ("scales", "u1", 12), ("qh", "u1", 32),
                      ("qs", "u1", 128)]),
    "Q6_K": np.dtype([("ql", "u1", 128), ("qh", "u1", 64), ("scales", "i1", 16), ("d", "<f2")]),
}


def ggml_type_name(type_id: int) -> str:
    """The ggml name of a tensor type id ("Q4_K"), or "unknown type <id>"."""
    if type_id in GGML_TYPES:
        return GGML_TYPES[type_id].name
    return _REMOVED_TYPES.get(type_id, f"unknown type {type_id}")


def is_supported(type_id: int) -> bool:
    """Whether `dequantize` can decode tensors of this type."""
    return type_id in GGML_TYPES and GGML_TYPES[type_id].supported


def _known(type_id: int) -> GGMLType:
    if type_id in _REMOVED_TYPES:
        raise ValueError(f"GGML tensor type {_REMOVED_TYPES[type_id]} (id {type_id}) was removed "
                         "from the GGUF format; convert the model again with a current llama.cpp")
    if type_id not in GGML_TYPES:
        raise ValueError(f"unknown GGML tensor type id {type_id}; the file is damaged or newer "
                         "than this importer")
    return GGML_TYPES[type_id]


def _supported(type_id: int) -> GGMLType:
    info = _known(type_id)
    if not info.supported:
        names = ", ".join(t.name for t in GGML_TYPES.values() if t.supported)
        raise ValueError(f"GGML tensor type {info.name} (id {type_id}) is not supported "
                         f"(supported: {names}); choose a Q8_0, Q6_K, Q5_K_M, Q4_K_M or Q4_0 "
                         "file")
    return info


def tensor_nbytes(type_id: int, n_elements: int) -> int:
    """Bytes a tensor of ``n_elements`` takes in a GGUF file.

    Raises:
        ValueError: the type is unknown, or ``n_elements`` is negative or not a whole number of
            blocks.
    """
    info = _known(type_id)
    if n_elements < 0 or n_elements % info.block_size:
        raise ValueError(f"a {info.name} tensor holds a multiple of {info.block_size} elements, "
                         f"got {n_elements}")
    return n_elements // info.block_size * info.type_size


def _check(info: GGMLType, raw: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Validates raw bytes against a shape; returns them contiguous."""
    if not isinstance(raw, np.ndarray) or raw.dtype != np.uint8 or raw.ndim != 1:
        raise ValueError(f"raw {info.name} data must be a 1-D uint8 array")
    if any(int(size) < 0 for size in shape):
        raise ValueError(f"negative dimension in {info.name} tensor shape {shape}")
    # GGML rows are whole blocks (ggml asserts ne[0] % block_size == 0 on load).
    if shape and shape[-1] % info.block_size:
        raise ValueError(f"a {info.name} tensor's last dimension must be a multiple of "
                         f"{info.block_size}, got shape {shape}")
    expected = tensor_nbytes(info.type_id, math.prod(shape))
    if raw.size != expected:
        raise ValueError(f"a {info.name} tensor of shape {shape} takes {expected} bytes, "
                         f"got {raw.size}")
    return np.ascontiguousarray(raw)


def _chunks(n_blocks: int, block_size: int) -> list[slice]:
    step = max(1, CHUNK_ELEMENTS // block_size)
    return [slice(start, min(start + step, n_blocks)) for start in range(0, n_blocks, step)]


# Integer codes -------------------------------------------------------------------------------
# Each returns the unsigned codes of a chunk of blocks in element order, (blocks, block_size).

_BIT_SHIFTS = np.arange(32, dtype=np.uint32)


def _nibbles(qs: np.ndarray) -> np.ndarray:
    # GGML puts element j in the low nibble of byte j and element j + len(qs) in its high nibble.
    return np.concatenate([qs & 0x0F, qs >> 4], axis=-1)


def _codes_q4_0(blocks: np.ndarray) -> np.ndarray:
    return _nibbles(blocks["qs"])


def _codes_q5(blocks: np.ndarray) -> np.ndarray:
    # Bit j of the 32-bit qh is the fifth bit of element j.
    high = ((blocks["qh"][:, None] >> _BIT_SHIFTS) & 1).astype(np.uint8)
    return _nibbles(blocks["qs"]) | (high << 4)


def _codes_q4_k(blocks: np.ndarray) -> np.ndarray:
    # 4 groups of 32 bytes; each holds two sub-blocks of 32: low nibbles, then high nibbles.
    return _nibbles(blocks["qs"].reshape(-1, 4, 32)).reshape(-1, QK_K)


def _codes_q5_k(blocks: np.ndarray) -> np.ndarray:
    # Bit k of qh[l] is the fifth bit of element l of sub-block k.
    high = (blocks["qh"][:, None, :] >> _BIT_SHIFTS[:8, None].astype(np.uint8)) & 1
    return _codes_q4_k(blocks) | (high.reshape(-1, QK_K) << 4)


def _codes_q6_k(blocks: np.ndarray) -> np.ndarray:
    # Two halves of 128; in each, ql's 64 bytes give 4 runs of 32 (low nibbles of bytes 0-31
    # and 32-63, then high nibbles), and the 4 two-bit fields of qh[l] top up the 4 runs.
    low = _nibbles(blocks["ql"].reshape(-1, 2, 64))  # (n, 2, 128)
    shifts = np.array([0, 2, 4, 6], dtype=np.uint8)[:, None]
    high = (blocks["qh"].reshape(-1, 2, 1, 32) >> shifts) & 3  # (n, 2, 4, 32)
    return (low.reshape(-1, QK_K) | (high.reshape(-1, QK_K) << 4))


def _scale_min_k4(scales: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ggml's get_scale_min_k4 for all 8 sub-blocks: 6-bit scales and mins, (n, 8) each."""
    low, mid, high = scales[:, 0:4], scales[:, 4:8], scales[:, 8:12]
    sc = np.concatenate([low & 63, (high & 0x0F) | ((low >> 6) << 4)], axis=1)
    mn = np.concatenate([mid & 63, (high >> 4) | ((mid >> 6) << 4)], axis=1)
    return sc, mn


def _k_scales(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-sub-block (d * sc, dmin * m) of Q4_K / Q5_K, float32 (n, 8), as ggml computes them."""
    sc, mn = _scale_min_k4(blocks["scales"])
    d = blocks["d"].astype(np.float32)[:, None]
    dmin = blocks["dmin"].astype(np.float32)[:, None]
    return d * sc.astype(np.float32), dmin * mn.astype(np.float32)


# Dequantization ------------------------------------------------------------------------------
# Same float operations in the same order as ggml-quants.c, hence bit-identical results.

def _f32(codes: np.ndarray) -> np.ndarray:
    return codes.astype(np.float32)


def _d(blocks: np.ndarray, field: str = "d") -> np.ndarray:
    return blocks[field].astype(np.float32)[:, None]


def _affine_k(blocks: np.ndarray, codes: np.ndarray) -> np.ndarray:
    scale, minimum = _k_scales(blocks)
    values = scale[..., None] * _f32(codes).reshape(-1, 8, 32) - minimum[..., None]
    return values.reshape(-1, QK_K)


def _dequant_q6_k(blocks: np.ndarray) -> np.ndarray:
    scale = _d(blocks) * blocks["scales"].astype(np.float32)  # (n, 16), one per 16 elements
    values = scale[..., None] * (_f32(_codes_q6_k(blocks)) - 32).reshape(-1, 16, 16)
    return values.reshape(-1, QK_K)


_DEQUANTIZERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "Q4_0": lambda b: (_f32(_codes_q4_0(b)) - 8) * _d(b),
    "Q4_1": lambda b: _d(b) * _f32(_codes_q4_0(b)) + _d(b, "m"),
    "Q5_0": lambda b: (_f32(_codes_q5(b)) - 16) * _d(b),
    "Q5_1": lambda b: _d(b) * _f32(_codes_q5(b)) + _d(b, "m"),
    "Q8_0": lambda b: _f32(b["qs"]) * _d(b),
    "Q4_K": lambda b: _affine_k(b, _codes_q4_k(b)),
    "Q5_K": lambda b: _affine_k(b, _codes_q5_k(b)),
    "Q6_K": _dequant_q6_k,
}


def dequantize(type_id: int, raw: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Decodes a GGML tensor to float32.

    Args:
        type_id: the GGML type id from the GGUF tensor info.
        raw: exactly the tensor's bytes, a 1-D uint8 array (a memory map slice is fine).
        shape: numpy order, i.e. GGUF's ``ne`` reversed: ``(rows, cols)`` for a matrix.

    Returns:
        A new float32 array of ``shape``, bit-identical to llama.cpp's dequantization.

    Raises:
        ValueError: unknown or unsupported type, or bytes that don't match the shape.
    """
    info = _supported(type_id)
    shape = tuple(int(size) for size in shape)
    raw = _check(info, raw, shape)
    out = np.empty(math.prod(shape), dtype=np.float32)
    if info.name == "F32":
        out[:] = raw.view("<f4")
    elif info.name == "F16":
        out[:] = raw.view("<f2")
    elif info.name == "BF16":  # bfloat16 is the top half of a float32
        bits = out.view(np.uint32)
        bits[:] = raw.view("<u2")
        bits <<= 16
    else:
        blocks = raw.view(_BLOCK_DTYPES[info.name])
        values = out.reshape(-1, info.block_size)
        decode = _DEQUANTIZERS[info.name]
        for part in _chunks(len(blocks), info.block_size):
            values[part] = decode(blocks[part])
    return out.reshape(shape)


# Repacking for MatMulNBits -------------------------------------------------------------------

# A repacker maps a chunk of GGML blocks to (codes (n, elements) uint8, scales float32 per
# MatMulNBits block); zero points are the type's midpoint.
_Repacked = tuple[np.ndarray, np.ndarray]


# type name -> (bits, MatMulNBits block size, repacker)
_REPACKERS: dict[str, tuple[int, int, Callable[[np.ndarray], _Repacked]]] = {
    # Symmetric types keep their codes, shifted to the unsigned midpoint (8 or 128).
    "Q4_0": (4, 32, lambda b: (_codes_q4_0(b), _d(b)[:, 0])),
    "Q8_0": (8, 32, lambda b: (b["qs"].view(np.uint8) ^ np.uint8(0x80), _d(b)[:, 0])),
    "Q5_0": (8, 32, lambda b: (_codes_q5(b) + np.uint8(128 - 16), _d(b)[:, 0])),
    "Q6_K": (8, 16, lambda b: (_codes_q6_k(b) + np.uint8(128 - 32),
                               (_d(b) * b["scales"].astype(np.float32)).reshape(-1))),
}


def can_repack(type_id: int) -> bool:
    """Whether `repack` maps this type into MatMulNBits without requantizing."""
    return type_id in GGML_TYPES and GGML_TYPES[type_id].name in _REPACKERS


def repack(type_id: int, raw: np.ndarray, shape: tuple[int, ...]) -> PackedWeight:
    """Repacks a GGML weight of numpy shape (N, K) into MatMulNBits blocks, losslessly.

    ``convert.quantize.dequantize_blockwise(result).T`` equals ``dequantize(type_id, raw,
    shape)`` bit for bit for Q4_0, Q5_0, Q6_K and Q8_0 (8-bit for Q5_0 and Q6_K, block 16 for
    Q6_K).

    Raises:
        ValueError: a type `can_repack` rejects, a shape that isn't 2-D with K a multiple of the
            type's block size, or bytes that don't match the shape.
    """
    info = _supported(type_id)
    if not can_repack(type_id):
        names = ", ".join(_REPACKERS)
        raise ValueError(f"{info.name} tensors can't be repacked for MatMulNBits (only {names}); "
                         "dequantize them instead")
    shape = tuple(int(size) for size in shape)
    if len(shape) != 2:
        raise ValueError(f"only 2-D weights can be repacked, got shape {shape}")
    raw = _check(info, raw, shape)
    bits, block_size, convert = _REPACKERS[info.name]
    n, k = shape
    blocks = raw.view(_BLOCK_DTYPES[info.name])
    per_ggml_block = info.block_size // block_size  # MatMulNBits blocks per GGML block
    data = np.empty((n * k // block_size, block_size * bits // 8), dtype=np.uint8)
    scales = np.empty(n * k // block_size, dtype=np.float32)
    for part in _chunks(len(blocks), info.block_size):
        codes, chunk_scales = convert(blocks[part])
        codes = codes.reshape(-1, block_size)
        if bits == 4:  # MatMulNBits pairs neighbours: element 2i low nibble, 2i + 1 high
            codes = codes[:, 0::2] | (codes[:, 1::2] << 4)
        rows = slice(part.start * per_ggml_block, part.stop * per_ggml_block)
        data[rows] = codes
        scales[rows] = chunk_scales
    return PackedWeight(data.reshape(n, k // block_size, -1), scales, k, n, bits, block_size)


def repack_q4_0(raw: np.ndarray, shape: tuple[int, ...]) -> PackedWeight:
    """`repack` for Q4_0: 4-bit, GGML's d as the scale, default zero point 8 (bit-exact)."""
    return repack(2, raw, shape)


def repack_q8_0(raw: np.ndarray, shape: tuple[int, ...]) -> PackedWeight:
    """`repack` for Q8_0: 8-bit codes int8 + 128, scale d, default zero point 128 (bit-exact)."""
    return repack(8, raw, shape)
