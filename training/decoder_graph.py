"""Builds the ONNX decoder graph of a Llama-family Transformer from its weights.

One graph serves prefill and decode: it takes ``input_ids`` (B, S), ``attention_mask`` (B, P+S),
``position_ids`` (B, S) and the past keys/values of every layer (B, kvH, P, D), and returns
``logits`` (B, S, V) and the present keys/values (B, kvH, P+S, D). Batch, sequence and past
lengths are dynamic. Weight names follow Hugging Face's Llama layout without the ``model.``
prefix, so our trainer, GGUF files and Hugging Face folders all feed the same builder.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto

from engine.manifest import KVCacheSpec
from training.onnx_graph import GraphBuilder
from training.quantize import PackedWeight, quantize_blockwise


@dataclass(frozen=True)
class DecoderShape:
    """The hyper-parameters the graph needs (a subset of any Llama-family config)."""

    vocab_size: int
    hidden_size: int  # C: width of the residual stream
    num_layers: int
    num_heads: int  # H: query heads
    num_kv_heads: int  # kvH: key/value heads (grouped-query attention when < H)
    head_dim: int  # D
    rope_theta: float = 10000.0
    rms_eps: float = 1e-5
    tie_embeddings: bool = True
    # Llama 3.1-style per-frequency divisors of the rotary frequencies (head_dim / 2 values).
    rope_freq_factors: tuple[float, ...] | None = None


Weights = Mapping[str, "np.ndarray | PackedWeight"]


def _transposed(weights: Weights, name: str) -> np.ndarray | PackedWeight:
    # PyTorch Linear stores (out, in); MatMul wants (in, out). Packed weights are already laid
    # out by output row, as MatMulNBits wants.
    weight = weights[name]
    return weight if isinstance(weight, PackedWeight) else np.ascontiguousarray(weight.T)


def _rotary_tables(g: GraphBuilder, position_ids: str, shape: DecoderShape) -> tuple[str, str]:
    """cos/sin of shape (B, 1, S, D) for rotate-half rotary embeddings."""
    half = shape.head_dim // 2
    inv_freq = 1.0 / (shape.rope_theta ** (np.arange(0, half, dtype=np.float64) / half))
    if shape.rope_freq_factors is not None:
        inv_freq = inv_freq / np.asarray(shape.rope_freq_factors, dtype=np.float64)
    positions = g.op("Unsqueeze", g.op("Cast", position_ids, to=TensorProto.FLOAT),
                     g.const([-1], "int64"))  # (B, S, 1)
    freqs = g.op("Mul", positions, g.const(inv_freq.astype(np.float32), "float32"))  # (B, S, D/2)
    angles = g.op("Unsqueeze", g.op("Concat", freqs, freqs, axis=-1), g.const([1], "int64"))
    cos, sin = g.op("Cos", angles), g.op("Sin", angles)
    if g.dtype != "float32":
        cos, sin = g.op("Cast", cos, to=g.onnx_dtype), g.op("Cast", sin, to=g.onnx_dtype)
    return cos, sin


def _apply_rotary(g: GraphBuilder, x: str, cos: str, sin: str, head_dim: int) -> str:
    first, second = g.op_multi("Split", x, g.const([head_dim // 2, head_dim // 2], "int64"),
                               outputs=2, axis=-1)
    rotated = g.op("Concat", g.op("Neg", second), first, axis=-1)
    return g.op("Add", g.op("Mul", x, cos), g.op("Mul", rotated, sin))


def _attention_bias(g: GraphBuilder, input_ids: str, attention_mask: str) -> str:
    """Additive mask (B, 1, 1, S, T): 0 where query i may see key j, a large negative elsewhere."""
    total = g.op("Squeeze", g.shape_dim(attention_mask, 1))  # T = P + S
    new = g.op("Squeeze", g.shape_dim(input_ids, 1))  # S
    past = g.op("Sub", total, new)
    one = g.const(1, "int64")
    query_positions = g.op("Unsqueeze", g.op("Range", past, total, one), g.const([1], "int64"))
    key_positions = g.op("Unsqueeze", g.op("Range", g.const(0, "int64"), total, one),
                         g.const([0], "int64"))
    causal = g.op("LessOrEqual", key_positions, query_positions)  # (S, T)
    not_padding = g.op("Unsqueeze", g.op("Cast", attention_mask, to=TensorProto.BOOL),
                       g.const([1, 2, 3], "int64"))  # (B, 1, 1, 1, T)
    allowed = g.op("And", causal, not_padding)  # (B, 1, 1, S, T)
    # Half the type's minimum: adding a score can't overflow to -inf and produce NaN rows.
    blocked = float(np.finfo(g.np_dtype).min) / 2
    return g.op("Where", allowed, g.const(0.0), g.const(blocked))


def _attention(g: GraphBuilder, x: str, layer: int, weights: Weights,
               shape: DecoderShape, rope: tuple[str, str], bias: str, cache: KVCacheSpec,
               ) -> str:
    prefix = f"layers.{layer}.self_attn."
    heads, kv_heads, dim = shape.num_heads, shape.num_kv_heads, shape.head_dim

    def project(kind: str, num_heads: int) -> str:
        name = f"{prefix}{kind}_proj.weight"
        bias_name = f"{prefix}{kind}_proj.bias"
        bias_value = g.weight(bias_name, weights[bias_name]) if bias_name in weights else None
        y = g.linear(x, name, _transposed(weights, name), bias_value)  # (B, S, heads*D)
        y = g.op("Reshape", y, g.const([0, 0, num_heads, dim], "int64"))
        return g.op("Transpose", y, perm=[0, 2, 1, 3])  # (B, heads, S, D)

    q = _apply_rotary(g, project("q", heads), *rope, dim)
    k = _apply_rotary(g, project("k", kv_heads), *rope, dim)
    v = project("v", kv_heads)
    past_key, past_value = cache.past_names(layer)
    present_key, present_value = cache.present_names(layer)
    cache_shape: list[int | str] = ["batch", kv_heads, "past_length", dim]
    g.input(past_key, g.onnx_dtype, cache_shape)
    g.input(past_value, g.onnx_dtype, cache_shape)
    keys = g.op("Concat", past_key, k, axis=2)  # (B, kvH, T, D)
    values = g.op("Concat", past_value, v, axis=2)
    present_shape: list[int | str] = ["batch", kv_heads, "total_length", dim]
    g.output(keys, present_key, g.onnx_dtype, present_shape)
    g.output(values, present_value, g.onnx_dtype, present_shape)

    # Grouped-query attention without copying K/V: view queries as (B, kvH, H/kvH, S, D) and
    # broadcast each key/value head over its group of query heads.
    grouped_q = g.op("Reshape", q, g.const([0, kv_heads, heads // kv_heads, -1, dim], "int64"))
    keys_t = g.op("Unsqueeze", g.op("Transpose", keys, perm=[0, 1, 3, 2]), g.const([2], "int64"))
    scores = g.op("Mul", g.op("MatMul", grouped_q, keys_t), g.const(1.0 / np.sqrt(dim)))
    probs = g.op("Softmax", g.op("Add", scores, bias), axis=-1)  # (B, kvH, H/kvH, S, T)
    context = g.op("MatMul", probs, g.op("Unsqueeze", values, g.const([2], "int64")))
    context = g.op("Reshape", context, g.const([0, heads, -1, dim], "int64"))  # (B, H, S, D)
    context = g.op("Reshape", g.op("Transpose", context, perm=[0, 2, 1, 3]),
                   g.const([0, 0, heads * dim], "int64"))  # (B, S, H*D)
    out_name = f"{prefix}o_proj.weight"
    return g.linear(context, out_name, _transposed(weights, out_name))


def _mlp(g: GraphBuilder, x: str, layer: int, weights: Weights) -> str:
    prefix = f"layers.{layer}.mlp."

    def proj(x: str, kind: str) -> str:
        name = f"{prefix}{kind}_proj.weight"
        return g.linear(x, name, _transposed(weights, name))

    gate = proj(x, "gate")
    swish = g.op("Mul", gate, g.op("Sigmoid", gate))  # SiLU
    return proj(g.op("Mul", swish, proj(x, "up")), "down")


def _output_head(g: GraphBuilder, flat: str, embedding: str, weights: Weights,
                 shape: DecoderShape) -> str:
    """Logits (B*S, V) from the final hidden states (B*S, C)."""
    head = weights.get("lm_head.weight")
    if g.weight_bits is not None or isinstance(head, PackedWeight):
        # Quantized models get a quantized head too: it is the largest matrix of a small model
        # and read for every token. 8 bits keep its error below the 4-bit layers'.
        if not isinstance(head, PackedWeight):
            source = weights["embed_tokens.weight"] if shape.tie_embeddings else head
            assert isinstance(source, np.ndarray)
            head = quantize_blockwise(np.ascontiguousarray(source.T, dtype=np.float32), 8)
        return g.linear(flat, "lm_head.weight", head)
    if shape.tie_embeddings:
        # The float head reuses the (V, C) embedding through Gemm's transB: stored once.
        return g.op("Gemm", flat, embedding, transB=1)
    assert isinstance(head, np.ndarray)
    return g.op("Gemm", flat, g.weight("lm_head.weight", head), transB=1)


def build_decoder_graph(weights: Weights, shape: DecoderShape,
                        dtype: str = "float32", weight_bits: int | None = None,
                        accuracy_level: int = 0) -> tuple[onnx.ModelProto, KVCacheSpec]:
    """Builds the decoder graph; returns it with the cache spec for the manifest.

    Args:
        weights: float arrays named like Hugging Face Llama without the ``model.`` prefix
            (``embed_tokens.weight``, ``layers.0.self_attn.q_proj.weight``, ``norm.weight``,
            and ``lm_head.weight`` unless embeddings are tied).
        shape: the model's hyper-parameters.
        dtype: ``float32`` or ``float16`` for weights, activations and the cache.
        weight_bits: None for float projection weights, 8 or 4 for block-quantized
            ``MatMulNBits`` (embeddings stay in float; the output head gets 8 bits).
        accuracy_level: MatMulNBits compute mode: 4 = int8 activations (fast on CPU), 0 = float.
    """
    g = GraphBuilder(dtype, weight_bits, accuracy_level=accuracy_level)
    cache = KVCacheSpec(num_layers=shape.num_layers, num_kv_heads=shape.num_kv_heads,
                        head_dim=shape.head_dim, dtype=dtype)
    input_ids = g.input("input_ids", TensorProto.INT64, ["batch", "sequence"])
    attention_mask = g.input("attention_mask", TensorProto.INT64, ["batch", "total_length"])
    position_ids = g.input("position_ids", TensorProto.INT64, ["batch", "sequence"])

    embedding = g.weight("embed_tokens.weight", weights["embed_tokens.weight"])
    x = g.op("Gather", embedding, input_ids)  # (B, S, C)
    rope = _rotary_tables(g, position_ids, shape)
    bias = _attention_bias(g, input_ids, attention_mask)
    if g.dtype != "float32":
        bias = g.op("Cast", bias, to=g.onnx_dtype)
    for layer in range(shape.num_layers):
        prefix = f"layers.{layer}."
        norm = g.weight(f"{prefix}input_layernorm.weight",
                        weights[f"{prefix}input_layernorm.weight"])
        x = g.op("Add", x, _attention(g, g.rms_norm(x, norm, shape.rms_eps), layer, weights, shape,
                                      rope, bias, cache))
        norm = g.weight(f"{prefix}post_attention_layernorm.weight",
                        weights[f"{prefix}post_attention_layernorm.weight"])
        x = g.op("Add", x, _mlp(g, g.rms_norm(x, norm, shape.rms_eps), layer, weights))
    x = g.rms_norm(x, g.weight("norm.weight", weights["norm.weight"]), shape.rms_eps)

    flat = g.op("Reshape", x, g.const([-1, shape.hidden_size], "int64"))
    logits = _output_head(g, flat, embedding, weights, shape)  # (B*S, V)
    out_shape = g.op("Concat", g.op("Shape", input_ids), g.const([shape.vocab_size], "int64"),
                     axis=0)
    logits = g.op("Reshape", logits, out_shape)
    if g.dtype != "float32":
        # Logits leave the graph as float32 so sampling is exact whatever the weights are.
        logits = g.op("Cast", logits, to=TensorProto.FLOAT)
    g.output(logits, "logits", TensorProto.FLOAT, ["batch", "sequence", shape.vocab_size])
    # Outputs were declared layer by layer; order them logits first like Optimum's exports.
    g.outputs.insert(0, g.outputs.pop())
    return g.model("nightlamp_decoder"), cache
