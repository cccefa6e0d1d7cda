"""The ONNX graph of a BERT-style text encoder that returns one sentence embedding per input.

What the document search embeds passages and questions with (all-MiniLM-L6-v2 and its family):
token, position and segment embeddings, then post-norm layers (attention, residual,
LayerNorm; GELU MLP, residual, LayerNorm), then the sentence-transformers head in the graph
itself: the mean of the token vectors that the attention mask keeps, scaled to unit length. So
the engine gets ready-to-compare vectors and a dot product is the cosine.

Inputs ``input_ids`` and ``attention_mask`` (batch, tokens), int64; output ``embedding``
(batch, dimension), float32. Attention runs through ONNX Runtime's fused MultiHeadAttention with
the padding mask, so a batch of ragged passages costs no more than its longest one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto

from convert.onnx_graph import GraphBuilder

Weights = dict[str, np.ndarray]  # Hugging Face BertModel names, without a "bert." prefix
EMBEDDING_OUTPUT = "embedding"
# LayerNorm's and the unit scaling's floor: sentence-transformers' Normalize uses 1e-12 too.
NORM_FLOOR = 1e-12


@dataclass(frozen=True)
class EncoderShape:
    """The sizes of a BERT encoder (``config.json``'s names in the comments)."""

    vocab_size: int  # vocab_size
    hidden_size: int  # hidden_size
    num_layers: int  # num_hidden_layers
    num_heads: int  # num_attention_heads
    intermediate_size: int  # intermediate_size
    max_positions: int  # max_position_embeddings
    type_vocab_size: int = 2  # type_vocab_size (segment embeddings; passages use segment 0)
    layer_norm_eps: float = 1e-12  # layer_norm_eps

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads


def expected_shapes(shape: EncoderShape) -> dict[str, tuple[int, ...]]:
    """Every tensor the graph reads, with its shape in the checkpoint (Linear: (out, in))."""
    h, i = shape.hidden_size, shape.intermediate_size
    shapes: dict[str, tuple[int, ...]] = {
        "embeddings.word_embeddings.weight": (shape.vocab_size, h),
        "embeddings.position_embeddings.weight": (shape.max_positions, h),
        "embeddings.token_type_embeddings.weight": (shape.type_vocab_size, h),
        "embeddings.LayerNorm.weight": (h,), "embeddings.LayerNorm.bias": (h,),
    }
    for layer in range(shape.num_layers):
        p = f"encoder.layer.{layer}."
        for part in ("attention.self.query", "attention.self.key", "attention.self.value",
                     "attention.output.dense"):
            shapes[f"{p}{part}.weight"], shapes[f"{p}{part}.bias"] = (h, h), (h,)
        shapes[f"{p}intermediate.dense.weight"] = (i, h)
        shapes[f"{p}intermediate.dense.bias"] = (i,)
        shapes[f"{p}output.dense.weight"], shapes[f"{p}output.dense.bias"] = (h, i), (h,)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            shapes[f"{p}{norm}.weight"], shapes[f"{p}{norm}.bias"] = (h,), (h,)
    return shapes


class _Encoder:
    """Builds the graph from the weights (one instance per graph)."""

    def __init__(self, weights: Weights, shape: EncoderShape, weight_bits: int | None) -> None:
        self.w, self.shape = weights, shape
        # accuracy_level 4: int8 activations. Indexing a collection is one long prefill, and
        # float activations against 8-bit weights ran at 5,400-6,400 tokens/s on 2 cores,
        # int8 ones at 8,000-8,300 (fp32 weights: 4,300-6,000), at cosine 0.999+ to float.
        self.g = GraphBuilder("float32", weight_bits, block_size=32,
                              accuracy_level=4 if weight_bits else 0)

    def linear(self, x: str, name: str) -> str:
        bias = self.g.weight(f"{name}.bias", self.w[f"{name}.bias"])
        return self.g.linear(x, name, self.w[f"{name}.weight"].T, bias)

    def layer_norm(self, x: str, name: str) -> str:
        g = self.g
        return g.op("LayerNormalization", x, g.weight(f"{name}.weight", self.w[f"{name}.weight"]),
                    g.weight(f"{name}.bias", self.w[f"{name}.bias"]), axis=-1,
                    epsilon=self.shape.layer_norm_eps)

    def embed(self, input_ids: str) -> str:
        g, w = self.g, self.w
        words = g.op("Gather", g.weight("word_embeddings", w["embeddings.word_embeddings.weight"]),
                     input_ids)
        # Positions 0..T-1 of every row (BERT counts padding positions too: rows are left-
        # aligned, so a passage's own tokens get the same positions alone or in a batch).
        tokens = g.shape_dim(input_ids, 1)
        positions = g.op("Slice", g.weight("position_embeddings",
                                           w["embeddings.position_embeddings.weight"]),
                         g.const([0], "int64"), tokens, g.const([0], "int64"))
        # Segment 0 for every token: one row, added to all.
        segment = w["embeddings.token_type_embeddings.weight"][0]
        summed = g.op("Add", g.op("Add", words, positions), g.weight("segment_0", segment))
        return self.layer_norm(summed, "embeddings.LayerNorm")

    def layer(self, x: str, layer: int, keep: str) -> str:
        g, p = self.g, f"encoder.layer.{layer}."
        q, k, v = (self.linear(x, f"{p}attention.self.{part}")
                   for part in ("query", "key", "value"))
        attended = g.op("MultiHeadAttention", q, k, v, "", keep, domain="com.microsoft",
                        num_heads=self.shape.num_heads)
        x = self.layer_norm(g.op("Add", self.linear(attended, f"{p}attention.output.dense"), x),
                            f"{p}attention.output.LayerNorm")
        hidden = g.op("Gelu", self.linear(x, f"{p}intermediate.dense"), approximate="none")
        return self.layer_norm(g.op("Add", self.linear(hidden, f"{p}output.dense"), x),
                               f"{p}output.LayerNorm")

    def mean_pool_unit(self, x: str, attention_mask: str) -> str:
        """The mean of the kept tokens' vectors (B, T, C) -> (B, C), scaled to unit length."""
        g = self.g
        mask = g.op("Unsqueeze", g.op("Cast", attention_mask, to=TensorProto.FLOAT),
                    g.const([-1], "int64"))  # (B, T, 1)
        summed = g.op("ReduceSum", g.op("Mul", x, mask), g.const([1], "int64"), keepdims=0)
        count = g.op("Max", g.op("ReduceSum", mask, g.const([1], "int64"), keepdims=0),
                     g.const(1e-9))
        mean = g.op("Div", summed, count)
        length = g.op("Sqrt", g.op("ReduceSum", g.op("Mul", mean, mean),
                                   g.const([-1], "int64"), keepdims=1))
        return g.op("Div", mean, g.op("Max", length, g.const(NORM_FLOOR)))

    def build(self) -> onnx.ModelProto:
        g = self.g
        input_ids = g.input("input_ids", TensorProto.INT64, ["batch", "tokens"])
        attention_mask = g.input("attention_mask", TensorProto.INT64, ["batch", "tokens"])
        keep = g.op("Cast", attention_mask, to=TensorProto.INT32)  # MultiHeadAttention's type
        x = self.embed(input_ids)
        for layer in range(self.shape.num_layers):
            x = self.layer(x, layer, keep)
        g.output(self.mean_pool_unit(x, attention_mask), EMBEDDING_OUTPUT, TensorProto.FLOAT,
                 ["batch", self.shape.hidden_size])
        return g.model("nightlamp-encoder")


def build_encoder_graph(weights: Weights, shape: EncoderShape,
                        weight_bits: int | None = None) -> onnx.ModelProto:
    """The sentence-embedding graph (module docstring); ``weight_bits`` 8 or 4 stores the
    layers' matrices block-quantized (MatMulNBits), None keeps them float32."""
    return _Encoder(weights, shape, weight_bits).build()
