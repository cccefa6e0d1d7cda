"""Builds the ONNX encoder and decoder graphs of a Marian-family encoder-decoder from its weights.

The weights are a numpy state dict named exactly like transformers' ``MarianMTModel``
(``model.shared.weight``, ``model.encoder.layers.0.self_attn.q_proj.weight``, ...; see
``convert/seq2seq_config.py``), so our own trained models and imported OPUS-MT checkpoints go
through the same builder. Graph contract (ONNX IR 10, opset 21):

* ``encoder.onnx``: ``input_ids`` (B, S) and ``attention_mask`` (B, S) int64 (1 = token) ->
  ``encoder_hidden_states`` (B, S, D) and, for every decoder layer L, ``cross.{L}.key`` /
  ``cross.{L}.value`` (B, heads, S, head_dim): that layer's cross-attention keys and values,
  computed once per source sentence.
* ``decoder.onnx``: ``input_ids`` (B, T), ``encoder_attention_mask`` (B, S), the cross keys and
  values, ``past_key_values.{L}.key/value`` (B, heads, P, head_dim; P may be 0) -> ``logits``
  (B, T, V) float32 (``final_logits_bias`` added) and ``present.{L}.key/value`` (B, heads, P+T,
  head_dim). Positions P..P+T-1 come from the past's length inside the graph; self-attention is
  causal over past + new tokens.

Post-norm blocks (Marian, ``normalize_before=False``) and pre-norm blocks with a final norm per
stack (``normalize_before=True``) are both built. Positions are the fixed sinusoid table of
``MarianSinusoidalPositionalEmbedding``, stored as a constant and gathered by position.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import onnx
from onnx import TensorProto

from convert.onnx_graph import GraphBuilder
from convert.seq2seq_config import Seq2SeqConfig, sinusoidal_positions
from engine.manifest import KVCacheSpec

Weights = Mapping[str, np.ndarray]
CROSS_KEY = "cross.{layer}.key"
CROSS_VALUE = "cross.{layer}.value"
ENCODER_HIDDEN = "encoder_hidden_states"


def _require(weights: Weights, name: str) -> np.ndarray:
    if name not in weights:
        raise KeyError(f"the weights have no tensor {name!r}")
    return weights[name]


def _first_present(weights: Weights, *names: str) -> np.ndarray:
    for name in names:
        if name in weights:
            return weights[name]
    raise KeyError(f"the weights have none of the tensors {', '.join(map(repr, names))}")


def embedding_matrix(weights: Weights, config: Seq2SeqConfig, stack: str) -> np.ndarray:
    """The (V, D) token embedding of ``stack`` ("encoder" or "decoder").

    Tied checkpoints hold one copy under any of their tied names (safetensors keeps one of them),
    so every name is looked for.
    """
    own = f"model.{stack}.embed_tokens.weight"
    if config.share_embeddings:
        return _first_present(weights, "model.shared.weight", own)
    return _first_present(weights, own, "model.shared.weight")


def output_matrix(weights: Weights, config: Seq2SeqConfig) -> np.ndarray:
    """The (V, D) output projection: the shared embedding when tied, else ``lm_head.weight``."""
    if config.share_embeddings:
        return _first_present(weights, "model.shared.weight", "model.decoder.embed_tokens.weight",
                              "lm_head.weight")
    return _require(weights, "lm_head.weight")


class _Builder:
    """Shared pieces of both graphs: one GraphBuilder, the config, the weights."""

    def __init__(self, weights: Weights, config: Seq2SeqConfig,
                 weight_bits: int | None, accuracy_level: int) -> None:
        config.validate()
        self.w, self.c = weights, config
        self.g = GraphBuilder("float32", weight_bits, accuracy_level=accuracy_level)
        self.blocked = float(np.finfo(np.float32).min) / 2  # additive mask value, can't overflow

    # Small blocks --------------------------------------------------------------------------

    def linear(self, x: str, prefix: str) -> str:
        """x @ W.T + b of a PyTorch Linear named ``prefix`` (weight (out, in), bias (out,))."""
        weight = np.ascontiguousarray(_require(self.w, f"{prefix}.weight").T)
        bias_name = f"{prefix}.bias"
        bias = self.g.weight(bias_name, self.w[bias_name]) if bias_name in self.w else None
        return self.g.linear(x, f"{prefix}.weight", weight, bias)

    def layer_norm(self, x: str, prefix: str) -> str:
        g = self.g
        return g.op("LayerNormalization", x, g.weight(f"{prefix}.weight",
                                                      _require(self.w, f"{prefix}.weight")),
                    g.weight(f"{prefix}.bias", _require(self.w, f"{prefix}.bias")),
                    axis=-1, epsilon=self.c.layer_norm_eps)

    def activation(self, x: str) -> str:
        g, kind = self.g, self.c.activation
        if kind == "relu":
            return g.op("Relu", x)
        if kind == "swish":  # SiLU
            return g.op("Mul", x, g.op("Sigmoid", x))
        # exact (erf) GELU, transformers' "gelu"
        erf = g.op("Erf", g.op("Mul", x, g.const(1.0 / np.sqrt(2.0))))
        return g.op("Mul", g.op("Mul", x, g.const(0.5)), g.op("Add", erf, g.const(1.0)))

    def feed_forward(self, x: str, prefix: str) -> str:
        return self.linear(self.activation(self.linear(x, f"{prefix}.fc1")), f"{prefix}.fc2")

    def heads(self, x: str, prefix: str, num_heads: int) -> str:
        """A projection split into heads: (B, T, D) -> (B, heads, T, head_dim)."""
        y = self.g.op("Reshape", self.linear(x, prefix),
                      self.g.const([0, 0, num_heads, self.c.d_model // num_heads], "int64"))
        return self.g.op("Transpose", y, perm=[0, 2, 1, 3])

    def attend(self, q: str, keys: str, values: str, bias: str, num_heads: int,
               out_prefix: str) -> str:
        """softmax(q k^T / sqrt(d) + bias) v, heads merged, through the output projection."""
        g = self.g
        head_dim = self.c.d_model // num_heads
        scores = g.op("Mul", g.op("MatMul", q, g.op("Transpose", keys, perm=[0, 1, 3, 2])),
                      g.const(head_dim ** -0.5))  # (B, H, T, S)
        probs = g.op("Softmax", g.op("Add", scores, bias), axis=-1)
        context = g.op("Transpose", g.op("MatMul", probs, values), perm=[0, 2, 1, 3])
        context = g.op("Reshape", context, g.const([0, 0, self.c.d_model], "int64"))  # (B, T, D)
        return self.linear(context, out_prefix)

    def padding_bias(self, mask: str) -> str:
        """(B, 1, 1, S) additive bias: 0 for tokens, a large negative value for padding."""
        g = self.g
        allowed = g.op("Unsqueeze", g.op("Cast", mask, to=TensorProto.BOOL),
                       g.const([1, 2], "int64"))
        return g.op("Where", allowed, g.const(0.0), g.const(self.blocked))

    def embed(self, input_ids: str, table: np.ndarray, start: str, stack: str) -> str:
        """Scaled token embeddings plus sinusoidal positions start..start+T-1: (B, T, D).

        ``start`` is a 1-element int64 tensor.
        """
        g, c = self.g, self.c
        x = g.op("Gather", g.weight(f"model.{stack}.embed_tokens.weight", table), input_ids)
        if c.scale_embedding:
            x = g.op("Mul", x, g.const(float(np.sqrt(c.d_model))))
        positions = g.weight(f"model.{stack}.embed_positions.weight",
                             sinusoidal_positions(c.max_position_embeddings, c.d_model))
        # Slice rows start..start+T-1 (a 1-element start tensor). Gather over a Range would do
        # the same, but ONNX Runtime 1.31 rewrites that into a Slice with scalar starts and fails.
        end = g.op("Add", start, g.shape_dim(input_ids, 1))
        rows = g.op("Slice", positions, start, end, g.const([0], "int64"))
        return g.op("Add", x, rows)  # (T, D) broadcasts over B

    def block(self, x: str, prefix: str, norm: str, sublayer: Callable[[str], str]) -> str:
        """One residual sub-block, post-norm (Marian) or pre-norm (with normalize_before)."""
        if self.c.normalize_before:
            return self.g.op("Add", x, sublayer(self.layer_norm(x, f"{prefix}.{norm}")))
        return self.layer_norm(self.g.op("Add", x, sublayer(x)), f"{prefix}.{norm}")


def build_encoder_graph(weights: Weights, config: Seq2SeqConfig, *,
                        weight_bits: int | None = None, accuracy_level: int = 0,
                        ) -> onnx.ModelProto:
    """The encoder graph (see the module docstring for its inputs and outputs).

    Args:
        weights: float arrays with MarianMTModel state_dict names.
        config: the model's hyper-parameters.
        weight_bits: None for float MatMul weights, 8 or 4 for block-quantized MatMulNBits.
        accuracy_level: MatMulNBits compute mode (4: int8 activations, 0: float).
    """
    b = _Builder(weights, config, weight_bits, accuracy_level)
    g, c = b.g, config
    input_ids = g.input("input_ids", TensorProto.INT64, ["batch", "source_length"])
    mask = g.input("attention_mask", TensorProto.INT64, ["batch", "source_length"])
    x = b.embed(input_ids, embedding_matrix(weights, c, "encoder"), g.const([0], "int64"),
                "encoder")
    bias = b.padding_bias(mask)
    heads = c.encoder_attention_heads
    for layer in range(c.encoder_layers):
        p = f"model.encoder.layers.{layer}"

        def self_attention(h: str, p: str = p) -> str:
            return b.attend(b.heads(h, f"{p}.self_attn.q_proj", heads),
                            b.heads(h, f"{p}.self_attn.k_proj", heads),
                            b.heads(h, f"{p}.self_attn.v_proj", heads), bias, heads,
                            f"{p}.self_attn.out_proj")

        x = b.block(x, p, "self_attn_layer_norm", self_attention)
        x = b.block(x, p, "final_layer_norm", lambda h, p=p: b.feed_forward(h, p))
    if c.normalize_before:
        x = b.layer_norm(x, "model.encoder.layer_norm")
    g.output(x, ENCODER_HIDDEN, TensorProto.FLOAT, ["batch", "source_length", c.d_model])
    cross_shape: list[int | str] = ["batch", c.decoder_attention_heads, "source_length",
                                    c.decoder_head_dim]
    for layer in range(c.decoder_layers):
        p = f"model.decoder.layers.{layer}.encoder_attn"
        g.output(b.heads(x, f"{p}.k_proj", c.decoder_attention_heads),
                 CROSS_KEY.format(layer=layer), TensorProto.FLOAT, cross_shape)
        g.output(b.heads(x, f"{p}.v_proj", c.decoder_attention_heads),
                 CROSS_VALUE.format(layer=layer), TensorProto.FLOAT, cross_shape)
    return g.model("nightlamp_encoder")


def self_cache_spec(config: Seq2SeqConfig) -> KVCacheSpec:
    """The decoder self-attention cache as the manifest describes it."""
    return KVCacheSpec(num_layers=config.decoder_layers,
                       num_kv_heads=config.decoder_attention_heads,
                       head_dim=config.decoder_head_dim)


def build_decoder_graph(weights: Weights, config: Seq2SeqConfig, *,
                        weight_bits: int | None = None, accuracy_level: int = 0,
                        ) -> tuple[onnx.ModelProto, KVCacheSpec]:
    """The decoder graph with its self-attention cache spec (see the module docstring).

    Args: as :func:`build_encoder_graph`. The output head stays in float32 (a Gemm that reuses
    the embedding initializer when embeddings are tied).
    """
    b = _Builder(weights, config, weight_bits, accuracy_level)
    g, c = b.g, config
    heads, head_dim = c.decoder_attention_heads, c.decoder_head_dim
    cache = self_cache_spec(c)
    input_ids = g.input("input_ids", TensorProto.INT64, ["batch", "sequence"])
    encoder_mask = g.input("encoder_attention_mask", TensorProto.INT64, ["batch", "source_length"])
    cross_shape: list[int | str] = ["batch", heads, "source_length", head_dim]
    cross = []
    for layer in range(c.decoder_layers):
        cross.append((g.input(CROSS_KEY.format(layer=layer), TensorProto.FLOAT, cross_shape),
                      g.input(CROSS_VALUE.format(layer=layer), TensorProto.FLOAT, cross_shape)))
    past_shape: list[int | str] = ["batch", heads, "past_length", head_dim]
    pasts = []
    for layer in range(c.decoder_layers):
        key, value = cache.past_names(layer)
        pasts.append((g.input(key, TensorProto.FLOAT, past_shape),
                      g.input(value, TensorProto.FLOAT, past_shape)))

    past_length = g.shape_dim(pasts[0][0], 2)  # (1,)
    embedding = embedding_matrix(weights, c, "decoder")
    x = b.embed(input_ids, embedding, past_length, "decoder")
    past_length = g.op("Squeeze", past_length)
    # Causal bias (T, P+T): new token i (absolute position P+i) sees keys 0..P+i.
    total = g.op("Add", past_length, g.op("Squeeze", g.shape_dim(input_ids, 1)))
    one = g.const(1, "int64")
    query_pos = g.op("Unsqueeze", g.op("Range", past_length, total, one), g.const([1], "int64"))
    key_pos = g.op("Unsqueeze", g.op("Range", g.const(0, "int64"), total, one),
                   g.const([0], "int64"))
    causal = g.op("Where", g.op("LessOrEqual", key_pos, query_pos), g.const(0.0),
                  g.const(b.blocked))
    cross_bias = b.padding_bias(encoder_mask)
    present_shape: list[int | str] = ["batch", heads, "total_length", head_dim]
    for layer in range(c.decoder_layers):
        p = f"model.decoder.layers.{layer}"

        def self_attention(h: str, p: str = p, layer: int = layer) -> str:
            keys = g.op("Concat", pasts[layer][0], b.heads(h, f"{p}.self_attn.k_proj", heads),
                        axis=2)
            values = g.op("Concat", pasts[layer][1], b.heads(h, f"{p}.self_attn.v_proj", heads),
                          axis=2)
            present_key, present_value = cache.present_names(layer)
            g.output(keys, present_key, TensorProto.FLOAT, present_shape)
            g.output(values, present_value, TensorProto.FLOAT, present_shape)
            return b.attend(b.heads(h, f"{p}.self_attn.q_proj", heads), keys, values, causal,
                            heads, f"{p}.self_attn.out_proj")

        def cross_attention(h: str, p: str = p, layer: int = layer) -> str:
            return b.attend(b.heads(h, f"{p}.encoder_attn.q_proj", heads), cross[layer][0],
                            cross[layer][1], cross_bias, heads, f"{p}.encoder_attn.out_proj")

        x = b.block(x, p, "self_attn_layer_norm", self_attention)
        x = b.block(x, p, "encoder_attn_layer_norm", cross_attention)
        x = b.block(x, p, "final_layer_norm", lambda h, p=p: b.feed_forward(h, p))
    if c.normalize_before:
        x = b.layer_norm(x, "model.decoder.layer_norm")

    flat = g.op("Reshape", x, g.const([-1, c.d_model], "int64"))
    head = output_matrix(weights, c)
    head_name = ("model.decoder.embed_tokens.weight"
                 if head is embedding else g.weight("lm_head.weight", head))
    gemm_inputs = [flat, head_name]
    if c.final_logits_bias and "final_logits_bias" in weights:
        gemm_inputs.append(g.weight("final_logits_bias",
                                    weights["final_logits_bias"].reshape(-1)))
    logits = g.op("Gemm", *gemm_inputs, transB=1)  # (B*T, V)
    out_shape = g.op("Concat", g.op("Shape", input_ids), g.const([c.vocab_size], "int64"), axis=0)
    g.output(g.op("Reshape", logits, out_shape), "logits", TensorProto.FLOAT,
             ["batch", "sequence", c.vocab_size])
    g.outputs.insert(0, g.outputs.pop())  # logits first, then the presents in layer order
    return g.model("nightlamp_seq2seq_decoder"), cache


def parameter_count(weights: Weights, config: Seq2SeqConfig) -> int:
    """Distinct parameters: tied copies and the fixed position tables are not counted."""
    seen: set[int] = set()
    total = 0
    for name, array in weights.items():
        if "embed_positions" in name or name == "final_logits_bias":
            continue
        if config.share_embeddings and name in ("lm_head.weight",
                                                "model.encoder.embed_tokens.weight",
                                                "model.decoder.embed_tokens.weight") \
                and "model.shared.weight" in weights:
            continue
        if id(array) not in seen:
            seen.add(id(array))
            total += int(array.size)
    return total
