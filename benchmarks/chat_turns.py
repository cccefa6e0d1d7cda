"""Time to first token of a chat's second turn, with the first turn's cache kept and without.

    .venv/bin/python benchmarks/chat_turns.py -m smollm2-135m-instruct

Turn 1: a system prompt and a question about a pasted text of about 400 tokens, 64-token answer.
Turn 2: a short follow-up. The second turn is measured twice: right after the first (the engine
keeps the conversation's cache, so only the new tokens run) and after emptying the cache (the
whole conversation is prefilled again, as before the cache was kept). Greedy; medians of 3.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.benchmark import BENCH_TEXT
from engine.generation import GenerationConfig, generate, prompt_ids
from engine.model import load_model
from engine.sampling import SamplingSettings

CONFIG = GenerationConfig(max_new_tokens=64, sampling=SamplingSettings(temperature=0))


def _answer(model, messages):  # type: ignore[no-untyped-def]
    chunks = list(generate(model, messages, CONFIG))
    return "".join(c.text for c in chunks), chunks[-1].stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-m", "--model", default=None)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    model = load_model(args.model, device="cpu", threads=args.threads)
    first = [{"role": "system", "content": "You are a helpful assistant."},
             {"role": "user", "content": "Here is a text:\n\n" + BENCH_TEXT * 4
              + "\nWhat does the writer keep on her list?"}]
    _answer(model, first)  # warm-up
    kept, fresh = [], []
    for _ in range(3):
        model.decoder_runner().reset()
        answer, _ = _answer(model, first)
        second = [*first, {"role": "assistant", "content": answer},
                  {"role": "user", "content": "And what is on the desk?"}]
        _, stats = _answer(model, second)
        kept.append(stats)
        model.decoder_runner().reset()
        _, stats = _answer(model, second)
        fresh.append(stats)
    result = {
        "model": model.name, "second_turn_prompt_tokens": len(prompt_ids(model, second)),
        "cached_prompt_tokens": kept[-1].cached_prompt_tokens,
        "ttft_s_cache_kept": round(statistics.median(s.ttft_s for s in kept), 4),
        "ttft_s_cache_emptied": round(statistics.median(s.ttft_s for s in fresh), 4),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
