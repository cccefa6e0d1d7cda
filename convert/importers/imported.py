"""What every importer produces, and how it becomes a model folder.

An importer (GGUF, Hugging Face) fills an ``ImportedModel``: Llama-layout weights (float arrays or
already packed blocks), the decoder shape, a tokenizer and the chat metadata. ``write_model_folder``
builds the ONNX graph for the chosen precision and writes the folder atomically.
"""

from __future__ import annotations

import json
import logging
import math
from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from convert.decoder_graph import MAX_POSITIONS, DecoderShape, build_decoder_graph
from convert.onnx_graph import save_model
from convert.quantize import PackedWeight
from engine.atomic import atomic_folder
from engine.callbacks import Progress, no_progress
from engine.chat_template import UnsafeTemplateError, render_chat
from engine.errors import ConfigError, ModelFormatError
from engine.manifest import Manifest, write_manifest

PRECISIONS = ("int4", "int8", "fp16", "fp32")
MODEL_FILE = "model.onnx"
IMPORT_REPORT = "import_report.json"
# graph float type and MatMul weight bits for each precision
_GRAPH_SETTINGS: dict[str, tuple[str, int | None]] = {
    "fp32": ("float32", None), "fp16": ("float16", None), "int8": ("float32", 8),
    "int4": ("float32", 4),
}

logger = logging.getLogger(__name__)


def weight_bits(precision: str) -> int | None:
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; choose one of: "
                          f"{', '.join(PRECISIONS)}")
    return _GRAPH_SETTINGS[precision][1]


class LazyWeights(Mapping[str, "np.ndarray | PackedWeight"]):
    """Weights that are read from their file on each lookup and not kept (a GGUF file's:
    decoded to float32 all at once they would take several times the file's size)."""

    @abstractmethod
    def shape(self, name: str) -> tuple[int, ...]:
        """A weight's shape, (out, in) for a matrix, without reading it."""

    def float_rows(self, name: str, rows: list[int]) -> np.ndarray:
        """``self[name][rows]`` of a float matrix; subclasses read only those rows."""
        return np.asarray(self[name])[rows]

    def row_range(self, name: str, start: int, stop: int) -> np.ndarray | PackedWeight:
        """Output rows start:stop of a matrix; subclasses read only those rows."""
        return _sliced(self[name], start, stop)

    def close(self) -> None:
        """Lets go of the file; the weights can't be read after this."""


Weights = Mapping[str, "np.ndarray | PackedWeight"]


def _sliced(weight: np.ndarray | PackedWeight, start: int, stop: int) -> np.ndarray | PackedWeight:
    return weight.rows(start, stop) if isinstance(weight, PackedWeight) else weight[start:stop]


def weight_shape(weights: Weights, name: str) -> tuple[int, ...]:
    """A weight's shape, (out, in) for a matrix (a lazy one is not read)."""
    if isinstance(weights, LazyWeights):
        return weights.shape(name)
    weight = weights[name]
    if isinstance(weight, PackedWeight):
        return (weight.out_features, weight.in_features)
    return tuple(weight.shape)


def row_range(weights: Weights, name: str, start: int, stop: int) -> np.ndarray | PackedWeight:
    """Output rows start:stop of a matrix (a lazy one reads only those)."""
    if isinstance(weights, LazyWeights):
        return weights.row_range(name, start, stop)
    return _sliced(weights[name], start, stop)


def embedding_rows(weights: Weights, ids: list[int]) -> np.ndarray:
    """The embedding table's rows for ``ids`` (a lazy table reads only those)."""
    if isinstance(weights, LazyWeights):
        return weights.float_rows("embed_tokens.weight", ids)
    return np.asarray(weights["embed_tokens.weight"])[ids]


