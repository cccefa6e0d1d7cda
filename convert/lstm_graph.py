"""Builds the ONNX graph of the LSTM language model from its PyTorch weights.

Inputs: ``input_ids`` (B, S), ``state_h`` and ``state_c`` (L, B, H). Outputs: ``logits``
(B, S, V) and the new states ``state_h_out`` / ``state_c_out``. The engine feeds the states back
each step, so the whole context is carried in 2*L*H numbers instead of a growing cache.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto

from convert.onnx_graph import GraphBuilder
from engine.manifest import RecurrentStateSpec


@dataclass(frozen=True)
class LSTMShape:
    vocab_size: int
    embed_size: int
    hidden_size: int
    num_layers: int


def _onnx_gate_order(matrix: np.ndarray, hidden: int) -> np.ndarray:
    # PyTorch stacks the gates as (input, forget, cell, output); ONNX wants (input, output,
    # forget, cell).
    i, f, c, o = (matrix[k * hidden:(k + 1) * hidden] for k in range(4))
    return np.concatenate([i, o, f, c], axis=0)


def build_lstm_graph(weights: dict[str, np.ndarray], shape: LSTMShape,
                     weight_bits: int | None = None,
                     ) -> tuple[onnx.ModelProto, tuple[RecurrentStateSpec, ...]]:
    """Builds the LSTM LM graph from PyTorch-named weights (``embed.weight``,
    ``lstm.weight_ih_l{n}``, ``lstm.weight_hh_l{n}``, ``lstm.bias_ih_l{n}``, ``lstm.bias_hh_l{n}``,
    ``proj.weight``, ``proj.bias``)."""
    # Only the output projection can be quantized: ONNX's LSTM op takes float weights.
    g = GraphBuilder("float32", weight_bits)
    hidden, layers = shape.hidden_size, shape.num_layers
    states = (
        RecurrentStateSpec("state_h", "state_h_out", layers, hidden),
        RecurrentStateSpec("state_c", "state_c_out", layers, hidden),
    )
    input_ids = g.input("input_ids", TensorProto.INT64, ["batch", "sequence"])
    state_shape: list[int | str] = [layers, "batch", hidden]
    state_h = g.input("state_h", TensorProto.FLOAT, state_shape)
    state_c = g.input("state_c", TensorProto.FLOAT, state_shape)

    x = g.op("Gather", g.weight("embed.weight", weights["embed.weight"]), input_ids)  # (B, S, E)
    x = g.op("Transpose", x, perm=[1, 0, 2])  # (S, B, E): the ONNX LSTM's default layout
    final_h, final_c = [], []
    for layer in range(layers):
        w = _onnx_gate_order(weights[f"lstm.weight_ih_l{layer}"], hidden)[None]
        r = _onnx_gate_order(weights[f"lstm.weight_hh_l{layer}"], hidden)[None]
        b = np.concatenate([_onnx_gate_order(weights[f"lstm.bias_ih_l{layer}"], hidden),
                            _onnx_gate_order(weights[f"lstm.bias_hh_l{layer}"], hidden)])[None]
        start, end = g.const([layer], "int64"), g.const([layer + 1], "int64")
        h0 = g.op("Slice", state_h, start, end)  # (1, B, H)
        c0 = g.op("Slice", state_c, start, end)
        y, y_h, y_c = g.op_multi(
            "LSTM", x, g.weight(f"lstm.W{layer}", w), g.weight(f"lstm.R{layer}", r),
            g.weight(f"lstm.B{layer}", b), "", h0, c0, outputs=3, hidden_size=hidden,
        )
        x = g.op("Squeeze", y, g.const([1], "int64"))  # (S, B, H)
        final_h.append(y_h)
        final_c.append(y_c)
    x = g.op("Transpose", x, perm=[1, 0, 2])  # (B, S, H)
    logits = g.linear(x, "proj.weight", np.ascontiguousarray(weights["proj.weight"].T),
                      g.weight("proj.bias", weights["proj.bias"]))
    g.output(logits, "logits", TensorProto.FLOAT, ["batch", "sequence", shape.vocab_size])
    for spec, parts in ((states[0], final_h), (states[1], final_c)):
        merged = g.op("Concat", *parts, axis=0) if len(parts) > 1 else parts[0]
        g.output(merged, spec.output, TensorProto.FLOAT, state_shape)
    return g.model("nightlamp_lstm"), states
