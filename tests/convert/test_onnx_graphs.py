"""The ONNX graphs built from weights against the PyTorch models they describe.

Random-weight models, no training: each graph runs in ONNX Runtime on the CPU and its logits must
match PyTorch's (allclose) for a whole prompt, for a prompt split into prefill + cached decode,
and with a cache buffer longer than the context (the shared-buffer contract). Quantized graphs
must equal numpy with the dequantized weights.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper
from torch import nn

from convert.decoder_graph import DecoderShape, build_decoder_graph
from convert.lstm_graph import LSTMShape, build_lstm_graph
from convert.onnx_graph import IR_VERSION, OPSET, GraphBuilder, _larger_than
from convert.quantize import dequantize_blockwise, quantize_blockwise
from engine.manifest import KVCacheSpec
from training.lstm import LSTMLM, LSTMConfig
from training.transformer import TransformerConfig, TransformerLM

VOCAB = 97


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


def _numpy_weights(model: nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().float().numpy().copy() for k, v in model.state_dict().items()}


# Transformer decoder -------------------------------------------------------------------------

CASES = {
    # id: (config changes, add q/k/v biases, graph dtype)
    "gqa-4-2": ({"num_heads": 4, "num_kv_heads": 2}, False, "float32"),
    "mha-4-4": ({"num_heads": 4, "num_kv_heads": 4}, False, "float32"),
    "mqa-4-1": ({"num_heads": 4, "num_kv_heads": 1}, False, "float32"),
    "untied": ({"tie_embeddings": False}, False, "float32"),
    "qkv-bias": ({}, True, "float32"),
    "float16": ({}, False, "float16"),
}


class _Decoder:
    """A random TransformerLM, its weights as the graph builder wants them, and its session."""

    def __init__(self, changes: dict[str, object], biases: bool, dtype: str,
                 weight_bits: int | None = None, seed: int = 0) -> None:
        torch.manual_seed(seed)
        fields = {"vocab_size": VOCAB, "context_length": 64, "hidden_size": 64, "num_layers": 2,
                  "num_heads": 4, "num_kv_heads": 2, "intermediate_size": 40, "rope_theta": 100.0}
        self.config = TransformerConfig(**{**fields, **changes})
        self.model = TransformerLM(self.config).eval()
        # Larger weights than the init so attention is far from uniform and bugs show.
        with torch.no_grad():
            for name, parameter in self.model.named_parameters():
                if name.endswith("proj.weight"):
                    parameter.normal_(0, 0.15)
                elif name.endswith("embed_tokens.weight") or name == "lm_head.weight":
                    parameter.normal_(0, 1.0)
        if biases:
            for block in self.model.layers:
                attn = block.self_attn
                for kind in ("q_proj", "k_proj", "v_proj"):
                    old = getattr(attn, kind)
                    new = nn.Linear(old.in_features, old.out_features, bias=True)
                    with torch.no_grad():
                        new.weight.copy_(old.weight)
                        new.bias.normal_(0, 0.5)
                    setattr(attn, kind, new)
        self.weights = _numpy_weights(self.model)
        if biases:
            assert "layers.1.self_attn.k_proj.bias" in self.weights
        c = self.config
        self.shape = DecoderShape(VOCAB, c.hidden_size, c.num_layers, c.num_heads,
                                  c.num_kv_heads, c.head_dim, c.rope_theta, c.rms_eps,
                                  c.tie_embeddings)
        self.graph, self.cache = build_decoder_graph(self.weights, self.shape, dtype=dtype,
                                                     weight_bits=weight_bits)
        self.np_dtype = np.dtype(dtype)
        self.session = _session(self.graph)

    def torch_logits(self, ids: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.model(torch.from_numpy(ids)).numpy()

    def empty_past(self, batch: int) -> dict[str, np.ndarray]:
        shape = (batch, self.config.num_kv_heads, 0, self.config.head_dim)
        return {name: np.zeros(shape, self.np_dtype) for layer in range(self.config.num_layers)
                for name in self.cache.past_names(layer)}

    def run(self, ids: np.ndarray, past: dict[str, np.ndarray], valid: int | None = None,
            keep: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Runs new tokens after the first ``valid`` positions of ``past`` (all of them by
        default); returns the last ``keep`` positions' logits (0: all) and the next past."""
        batch, new = ids.shape
        if valid is None:
            valid = next(iter(past.values())).shape[2]
        feeds = {"input_ids": ids, "attention_mask": np.ones((batch, valid + new), np.int64),
                 "logits_to_keep": np.array(keep, np.int64), **past}
        names = [o.name for o in self.session.get_outputs()]
        outputs = dict(zip(names, self.session.run(names, feeds), strict=True))
        following = {}
        for layer in range(self.config.num_layers):
            for past_name, present_name in zip(self.cache.past_names(layer),
                                               self.cache.present_names(layer), strict=True):
                following[past_name] = outputs[present_name]
        return outputs["logits"], following


