"""What every benchmark worker shares: the job it reads, the timed loop and the JSON it prints.

Each worker runs in its runtime's own venv, so this module uses the standard library only. All
runtimes are timed the same way, with ``time.perf_counter`` around the same phases:

* TTFT: from submitting the prompt ids until the first new token id is known (prefill forward
  pass plus picking the token);
* decode: the ``new_tokens - 1`` tokens after the first, over the time from the first token to
  the last (each one a forward pass of one token plus picking).

Greedy everywhere; the end-of-sequence tokens are blocked so every runtime generates the full
count. A job is a JSON file: model, prompt_ids, new_tokens, runs, threads, block_ids.
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass
class Job:
    """One benchmark job, written by run.py."""

    model: str
    prompt_ids: list[int]
    new_tokens: int
    runs: int
    threads: int
    block_ids: list[int]  # token ids never picked (EOS and other stop tokens)
    options: dict[str, Any]

    @classmethod
    def read(cls, path: str) -> Job:
        with open(path, encoding="utf-8") as file:
            data = json.load(file)
        return cls(model=data["model"], prompt_ids=[int(i) for i in data["prompt_ids"]],
                   new_tokens=int(data["new_tokens"]), runs=int(data["runs"]),
                   threads=int(data["threads"]), block_ids=[int(i) for i in data["block_ids"]],
                   options=dict(data.get("options") or {}))


@dataclass
class Run:
    """Timings of one generation."""

    ttft_s: float
    decode_s: float
    token_ids: list[int]


# A runtime supplies: prefill(prompt_ids) -> first token id; step(token id) -> next token id;
# optionally reset(), run before each generation and outside the timing (fresh cache/state).
Prefill = Callable[[Sequence[int]], int]
Step = Callable[[int], int]
Reset = Callable[[], None]


def timed_run(prefill: Prefill, step: Step, prompt_ids: Sequence[int], new_tokens: int,
              reset: Reset | None = None) -> Run:
    """One greedy generation of exactly ``new_tokens`` tokens, timed in two phases."""
    if reset is not None:
        reset()
    started = time.perf_counter()
    token = prefill(prompt_ids)
    first = time.perf_counter()
    tokens = [token]
    for _ in range(new_tokens - 1):
        token = step(token)
        tokens.append(token)
    done = time.perf_counter()
    return Run(ttft_s=first - started, decode_s=done - first, token_ids=tokens)


def summary(load_s: float, prompt_tokens: int, new_tokens: int, runs: Sequence[Run],
            **extra: Any) -> dict[str, Any]:
    """Medians over the measured runs (and the spread of decode speed), as run.py reads them."""
    ttft = [r.ttft_s for r in runs]
    decode = [(new_tokens - 1) / r.decode_s for r in runs if r.decode_s > 0]
    return {
        "load_s": round(load_s, 3),
        "prompt_tokens": prompt_tokens,
        "new_tokens": new_tokens,
        "runs": len(runs),
        "ttft_s": round(statistics.median(ttft), 4),
        "ttft_s_all": [round(t, 4) for t in ttft],
        "prefill_tok_s": round(prompt_tokens / statistics.median(ttft), 1),
        "decode_tok_s": round(statistics.median(decode), 2),
        "decode_tok_s_min": round(min(decode), 2),
        "decode_tok_s_max": round(max(decode), 2),
        "decode_tok_s_all": [round(d, 2) for d in decode],
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "token_ids": runs[-1].token_ids,
        "same_ids_every_run": all(r.token_ids == runs[0].token_ids for r in runs),
        **extra,
    }


def peak_rss_mb() -> float:
    """Peak resident memory of this process (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def emit(result: dict[str, Any]) -> None:
    """Prints the result as the one JSON line run.py looks for."""
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()


def run_all(job: Job, prefill: Prefill, step: Step, reset: Reset | None = None) -> list[Run]:
    """One warm-up generation, then ``job.runs`` measured ones."""
    timed_run(prefill, step, job.prompt_ids, job.new_tokens, reset)
    return [timed_run(prefill, step, job.prompt_ids, job.new_tokens, reset)
            for _ in range(job.runs)]
