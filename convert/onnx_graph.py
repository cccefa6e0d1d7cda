"""A small helper for building ONNX graphs node by node from numpy weights.

Exporters and importers build decoder graphs directly from weights (as onnxruntime-genai's model
builder does) instead of tracing PyTorch: the graph is the same whatever produced the weights
(our trainer, a GGUF file, a Hugging Face folder), and its cache inputs are named the way the engine
expects.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from convert.quantize import PackedWeight, quantize_blockwise

# onnxruntime 1.2x loads IR <= 10..13 depending on the build; IR 10 with opset 21 loads on all of
# them (onnx >= 1.23 writes IR 14 by default, which onnxruntime-gpu 1.31 refuses).
IR_VERSION = 10
OPSET = 21
# Above this size the weights go to an external data file: ONNX Runtime then reads them without
# first holding the whole protobuf in memory (the default model's peak memory at load drops by a
# fifth), and protobuf could not hold more than 2 GB anyway. Small models stay one file.
EXTERNAL_DATA_THRESHOLD = 64_000_000

ONNX_DTYPES = {"float32": TensorProto.FLOAT, "float16": TensorProto.FLOAT16}


class GraphBuilder:
    """Collects nodes, initializers and graph inputs/outputs, with generated unique names."""

    def __init__(self, dtype: str = "float32", weight_bits: int | None = None,
                 block_size: int = 32, accuracy_level: int = 0) -> None:
        self.dtype = dtype
        self.weight_bits = weight_bits  # None: float MatMul weights; 8 or 4: MatMulNBits
        self.block_size = block_size
        # MatMulNBits' accuracy_level: 4 computes with int8 activations quantized per block (as
        # llama.cpp does with Q8 activations), 3x (4-bit) to 100x (8-bit) faster on CPU than
        # 0, float activations, which exact-weight checks use.
        self.accuracy_level = accuracy_level
        self.np_dtype = np.dtype(dtype)
        self.onnx_dtype = ONNX_DTYPES[dtype]
        self.nodes: list[onnx.NodeProto] = []
        # Initializers go straight into the model that `model()` returns: with the upb protobuf
        # runtime, a message added to another (make_graph, make_model) joins its memory arena,
        # so building a list and then the graph held the weights three times until the model
        # was freed (540 MB for SmolLM2-135M's 180 MB).
        self._model = onnx.ModelProto()
        self.inputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[onnx.ValueInfoProto] = []
        self._counter = 0
        self._constants: dict[tuple[str, bytes, tuple[int, ...]], str] = {}

    def unique(self, hint: str) -> str:
        self._counter += 1
        return f"{hint}_{self._counter}"

    def weight(self, name: str, array: np.ndarray, *, keep_dtype: bool = False) -> str:
        """Adds a named initializer, cast to the graph's float type unless keep_dtype."""
        if not keep_dtype and np.issubdtype(array.dtype, np.floating):
            array = array.astype(self.np_dtype)
        self._model.graph.initializer.add().CopyFrom(
            numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def const(self, value: object, dtype: str | None = None) -> str:
        """A small constant initializer; identical constants are shared."""
        array = np.asarray(value, dtype=dtype or self.np_dtype)
        key = (str(array.dtype), array.tobytes(), array.shape)
        if key not in self._constants:
            self._constants[key] = self.weight(self.unique("const"), array, keep_dtype=True)
        return self._constants[key]

    def op(self, op_type: str, *inputs: str, outputs: int = 1, name: str | None = None,
           domain: str = "", **attrs: object) -> str:
        """Adds a node and returns its (first) output name; use `op_multi` for several outputs."""
        return self.op_multi(op_type, *inputs, outputs=outputs, name=name, domain=domain,
                             **attrs)[0]

    def op_multi(self, op_type: str, *inputs: str, outputs: int = 1, name: str | None = None,
                 domain: str = "", **attrs: object) -> list[str]:
        base = name or self.unique(op_type.lower())
        names = [base] if outputs == 1 else [f"{base}_out{i}" for i in range(outputs)]
        self.nodes.append(
            helper.make_node(op_type, list(inputs), names, name=f"{base}_node",
                             domain=domain or None, **attrs)
        )
        return names

    def input(self, name: str, elem_type: int, shape: list[int | str]) -> str:
        self.inputs.append(helper.make_tensor_value_info(name, elem_type, shape))
        return name

    def output(self, source: str, name: str, elem_type: int, shape: list[int | str]) -> None:
        """Declares a graph output, renaming the producing value via Identity."""
        self.op("Identity", source, name=name)
        self.outputs.append(helper.make_tensor_value_info(name, elem_type, shape))

    def model(self, graph_name: str) -> onnx.ModelProto:
        """The finished model (what ``helper.make_model(helper.make_graph(...))`` would give,
        without copying the weights); call it once, when the graph is complete."""
        model = self._model
        if model.graph.name:
            raise RuntimeError("GraphBuilder.model() was already called")
        graph = model.graph
        graph.node.extend(self.nodes)
        graph.name = graph_name
        graph.input.extend(self.inputs)
        graph.output.extend(self.outputs)
        model.ir_version = IR_VERSION
        model.opset_import.extend([helper.make_opsetid("", OPSET),
                                   helper.make_opsetid("com.microsoft", 1)])
        model.producer_name = "nightlamp"
        return model

    # Common blocks -------------------------------------------------------------------------

    def linear(self, x: str, name: str, weight: np.ndarray | PackedWeight,
               bias: str | None = None) -> str:
        """x @ weight + bias.

        ``weight`` is a float (in, out) array, quantized here when ``weight_bits`` is set, or an
        already packed block-quantized weight (e.g. repacked losslessly from a GGUF file).
        """
        if isinstance(weight, np.ndarray) and self.weight_bits is None:
            y = self.op("MatMul", x, self.weight(name, weight))
        else:
            packed = weight if isinstance(weight, PackedWeight) else quantize_blockwise(
                weight.astype(np.float32), self.weight_bits or 8, self.block_size)
            y = self._matmul_nbits(x, name, packed)
        return self.op("Add", y, bias) if bias else y

    def _matmul_nbits(self, x: str, name: str, packed: PackedWeight) -> str:
        inputs = [x, self.weight(f"{name}.q", packed.data),
                  self.weight(f"{name}.scales", packed.scales)]
        zero_points = packed.packed_zero_points()
        if zero_points is not None:
            inputs.append(self.weight(f"{name}.zero_points", zero_points))
        return self.op("MatMulNBits", *inputs, domain="com.microsoft", K=packed.in_features,
                       N=packed.out_features, bits=packed.bits, block_size=packed.block_size,
                       accuracy_level=self.accuracy_level)

    def rms_norm(self, x: str, weight: str, eps: float) -> str:
        # Same formula as the PyTorch reference: x * rsqrt(mean(x^2) + eps) * weight.
        mean_square = self.op("ReduceMean", self.op("Mul", x, x), self.const([-1], "int64"),
                              keepdims=1)
        inverse_rms = self.op("Reciprocal", self.op("Sqrt", self.op("Add", mean_square,
                                                                     self.const(eps))))
        return self.op("Mul", self.op("Mul", x, inverse_rms), weight)

    def shape_dim(self, x: str, axis: int) -> str:
        """The size of one axis of x as a 1-element int64 tensor."""
        return self.op("Shape", x, start=axis, end=axis + 1)


def _larger_than(model: onnx.ModelProto, limit: int) -> bool:
    """``model.ByteSize() > limit``, without measuring a model whose weights alone are larger:
    the upb runtime's ByteSize serializes the whole message, a second copy of every weight (and
    twice that while its buffer grows)."""
    weights = 0
    for tensor in model.graph.initializer:
        weights += len(tensor.raw_data)
        if weights > limit:
            return True
    return model.ByteSize() > limit


def save_model(model: onnx.ModelProto, path: Path) -> None:
    """Saves a model, moving the weights of a large one to ``<name>.data`` beside it."""
    if _larger_than(model, EXTERNAL_DATA_THRESHOLD):
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=f"{path.name}.data", size_threshold=1024)
    else:
        onnx.save_model(model, str(path))
