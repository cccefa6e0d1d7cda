"""Reads a Llama-family or Qwen2 GGUF file into an ``ImportedModel``.

GGUF names (``blk.N.attn_q.weight``) map onto Hugging Face Llama names; llama.cpp's row
permutation of the query/key weights (its converter reorders rotary pairs) is undone so the
graph's rotate-half rotary embedding applies. Q4_0, Q4_1 and Q8_0 blocks are repacked into
``MatMulNBits`` without loss when the target precision allows; other types are dequantized and, for
int4/int8, quantized again by the graph builder. The report says which tensor went which way.
Reading checks every tensor's shape but decodes none: the weights are a ``GGUFWeights`` mapping
that reads each tensor from the still-open file when it is used (``gguf_weights``).

The vocabulary must agree three ways: ``<arch>.vocab_size`` (if present), the rows of the token
embedding and output tensors, and the tokenizer. Extra embedding rows are padding (checkpoints
padded to a multiple of 64): they are cut off, so no id the tokenizer can't decode can ever be
sampled, and the import report says so. Fewer rows than tokens is refused.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from convert.decoder_graph import DecoderShape, ShapeError
from convert.importers import ggml_quants
from convert.importers.gguf_reader import GGUFFile, TensorInfo
from convert.importers.gguf_tokenizer import (
    adds_bos_token,
    build_tokenizer,
    special_token_strings,
    stop_token_strings,
)
from convert.importers.gguf_weights import GGUFWeights, PlannedTensor
from convert.importers.imported import ImportedModel, check_chat_template, weight_bits
from engine.callbacks import Progress, no_progress
from engine.errors import ModelFormatError

logger = logging.getLogger(__name__)

SUPPORTED_ARCHITECTURES = ("llama", "qwen2")
_LAYER_TENSORS = {
    "attn_norm.weight": "input_layernorm.weight",
    "attn_q.weight": "self_attn.q_proj.weight",
    "attn_k.weight": "self_attn.k_proj.weight",
    "attn_v.weight": "self_attn.v_proj.weight",
    "attn_q.bias": "self_attn.q_proj.bias",
    "attn_k.bias": "self_attn.k_proj.bias",
    "attn_v.bias": "self_attn.v_proj.bias",
    "attn_output.weight": "self_attn.o_proj.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
    "ffn_gate.weight": "mlp.gate_proj.weight",
    "ffn_up.weight": "mlp.up_proj.weight",
    "ffn_down.weight": "mlp.down_proj.weight",
}


def _hyper(metadata: dict[str, Any], arch: str, key: str, default: Any = None,
           kind: type[int] | type[float] = int) -> Any:
    """A hyperparameter, which is always a positive number (KeyError if missing, ValueError if
    not a positive number of that kind: int() of a hostile value could crash or stall)."""
    value = metadata.get(f"{arch}.{key}", default)
    if value is None:
        raise KeyError(f"{arch}.{key}")
    value = value.item() if isinstance(value, np.generic) else value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value <= 0 or (kind is int and value != int(value)):
        shown = repr(value) if isinstance(value, (int, float)) else type(value).__name__
        raise ValueError(f"'{arch}.{key}' must be a positive {kind.__name__}, got {shown}")
    return kind(value)


# DecoderShape's fields as GGUF names them, so a bound names the file's key (llama.block_count).
_SHAPE_KEYS = {"hidden_size": "embedding_length", "num_layers": "block_count",
               "num_heads": "attention.head_count", "num_kv_heads": "attention.head_count_kv",
               "head_dim": "attention.key_length", "rope_theta": "rope.freq_base",
               "rms_eps": "attention.layer_norm_rms_epsilon"}


def _shape(metadata: dict[str, Any], arch: str, vocab_size: int, tied: bool,
           rope_factors: np.ndarray | None) -> DecoderShape:
    hidden = _hyper(metadata, arch, "embedding_length")
    heads = _hyper(metadata, arch, "attention.head_count")
    try:
        shape = DecoderShape(
            vocab_size=vocab_size,
            hidden_size=hidden,
            num_layers=_hyper(metadata, arch, "block_count"),
            num_heads=heads,
            num_kv_heads=_hyper(metadata, arch, "attention.head_count_kv", heads),
            head_dim=_hyper(metadata, arch, "attention.key_length",
                            _hyper(metadata, arch, "rope.dimension_count",
                                   max(hidden // heads, 1))),
            rope_theta=_hyper(metadata, arch, "rope.freq_base", 10000.0, float),
            rms_eps=_hyper(metadata, arch, "attention.layer_norm_rms_epsilon", 1e-5, float),
            tie_embeddings=tied,
            rope_freq_factors=None if rope_factors is None
            else tuple(float(f) for f in rope_factors),
        )
    except ShapeError as error:
        key = _SHAPE_KEYS.get(error.field)
        raise ValueError(error.named(f"{arch}.{key}") if key else str(error)) from None
    if shape.num_heads % shape.num_kv_heads or shape.head_dim % 2:
        raise ValueError(f"{heads} query heads, {shape.num_kv_heads} key/value heads of "
                         f"{shape.head_dim} dimensions don't make a valid attention layer")
    if rope_factors is not None and rope_factors.size != shape.head_dim // 2:
        raise ValueError(f"'rope_freqs.weight' has {rope_factors.size} values, expected "
                         f"{shape.head_dim // 2}")
    return shape


def _vocabulary_rows(gguf: GGUFFile, metadata: dict[str, Any], arch: str,
                     tokens: int) -> tuple[int, list[str]]:
    """The rows of the token embedding (and output) tensor, checked against ``<arch>.vocab_size``
    and the tokenizer's ``tokens``; and the notes for the import report.

    Raises:
        KeyError: no token embedding.
        ValueError: the counts disagree, other than by padding rows.
    """
    embedding = gguf.tensors["token_embd.weight"]
    rows = embedding.shape[0]
    if f"{arch}.vocab_size" in metadata:
        declared = _hyper(metadata, arch, "vocab_size")
        if declared != rows:
            raise ValueError(f"'{arch}.vocab_size' is {declared} but 'token_embd.weight' has "
                             f"{rows} rows")
    output = gguf.tensors.get("output.weight")
    if output is not None and output.shape[0] != rows:
        raise ValueError(f"'output.weight' has {output.shape[0]} rows but 'token_embd.weight' "
                         f"has {rows}")
    if rows < tokens:
        # A token without a row would fail in the graph's Gather the first time it is used.
        raise ValueError(f"token embedding has {rows} rows but the tokenizer has {tokens} "
                         f"tokens (ids {rows}-{tokens - 1} have no embedding)")
    if rows == tokens:
        return rows, []
    note = (f"token embedding has {rows} rows, tokenizer has {tokens} tokens: {rows - tokens} "
            "padding rows are never generated (they were left out of the model)")
    logger.info("%s: %s", gguf.path, note)
    return rows, [note]


def _first_rows(planned: PlannedTensor, rows: int) -> PlannedTensor:
    """The same tensor cut to its first ``rows`` rows (GGML rows are whole blocks, so the cut
    tensor is a valid tensor of the same type at the same offset)."""
    info = planned.info
    if info.shape[0] == rows:
        return planned
    row_bytes = info.nbytes // info.shape[0]
    cut = TensorInfo(info.name, info.ggml_type, (rows, *info.shape[1:]), info.offset,
                     rows * row_bytes)
    return replace(planned, info=cut)


def _expected_shapes(shape: DecoderShape, ffn: int, vocab: int) -> dict[str, tuple[int, ...]]:
    """(rows, columns) of every tensor, by GGUF name suffix, as the metadata implies
    (``vocab`` is the embedding's rows: the tokenizer's tokens and any padding)."""
    q, kv = shape.num_heads * shape.head_dim, shape.num_kv_heads * shape.head_dim
    hidden = shape.hidden_size
    return {
        "token_embd.weight": (vocab, hidden), "output.weight": (vocab, hidden),
        "output_norm.weight": (hidden,), "attn_norm.weight": (hidden,),
        "ffn_norm.weight": (hidden,),
        "attn_q.weight": (q, hidden), "attn_k.weight": (kv, hidden), "attn_v.weight": (kv, hidden),
        "attn_q.bias": (q,), "attn_k.bias": (kv,), "attn_v.bias": (kv,),
        "attn_output.weight": (hidden, q), "ffn_gate.weight": (ffn, hidden),
        "ffn_up.weight": (ffn, hidden), "ffn_down.weight": (hidden, ffn),
    }


def _check_shape(name: str, actual: tuple[int, ...], expected: tuple[int, ...]) -> None:
    if actual != expected:
        raise ValueError(f"tensor {name!r} has shape {actual} but the metadata implies {expected}")


class _Planner:
    """Decides how each GGUF tensor becomes a weight for one target precision, and reports it."""

    def __init__(self, gguf: GGUFFile, precision: str) -> None:
        self.gguf = gguf
        self.bits = weight_bits(precision)
        self.report: dict[str, list[str]] = {"repacked": [], "requantized": [], "dequantized": []}

    def float_tensor(self, name: str) -> PlannedTensor:
        return PlannedTensor(self.gguf.tensors[name], repack=False)

    def matmul_weight(self, name: str) -> PlannedTensor:
        """A (out, in) projection, repacked exactly where MatMulNBits can hold its blocks.

        Quantized targets keep a GGUF block format whenever it maps without loss (Q4_0, Q4_1,
        Q4_K at 4 bits; Q8_0, Q5_0, Q6_K at 8), even if that is wider than the target: exact
        weights beat a second rounding.
        """
        info = self.gguf.tensors[name]
        label = f"{name} ({info.type_name})"
        if self.bits is not None and ggml_quants.can_repack(info.ggml_type):
            self.report["repacked"].append(label)
            return PlannedTensor(info, repack=True)
        self.report["requantized" if self.bits else "dequantized"].append(label)
        return PlannedTensor(info, repack=False)


def read_gguf_model(path: Path, precision: str = "int4",
                    progress: Progress = no_progress) -> ImportedModel:
    """Reads a GGUF file for the given target precision.

    Raises:
        ModelFormatError: damaged file, unsupported architecture or tensor type, missing tensor.
    """
    gguf = GGUFFile(path)
    try:
        return _read(gguf, path, precision, progress)
    except BaseException:
        gguf.close()
        raise


def _read(gguf: GGUFFile, path: Path, precision: str, progress: Progress) -> ImportedModel:
    """The model of an open file; its weights keep the file open and read it when used."""
    metadata = gguf.metadata
    arch = str(metadata.get("general.architecture", "<missing>"))
    if arch not in SUPPORTED_ARCHITECTURES:
        raise ModelFormatError(
            f"{path}: architecture {arch!r} is not supported (supported: "
            f"{', '.join(SUPPORTED_ARCHITECTURES)}; Mistral files use 'llama')"
        )
    # The reader gives numeric arrays as numpy arrays; the tokenizer takes plain lists.
    token_metadata = {key: value.tolist() if isinstance(value, np.ndarray) else value
                      for key, value in metadata.items() if key.startswith("tokenizer.")}
    try:
        tokenizer = build_tokenizer(token_metadata)
        specials = special_token_strings(token_metadata)
        stop_tokens = stop_token_strings(token_metadata)
        add_bos = adds_bos_token(token_metadata)
    except ValueError as error:
        raise ModelFormatError(f"{path}: tokenizer metadata: {error}") from None
    template = metadata.get("tokenizer.chat_template")
    if template is not None and not isinstance(template, str):
        raise ModelFormatError(f"{path}: 'tokenizer.chat_template' must be text, got "
                               f"{type(template).__name__}")
    # Refuse a hostile template before spending time on the weights.
    check_chat_template(template, path.name, specials.get("bos") or "",
                        specials.get("eos") or "")
    planner = _Planner(gguf, precision)
    tied = "output.weight" not in gguf.tensors
    try:
        tokens = tokenizer.get_vocab_size()
        vocab_rows, notes = _vocabulary_rows(gguf, metadata, arch, tokens)
        rope_factors = _float_values(gguf, "rope_freqs.weight") \
            if "rope_freqs.weight" in gguf.tensors else None
        # The model's vocabulary is the tokenizer's: padding rows are cut from the weights.
        shape = _shape(metadata, arch, tokens, tied, rope_factors)
        expected = _expected_shapes(shape, _hyper(metadata, arch, "feed_forward_length"),
                                    vocab_rows)
        plan = _plan_weights(gguf, planner, shape, expected, arch, progress)
        context = _hyper(metadata, arch, "context_length", 2048)
    except KeyError as error:
        raise ModelFormatError(f"{path}: missing {error.args[0]!r}; the file is incomplete "
                               "or not a supported model") from None
    except ValueError as error:
        raise ModelFormatError(f"{path}: {error}; the file is damaged or not a supported "
                               "model") from None
    return ImportedModel(
        name=_suggested_name(metadata, path),
        shape=shape,
        weights=GGUFWeights(gguf, plan),
        tokenizer=tokenizer,
        context_length=context,
        chat_template=template,
        bos_token=specials.get("bos") if add_bos else None,
        eos_token=specials.get("eos"),
        pad_token=specials.get("pad"),
        stop_tokens=stop_tokens,
        license=_text(metadata, "general.license") or "unknown",
        source={"format": "gguf", "file": path.name, "architecture": arch,
                "name": _text(metadata, "general.name")},
        # write_model_folder copies every list of the tensor report into import_report.json.
        tensor_report={**planner.report, "notes": notes} if notes else planner.report,
    )


def _float_values(gguf: GGUFFile, name: str) -> np.ndarray:
    info = gguf.tensors[name]
    return ggml_quants.dequantize(info.ggml_type, gguf.tensor_bytes(name), info.shape).reshape(-1)


def _plan_weights(gguf: GGUFFile, planner: _Planner, shape: DecoderShape,
                  expected: dict[str, tuple[int, ...]], arch: str,
                  progress: Progress) -> dict[str, PlannedTensor]:
    """Every weight's tensor and treatment, shapes checked against the metadata; no tensor
    data is read here."""
    plan: dict[str, PlannedTensor] = {}
    for name, key in (("token_embd.weight", "embed_tokens.weight"),
                      ("output_norm.weight", "norm.weight")):
        plan[key] = planner.float_tensor(name)
        _check_shape(name, plan[key].info.shape, expected[name])
    head_source = "token_embd.weight" if shape.tie_embeddings else "output.weight"
    if planner.bits is not None or not shape.tie_embeddings:
        head = planner.matmul_weight(head_source)
        _check_shape(head_source, head.info.shape, expected[head_source])
        if head.repack or not shape.tie_embeddings:
            plan["lm_head.weight"] = head
        # else the builder quantizes the tied embedding itself
    # llama.cpp permutes Llama's q/k rows; Qwen2 uses NeoX-style rotary and is stored as is.
    permute = arch == "llama"
    for layer in range(shape.num_layers):
        progress("reading tensors", layer, shape.num_layers)
        for gguf_suffix, hf_suffix in _LAYER_TENSORS.items():
            name = f"blk.{layer}.{gguf_suffix}"
            if name not in gguf.tensors:
                if gguf_suffix.endswith(".bias"):
                    continue
                raise KeyError(name)
            is_matrix = gguf_suffix.endswith(".weight") and "norm" not in gguf_suffix
            planned = planner.matmul_weight(name) if is_matrix else planner.float_tensor(name)
            _check_shape(name, planned.info.shape, expected[gguf_suffix])
            if permute and gguf_suffix.startswith(("attn_q.", "attn_k.")):
                heads = shape.num_heads if gguf_suffix.startswith("attn_q") else shape.num_kv_heads
                planned = replace(planned, permute_heads=heads)
            plan[f"layers.{layer}.{hf_suffix}"] = planned
    if any(name.startswith(f"blk.{shape.num_layers}.") for name in gguf.tensors):
        raise ValueError(f"the file has tensors for more layers than its block_count "
                         f"({shape.num_layers})")
    for key in ("embed_tokens.weight", "lm_head.weight"):  # drop padding rows, if any
        if key in plan:
            plan[key] = _first_rows(plan[key], shape.vocab_size)
    progress("reading tensors", shape.num_layers, shape.num_layers)
    return plan


def _text(metadata: dict[str, Any], key: str) -> str | None:
    value = metadata.get(key)
    return value if isinstance(value, str) else None


def _suggested_name(metadata: dict[str, Any], path: Path) -> str:
    stem = path.name[: -len(".gguf")] if path.name.lower().endswith(".gguf") else path.stem
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in stem).strip("-").lower()