@dataclass
class ImportedModel:
    """A checkpoint read into memory, ready to be written as a model folder."""

    name: str  # suggested store name
    shape: DecoderShape
    # Llama names without the 'model.' prefix; a LazyWeights reads each one when asked for.
    weights: Weights
    tokenizer: Tokenizer
    context_length: int
    chat_template: str | None
    bos_token: str | None
    eos_token: str | None
    pad_token: str | None
    stop_tokens: list[str]
    license: str
    source: dict[str, Any]
    # tensor handling: {"repacked": [...], "requantized": [...], "dequantized": [...]}
    tensor_report: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # The context sizes the rotary tables (and the memory the engine reserves for the
        # cache), so a file's value is bounded here, before anything is built from it: a longer
        # declared context is capped at MAX_POSITIONS, and the manifest's source keeps the
        # declared one.
        context = self.context_length
        if isinstance(context, bool) or not isinstance(context, int) or context <= 0:
            raise ModelFormatError(f"{self.source.get('file') or self.source.get('folder')}: "
                                   f"context length {context!r} is not a positive integer; "
                                   "the file is damaged")
        if context > MAX_POSITIONS:
            logger.warning("%s declares a context of %d tokens; importing it with %d",
                           self.name, context, MAX_POSITIONS)
            self.source = {**self.source, "declared_context_length": context}
            self.context_length = MAX_POSITIONS

    def close(self) -> None:
        """Closes the file lazy weights read from (it stays open until then, or until the
        model is collected; Windows can't delete an open file)."""
        if isinstance(self.weights, LazyWeights):
            self.weights.close()

    def parameter_count(self) -> int:
        total = 0
        for name in self.weights:
            if name == "lm_head.weight" and self.shape.tie_embeddings:
                continue  # a quantized copy of the tied embedding, not more parameters
            total += math.prod(weight_shape(self.weights, name))
        return total


def check_chat_template(template: str | None, source: str, bos_token: str = "",
                        eos_token: str = "") -> None:
    """Refuses a chat template that is unsafe whatever the conversation: one that tries to
    escape the sandbox (CVE-2024-34359 style) or goes past a resource limit (time, size).

    The template is rendered once with a plain conversation; templates that fail for other
    reasons (e.g. ``raise_exception`` on a role they don't support) are left to fail at use.
    """
    if not template:
        return
    messages = [{"role": "system", "content": "You are helpful."},
                {"role": "user", "content": "Hello"}]
    try:
        render_chat(template, messages, bos_token=bos_token, eos_token=eos_token, source=source)
    except UnsafeTemplateError as error:
        raise ModelFormatError(f"{error}; the model was not imported") from None
    except ConfigError:
        pass


def write_model_folder(model: ImportedModel, out: Path, precision: str, *,
                       overwrite: bool = False, progress: Progress = no_progress,
                       int8_activations: bool = True) -> Path:
    """Builds the graph for ``precision`` and writes the whole folder atomically.

    ``int8_activations`` lets quantized layers compute with int8-quantized activations, as
    llama.cpp does: 3x (4-bit) to 100x (8-bit) faster on CPUs; turn it off for exact-weight
    comparisons.
    """
    weight_bits(precision)  # validates the name
    check_chat_template(model.chat_template, str(model.source.get("file") or model.name),
                        model.bos_token or "", model.eos_token or "")
    dtype, bits = _GRAPH_SETTINGS[precision]
    progress("building graph", 0, 1)
    graph, cache = build_decoder_graph(model.weights, model.shape, dtype=dtype, weight_bits=bits,
                                       accuracy_level=4 if int8_activations else 0,
                                       max_positions=model.context_length)
    progress("building graph", 1, 1)
    with atomic_folder(out, overwrite=overwrite) as folder:
        progress("writing", 0, 1)
        save_model(graph, folder / MODEL_FILE)
        model.tokenizer.save(str(folder / "tokenizer.json"))
        manifest = Manifest(
            name=out.name,
            architecture="decoder-transformer",
            decoder_file=MODEL_FILE,
            tokenizer_file="tokenizer.json",
            vocab_size=model.shape.vocab_size,
            context_length=model.context_length,
            precision=precision,
            kv_cache=cache,
            bos_token=model.bos_token,
            eos_token=model.eos_token,
            pad_token=model.pad_token,
            stop_tokens=tuple(model.stop_tokens),
            chat_template=model.chat_template,
            tasks=("chat", "complete", "summarize", "translate") if model.chat_template
            else ("complete",),
            license=model.license,
            source={**model.source, "parameters": model.parameter_count()},
        )
        write_manifest(folder, manifest)
        report = {"precision": precision, "int8_activations": bool(bits and int8_activations),
                  **model.tensor_report}
        (folder / IMPORT_REPORT).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        progress("writing", 1, 1)
    return out.expanduser().resolve()
