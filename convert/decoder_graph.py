"""Builds the ONNX decoder graph of a Llama-family Transformer from its weights.

One graph serves prefill and decode. Inputs: ``input_ids`` (B, S), ``attention_mask`` (B, T) with
T = past + S, ``logits_to_keep`` (scalar int64: logits for the last N positions, 0 for all) and
the past keys/values of every layer (B, kvH, P, D). Outputs: ``logits`` (B, N or S, V) and the
present keys/values. Batch, sequence and past lengths are dynamic; rows are right-padded (the
mask's sum is a row's length), as onnxruntime-genai's graphs expect; several new tokens after a
past (a prompt prefilled in chunks) need batch 1, which is how the engine runs.

It is built from ONNX Runtime's fused operators, as onnxruntime-genai's model builder does, because
a small model's decode step is dominated by the number of operators, not their arithmetic: ten
per layer (SkipSimplifiedLayerNormalization, one MatMul(NBits) for q/k/v together,
GroupQueryAttention with the rotary embedding inside, ...) instead of forty. GroupQueryAttention
takes the valid length from the mask, so past and present may be one preallocated buffer longer
than the context (``KVCacheSpec.shared_buffer``): the runner binds it once and no step copies the
cache. Weight names follow Hugging Face's Llama layout without the ``model.`` prefix, so our
trainer, GGUF files and Hugging Face folders all feed the same builder.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields

import numpy as np
import onnx
from onnx import TensorProto

from convert.onnx_graph import GraphBuilder
from convert.quantize import PackedWeight, concat_outputs, quantize_blockwise
from engine.errors import ConfigError
from engine.manifest import KVCacheSpec

LOGITS_TO_KEEP = "logits_to_keep"
# Bits of a quantized model's output head and embedding table. 8, as llama.cpp keeps GGUF heads
# (Q8_0, Q6_K): onnxruntime-genai's int4 puts them in 4 bits, which on the default model decodes
# 14% faster and costs 10% more perplexity (benchmarks/RESULTS.md).
TABLE_BITS = 8
_MS = "com.microsoft"


# Bounds on what a checkpoint may declare, checked before anything is allocated from it: a file
# that says 10**9 hidden units or 2**62 positions is damaged or hostile (the largest published
# Llama-family models are well inside these: 126 layers, 128 heads, 16,384 wide, 256k tokens).
MAX_LAYERS = 1024
MAX_HEADS = 1024
MAX_HEAD_DIM = 1024
MAX_HIDDEN = 65536
MAX_INTERMEDIATE = 262144
MAX_VOCAB = 4 * 1024 * 1024
# The longest context an imported model gets: the rotary tables (positions x head_dim floats)
# and the manifest's context length are capped here; a file may declare more (Llama 3.1
# declares 131,072) but the engine would never run past it on a desktop.
MAX_POSITIONS = 131072


class ShapeError(ValueError):
    """A hyper-parameter out of bounds: ``field`` is the DecoderShape field, ``value`` its value
    and ``reason`` what is wrong, so an importer can name the key of its own file."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        super().__init__(f"{field} is {value!r}: {reason}")
        self.field, self.value, self.reason = field, value, reason

    def named(self, key: str) -> str:
        """The message with the file's own name for the field (``num_hidden_layers``)."""
        return f"field {key!r} is {self.value!r}: {self.reason}"


_INT_BOUNDS = {"vocab_size": MAX_VOCAB, "hidden_size": MAX_HIDDEN, "num_layers": MAX_LAYERS,
               "num_heads": MAX_HEADS, "num_kv_heads": MAX_HEADS, "head_dim": MAX_HEAD_DIM}


@dataclass(frozen=True)
class DecoderShape:
    """The hyper-parameters the graph needs (a subset of any Llama-family config).

    Checked when made (``ShapeError``, a ValueError, naming the field), so a GGUF file's or a
    config.json's values are bounded before any table is sized from them.
    """

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

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name in _INT_BOUNDS:
                if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                    raise ShapeError(item.name, value, "not a positive integer")
                if value > _INT_BOUNDS[item.name]:
                    raise ShapeError(item.name, value,
                                     f"more than the {_INT_BOUNDS[item.name]} supported")
            elif item.name in ("rope_theta", "rms_eps") and (
                    isinstance(value, bool) or not isinstance(value, (int, float))
                    or not math.isfinite(value) or value <= 0):
                raise ShapeError(item.name, value, "not a finite number above 0")
        if self.rms_eps >= 1:
            raise ShapeError("rms_eps", self.rms_eps, "not below 1 (it is typically 1e-5)")
        if self.num_kv_heads > self.num_heads or self.num_heads % self.num_kv_heads:
            raise ShapeError("num_kv_heads", self.num_kv_heads,
                             f"the {self.num_heads} query heads can't be shared evenly among "
                             f"{self.num_kv_heads} key/value heads")
        if self.head_dim % 2:
            raise ShapeError("head_dim", self.head_dim, "rotary embeddings rotate pairs, so "
                             f"{self.head_dim} dimensions won't do")
        factors = self.rope_freq_factors
        if factors is not None and (len(factors) != self.head_dim // 2 or not all(
                isinstance(f, (int, float)) and math.isfinite(f) and f > 0 for f in factors)):
            raise ShapeError("rope_freq_factors", f"<{len(factors)} values>",
                             f"expected {self.head_dim // 2} finite numbers above 0")


