"""Benchmark worker for llama.cpp through llama-cpp-python; runs in the peers' llama-cpp venv.

    $PEERS/llama-cpp-venv/bin/python run_llama_cpp.py JOB.json

Uses the low-level path (``Llama.eval`` on token ids, logits read from the context, argmax in
numpy with the stop tokens blocked) rather than ``create_completion``: the prompt must be the
exact ids the other runtimes get, and the sampler chain must not end generation at EOS. The
prompt goes in as one batch (n_batch = n_ubatch >= prompt length). Options in the job:
``flash_attn`` (bool), ``text`` (the prompt text, to check llama.cpp's tokenizer agrees).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

import llama_cpp
import numpy as np
from worker_common import Job, emit, run_all, summary


def main() -> None:
    job = Job.read(sys.argv[1])
    prompt_len = len(job.prompt_ids)
    n_ctx = -(-(prompt_len + job.new_tokens + 8) // 256) * 256
    batch = max(512, prompt_len)
    flash = bool(job.options.get("flash_attn", False))
    started = time.perf_counter()
    llm = llama_cpp.Llama(model_path=job.model, n_ctx=n_ctx, n_batch=batch, n_ubatch=batch,
                          n_threads=job.threads, n_threads_batch=job.threads, n_gpu_layers=0,
                          flash_attn=flash, logits_all=False, verbose=False)
    load_s = time.perf_counter() - started
    vocab = llm.n_vocab()
    blocked = np.asarray(sorted(set(job.block_ids)), dtype=np.int64)

    def pick() -> int:
        # llama_get_logits: the rows of the tokens that asked for logits (only the last one).
        logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(vocab,)).copy()
        logits[blocked] = -np.inf
        return int(np.argmax(logits))

    def prefill(ids: Sequence[int]) -> int:
        llm.eval(list(ids))
        return pick()

    def step(token: int) -> int:
        llm.eval([token])
        return pick()

    runs = run_all(job, prefill, step, llm.reset)  # reset: n_tokens = 0
    extra = {}
    if job.options.get("text"):  # does llama.cpp's own tokenizer give the same prompt ids?
        own = llm.tokenize(job.options["text"].encode("utf-8"), add_bos=False, special=False)
        extra["tokenizer_agrees"] = own[:prompt_len] == job.prompt_ids
    emit(summary(load_s, prompt_len, job.new_tokens, runs,
                 runtime="llama.cpp", version=f"llama-cpp-python {llama_cpp.__version__}",
                 system_info=llama_cpp.llama_print_system_info().decode().strip(),
                 settings={"n_ctx": n_ctx, "n_batch": batch, "n_ubatch": batch,
                           "n_threads": job.threads, "flash_attn": flash}, **extra))


if __name__ == "__main__":
    main()
