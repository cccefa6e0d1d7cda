"""Many prompts at once (issue 19, task 1): 16 prompts of 256 tokens x 128 new tokens, greedy.

    .venv/bin/python benchmarks/batch_decode.py [--prompts 16] [--prompt-tokens 256]
        [--new-tokens 128] [--slots 1 4 8 16] [--peers] [--json OUT]

Nightlamp runs ``engine.batch.decode_batch`` in this process at each ``--slots`` count (1 is our
single-stream decoding, one prompt after the other); ``--peers`` adds onnxruntime-genai's batch
API (one generator, ``batch_size`` = the prompt count, in its own venv; see
``benchmarks/peers/prepare.sh``) on its int4 build of the same GGUF. The prompts are
``benchmarks/peers/prompt.txt`` tokenized and cut at 16 different offsets; stop tokens are
blocked everywhere, so every row generates prompts x new tokens. Aggregate tok/s = tokens
generated / wall time from submitting the prompts to the last token (prefill included).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks" / "peers"))

from run import peers_dir  # noqa: E402  (benchmarks/peers/run.py)

from engine.batch import BatchRequest, decode_batch  # noqa: E402
from engine.model import Model, load_model, require_decoder  # noqa: E402

PROMPT_FILE = REPO / "benchmarks" / "peers" / "prompt.txt"
GGUF_STEM = "SmolLM2-135M-Instruct.Q4_1"


def prompts_for(model: Model, count: int, length: int) -> list[list[int]]:
    ids = model.tokenizer.encode(PROMPT_FILE.read_text(encoding="utf-8"))
    if len(ids) < length + count:
        raise SystemExit(f"{PROMPT_FILE} has {len(ids)} tokens; need {length + count}")
    return [ids[i:i + length] for i in range(count)]


def nightlamp_row(model: Model, prompts: list[list[int]], new_tokens: int,
                  slots: int) -> dict[str, Any]:
    # Stop tokens blocked the way the peers block them: a request never sees them as stops.
    stops, model.stop_token_ids = model.stop_token_ids, frozenset()
    try:
        requests = [BatchRequest(p, new_tokens) for p in prompts]
        started = time.perf_counter()
        results = decode_batch(model, requests, slots=slots)
        wall = time.perf_counter() - started
    finally:
        model.stop_token_ids = stops
    generated = sum(len(r.token_ids) for r in results)
    return {"runtime": "nightlamp", "slots": slots, "generated": generated,
            "wall_s": round(wall, 3), "tok_s": round(generated / wall, 1),
            "first_row": results[0].token_ids[:32]}


def genai_row(prompts: list[list[int]], new_tokens: int, threads: int,
              block: list[int]) -> dict[str, Any]:
    peers = peers_dir()
    python = peers / "ort-genai-venv" / "bin" / "python"
    folder = peers / "models" / f"{GGUF_STEM}-ort-genai-int4"
    if not python.exists() or not folder.exists():
        raise SystemExit("onnxruntime-genai is not prepared: run benchmarks/peers/prepare.sh")
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as job:
        json.dump({"model": str(folder), "prompts": prompts, "new_tokens": new_tokens,
                   "threads": threads, "block_ids": block}, job)
    done = subprocess.run([str(python), "run_ort_genai_batch.py", job.name],
                          cwd=REPO / "benchmarks" / "peers", capture_output=True, text=True,
                          timeout=1800)
    Path(job.name).unlink()
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return dict(json.loads(line[len("RESULT "):]))
    raise SystemExit(f"onnxruntime-genai batch worker failed:\n{done.stderr[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-m", "--model", default=None)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--prompt-tokens", type=int, default=256)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--slots", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--threads", type=int, default=2, help="for the peer")
    parser.add_argument("--peers", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    model = require_decoder(load_model(args.model, device="cpu"))
    prompts = prompts_for(model, args.prompts, args.prompt_tokens)
    rows = [nightlamp_row(model, prompts, args.new_tokens, slots) for slots in args.slots]
    if args.peers:
        rows.append(genai_row(prompts, args.new_tokens, args.threads,
                              sorted(model.stop_token_ids)))
    single = next((r["tok_s"] for r in rows if r.get("slots") == 1), None)
    print(f"{model.name} ({model.manifest.precision}): {args.prompts} prompts x "
          f"{args.prompt_tokens} tokens, {args.new_tokens} new each, greedy")
    print("| runtime | slots / batch | generated | wall s | aggregate tok/s | x single |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in rows:
        ratio = f"{row['tok_s'] / single:.2f}" if single else ""
        print(f"| {row['runtime']} | {row.get('slots', row.get('batch'))} | {row['generated']} | "
              f"{row['wall_s']} | {row['tok_s']} | {ratio} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
