"""Generation speed of a model: load time, time to first token, prefill and decode tokens/s.

    python benchmarks/speed.py -m smollm2-135m-instruct --prompt-tokens 128 --new-tokens 128

Greedy decoding; the prompt is a fixed English text cut to the requested length; the first run
is a warm-up. Prints one JSON object (medians over the measured runs).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from engine.generation import GenerationConfig, Generator
from engine.model import load_model
from engine.sampling import SamplingSettings

TEXT = ("The lamp stood on the desk by the window, and every evening it was the first light in "
        "the house. When the sun went down, the room grew quiet, and the lamp made a small "
        "circle of warm light. Inside that circle there was a notebook, a pencil and a cup of "
        "tea. ") * 40


def measure(model, prompt: list[int], new_tokens: int) -> dict[str, float]:
    config = GenerationConfig(max_new_tokens=new_tokens, prefill_chunk=len(prompt),
                              sampling=SamplingSettings(temperature=0))
    generator = Generator(model, config)
    started = time.perf_counter()
    generator.append_tokens(prompt)
    generator.generate_next_token()
    first = time.perf_counter()
    while not generator.is_done():
        generator.generate_next_token()
    done = time.perf_counter()
    decoded = len(generator.generated) - 1
    return {"ttft_s": first - started, "prefill_tok_s": len(prompt) / (first - started),
            "decode_tok_s": decoded / (done - first) if decoded else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-m", "--model", default=None)
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    started = time.perf_counter()
    model = load_model(args.model, device=args.device, threads=args.threads)
    load_s = time.perf_counter() - started
    prompt = model.tokenizer.encode(TEXT)[: args.prompt_tokens]
    measure(model, prompt, 8)  # warm-up
    runs = [measure(model, prompt, args.new_tokens) for _ in range(args.runs)]
    result = {key: round(statistics.median(r[key] for r in runs), 3) for key in runs[0]}
    decode = [r["decode_tok_s"] for r in runs]
    print(json.dumps({"model": model.name, "precision": model.manifest.precision,
                      "device": model.device, "load_s": round(load_s, 3),
                      "prompt_tokens": len(prompt), "new_tokens": args.new_tokens, **result,
                      "decode_tok_s_min": round(min(decode), 2),
                      "decode_tok_s_max": round(max(decode), 2)}))


if __name__ == "__main__":
    main()