def _tolerance(dtype: str) -> dict[str, float]:
    return {"rtol": 1e-4, "atol": 1e-4} if dtype == "float32" else {"rtol": 2e-2, "atol": 5e-2}


def _prompt(batch: int, length: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, VOCAB, (batch, length), dtype=np.int64)


@pytest.fixture(scope="module", params=list(CASES), ids=list(CASES))
def decoder(request: pytest.FixtureRequest) -> _Decoder:
    changes, biases, dtype = CASES[request.param]
    return _Decoder(changes, biases, dtype, seed=len(request.param))


def test_decoder_graph_is_valid_ir10_with_dynamic_dims(decoder: _Decoder) -> None:
    assert decoder.graph.ir_version == IR_VERSION == 10
    onnx.checker.check_model(decoder.graph, full_check=True)
    inputs = {i.name: i for i in decoder.graph.graph.input}

    def dims(value: onnx.ValueInfoProto) -> list[str | int]:
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    assert dims(inputs["input_ids"]) == ["batch", "sequence"]
    assert dims(inputs["attention_mask"]) == ["batch", "total_length"]
    assert dims(inputs["logits_to_keep"]) == []
    assert "position_ids" not in inputs  # positions come from the mask
    past_key = inputs["past_key_values.0.key"]
    assert dims(past_key) == ["batch", decoder.config.num_kv_heads, "past_length",
                              decoder.config.head_dim]
    outputs = [o.name for o in decoder.graph.graph.output]
    assert outputs[0] == "logits"
    assert set(outputs[1:]) == {f"present.{layer}.{kind}" for layer in range(2)
                                for kind in ("key", "value")}
    logits = decoder.graph.graph.output[0]
    assert logits.type.tensor_type.elem_type == TensorProto.FLOAT  # float32 even for fp16 graphs
    cache_type = TensorProto.FLOAT16 if decoder.np_dtype == np.float16 else TensorProto.FLOAT
    assert past_key.type.tensor_type.elem_type == cache_type
    assert decoder.cache == KVCacheSpec(2, decoder.config.num_kv_heads, decoder.config.head_dim,
                                        dtype=str(decoder.np_dtype), shared_buffer=True)


@pytest.mark.parametrize(("batch", "length"), [(1, 1), (1, 13), (3, 9)])
def test_decoder_full_prompt_matches_pytorch(decoder: _Decoder, batch: int, length: int) -> None:
    ids = _prompt(batch, length)
    logits, present = decoder.run(ids, decoder.empty_past(batch))
    expected = decoder.torch_logits(ids)
    assert logits.dtype == np.float32
    assert logits.shape == (batch, length, VOCAB)
    np.testing.assert_allclose(logits, expected, **_tolerance(str(decoder.np_dtype)))
    assert present["past_key_values.1.value"].shape == (batch, decoder.config.num_kv_heads,
                                                        length, decoder.config.head_dim)
    if decoder.np_dtype == np.float32:
        assert np.array_equal(logits.argmax(-1), expected.argmax(-1))


