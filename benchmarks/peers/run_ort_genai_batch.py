"""Batch worker for onnxruntime-genai; runs in the peers' ort-genai venv.

    $PEERS/ort-genai-venv/bin/python run_ort_genai_batch.py JOB.json

The job (``benchmarks/batch_decode.py``): ``model``, ``prompts`` (equal-length lists of ids, so
no padding is needed), ``new_tokens``, ``threads``, ``block_ids``. One generator with
``batch_size`` = the number of prompts, greedy, ``min_length`` so every row generates the full
count; timed from submitting the prompts to the last token (prefill included), as the Nightlamp
rows are.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import onnxruntime_genai as og
from worker_common import emit, peak_rss_mb


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as file:
        job = json.load(file)
    prompts = np.asarray(job["prompts"], dtype=np.int32)
    batch, prompt_len = prompts.shape
    total = prompt_len + int(job["new_tokens"])
    overlay = {"model": {"eos_token_id": sorted(set(job["block_ids"])),
                         "decoder": {"session_options": {"intra_op_num_threads": job["threads"],
                                                         "inter_op_num_threads": 1}}},
               "search": {"max_length": total}}
    config = og.Config(job["model"])
    config.clear_providers()
    config.overlay(json.dumps(overlay))
    model = og.Model(config)
    params = og.GeneratorParams(model)
    params.set_search_options(do_sample=False, max_length=total, min_length=total,
                              batch_size=batch)
    generator = og.Generator(model, params)
    started = time.perf_counter()
    generator.append_tokens(prompts)
    generated = 0
    first = None
    while not generator.is_done():
        generator.generate_next_token()
        generated += batch
        if first is None:
            first = time.perf_counter() - started
    wall = time.perf_counter() - started
    rows = [list(map(int, generator.get_sequence(i)[prompt_len:])) for i in range(batch)]
    emit({"runtime": "onnxruntime-genai", "version": og.__version__, "batch": batch,
          "generated": generated, "wall_s": round(wall, 3), "first_token_s": round(first or 0, 3),
          "tok_s": round(generated / wall, 1), "peak_rss_mb": round(peak_rss_mb(), 1),
          "first_row": rows[0][:32]})


if __name__ == "__main__":
    main()
