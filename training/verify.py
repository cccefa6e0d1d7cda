"""Checks an exported model folder against the PyTorch model it came from.

Three checks, run through the engine exactly as the app will run the folder:
1. logits of whole prompts, ONNX Runtime vs PyTorch (max absolute difference);
2. greedy continuations, ONNX with its KV cache / recurrent state one token at a time vs PyTorch
   recomputing the whole sequence every step: the token sequences must be identical;
3. the per-step logits of (2), which compare the cached path with a full recompute.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from engine.model import load_model
from engine.runner import DecoderRunner

REPORT_FILE = "verify_report.json"
# fp32 graphs differ from PyTorch only by summation order; quantized ones by design.
FP32_TOLERANCE = 1e-3
# A greedy mismatch where PyTorch's two best logits are closer than this is a tie, not a bug.
TIE_MARGIN = 1e-4


@dataclass
class GreedyCheck:
    prompt_tokens: int
    steps: int
    identical: bool
    first_difference: int | None  # step index of the first different token
    at_tie: bool  # the difference happened where PyTorch's top two logits were near-equal


@dataclass
class VerifyReport:
    precision: str
    max_abs_logit_diff: float
    cached_step_max_abs_diff: float
    greedy: list[GreedyCheck] = field(default_factory=list)
    tolerance: float | None = FP32_TOLERANCE
    passed: bool = False
    onnxruntime_version: str = ort.__version__
    torch_version: str = torch.__version__

    def summary(self) -> str:
        identical = sum(g.identical for g in self.greedy)
        lines = [
            f"verification {'PASSED' if self.passed else 'FAILED'} ({self.precision})",
            f"  logits, ONNX Runtime vs PyTorch: max abs diff {self.max_abs_logit_diff:.3g}",
            f"  cached decode vs full recompute: max abs diff {self.cached_step_max_abs_diff:.3g}",
            f"  greedy continuations identical: {identical}/{len(self.greedy)} "
            f"({sum(g.steps for g in self.greedy)} decode steps)",
        ]
        return "\n".join(lines)


def _torch_logits(model: nn.Module, ids: list[int]) -> np.ndarray:
    with torch.no_grad():
        return model(torch.tensor([ids]))[0].float().numpy()  # (T, V)


def _greedy_check(model: nn.Module, runner: DecoderRunner, prompt: list[int], steps: int,
                  ) -> tuple[GreedyCheck, float]:
    runner.reset()
    onnx_logits = runner.forward(prompt)
    ids, worst = list(prompt), 0.0
    for step in range(steps):
        reference = _torch_logits(model, ids)[-1]  # full recompute every step
        worst = max(worst, float(np.abs(reference - onnx_logits).max()))
        expected, got = int(reference.argmax()), int(onnx_logits.argmax())
        if expected != got:
            top_two = np.sort(reference)[-2:]
            return GreedyCheck(len(prompt), step + 1, False, step,
                               bool(top_two[1] - top_two[0] < TIE_MARGIN)), worst
        ids.append(expected)
        onnx_logits = runner.forward([expected])
    return GreedyCheck(len(prompt), steps, True, None, False), worst


def verify_export(folder: Path, model: nn.Module, prompts: list[list[int]], precision: str,
                  steps: int = 24) -> VerifyReport:
    """Runs the checks on ``folder`` and writes ``verify_report.json`` into it.

    Args:
        folder: the exported model folder (may still be the temporary one).
        model: the PyTorch model in eval mode.
        prompts: token-id prompts (each shorter than the context minus ``steps``).
        precision: the folder's precision; only fp32 must match within the tolerance.
    """
    # One thread: PyTorch runs in this process too, and ONNX Runtime's spinning pool would
    # compete with it for the cores.
    engine_model = load_model(folder, device="cpu", threads=1)
    runner = DecoderRunner(engine_model.session, engine_model.manifest)
    context = engine_model.manifest.context_length
    report = VerifyReport(precision=precision, max_abs_logit_diff=0.0, cached_step_max_abs_diff=0.0,
                          tolerance=FP32_TOLERANCE if precision == "fp32" else None)
    for prompt in prompts:
        prompt = prompt[: max(1, context - steps - 1)]
        runner.reset()
        full = runner.forward(prompt, all_logits=True)
        report.max_abs_logit_diff = max(report.max_abs_logit_diff,
                                        float(np.abs(full - _torch_logits(model, prompt)).max()))
        check, worst = _greedy_check(model, runner, prompt, min(steps, context - len(prompt) - 1))
        report.greedy.append(check)
        report.cached_step_max_abs_diff = max(report.cached_step_max_abs_diff, worst)
    finite = np.isfinite(report.max_abs_logit_diff) and np.isfinite(report.cached_step_max_abs_diff)
    if precision == "fp32":
        report.passed = bool(
            finite
            and report.max_abs_logit_diff <= FP32_TOLERANCE
            and report.cached_step_max_abs_diff <= FP32_TOLERANCE
            and all(g.identical or g.at_tie for g in report.greedy)
        )
    else:
        report.passed = bool(finite)  # quantized: reported, judged by the user's eval
    (folder / REPORT_FILE).write_text(json.dumps(asdict(report), indent=2) + "\n",
                                      encoding="utf-8")
    return report