Weights = Mapping[str, "np.ndarray | PackedWeight"]


def _transposed(weights: Weights, name: str) -> np.ndarray | PackedWeight:
    # PyTorch Linear stores (out, in); MatMul wants (in, out). Packed weights are already laid
    # out by output row, as MatMulNBits wants.
    weight = weights[name]
    return weight if isinstance(weight, PackedWeight) else np.ascontiguousarray(weight.T)


def _fused_weight(parts: list[np.ndarray | PackedWeight]) -> np.ndarray | PackedWeight | None:
    """Projections of one input side by side, or None when they can't share one MatMul
    (e.g. a GGUF file with 4-bit queries but 8-bit values)."""
    if all(isinstance(p, np.ndarray) for p in parts):
        return np.concatenate(parts, axis=1)
    packed = [p for p in parts if isinstance(p, PackedWeight)]
    if len(packed) == len(parts) and len({(p.bits, p.block_size) for p in packed}) == 1:
        return concat_outputs(packed)
    return None


def _rotary_caches(g: GraphBuilder, shape: DecoderShape, positions: int) -> tuple[str, str]:
    """cos/sin of every position's rotary angles, (positions, D/2), for GroupQueryAttention."""
    if not 0 < positions <= MAX_POSITIONS:  # importers cap the context; callers must too
        raise ValueError(f"rotary tables for {positions} positions: expected 1 to "
                         f"{MAX_POSITIONS}")
    half = shape.head_dim // 2
    inv_freq = 1.0 / (shape.rope_theta ** (np.arange(0, half, dtype=np.float64) / half))
    if shape.rope_freq_factors is not None:
        inv_freq = inv_freq / np.asarray(shape.rope_freq_factors, dtype=np.float64)
    angles = np.arange(positions, dtype=np.float64)[:, None] * inv_freq[None, :]
    return (g.weight("rotary.cos_cache", np.cos(angles).astype(np.float32)),
            g.weight("rotary.sin_cache", np.sin(angles).astype(np.float32)))


def _sequence_lengths(g: GraphBuilder, attention_mask: str) -> tuple[str, str]:
    """GroupQueryAttention's length inputs: each row's last valid index (B,) and the longest
    total length, both int32, from the (right-padded) mask."""
    valid = g.op("ReduceSum", attention_mask, g.const([1], "int64"), keepdims=0)
    last_index = g.op("Cast", g.op("Sub", valid, g.const([1], "int64")), to=TensorProto.INT32)
    total = g.op("Cast", g.op("Squeeze", g.shape_dim(attention_mask, 1)), to=TensorProto.INT32)
    return last_index, total


def _attention(g: GraphBuilder, x: str, layer: int, weights: Weights, shape: DecoderShape,
               lengths: tuple[str, str], rotary: tuple[str, str], cache: KVCacheSpec) -> str:
    prefix = f"layers.{layer}.self_attn."
    names = [f"{prefix}{kind}_proj.weight" for kind in "qkv"]
    parts = [_transposed(weights, name) for name in names]
    fused = _fused_weight(parts)
    if fused is not None:
        qkv = g.linear(x, f"{prefix}qkv_proj.weight", fused)
    else:
        qkv = g.op("Concat", *(g.linear(x, n, p) for n, p in zip(names, parts, strict=True)),
                   axis=-1)
    widths = [shape.num_heads * shape.head_dim] + [shape.num_kv_heads * shape.head_dim] * 2
    biases = [weights.get(f"{prefix}{kind}_proj.bias") for kind in "qkv"]
    if any(b is not None for b in biases):  # Qwen2: biases on q, k and v
        bias = np.concatenate([np.zeros(w, np.float32) if b is None else np.asarray(b)
                               for b, w in zip(biases, widths, strict=True)])
        qkv = g.op("Add", qkv, g.weight(f"{prefix}qkv_proj.bias", bias))
    past_key, past_value = cache.past_names(layer)
    present_key, present_value = cache.present_names(layer)
    cache_shape: list[int | str] = ["batch", shape.num_kv_heads, "past_length", shape.head_dim]
    g.input(past_key, g.onnx_dtype, cache_shape)
    g.input(past_value, g.onnx_dtype, cache_shape)
    context, keys, values = g.op_multi(
        "GroupQueryAttention", qkv, "", "", past_key, past_value, *lengths, *rotary,
        outputs=3, domain=_MS, num_heads=shape.num_heads, kv_num_heads=shape.num_kv_heads,
        scale=float(1.0 / np.sqrt(shape.head_dim)), do_rotary=1, rotary_interleaved=0)
    present_shape: list[int | str] = ["batch", shape.num_kv_heads, "total_length",
                                      shape.head_dim]
    g.output(keys, present_key, g.onnx_dtype, present_shape)
    g.output(values, present_value, g.onnx_dtype, present_shape)
    out_name = f"{prefix}o_proj.weight"
    return g.linear(context, out_name, _transposed(weights, out_name))


