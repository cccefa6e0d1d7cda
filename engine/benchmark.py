"""Measures a model's generation speed the way users feel it: load time, time to first token,
prefill and decode tokens per second, peak memory.

Greedy decoding of a fixed English text cut to the requested prompt length; the stop tokens are
ignored so every run generates exactly the requested number of tokens; the first run is a
warm-up; the cache is emptied before each run so the prefill is measured, not the prefix cache.
``nightlamp bench`` prints the result; ``benchmarks/peers/run.py`` runs it next to llama.cpp and
onnxruntime-genai on the same prompt.
"""

from __future__ import annotations

import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import ConfigError
from engine.model import Model, load_model
from engine.seq2seq import Seq2SeqModel

# Public-domain style prose written for Nightlamp (no third-party text); repeated to any length.
BENCH_TEXT = (
    "The lamp stood on the desk by the window, and every evening it was the first light in the "
    "house. When the sun went down, the room grew quiet, and the lamp made a small circle of "
    "warm light. Inside that circle there was a notebook, a pencil and a cup of tea. The writer "
    "who lived there kept a list of the birds that came to the garden, the letters she meant to "
    "answer, and the books she wanted to read before the winter was over. "
)


@dataclass(frozen=True)
class BenchResult:
    model: str
    device: str
    precision: str
    prompt_tokens: int
    new_tokens: int
    runs: int
    load_s: float
    ttft_s: float  # median: prompt in, first new token chosen (prefill included)
    prefill_tok_s: float  # median
    decode_tok_s: float  # median: tokens after the first over the time they took
    decode_tok_s_min: float
    decode_tok_s_max: float
    peak_rss_mb: float  # of this process, model load included
    token_ids: tuple[int, ...]  # the greedy tokens of the last run

    def to_json(self, with_ids: bool = False) -> dict[str, object]:
        data: dict[str, object] = {
            "model": self.model, "device": self.device, "precision": self.precision,
            "prompt_tokens": self.prompt_tokens, "new_tokens": self.new_tokens,
            "runs": self.runs, "load_s": round(self.load_s, 3), "ttft_s": round(self.ttft_s, 6),
            "prefill_tok_s": round(self.prefill_tok_s, 1),
            "decode_tok_s": round(self.decode_tok_s, 2),
            "decode_tok_s_min": round(self.decode_tok_s_min, 2),
            "decode_tok_s_max": round(self.decode_tok_s_max, 2),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
        }
        if with_ids:
            data["token_ids"] = list(self.token_ids)
        return data


@dataclass(frozen=True)
class _Run:
    ttft_s: float
    decode_tok_s: float
    token_ids: tuple[int, ...]


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # bytes vs KiB


def bench_prompt(model: Model, length: int, text: str = BENCH_TEXT) -> list[int]:
    """The first `length` tokens of `text` repeated (BOS first when the model has one)."""
    if length < 1:
        raise ConfigError(f"the prompt must be at least 1 token long (got {length})",
                          hint="pass --prompt-tokens 1 or more")
    pieces = model.tokenizer.encode(text)
    if not pieces:
        raise ConfigError("the benchmark text has no tokens; give a prompt file with text")
    ids = [model.bos_token_id] if model.bos_token_id is not None else []
    while len(ids) < length:
        ids += pieces
    return ids[:length]


def measure_once(model: Model, prompt: Sequence[int], new_tokens: int) -> _Run:
    """One greedy generation of exactly `new_tokens` tokens from an empty cache."""
    runner = model.decoder_runner()
    runner.reset()
    started = time.perf_counter()
    logits = runner.forward(prompt)
    token = int(np.argmax(logits))
    first = time.perf_counter()
    tokens = [token]
    for _ in range(new_tokens - 1):
        token = int(np.argmax(runner.forward([token])))
        tokens.append(token)
    done = time.perf_counter()
    decode = (new_tokens - 1) / (done - first) if new_tokens > 1 else 0.0
    return _Run(first - started, decode, tuple(tokens))


def run_bench(model_name: str | Path | None, prompt_tokens: int = 128, new_tokens: int = 128,
              runs: int = 3, device: str = "auto", threads: int | None = None,
              text: str = BENCH_TEXT,
              progress: Callable[[int, int], None] | None = None) -> BenchResult:
    """Loads the model, warms up once and measures `runs` generations.

    Raises:
        ConfigError: bad counts, or a prompt plus new tokens longer than the model's context.
    """
    for what, value, option in (("new tokens", new_tokens, "--new-tokens"),
                                ("runs", runs, "--runs")):
        if value < 1:
            raise ConfigError(f"{what} must be at least 1 (got {value})",
                              hint=f"pass {option} 1 or more")
    started = time.perf_counter()
    model = load_model(model_name, device=device, threads=threads)
    load_s = time.perf_counter() - started
    if isinstance(model, Seq2SeqModel):
        raise ConfigError(f"{model.name} is a translation model; bench measures text "
                          "generation models")
    prompt = bench_prompt(model, prompt_tokens, text)
    if prompt_tokens + new_tokens > model.manifest.context_length:
        raise ConfigError(f"{prompt_tokens} prompt + {new_tokens} new tokens exceed "
                          f"{model.name!r}'s context of {model.manifest.context_length}")
    measure_once(model, prompt, min(new_tokens, 8))  # warm-up: first-run allocations
    results = []
    for index in range(runs):
        results.append(measure_once(model, prompt, new_tokens))
        if progress:
            progress(index + 1, runs)
    decode = [r.decode_tok_s for r in results]
    ttft = statistics.median(r.ttft_s for r in results)
    return BenchResult(
        model=model.name, device=model.device, precision=model.manifest.precision,
        prompt_tokens=len(prompt), new_tokens=new_tokens, runs=runs, load_s=load_s,
        ttft_s=ttft, prefill_tok_s=len(prompt) / ttft, decode_tok_s=statistics.median(decode),
        decode_tok_s_min=min(decode), decode_tok_s_max=max(decode), peak_rss_mb=peak_rss_mb(),
        token_ids=results[-1].token_ids,
    )