@pytest.mark.parametrize("split", [1, 5, 11])
def test_decoder_prefill_then_cached_decode_matches_full_run(decoder: _Decoder,
                                                             split: int) -> None:
    ids = _prompt(2, 12, seed=split)
    full = decoder.torch_logits(ids)
    prefill, past = decoder.run(ids[:, :split], decoder.empty_past(2))
    pieces = [prefill]
    for position in range(split, 12):  # then one token at a time, feeding the cache back
        step, past = decoder.run(ids[:, position:position + 1], past)
        pieces.append(step)
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), full,
                               **_tolerance(str(decoder.np_dtype)))
    assert past["past_key_values.0.key"].shape[2] == 12


def test_decoder_cache_buffer_longer_than_the_context(decoder: _Decoder) -> None:
    """The shared-buffer contract: past buffers longer than the context, with garbage after the
    valid positions, give the same logits; the new keys/values land right after the valid ones."""
    ids = _prompt(1, 9, seed=3)  # (several new tokens after a past: batch 1, as the engine runs)
    full = decoder.torch_logits(ids)
    prefill, exact_past = decoder.run(ids[:, :5], decoder.empty_past(1))
    rng = np.random.default_rng(0)
    padded = {}
    for name, value in exact_past.items():
        buffer = rng.normal(0, 3, (*value.shape[:2], 16, value.shape[3])).astype(value.dtype)
        buffer[:, :, :5] = value
        padded[name] = buffer
    step, past = decoder.run(ids[:, 5:7], padded, valid=5)
    tolerance = _tolerance(str(decoder.np_dtype))
    np.testing.assert_allclose(np.concatenate([prefill, step], 1), full[:, :7], **tolerance)
    # The buffer keeps its length; the next call reads 7 valid positions from it.
    assert past["past_key_values.0.key"].shape[2] == 16
    last, _ = decoder.run(ids[:, 7:9], past, valid=7, keep=1)
    assert last.shape == (1, 1, VOCAB)
    np.testing.assert_allclose(last[:, 0], full[:, 8], **tolerance)


def test_decoder_bias_weights_are_used() -> None:
    """The biased graph differs from the same weights without biases (the biases are read)."""
    with_bias = _Decoder({}, True, "float32", seed=4)
    without = {k: v for k, v in with_bias.weights.items() if not k.endswith("proj.bias")}
    graph, _ = build_decoder_graph(without, with_bias.shape)
    ids = _prompt(1, 6)
    feeds = {"input_ids": ids, "attention_mask": np.ones((1, 6), np.int64),
             "logits_to_keep": np.array(0, np.int64), **with_bias.empty_past(1)}
    plain = _session(graph).run(["logits"], feeds)[0]
    biased, _ = with_bias.run(ids, with_bias.empty_past(1))
    assert np.abs(plain - biased).max() > 1e-2


# Quantized decoder -------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [8, 4])
def test_quantized_decoder_matches_pytorch_with_dequantized_weights(bits: int) -> None:
    decoder = _Decoder({"hidden_size": 64, "intermediate_size": 96}, False, "float32",
                       weight_bits=bits, seed=bits)
    nodes = [n.op_type for n in decoder.graph.graph.node]
    # q/k/v together, o, gate, up, down per layer, and the output head (always 8-bit).
    assert nodes.count("MatMulNBits") == 2 * 5 + 1
    # 8-bit weights in blocks of 64 (the width allows it), 4-bit in blocks of 32.
    block = {8: 64, 4: 32}[bits]
    assert {onnx.helper.get_node_attr_value(n, "block_size") for n in decoder.graph.graph.node
            if n.op_type in ("MatMulNBits", "GatherBlockQuantized")} == {block}
    # The same model with every projection replaced by what the packed weights represent; the
    # embedding table (gathered and, tied, the output head) by its 8-bit copy.
    with torch.no_grad():
        for name, parameter in decoder.model.named_parameters():
            if name.endswith("proj.weight"):
                packed = quantize_blockwise(parameter.numpy().T.copy(), bits, block)
                parameter.copy_(torch.from_numpy(dequantize_blockwise(packed).T.copy()))
        embedding = decoder.model.embed_tokens.weight.numpy()
        table = dequantize_blockwise(quantize_blockwise(embedding.T.copy(), 8, block)).T.copy()
        decoder.model.embed_tokens.weight.copy_(torch.from_numpy(table))
    assert "GatherBlockQuantized" in nodes and "Gather" not in nodes
    ids = _prompt(2, 10)
    logits, _ = decoder.run(ids, decoder.empty_past(2))
    np.testing.assert_allclose(logits, decoder.torch_logits(ids), rtol=1e-4, atol=1e-4)


