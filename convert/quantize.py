"""Block-wise weight quantization for ONNX Runtime's ``MatMulNBits`` (int8 and int4).

Weights are quantized per block of ``block_size`` values along the input dimension with one
float scale per block, packed as ``MatMulNBits`` expects: (N, blocks, block_size * bits / 8)
bytes, 4-bit values two to a byte, low nibble first. 8-bit weights are symmetric (zero point
128, ONNX Runtime's default). 4-bit weights are asymmetric by default: each block also gets an
integer zero point, so a block whose values lean to one side uses all 16 levels (the min/max
scheme of GGUF's Q4_1 and of onnxruntime-genai's builder), at 1/64 of a byte more per weight.
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
    # Integer zero points, one uint8 per block (N * blocks,): value = (q - zero_point) * scale.
    # None means the type's midpoint (8 or 128).
    zero_points: np.ndarray | None = None

    @property
    def blocks(self) -> int:
        return int(self.data.shape[1])

    def rows(self, start: int, stop: int) -> PackedWeight:
        """Output rows start:stop (views, no copy)."""
        start, stop = min(start, self.out_features), min(stop, self.out_features)
        blocks = self.blocks
        zero_points = None if self.zero_points is None else \
            self.zero_points[start * blocks:stop * blocks]
        return PackedWeight(self.data[start:stop], self.scales[start * blocks:stop * blocks],
                            self.in_features, stop - start, self.bits, self.block_size,
                            zero_points)

    def packed_zero_points(self) -> np.ndarray | None:
        """Zero points as MatMulNBits reads them: 4-bit ones two to a byte, each row padded to
        whole bytes."""
        if self.zero_points is None:
            return None
        rows = self.zero_points.reshape(self.out_features, self.blocks).astype(np.uint8)
        if self.bits == 8:
            return rows.reshape(-1)
        if self.blocks % 2:
            rows = np.concatenate([rows, np.zeros((self.out_features, 1), np.uint8)], axis=1)
        return (rows[:, 0::2] | (rows[:, 1::2] << 4)).reshape(-1)


def concat_outputs(weights: list[PackedWeight]) -> PackedWeight:
    """Stacks weights that read the same input into one (their outputs side by side), so one
    MatMulNBits computes them all (e.g. the query, key and value projections)."""
    first = weights[0]
    if any((w.in_features, w.bits, w.block_size) != (first.in_features, first.bits,
                                                      first.block_size) for w in weights):
        raise ValueError("only weights with the same input size, bits and block size stack")
    if len({w.zero_points is None for w in weights}) > 1:
        midpoint = np.uint8(1 << (first.bits - 1))
        weights = [w if w.zero_points is not None else
                   PackedWeight(w.data, w.scales, w.in_features, w.out_features, w.bits,
                                w.block_size, np.full(w.scales.shape, midpoint, np.uint8))
                   for w in weights]
    zero_points = None if weights[0].zero_points is None else \
        np.concatenate([w.zero_points for w in weights if w.zero_points is not None])
    return PackedWeight(np.concatenate([w.data for w in weights]),
                        np.concatenate([w.scales for w in weights]), first.in_features,
                        sum(w.out_features for w in weights), first.bits, first.block_size,
                        zero_points)


def quantize_blockwise(weight: np.ndarray, bits: int, block_size: int = 32,
                       symmetric: bool | None = None) -> PackedWeight:
    """Quantizes a (K, N) MatMul weight (input dim first).

    Args:
        symmetric: None picks the default for ``bits`` (symmetric 8-bit, asymmetric 4-bit).
    """
    if bits not in SUPPORTED_BITS:
        raise ValueError(f"bits must be one of {SUPPORTED_BITS}, got {bits}")
    if symmetric is None:
        symmetric = bits == 8
    k, n = weight.shape
    blocks = -(-k // block_size)
    padded = np.zeros((blocks * block_size, n), dtype=np.float32)
    padded[:k] = weight
    per_block = padded.T.reshape(n, blocks, block_size)  # (N, blocks, block)
    levels = (1 << bits) - 1  # 255 or 15
    midpoint = 1 << (bits - 1)  # 128 or 8
    zero_points = None
    if symmetric:
        scales = np.abs(per_block).max(axis=-1) / (midpoint - 1)  # (N, blocks)
        scales[scales == 0] = 1.0
        zero = np.float32(midpoint)
    else:
        # The range always holds 0, so zero is exact (padding and all-zero blocks stay zero).
        low = np.minimum(per_block.min(axis=-1), 0)
        high = np.maximum(per_block.max(axis=-1), 0)
        scales = (high - low) / levels
        scales[scales == 0] = 1.0
        zero_points = np.clip(np.rint(-low / scales), 0, levels).astype(np.uint8)
        zero = zero_points[..., None].astype(np.float32)
    q = np.clip(np.rint(per_block / scales[..., None]) + zero, 0, levels).astype(np.uint8)
    if bits == 4:
        q = q[..., 0::2] | (q[..., 1::2] << 4)
    return PackedWeight(q, scales.astype(np.float32).reshape(-1), k, n, bits, block_size,
                        None if zero_points is None else zero_points.reshape(-1))


def dequantize_blockwise(packed: PackedWeight) -> np.ndarray:
    """The (K, N) float weight the packed data represents (for tests and parity checks)."""
    q = packed.data
    if packed.bits == 4:
        q = np.stack([q & 0x0F, q >> 4], axis=-1).reshape(*q.shape[:-1], -1)
    blocks = q.shape[1]
    if packed.zero_points is None:
        zero = np.float32(1 << (packed.bits - 1))
    else:
        zero = packed.zero_points.reshape(-1, blocks)[..., None].astype(np.float32)
    values = (q.astype(np.float32) - zero) * packed.scales.reshape(-1, blocks)[..., None]
    return values.reshape(packed.out_features, -1)[:, :packed.in_features].T
