"""A plain numpy forward pass of the imported weights, to check the ONNX model after import.

Independent of the graph builder and of PyTorch: it computes a Llama-family decoder (RMSNorm,
rotate-half rotary embeddings, grouped-query attention, SwiGLU) directly from the weights the
importer read, one weight at a time: lazy weights (a GGUF file's) are read when used, packed ones
dequantized one matrix (the output head: a slab of rows) at a time, so the check adds a few
layers' worth of memory, not a float copy of the model. The import ends with the same report as
an export: logits difference and whether greedy continuations through the ONNX model's cache
match a full recompute here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from convert.decoder_graph import DecoderShape
from convert.importers.imported import (
    ImportedModel,
    Weights,
    embedding_rows,
    row_range,
    weight_shape,
)
from convert.quantize import PackedWeight, dequantize_blockwise
from engine.errors import ModelFormatError
from engine.model import load_model
from engine.runner import DecoderRunner

# Output rows of the head read and dequantized at once: 2,048 x 576 floats for SmolLM2, where
# its whole 49,152-row table and the temporaries of dequantizing it took 450 MB.
_HEAD_ROWS = 2048


def _matrix(weight: np.ndarray | PackedWeight) -> np.ndarray:
    """(out, in) float32 matrix of a projection."""
    if isinstance(weight, PackedWeight):
        return dequantize_blockwise(weight).T
    return weight.astype(np.float32, copy=False)


def _head_logits(xs: list[np.ndarray], weights: Weights, name: str) -> list[np.ndarray]:
    """x @ head.T for each x, the head read and dequantized a slab of rows at a time (each
    logit is the same dot product either way)."""
    rows = weight_shape(weights, name)[0]
    slabs: list[list[np.ndarray]] = [[] for _ in xs]
    for start in range(0, rows, _HEAD_ROWS):
        matrix = _matrix(row_range(weights, name, start, min(start + _HEAD_ROWS, rows)))
        for out, x in zip(slabs, xs, strict=True):
            out.append(x @ matrix.T)
    return [np.concatenate(parts, axis=-1) for parts in slabs]


def _rms_norm(x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * weight


def _rotary(positions: np.ndarray, shape: DecoderShape) -> tuple[np.ndarray, np.ndarray]:
    half = shape.head_dim // 2
    inv_freq = 1.0 / (shape.rope_theta ** (np.arange(half, dtype=np.float64) / half))
    if shape.rope_freq_factors is not None:
        inv_freq = inv_freq / np.asarray(shape.rope_freq_factors)
    angles = positions[:, None].astype(np.float64) * inv_freq[None]
    angles = np.concatenate([angles, angles], axis=-1)  # (T, D)
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)


def _rotate(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    first, second = np.split(x, 2, axis=-1)
    return x * cos + np.concatenate([-second, first], axis=-1) * sin


def _attention(h: np.ndarray, projections: list[tuple[np.ndarray, np.ndarray | None]],
               shape: DecoderShape) -> np.ndarray:
    """Causal grouped-query self-attention of one sequence's normed states h (T, C)."""
    length, heads, kv_heads, dim = len(h), shape.num_heads, shape.num_kv_heads, shape.head_dim
    q, k, v = (h @ matrix.T if bias is None else h @ matrix.T + bias
               for matrix, bias in projections)
    q = q.reshape(length, heads, dim).transpose(1, 0, 2)  # (H, T, D)
    k = k.reshape(length, kv_heads, dim).transpose(1, 0, 2)
    v = v.reshape(length, kv_heads, dim).transpose(1, 0, 2)
    cos, sin = _rotary(np.arange(length), shape)
    q, k = _rotate(q, cos, sin), _rotate(k, cos, sin)
    k = np.repeat(k, heads // kv_heads, axis=0)
    v = np.repeat(v, heads // kv_heads, axis=0)
    causal = np.triu(np.full((length, length), -np.inf, dtype=np.float32), k=1)
    scores = q @ k.transpose(0, 2, 1) / np.sqrt(dim) + causal  # (H, T, T)
    scores = np.exp(scores - scores.max(-1, keepdims=True))
    attended = (scores / scores.sum(-1, keepdims=True)) @ v  # (H, T, D)
    return attended.transpose(1, 0, 2).reshape(length, heads * dim)


def reference_logits(model: ImportedModel, ids: list[int]) -> np.ndarray:
    """Logits (T, V) for a token sequence, computed from the imported weights."""
    return reference_logits_of(model, [ids])[0]


def reference_logits_of(model: ImportedModel, sequences: list[list[int]]) -> list[np.ndarray]:
    """Logits (T, V) of each sequence, the same numbers as ``reference_logits`` of each one
    alone, with every weight read (and dequantized) once for all of them."""
    shape, w = model.shape, model.weights
    xs = [embedding_rows(w, ids).astype(np.float32) for ids in sequences]  # (T, C) each
    for layer in range(shape.num_layers):
        p = f"layers.{layer}."
        norm = w[p + "input_layernorm.weight"]
        projections = [(_matrix(w[f"{p}self_attn.{kind}_proj.weight"]),
                        w.get(f"{p}self_attn.{kind}_proj.bias")) for kind in "qkv"]
        attended = [_attention(_rms_norm(x, norm, shape.rms_eps), projections, shape)
                    for x in xs]
        del projections
        out = _matrix(w[p + "self_attn.o_proj.weight"])
        xs = [x + a @ out.T for x, a in zip(xs, attended, strict=True)]
        norm = w[p + "post_attention_layernorm.weight"]
        gate, up, down = (_matrix(w[f"{p}mlp.{kind}_proj.weight"])
                          for kind in ("gate", "up", "down"))
        for index, x in enumerate(xs):
            h = _rms_norm(x, norm, shape.rms_eps)
            g, u = h @ gate.T, h @ up.T
            xs[index] = x + (g / (1 + np.exp(-g)) * u) @ down.T
    norm = w["norm.weight"]
    return _head_logits([_rms_norm(x, norm, shape.rms_eps) for x in xs], w,
                        "lm_head.weight" if "lm_head.weight" in w else "embed_tokens.weight")


# Why greedy tokens may differ from the float reference, by the precision the model was written
# at: quantized weights (and int8 activations) move logits enough to flip near-ties.
_DIFFERENCE_NOTES = {
    "int4": "expected at int4: quantization changes near-tie choices",
    "int8": "possible at int8: quantization changes near-tie choices",
    "fp16": "possible at fp16: rounding changes near-tie choices",
    "fp32": "not expected at fp32; please report it with the file",
}


@dataclass
class ImportCheck:
    """What ``verify_import`` measured."""

    reference: str
    max_abs_logit_diff: float
    top1_agreement: float  # share of prompt positions whose argmax agrees
    greedy_steps: int
    greedy_identical: bool
    precision: str = "fp32"  # the written model's
    first_difference: int | None = None  # 1-based greedy step where the tokens first differ

    def summary(self) -> str:
        if self.greedy_identical:
            greedy = "identical"
        else:
            note = _DIFFERENCE_NOTES.get(self.precision, f"at {self.precision}")
            greedy = f"differ from step {self.first_difference} ({note})"
        return (f"check against {self.reference}: max logit diff {self.max_abs_logit_diff:.3g}, "
                f"top-1 agreement {self.top1_agreement:.0%}; greedy tokens: {self.greedy_steps} "
                f"steps compared with the float reference, {greedy}")

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def _check_finite(model: ImportedModel, ours: np.ndarray, reference: np.ndarray,
                  precision: str) -> None:
    """Refuses a model whose logits (or the float reference's) are NaN or infinite: installed,
    it would write garbage, and its check would compare nothing."""
    if np.isfinite(ours).all() and np.isfinite(reference).all():
        return
    source = model.source.get("file") or model.source.get("folder") or model.name
    if not np.isfinite(reference).all():
        bad = int((~np.isfinite(reference)).sum())
        raise ModelFormatError(f"{source}: the weights give non-finite logits ({bad} of "
                               f"{reference.size} NaN or infinite on a test prompt); the file "
                               "is damaged; nothing was installed")
    bad = int((~np.isfinite(ours)).sum())
    raise ModelFormatError(f"{source}: the {precision} model gives non-finite logits ({bad} of "
                           f"{ours.size} NaN or infinite on a test prompt) where the float "
                           "weights do not; import it with --precision fp32 or int8; nothing "
                           "was installed")


def verify_import(model: ImportedModel, folder: object, prompt: str = "The lamp on the desk",
                  steps: int = 4) -> ImportCheck:
    """Compares the written model folder with the numpy reference on a short prompt.

    The ONNX model runs first, greedily through its cache; its session is freed before the
    reference computes the prompt, and the prompt with those tokens (teacher-forced: a
    position's logits depend only on the tokens before it, so this is the full recompute of
    every greedy step), in one pass over the weights; the session and the reference's weights
    are never in memory together. The model is loaded with only the context the check needs,
    so the memory preflight does not ask for the cache of a long-context model's whole window.

    Raises:
        ModelFormatError: the logits are NaN or infinite.
    """
    # Tokens are at most the prompt's UTF-8 bytes (plus a SentencePiece prefix and BOS) and
    # the greedy steps.
    needed = len(prompt.encode("utf-8")) + steps + 8
    engine_model = load_model(folder, device="cpu", context_length=needed)  # type: ignore[arg-type]
    precision = engine_model.manifest.precision
    ids = engine_model.tokenizer.encode(prompt) or [0]
    if engine_model.bos_token_id is not None:
        ids = [engine_model.bos_token_id, *ids]
    runner = DecoderRunner(engine_model.session, engine_model.manifest)
    ours = runner.forward(ids, all_logits=True)
    generated = [int(ours[-1].argmax())]
    while len(generated) < steps:
        generated.append(int(runner.forward(generated[-1:]).argmax()))
    del runner, engine_model
    prompt_logits, continued = reference_logits_of(model, [ids, ids + generated[:-1]])
    _check_finite(model, ours, prompt_logits, precision)
    agreement = float((ours.argmax(-1) == prompt_logits.argmax(-1)).mean())
    diff = float(np.abs(ours - prompt_logits).max())
    expected = continued[len(ids) - 1:].argmax(-1)
    differs = np.flatnonzero(expected != np.asarray(generated))
    first = int(differs[0]) + 1 if differs.size else None
    return ImportCheck("the imported weights in float32 (numpy)", diff, agreement, steps,
                       first is None, precision, first)