def _mlp(g: GraphBuilder, x: str, layer: int, weights: Weights) -> str:
    prefix = f"layers.{layer}.mlp."

    def proj(x: str, kind: str) -> str:
        name = f"{prefix}{kind}_proj.weight"
        return g.linear(x, name, _transposed(weights, name))

    gate = proj(x, "gate")
    swish = g.op("Mul", gate, g.op("Sigmoid", gate))  # SiLU (ONNX Runtime fuses the pair)
    return proj(g.op("Mul", swish, proj(x, "up")), "down")


def _norm(g: GraphBuilder, residual: str | None, delta: str, weight: str,
          eps: float) -> tuple[str, str]:
    """RMS norm of residual + delta in one operator; returns (normed, the new residual)."""
    if residual is None:
        # The first norm has nothing to add. (ONNX Runtime's SimplifiedLayerNormalization sits
        # in the standard domain, which the ONNX checker rejects; this runs once per step.)
        return g.rms_norm(delta, weight, eps), delta
    normed, _, _, total = g.op_multi("SkipSimplifiedLayerNormalization", residual, delta, weight,
                                     outputs=4, domain=_MS, epsilon=eps)
    return normed, total


def _block_size(weight_bits: int | None, shape: DecoderShape) -> int:
    """Values per quantization block. 8-bit weights go in blocks of 64: MatMulNBits then does
    half the per-block work, 8-15% faster decoding on SmolLM2-135M, while perplexity stays
    within noise of blocks of 32 (30.88 vs 31.00 on prose, fp32 30.70; RESULTS.md). 4-bit
    stays at 32, as llama.cpp's Q4 and onnxruntime-genai's builder: there 64 cost up to 11%
    perplexity. Models narrower than a block of 64 keep 32, so their tables stay quantized."""
    return 64 if weight_bits == 8 and shape.hidden_size % 64 == 0 else 32


def _table_bits(weights: Weights, g: GraphBuilder, shape: DecoderShape, bits: int,
                table: str) -> PackedWeight | None:
    """The embedding table (``embed``) or output head (``head``) quantized, or None when it
    can't be (rows that are not whole blocks). A table a GGUF file already holds in blocks
    (repacked exactly) is used as it is, whatever its width: exact numbers beat a second
    rounding. Otherwise the float table is quantized to `bits`."""
    head = weights.get("lm_head.weight")
    if isinstance(head, PackedWeight) and (shape.tie_embeddings or table == "head") \
            and head.in_features % head.block_size == 0:
        return head
    source = weights["embed_tokens.weight"] if shape.tie_embeddings or table == "embed" \
        else head
    if not isinstance(source, np.ndarray) or shape.hidden_size % g.block_size:
        return None
    return quantize_blockwise(np.ascontiguousarray(source.T, dtype=np.float32), bits,
                              g.block_size)


