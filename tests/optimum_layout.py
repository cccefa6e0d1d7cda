"""Optimum-layout ONNX files for a tiny Marian model, made from our own graphs (no Optimum).

Optimum's export of a Marian model is ``encoder_model.onnx`` (-> ``last_hidden_state``),
``decoder_model.onnx`` (``input_ids``, ``encoder_attention_mask``, ``encoder_hidden_states`` ->
``logits``, ``present.{L}.decoder.key/value``, ``present.{L}.encoder.key/value``) and
``decoder_with_past_model.onnx`` (``input_ids``, ``encoder_attention_mask``,
``past_key_values.{L}.decoder/encoder.key/value`` -> ``logits``, ``present.{L}.decoder.*``), or one
``decoder_model_merged.onnx`` choosing between the two with an ``If`` on ``use_cache_branch``.
These files have exactly those inputs and outputs; inside they are our graphs with renamed
edges, plus a small cross-projection graph for the decoder without past.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from convert.onnx_graph import GraphBuilder, save_model
from convert.seq2seq_config import Seq2SeqConfig
from convert.seq2seq_graph import build_decoder_graph, build_encoder_graph


def _rename(graph: onnx.GraphProto, mapping: Mapping[str, str]) -> None:
    for node in graph.node:
        node.input[:] = [mapping.get(n, n) for n in node.input]
        node.output[:] = [mapping.get(n, n) for n in node.output]
    for value in [*graph.input, *graph.output, *graph.value_info]:
        value.name = mapping.get(value.name, value.name)
    for tensor in graph.initializer:
        tensor.name = mapping.get(tensor.name, tensor.name)


def _prefix_internal(graph: onnx.GraphProto, prefix: str, keep: set[str]) -> None:
    """Prefixes every node, edge and initializer name except those in ``keep``."""
    names = {o for node in graph.node for o in node.output} | {t.name for t in graph.initializer}
    _rename(graph, {n: prefix + n for n in names if n not in keep})
    for node in graph.node:
        node.name = prefix + node.name


def _optimum_names(layers: int) -> dict[str, str]:
    mapping = {}
    for layer in range(layers):
        for kind in ("key", "value"):
            mapping[f"cross.{layer}.{kind}"] = f"past_key_values.{layer}.encoder.{kind}"
            mapping[f"past_key_values.{layer}.{kind}"] = f"past_key_values.{layer}.decoder.{kind}"
            mapping[f"present.{layer}.{kind}"] = f"present.{layer}.decoder.{kind}"
    return mapping


def _projector(weights: Mapping[str, np.ndarray], config: Seq2SeqConfig) -> onnx.GraphProto:
    """encoder_hidden_states -> every layer's cross K/V (as past_key_values.L.encoder.* edges and
    present.L.encoder.* outputs) and empty self-attention pasts."""
    g = GraphBuilder()
    heads, head_dim = config.decoder_attention_heads, config.decoder_head_dim
    hidden = g.input("encoder_hidden_states", TensorProto.FLOAT,
                     ["batch", "source_length", config.d_model])
    empty_shape = g.op("Concat", g.shape_dim(hidden, 0),
                       g.const([heads, 0, head_dim], "int64"), axis=0)
    for layer in range(config.decoder_layers):
        p = f"model.decoder.layers.{layer}.encoder_attn"
        for kind in ("key", "value"):
            proj = f"{p}.{kind[0]}_proj"
            y = g.linear(hidden, f"{proj}.weight",
                         np.ascontiguousarray(weights[f"{proj}.weight"].T),
                         g.weight(f"{proj}.bias", weights[f"{proj}.bias"]))
            y = g.op("Reshape", y, g.const([0, 0, heads, head_dim], "int64"))
            g.op("Transpose", y, perm=[0, 2, 1, 3], name=f"past_key_values.{layer}.encoder.{kind}")
            g.output(f"past_key_values.{layer}.encoder.{kind}", f"present.{layer}.encoder.{kind}",
                     TensorProto.FLOAT, ["batch", heads, "source_length", head_dim])
            g.op("ConstantOfShape", empty_shape, name=f"past_key_values.{layer}.decoder.{kind}",
                 value=helper.make_tensor("zero", TensorProto.FLOAT, [1], [0.0]))
    return g.model("projector").graph


def _decoder_without_past(with_past: onnx.ModelProto, weights: Mapping[str, np.ndarray],
                          config: Seq2SeqConfig) -> onnx.ModelProto:
    outer = {i.name for i in with_past.graph.input} | {o.name for o in with_past.graph.output}
    decoder = onnx.ModelProto()
    decoder.CopyFrom(with_past)
    graph = decoder.graph
    _prefix_internal(graph, "d_", outer)
    projector = _projector(weights, config)
    _prefix_internal(projector, "p_", {o.name for o in projector.output}
                     | {n for n in outer if n.startswith("past_key_values.")})
    nodes = [*projector.node, *graph.node]  # topological order: the projections come first
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend(projector.initializer)
    kept = [i for i in graph.input if not i.name.startswith("past_key_values.")]
    del graph.input[:]
    graph.input.extend([*kept, *projector.input])
    graph.output.extend(projector.output)
    return decoder


def _merged(with_past: onnx.ModelProto, without: onnx.ModelProto,
            config: Seq2SeqConfig) -> onnx.ModelProto:
    outputs = [o.name for o in without.graph.output]
    branches = []
    for prefix, model in (("t_", with_past), ("e_", without)):
        graph = onnx.GraphProto()
        graph.CopyFrom(model.graph)
        inputs = {i.name for i in graph.input}
        _prefix_internal(graph, prefix, inputs)
        if prefix == "t_":  # the cache branch passes the cross K/V through
            for name in outputs:
                if ".encoder." in name:
                    graph.node.append(helper.make_node(
                        "Identity", ["past_key_values." + name[len("present."):]], [name]))
                    graph.output.append(helper.make_tensor_value_info(
                        name, TensorProto.FLOAT, None))
        _rename(graph, {name: prefix + name for name in outputs})
        del graph.input[:]
        order = {prefix + name: i for i, name in enumerate(outputs)}
        ordered = sorted(graph.output, key=lambda o: order[o.name])
        del graph.output[:]
        graph.output.extend(ordered)
        branches.append(graph)
    heads, head_dim = config.decoder_attention_heads, config.decoder_head_dim
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
              helper.make_tensor_value_info("encoder_attention_mask", TensorProto.INT64,
                                            ["batch", "source_length"]),
              helper.make_tensor_value_info("encoder_hidden_states", TensorProto.FLOAT,
                                            ["batch", "source_length", config.d_model]),
              helper.make_tensor_value_info("use_cache_branch", TensorProto.BOOL, [1])]
    for layer in range(config.decoder_layers):
        for side in ("decoder", "encoder"):
            for kind in ("key", "value"):
                inputs.append(helper.make_tensor_value_info(
                    f"past_key_values.{layer}.{side}.{kind}", TensorProto.FLOAT,
                    ["batch", heads, f"{side}_length", head_dim]))
    node = helper.make_node("If", ["use_cache_branch"], outputs, then_branch=branches[0],
                            else_branch=branches[1])
    graph = helper.make_graph([node], "merged", inputs, [
        helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", "d1", "d2", "d3"][
            :3 if name == "logits" else 4]) for name in outputs])
    model = helper.make_model(graph, opset_imports=list(with_past.opset_import))
    model.ir_version = with_past.ir_version
    return model


def write_optimum_folder(checkpoint: Path, out: Path, weights: Mapping[str, np.ndarray],
                         config: Seq2SeqConfig, merged: bool = False) -> Path:
    """An Optimum-layout folder beside a Marian checkpoint folder (configs and tokenizer files
    copied, no safetensors)."""
    out.mkdir(parents=True)
    for name in ("config.json", "source.spm", "target.spm", "vocab.json",
                 "tokenizer_config.json", "generation_config.json"):
        if (checkpoint / name).is_file():
            shutil.copyfile(checkpoint / name, out / name)
    encoder = build_encoder_graph(weights, config)
    _rename(encoder.graph, {"encoder_hidden_states": "last_hidden_state"})
    kept = [o for o in encoder.graph.output if o.name == "last_hidden_state"]
    del encoder.graph.output[:]
    encoder.graph.output.extend(kept)
    save_model(encoder, out / "encoder_model.onnx")
    with_past, _ = build_decoder_graph(weights, config)
    _rename(with_past.graph, _optimum_names(config.decoder_layers))
    without = _decoder_without_past(with_past, weights, config)
    if merged:
        save_model(_merged(with_past, without, config), out / "decoder_model_merged.onnx")
    else:
        save_model(without, out / "decoder_model.onnx")
        save_model(with_past, out / "decoder_with_past_model.onnx")
    return out
