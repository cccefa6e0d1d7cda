"""GGML dequantization and MatMulNBits repacking against llama.cpp's own Python package.

``gguf.quants`` is the reference: our floats must be bit-identical to its dequantization, for
tensors it quantizes itself and for random blocks (every bit pattern of the codes, sane f16
scales), including the K-quants it can only decode. Repacked weights must decode to the same
floats through ``dequantize_blockwise`` and through ONNX Runtime's MatMulNBits.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType
from gguf import quants as reference
from onnx import TensorProto

from convert.importers import ggml_quants
from convert.importers.ggml_quants import (
    GGML_TYPES,
    can_repack,
    dequantize,
    ggml_type_name,
    is_supported,
    repack,
    repack_q4_0,
    repack_q8_0,
    tensor_nbytes,
)
from convert.onnx_graph import GraphBuilder
from convert.quantize import PackedWeight, dequantize_blockwise

T = GGMLQuantizationType
BLOCK_TYPES = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K"]
# Types gguf.quants can quantize (it only decodes the K-quants).
QUANTIZABLE = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "BF16"]
EXACT_REPACKS = ["Q4_0", "Q5_0", "Q6_K", "Q8_0"]

# Byte offset of each f16 scale field in a block -> magnitude that keeps values around 1 (the
# other bytes are random codes). Offsets from ggml-common.h, independent of the module's dtypes.
F16_FIELDS: dict[str, dict[int, float]] = {
    "Q4_0": {0: 1 / 8}, "Q4_1": {0: 1 / 15, 2: 1.0}, "Q5_0": {0: 1 / 16},
    "Q5_1": {0: 1 / 31, 2: 1.0}, "Q8_0": {0: 1 / 127},
    "Q4_K": {0: 1 / (63 * 15), 2: 1 / 63}, "Q5_K": {0: 1 / (63 * 31), 2: 1 / 63},
    "Q6_K": {208: 1 / (64 * 32)},
}


def _random_blocks(name: str, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Random valid bytes for a tensor of numpy ``shape``, as (..., bytes per row) uint8."""
    block_size, type_size = GGML_QUANT_SIZES[T[name]]
    rng = np.random.default_rng(seed)
    n_blocks = int(np.prod(shape)) // block_size
    raw = rng.integers(0, 256, (n_blocks, type_size), dtype=np.uint8)
    for offset, magnitude in F16_FIELDS[name].items():
        values = rng.uniform(-magnitude, magnitude, n_blocks).astype("<f2")
        raw[:, offset:offset + 2] = values.view(np.uint8).reshape(n_blocks, 2)
    return raw.reshape(*shape[:-1], shape[-1] // block_size * type_size)


def _flat(raw: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(raw).reshape(-1)


# The type table ------------------------------------------------------------------------------


def test_type_table_matches_gguf() -> None:
    assert set(GGML_TYPES) == {int(t) for t in T}
    for qtype, sizes in GGML_QUANT_SIZES.items():
        info = GGML_TYPES[int(qtype)]
        assert info.name == qtype.name
        # ggml's block_q8_1 holds two halves (36 bytes); gguf-py still lists two floats.
        if qtype != T.Q8_1:
            assert (info.block_size, info.type_size) == sizes
    assert GGML_TYPES[int(T.Q8_1)].type_size == 36
    supported = {t.name for t in GGML_TYPES.values() if t.supported}
    assert supported == {"F32", "F16", "BF16", *BLOCK_TYPES}


def test_block_dtypes_have_the_block_sizes() -> None:
    for name, dtype in ggml_quants._BLOCK_DTYPES.items():
        assert dtype.itemsize == GGML_QUANT_SIZES[T[name]][1], name


def test_names_support_and_sizes() -> None:
    assert ggml_type_name(12) == "Q4_K"
    assert ggml_type_name(10) == "Q2_K"
    assert ggml_type_name(31) == "Q4_0_4_4"
    assert ggml_type_name(999) == "unknown type 999"
    assert is_supported(14) and not is_supported(10) and not is_supported(999)
    assert [can_repack(int(T[name])) for name in ["Q4_0", "Q4_1", "Q8_0", "Q5_K", "F16"]] == [
        True, False, True, False, False]
    assert tensor_nbytes(int(T.Q8_0), 576 * 3) == 576 * 3 // 32 * 34
    assert tensor_nbytes(int(T.Q4_K), 512) == 2 * 144
    assert tensor_nbytes(int(T.IQ2_XS), 256) == 74  # known but unsupported: size still known
    assert tensor_nbytes(int(T.BF16), 7) == 14
    assert tensor_nbytes(int(T.F32), 0) == 0


# Dequantization ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BLOCK_TYPES)
@pytest.mark.parametrize("shape", [(3, 512), (2, 3, 256), (512,)])
def test_random_blocks_match_gguf_exactly(name: str, shape: tuple[int, ...]) -> None:
    raw = _random_blocks(name, shape, seed=len(shape) * 100 + BLOCK_TYPES.index(name))
    expected = reference.dequantize(raw, T[name])
    got = dequantize(int(T[name]), _flat(raw), shape)
    assert got.dtype == np.float32 and got.shape == shape
    assert np.isfinite(expected).all()
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("name", QUANTIZABLE)
def test_quantized_weights_match_gguf_exactly(name: str) -> None:
    rng = np.random.default_rng(QUANTIZABLE.index(name))
    weight = rng.normal(0, 0.05, (7, 96)).astype(np.float32)
    weight[2] = 0  # all-zero blocks (d == 0)
    weight[3, :32] = 1.5  # a constant block
    raw = reference.quantize(weight, T[name])
    got = dequantize(int(T[name]), _flat(raw), weight.shape)
    np.testing.assert_array_equal(got, reference.dequantize(raw, T[name]))
    np.testing.assert_allclose(got, weight, atol=0.05)  # sanity: it is the weight


def test_float_types_round_trip() -> None:
    special = np.array([0.0, -0.0, 1.0, -2.5, np.inf, -np.inf, 1e-40, 65504.0, 3e38, 1 / 3],
                       dtype=np.float32)
    weight = np.concatenate([special, np.random.default_rng(0).normal(size=14).astype(np.float32)])
    weight = weight.reshape(4, 6)
    f32 = dequantize(0, _flat(weight.view(np.uint8)), weight.shape)
    np.testing.assert_array_equal(f32.view(np.uint32), weight.view(np.uint32))
    with np.errstate(over="ignore"):  # 3e38 becomes inf in float16, as intended
        half = weight.astype(np.float16)
    f16 = dequantize(1, _flat(half.view(np.uint8)), weight.shape)
    np.testing.assert_array_equal(f16.view(np.uint32), half.astype(np.float32).view(np.uint32))
    bf16_raw = reference.quantize(weight, T.BF16)
    bf16 = dequantize(30, _flat(bf16_raw), weight.shape)
    np.testing.assert_array_equal(bf16.view(np.uint32),
                                  reference.dequantize(bf16_raw, T.BF16).view(np.uint32))
    # bfloat16 keeps the top 16 bits: exact for values that fit, NaN stays NaN.
    nan = np.array([np.nan, 1.0], dtype=np.float32).view(np.uint32) >> 16
    assert np.isnan(dequantize(30, nan.astype("<u2").view(np.uint8), (2,))[0])


@pytest.mark.parametrize("name", ["Q5_0", "Q4_K", "Q6_K"])
def test_chunked_decoding_equals_one_pass(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    shape = (5, 768)  # 15 K-blocks or 120 small blocks: chunks leave a remainder
    raw = _flat(_random_blocks(name, shape, seed=7))
    whole = dequantize(int(T[name]), raw, shape)
    monkeypatch.setattr(ggml_quants, "CHUNK_ELEMENTS", 7 * 256)
    np.testing.assert_array_equal(dequantize(int(T[name]), raw, shape), whole)
    np.testing.assert_array_equal(whole, reference.dequantize(raw.reshape(5, -1), T[name]))


def test_memory_mapped_and_offset_bytes(tmp_path) -> None:
    raw = _flat(_random_blocks("Q5_1", (4, 64), seed=3))
    path = tmp_path / "tensor.bin"
    path.write_bytes(b"\0" * 3 + raw.tobytes())  # an odd offset: unaligned fields
    mapped = np.memmap(path, dtype=np.uint8, mode="r")[3:]
    np.testing.assert_array_equal(dequantize(int(T.Q5_1), mapped, (4, 64)),
                                  dequantize(int(T.Q5_1), raw, (4, 64)))


# Errors --------------------------------------------------------------------------------------


def test_errors_name_the_problem() -> None:
    raw = np.zeros(34 * 2, dtype=np.uint8)
    with pytest.raises(ValueError, match="unknown GGML tensor type id 99"):
        dequantize(99, raw, (64,))
    with pytest.raises(ValueError, match="Q2_K"):
        dequantize(int(T.Q2_K), np.zeros(84, np.uint8), (256,))
    with pytest.raises(ValueError, match=r"IQ4_XS.*not supported"):
        dequantize(int(T.IQ4_XS), np.zeros(136, np.uint8), (256,))
    with pytest.raises(ValueError, match=r"Q4_0_4_4.*removed"):
        tensor_nbytes(31, 32)
    with pytest.raises(ValueError, match="takes 68 bytes, got 67"):
        dequantize(int(T.Q8_0), raw[:-1], (64,))
    with pytest.raises(ValueError, match="takes 34 bytes, got 68"):
        dequantize(int(T.Q8_0), raw, (1, 32))
    with pytest.raises(ValueError, match="multiple of 32"):
        dequantize(int(T.Q8_0), raw, (32, 2))
    with pytest.raises(ValueError, match="multiple of 256"):
        tensor_nbytes(int(T.Q6_K), 300)
    with pytest.raises(ValueError, match="1-D uint8"):
        dequantize(int(T.Q8_0), raw.view(np.int8), (64,))
    with pytest.raises(ValueError, match="can't be repacked"):
        repack(int(T.Q5_K), np.zeros(176, np.uint8), (1, 256))
    with pytest.raises(ValueError, match="2-D"):
        repack_q8_0(raw, (64,))


# Repacking into MatMulNBits ------------------------------------------------------------------


def _session(packed: PackedWeight) -> ort.InferenceSession:
    g = GraphBuilder("float32")
    x = g.input("x", TensorProto.FLOAT, ["rows", packed.in_features])
    g.output(g.linear(x, "w", packed), "y", TensorProto.FLOAT, ["rows", packed.out_features])
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(g.model("linear").SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


def _check_with_onnxruntime(packed: PackedWeight, weight: np.ndarray) -> None:
    x = np.random.default_rng(1).normal(0, 1, (3, weight.shape[1])).astype(np.float32)
    y = _session(packed).run(["y"], {"x": x})[0]
    np.testing.assert_allclose(y, x @ weight.T, rtol=1e-5, atol=1e-4)


def _packed_inputs(name: str, quantized: bool) -> tuple[np.ndarray, tuple[int, int]]:
    shape = (6, 512)
    if quantized and name in QUANTIZABLE:
        weight = np.random.default_rng(2).normal(0, 0.05, shape).astype(np.float32)
        return _flat(reference.quantize(weight, T[name])), shape
    return _flat(_random_blocks(name, shape, seed=11)), shape


@pytest.mark.parametrize("quantized", [False, True])
@pytest.mark.parametrize("name", EXACT_REPACKS)
def test_symmetric_repacks_are_bit_exact(name: str, quantized: bool) -> None:
    raw, shape = _packed_inputs(name, quantized)
    packed = repack(int(T[name]), raw, shape)
    weight = dequantize(int(T[name]), raw, shape)
    assert packed.zero_points is None and packed.data.dtype == np.uint8
    assert packed.data.shape == (shape[0], shape[1] // packed.block_size,
                                 packed.block_size * packed.bits // 8)
    np.testing.assert_array_equal(dequantize_blockwise(packed).T, weight)
    _check_with_onnxruntime(packed, weight)


def test_named_repacks() -> None:
    raw, shape = _packed_inputs("Q4_0", quantized=True)
    assert (repack_q4_0(raw, shape).bits, repack_q4_0(raw, shape).block_size) == (4, 32)
    raw, shape = _packed_inputs("Q8_0", quantized=True)
    assert (repack_q8_0(raw, shape).bits, repack_q8_0(raw, shape).block_size) == (8, 32)
    raw, shape = _packed_inputs("Q4_1", quantized=True)
    with pytest.raises(ValueError, match="dequantize them"):  # float minimums: no exact repack
        repack(int(T.Q4_1), raw, shape)