# LSTM --------------------------------------------------------------------------------------


def _lstm(layers: int, weight_bits: int | None = None) -> tuple[LSTMLM, ort.InferenceSession]:
    torch.manual_seed(layers)
    config = LSTMConfig(vocab_size=VOCAB, embed_size=24, hidden_size=40, num_layers=layers)
    model = LSTMLM(config).eval()
    with torch.no_grad():
        model.embed.weight.normal_(0, 1.0)
    graph, states = build_lstm_graph(_numpy_weights(model), LSTMShape(VOCAB, 24, 40, layers),
                                     weight_bits)
    assert graph.ir_version == 10
    onnx.checker.check_model(graph, full_check=True)
    assert [(s.input, s.output, s.num_layers, s.size) for s in states] == [
        ("state_h", "state_h_out", layers, 40), ("state_c", "state_c_out", layers, 40)]
    return model, _session(graph)


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_lstm_graph_carries_state_across_calls(layers: int) -> None:
    model, session = _lstm(layers)
    ids = _prompt(2, 14, seed=layers)
    with torch.no_grad():
        expected = model(torch.from_numpy(ids)).numpy()
    state = {"state_h": np.zeros((layers, 2, 40), np.float32),
             "state_c": np.zeros((layers, 2, 40), np.float32)}
    pieces = []
    for start, end in [(0, 5), (5, 6), (6, 7), (7, 14)]:  # prefill, decode, decode, a chunk
        logits, h, c = session.run(["logits", "state_h_out", "state_c_out"],
                                   {"input_ids": ids[:, start:end], **state})
        state = {"state_h": h, "state_c": c}
        pieces.append(logits)
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), expected, rtol=1e-4, atol=1e-5)
    assert np.array_equal(np.concatenate(pieces, axis=1).argmax(-1), expected.argmax(-1))


