"""Benchmark worker for onnxruntime-genai; runs in the peers' ort-genai venv.

    $PEERS/ort-genai-venv/bin/python run_ort_genai.py JOB.json

The model folder comes from onnxruntime-genai's own model builder. Its config is overlaid at load
time (the folder is left as built): intra-op threads, and the stop tokens as ``eos_token_id`` so
that ``min_length`` (prompt + new tokens) blocks all of them and greedy search runs the full
count. ``append_tokens`` runs the prompt; ``generate_next_token`` picks a token from the current
logits, first running the previous token through the model when there is one, so the first call
after the prompt is the first token and each later call is one decode step.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence

import onnxruntime_genai as og
from worker_common import Job, emit, run_all, summary


def main() -> None:
    job = Job.read(sys.argv[1])
    prompt_len = len(job.prompt_ids)
    total = prompt_len + job.new_tokens
    overlay = {"model": {"eos_token_id": sorted(set(job.block_ids)),
                         "decoder": {"session_options": {"intra_op_num_threads": job.threads,
                                                         "inter_op_num_threads": 1}}}}
    started = time.perf_counter()
    config = og.Config(job.model)
    config.clear_providers()  # CPU
    config.overlay(json.dumps(overlay))
    model = og.Model(config)
    load_s = time.perf_counter() - started
    params = og.GeneratorParams(model)
    params.set_search_options(do_sample=False, max_length=total, min_length=total, batch_size=1)
    state: dict[str, og.Generator] = {}

    def reset() -> None:
        # A fresh generator per run (its cache is allocated here, outside the timed phases).
        state["gen"] = og.Generator(model, params)

    def prefill(ids: Sequence[int]) -> int:
        gen = state["gen"]
        gen.append_tokens(list(ids))
        gen.generate_next_token()
        return int(gen.get_next_tokens()[0])

    def step(token: int) -> int:
        gen = state["gen"]
        gen.generate_next_token()
        return int(gen.get_next_tokens()[0])

    runs = run_all(job, prefill, step, reset)
    import onnxruntime

    emit(summary(load_s, prompt_len, job.new_tokens, runs, runtime="onnxruntime-genai",
                 version=f"onnxruntime-genai {og.__version__} "
                         f"(onnxruntime {onnxruntime.__version__})",
                 settings={"intra_op_num_threads": job.threads, "min_length": total,
                           "eos_token_id": sorted(set(job.block_ids))}))


if __name__ == "__main__":
    main()
