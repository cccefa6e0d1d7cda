"""Block-wise weight quantization for ONNX Runtime's ``MatMulNBits`` (int8 and int4).

Weights are quantized per block of ``block_size`` values along the input dimension with one
float scale per block (symmetric: the zero point is the type's midpoint, ONNX Runtime's default),
packed as ``MatMulNBits`` expects: (N, blocks, block_size * bits / 8) bytes, 4-bit values two to a
byte, low nibble first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SUPPORTED_BITS = (4, 8)


@dataclass(frozen=True)
class PackedWeight:
    data: np.ndarray  # uint8 (N, blocks, block_size * bits // 8)
    scales: np.ndarray  # float32 (N * blocks,)
    in_features: int  # K
    out_features: int  # N
    bits: int
    block_size: int
    # Float zero points (N * blocks,): value = (q - zero_point) * scale. None means the type's
    # midpoint (8 or 128). Float zero points let GGUF's Q4_1 (q * d + m) map exactly.
    zero_points: np.ndarray | None = None


def quantize_blockwise(weight: np.ndarray, bits: int, block_size: int = 32) -> PackedWeight:
    """Quantizes a (K, N) MatMul weight (input dim first)."""
    if bits not in SUPPORTED_BITS:
        raise ValueError(f"bits must be one of {SUPPORTED_BITS}, got {bits}")
    k, n = weight.shape
    blocks = -(-k // block_size)
    padded = np.zeros((blocks * block_size, n), dtype=np.float32)
    padded[:k] = weight
    per_block = padded.T.reshape(n, blocks, block_size)  # (N, blocks, block)
    top = (1 << (bits - 1)) - 1  # 127 or 7
    midpoint = 1 << (bits - 1)  # 128 or 8
    scales = np.abs(per_block).max(axis=-1) / top  # (N, blocks)
    scales[scales == 0] = 1.0
    q = np.clip(np.rint(per_block / scales[..., None]), -midpoint, top) + midpoint
    q = q.astype(np.uint8)
    if bits == 4:
        q = q[..., 0::2] | (q[..., 1::2] << 4)
    return PackedWeight(q, scales.astype(np.float32).reshape(-1), k, n, bits, block_size)


def dequantize_blockwise(packed: PackedWeight) -> np.ndarray:
    """The (K, N) float weight the packed data represents (for tests and parity checks)."""
    q = packed.data
    if packed.bits == 4:
        q = np.stack([q & 0x0F, q >> 4], axis=-1).reshape(*q.shape[:-1], -1)
    blocks = q.shape[1]
    if packed.zero_points is None:
        zero = np.float32(1 << (packed.bits - 1))
    else:
        zero = packed.zero_points.reshape(-1, blocks)[..., None]
    values = (q.astype(np.float32) - zero) * packed.scales.reshape(-1, blocks)[..., None]
    return values.reshape(packed.out_features, -1)[:, :packed.in_features].T