def test_lstm_graph_state_outputs_equal_pytorch_state() -> None:
    model, session = _lstm(2)
    ids = _prompt(1, 7)
    with torch.no_grad():
        _, (h, c) = model.lstm(model.embed(torch.from_numpy(ids)))
    zeros = np.zeros((2, 1, 40), np.float32)
    _, h_out, c_out = session.run(None, {"input_ids": ids, "state_h": zeros, "state_c": zeros})
    np.testing.assert_allclose(h_out, h.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(c_out, c.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("bits", [8, 4])
def test_quantized_lstm_head_matches_dequantized_projection(bits: int) -> None:
    model, session = _lstm(2, weight_bits=bits)
    with torch.no_grad():
        packed = quantize_blockwise(model.proj.weight.numpy().T.copy(), bits)
        model.proj.weight.copy_(torch.from_numpy(dequantize_blockwise(packed).T.copy()))
        ids = _prompt(1, 6)
        expected = model(torch.from_numpy(ids)).numpy()
    zeros = np.zeros((2, 1, 40), np.float32)
    logits = session.run(["logits"], {"input_ids": ids, "state_h": zeros, "state_c": zeros})[0]
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)


# MatMulNBits and block quantization --------------------------------------------------------


def _linear_graph(weight: np.ndarray, bits: int, block_size: int) -> ort.InferenceSession:
    g = GraphBuilder("float32", bits, block_size)
    x = g.input("x", TensorProto.FLOAT, ["rows", weight.shape[0]])
    g.output(g.linear(x, "w", weight), "y", TensorProto.FLOAT, ["rows", weight.shape[1]])
    model = g.model("linear")
    assert [n.op_type for n in model.graph.node] == ["MatMulNBits", "Identity"]
    onnx.checker.check_model(model)
    return _session(model)


QUANT_SHAPES = [  # (K, N, block_size): K a multiple of the block and not
    (64, 24, 32), (40, 8, 32), (72, 33, 32), (7, 5, 32), (100, 16, 16), (96, 10, 64),
]


@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize(("k", "n", "block_size"), QUANT_SHAPES)
def test_matmulnbits_equals_numpy_with_dequantized_weights(bits: int, k: int, n: int,
                                                           block_size: int) -> None:
    rng = np.random.default_rng(k * n + bits)
    weight = rng.normal(0, 1, (k, n)).astype(np.float32)
    x = rng.normal(0, 1, (5, k)).astype(np.float32)
    packed = quantize_blockwise(weight, bits, block_size)
    blocks = -(-k // block_size)
    assert packed.data.dtype == np.uint8
    assert packed.data.shape == (n, blocks, block_size * bits // 8)
    assert packed.scales.shape == (n * blocks,)
    y = _linear_graph(weight, bits, block_size).run(["y"], {"x": x})[0]
    np.testing.assert_allclose(y, x @ dequantize_blockwise(packed), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize(("k", "n", "block_size"), QUANT_SHAPES)
def test_blockwise_quantization_error_is_at_most_half_a_step(bits: int, k: int, n: int,
                                                             block_size: int) -> None:
    rng = np.random.default_rng(k + n + bits)
    weight = rng.normal(0, 1, (k, n)).astype(np.float32)
    weight[:, 0] *= 100  # one column with a very different range gets its own scales
    packed = quantize_blockwise(weight, bits, block_size)
    restored = dequantize_blockwise(packed)
    assert restored.shape == (k, n)
    blocks = -(-k // block_size)
    scales = packed.scales.reshape(n, blocks)
    padded = np.zeros((blocks * block_size, n), np.float32)
    padded[:k] = weight
    per_block = padded.T.reshape(n, blocks, block_size)
    if bits == 8:  # symmetric: the largest magnitude maps to the top code, 127
        assert packed.zero_points is None
        np.testing.assert_allclose(scales, np.abs(per_block).max(-1) / 127, rtol=1e-6)
    else:  # asymmetric: the block's range (holding 0) spans the 16 codes
        span = np.maximum(per_block.max(-1), 0) - np.minimum(per_block.min(-1), 0)
        np.testing.assert_allclose(scales, span / 15, rtol=1e-6)
        assert packed.zero_points is not None and packed.zero_points.max() <= 15
    per_element = np.repeat(scales, block_size, axis=1)[:, :k].T  # (K, N)
    error = np.abs(restored - weight)
    assert (error <= per_element / 2 * (1 + 1e-5) + 1e-7).all(), error.max()
    assert error.max() > 0  # not trivially exact


def test_quantize_zero_block_and_bad_bits() -> None:
    weight = np.zeros((32, 2), np.float32)
    weight[:, 1] = np.linspace(-1, 1, 32)
    packed = quantize_blockwise(weight, 4)
    restored = dequantize_blockwise(packed)
    assert np.array_equal(restored[:, 0], np.zeros(32))
    np.testing.assert_allclose(restored[:, 1], weight[:, 1], atol=1 / 7 / 2 + 1e-6)
    with pytest.raises(ValueError, match="bits"):
        quantize_blockwise(weight, 3)


def test_asymmetric_four_bit_uses_all_levels_of_a_one_sided_block() -> None:
    # 0..15 in one block: scale 1 and zero point 0 hold it exactly; symmetric 4-bit can't.
    column = np.arange(32, dtype=np.float32) % 16
    packed = quantize_blockwise(column[:, None], 4)
    assert packed.scales.tolist() == [1.0] and packed.zero_points is not None
    assert packed.zero_points.tolist() == [0]
    np.testing.assert_array_equal(dequantize_blockwise(packed)[:, 0], column)
    assert np.abs(dequantize_blockwise(quantize_blockwise(column[:, None], 4, symmetric=True))
                  [:, 0] - column).max() > 0.4
    # Zero points reach ONNX Runtime two to a byte, low nibble first, rows padded to bytes.
    three_blocks = quantize_blockwise(np.tile(np.linspace(-1, 3, 96)[:, None], (1, 2)), 4)
    zero = three_blocks.zero_points.reshape(2, 3)
    packed_zero = three_blocks.packed_zero_points().reshape(2, 2)
    assert np.array_equal(packed_zero[:, 0], zero[:, 0] | (zero[:, 1] << 4))
    assert np.array_equal(packed_zero[:, 1], zero[:, 2])
    y = _linear_graph(np.tile(np.linspace(-1, 3, 96)[:, None], (1, 2)).astype(np.float32), 4,
                      32).run(["y"], {"x": np.ones((1, 96), np.float32)})[0]
    np.testing.assert_allclose(y[0], dequantize_blockwise(three_blocks).sum(0), rtol=1e-5)


def test_four_bit_packing_is_low_nibble_first() -> None:
    # Integers in -7..7 with a largest magnitude of 7: scale 1, codes value + 8 (midpoint).
    column = (np.arange(32) % 15 - 7).astype(np.float32)
    packed = quantize_blockwise(column[:, None], 4, symmetric=True)
    assert packed.scales.tolist() == [1.0]
    codes = column.astype(np.int64) + 8
    expected = (codes[0::2] | (codes[1::2] << 4)).astype(np.uint8)
    assert np.array_equal(packed.data.reshape(-1), expected)
    np.testing.assert_allclose(dequantize_blockwise(packed)[:, 0], column)


# The builder's model and its size ----------------------------------------------------------


def _small_builder() -> GraphBuilder:
    rng = np.random.default_rng(0)
    g = GraphBuilder("float32", 8, 32)
    x = g.input("x", TensorProto.FLOAT, ["rows", 64])
    y = g.linear(x, "w", rng.normal(0, 1, (64, 48)).astype(np.float32))
    y = g.op("Add", y, g.weight("b", rng.normal(0, 1, 48).astype(np.float32)))
    g.output(g.op("Mul", y, g.const(2.0)), "y", TensorProto.FLOAT, ["rows", 48])
    return g


def test_the_builder_writes_what_onnx_helpers_would_without_copying_weights() -> None:
    """Initializers go straight into the returned model (helper.make_graph + make_model copied
    them twice, and the upb runtime kept every copy until the model was freed); the bytes are
    the same as the helpers'."""
    g = _small_builder()
    model = g.model("small")
    initializers = [onnx.TensorProto.FromString(t.SerializeToString())
                    for t in model.graph.initializer]
    expected = helper.make_model(
        helper.make_graph(g.nodes, "small", g.inputs, g.outputs, initializer=initializers),
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("com.microsoft", 1)],
        producer_name="nightlamp")
    expected.ir_version = IR_VERSION
    assert model.SerializeToString(deterministic=True) == \
        expected.SerializeToString(deterministic=True)
    with pytest.raises(RuntimeError, match="already called"):
        g.model("again")


def test_size_check_agrees_with_bytesize() -> None:
    """save_model's threshold test gives ByteSize's answer without serializing a model whose
    weights alone pass the limit."""
    model = _small_builder().model("small")
    size = model.ByteSize()
    weights = sum(len(t.raw_data) for t in model.graph.initializer)
    for limit in (0, weights - 1, weights, size - 1, size, size + 1, 10 * size):
        assert _larger_than(model, limit) == (size > limit)