def _embed(g: GraphBuilder, input_ids: str, embedding: str, weights: Weights,
           shape: DecoderShape, bits: int) -> str:
    """The input embeddings (B, S, C). Quantized models keep the table quantized (as llama.cpp
    and onnxruntime-genai do) and dequantize only the rows they gather: for a small model the
    float table would be the largest tensor of all."""
    if embedding:
        return g.op("Gather", embedding, input_ids)
    packed = _table_bits(weights, g, shape, bits, "embed")
    if packed is None:
        table = np.asarray(weights["embed_tokens.weight"])
        return g.op("Gather", g.weight("embed_tokens.weight", table), input_ids)
    inputs = [g.weight("embed_tokens.weight.q", packed.data.reshape(packed.out_features, -1)),
              input_ids, g.weight("embed_tokens.weight.scales",
                                  packed.scales.reshape(packed.out_features, -1))]
    zero_points = packed.packed_zero_points()
    if zero_points is None and packed.bits == 4:  # spelled out: the 4-bit midpoint, 8
        zero_points = np.full((packed.out_features, (packed.blocks + 1) // 2), 0x88, np.uint8)
    if zero_points is not None:
        inputs.append(g.weight("embed_tokens.weight.zero_points",
                               zero_points.reshape(packed.out_features, -1)))
    return g.op("GatherBlockQuantized", *inputs, domain=_MS, gather_axis=0, quantize_axis=1,
                block_size=packed.block_size, bits=packed.bits)


def _output_head(g: GraphBuilder, flat: str, embedding: str, weights: Weights,
                 shape: DecoderShape, bits: int) -> str:
    """Logits (B*S, V) from the final hidden states (B*S, C)."""
    head = weights.get("lm_head.weight")
    if g.weight_bits is not None or isinstance(head, PackedWeight):
        # Quantized models get a quantized head too: it is the largest matrix of a small model
        # and read for every token.
        packed = _table_bits(weights, g, shape, bits, "head")
        if packed is None:
            assert isinstance(head, PackedWeight)
            packed = head
        return g.linear(flat, "lm_head.weight", packed)
    if shape.tie_embeddings:
        # The float head reuses the (V, C) embedding through Gemm's transB: stored once.
        return g.op("Gemm", flat, embedding, transB=1)
    assert isinstance(head, np.ndarray)
    return g.op("Gemm", flat, g.weight("lm_head.weight", head), transB=1)


def build_decoder_graph(weights: Weights, shape: DecoderShape,
                        dtype: str = "float32", weight_bits: int | None = None,
                        accuracy_level: int = 0, max_positions: int = 2048,
                        ) -> tuple[onnx.ModelProto, KVCacheSpec]:
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
        max_positions: the model's context, which the rotary tables cover.
    """
    if shape.head_dim % 16:
        raise ConfigError(f"attention heads of {shape.head_dim} values are not supported: ONNX "
                          "Runtime's attention kernel needs a multiple of 16")
    g = GraphBuilder(dtype, weight_bits, block_size=_block_size(weight_bits, shape),
                     accuracy_level=accuracy_level)
    cache = KVCacheSpec(num_layers=shape.num_layers, num_kv_heads=shape.num_kv_heads,
                        head_dim=shape.head_dim, dtype=dtype, shared_buffer=True)
    input_ids = g.input("input_ids", TensorProto.INT64, ["batch", "sequence"])
    attention_mask = g.input("attention_mask", TensorProto.INT64, ["batch", "total_length"])
    logits_to_keep = g.input(LOGITS_TO_KEEP, TensorProto.INT64, [])

    embedding = g.weight("embed_tokens.weight", weights["embed_tokens.weight"]) \
        if g.weight_bits is None else ""
    x = _embed(g, input_ids, embedding, weights, shape, TABLE_BITS)  # (B, S, C)
    lengths = _sequence_lengths(g, attention_mask)
    rotary = _rotary_caches(g, shape, max_positions)
    residual: str | None = None
    for layer in range(shape.num_layers):
        prefix = f"layers.{layer}."
        norm = g.weight(f"{prefix}input_layernorm.weight",
                        weights[f"{prefix}input_layernorm.weight"])
        normed, residual = _norm(g, residual, x, norm, shape.rms_eps)
        x = _attention(g, normed, layer, weights, shape, lengths, rotary, cache)
        norm = g.weight(f"{prefix}post_attention_layernorm.weight",
                        weights[f"{prefix}post_attention_layernorm.weight"])
        normed, residual = _norm(g, residual, x, norm, shape.rms_eps)
        x = _mlp(g, normed, layer, weights)
    x, _ = _norm(g, residual, x, g.weight("norm.weight", weights["norm.weight"]), shape.rms_eps)

    # Only the positions whose logits are wanted go through the head: a prompt's prefill needs
    # the last one, and the head is the largest matrix of a small model.
    start = g.op("Neg", g.op("Unsqueeze", logits_to_keep, g.const([0], "int64")))
    x = g.op("Slice", x, start, g.const([np.iinfo(np.int64).max], "int64"),
             g.const([1], "int64"))
    flat = g.op("Reshape", x, g.const([-1, shape.hidden_size], "int64"))
    logits = _output_head(g, flat, embedding, weights, shape, TABLE_BITS)  # (B*N, V)
    out_shape = g.op("Concat", g.op("Shape", x, end=2), g.const([shape.vocab_size], "int64"),
                     axis=0)
    logits = g.op("Reshape", logits, out_shape)
    if g.dtype != "float32":
        # Logits leave the graph as float32 so sampling is exact whatever the weights are.
        logits = g.op("Cast", logits, to=TensorProto.FLOAT)
    g.output(logits, "logits", TensorProto.FLOAT, ["batch", "kept", shape.vocab_size])
    # Outputs were declared layer by layer; order them logits first like Optimum's exports.
    g.outputs.insert(0, g.outputs.pop())
    return g.model("nightlamp_decoder"), cache
