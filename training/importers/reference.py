"""A plain numpy forward pass of the imported weights, to check the ONNX model after import.

Independent of the graph builder and of PyTorch: it computes a Llama-family decoder (RMSNorm,
rotate-half rotary embeddings, grouped-query attention, SwiGLU) directly from the weights the
importer read, dequantizing packed weights one layer at a time so memory stays near the model's
own size. The import ends with the same report as an export: logits difference and whether greedy
continuations through the ONNX model's cache match a full recompute here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from engine.model import load_model
from engine.runner import DecoderRunner
from training.decoder_graph import DecoderShape
from training.importers.imported import ImportedModel
from training.quantize import PackedWeight, dequantize_blockwise


def _matrix(weight: np.ndarray | PackedWeight) -> np.ndarray:
    """(out, in) float32 matrix of a projection."""
    if isinstance(weight, PackedWeight):
        return dequantize_blockwise(weight).T
    return weight.astype(np.float32, copy=False)


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


def reference_logits(model: ImportedModel, ids: list[int]) -> np.ndarray:
    """Logits (T, V) for a token sequence, computed from the imported weights."""
    shape, w = model.shape, model.weights
    length, heads, kv_heads, dim = len(ids), shape.num_heads, shape.num_kv_heads, shape.head_dim
    x = w["embed_tokens.weight"][ids].astype(np.float32)  # (T, C)
    cos, sin = _rotary(np.arange(length), shape)
    causal = np.triu(np.full((length, length), -np.inf, dtype=np.float32), k=1)
    for layer in range(shape.num_layers):
        p = f"layers.{layer}."
        h = _rms_norm(x, w[p + "input_layernorm.weight"], shape.rms_eps)

        def project(name: str, h: np.ndarray = h, p: str = p) -> np.ndarray:
            y = h @ _matrix(w[f"{p}self_attn.{name}_proj.weight"]).T
            bias = w.get(f"{p}self_attn.{name}_proj.bias")
            return y if bias is None else y + bias

        q = project("q").reshape(length, heads, dim).transpose(1, 0, 2)  # (H, T, D)
        k = project("k").reshape(length, kv_heads, dim).transpose(1, 0, 2)
        v = project("v").reshape(length, kv_heads, dim).transpose(1, 0, 2)
        q, k = _rotate(q, cos, sin), _rotate(k, cos, sin)
        k = np.repeat(k, heads // kv_heads, axis=0)
        v = np.repeat(v, heads // kv_heads, axis=0)
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(dim) + causal  # (H, T, T)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        attended = (scores / scores.sum(-1, keepdims=True)) @ v  # (H, T, D)
        attended = attended.transpose(1, 0, 2).reshape(length, heads * dim)
        x = x + attended @ _matrix(w[p + "self_attn.o_proj.weight"]).T
        h = _rms_norm(x, w[p + "post_attention_layernorm.weight"], shape.rms_eps)
        gate = h @ _matrix(w[p + "mlp.gate_proj.weight"]).T
        up = h @ _matrix(w[p + "mlp.up_proj.weight"]).T
        x = x + (gate / (1 + np.exp(-gate)) * up) @ _matrix(w[p + "mlp.down_proj.weight"]).T
    x = _rms_norm(x, w["norm.weight"], shape.rms_eps)
    head = w.get("lm_head.weight", w["embed_tokens.weight"])
    return x @ _matrix(head).T


@dataclass
class ImportCheck:
    """What ``verify_import`` measured."""

    reference: str
    max_abs_logit_diff: float
    top1_agreement: float  # share of prompt positions whose argmax agrees
    greedy_steps: int
    greedy_identical: bool

    def summary(self) -> str:
        return (f"check against {self.reference}: max logit diff {self.max_abs_logit_diff:.3g}, "
                f"top-1 agreement {self.top1_agreement:.0%}, greedy {self.greedy_steps} steps "
                f"{'identical' if self.greedy_identical else 'DIFFERENT'}")

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def verify_import(model: ImportedModel, folder: object, prompt: str = "The lamp on the desk",
                  steps: int = 4) -> ImportCheck:
    """Compares the written model folder with the numpy reference on a short prompt."""
    engine_model = load_model(folder, device="cpu")  # type: ignore[arg-type]
    ids = engine_model.tokenizer.encode(prompt) or [0]
    if engine_model.bos_token_id is not None:
        ids = [engine_model.bos_token_id, *ids]
    runner = DecoderRunner(engine_model.session, engine_model.manifest)
    ours = runner.forward(ids, all_logits=True)
    reference = reference_logits(model, ids)
    agreement = float((ours.argmax(-1) == reference.argmax(-1)).mean())
    diff = float(np.abs(ours - reference).max())
    # Greedy: the ONNX model one token at a time through its cache, the reference recomputing.
    sequence, identical, logits = list(ids), True, ours[-1]
    for _ in range(steps):
        expected = int(reference_logits(model, sequence)[-1].argmax())
        if int(logits.argmax()) != expected:
            identical = False
            break
        sequence.append(expected)
        logits = runner.forward([expected])
    return ImportCheck("the imported weights in float32 (numpy)", diff, agreement, steps,
                       identical)
