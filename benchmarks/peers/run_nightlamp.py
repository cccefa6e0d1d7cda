"""Benchmark worker for Nightlamp's engine; runs with the project venv.

    /work/main/.venv/bin/python run_nightlamp.py JOB.json

The fallback for when ``nightlamp bench`` is not available (run.py prefers the command). It
drives the engine's own ``DecoderRunner`` (what ``engine.generation.Generator`` runs on) with the
same protocol as the peer workers: the prompt ids in one forward pass, then one token at a time,
greedy argmax with the stop tokens blocked, so it always generates the full count (the Generator
itself ends at EOS and runs the forward pass of each token inside the call that picks it).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from worker_common import Job, emit, run_all, summary

REPO = Path(__file__).resolve().parents[2]


def main() -> None:
    job = Job.read(sys.argv[1])
    # The engine of this checkout, or of another one (e.g. an export of the last commit, to
    # compare with work in progress): whichever is first on the path is imported.
    repo = Path(job.options.get("repo") or REPO)
    sys.path.insert(0, str(repo))
    from engine.model import load_model
    from engine.runner import DecoderRunner

    started = time.perf_counter()
    model = load_model(job.model, device="cpu", threads=job.threads)
    load_s = time.perf_counter() - started
    # The model's own long-lived runner where the engine has one (what Generator uses); reset()
    # before every run empties its cache, so no run reuses the previous run's prompt cache.
    runner = model.decoder_runner() if hasattr(model, "decoder_runner") \
        else DecoderRunner(model.session, model.manifest)
    blocked = np.asarray(sorted(set(job.block_ids) | set(model.stop_token_ids)), dtype=np.int64)

    def pick(logits: np.ndarray) -> int:
        logits[blocked] = -np.inf  # forward() returns a fresh float32 array: safe to edit
        return int(np.argmax(logits))

    def prefill(ids: Sequence[int]) -> int:
        return pick(runner.forward(list(ids)))

    def step(token: int) -> int:
        return pick(runner.forward([token]))

    runs = run_all(job, prefill, step, runner.reset)
    import importlib.metadata

    import onnxruntime

    nightlamp_version = importlib.metadata.version("nightlamp")
    if repo != REPO:
        nightlamp_version += f" from {repo}"
    import engine

    assert Path(engine.__file__).resolve().is_relative_to(repo.resolve()), engine.__file__
    emit(summary(load_s, len(job.prompt_ids), job.new_tokens, runs, runtime="nightlamp",
                 version=f"nightlamp {nightlamp_version} (onnxruntime {onnxruntime.__version__})",
                 device=model.device, model=model.name, precision=model.manifest.precision,
                 via="run_nightlamp.py (engine DecoderRunner)",
                 settings={"intra_op_num_threads": job.threads}))


if __name__ == "__main__":
    main()
