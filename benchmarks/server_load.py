"""Load on ``nightlamp serve`` (issue 15): many streaming OpenAI clients at once, on loopback.

    .venv/bin/python benchmarks/server_load.py [-m MODEL] [--clients 32] [--requests 4]
        [--max-tokens 128] [--parallel 16] [--context 1024] [--json OUT]

Starts ``nightlamp serve --port 0`` as a child process (so the clients here do not share its
interpreter), then:

1. single client: each of the 8 prompts once, one after the other, streamed; its answers are the
   reference texts, its decode speed the single-stream figure;
2. load: ``--clients`` concurrent clients (one asyncio task each, the official ``openai``
   AsyncOpenAI client), each sending ``--requests`` streamed requests one after the other, the
   prompts taken round robin. Greedy, so every answer must equal its prompt's reference:
   nothing lost, nothing mixed between clients.

Time to first token is measured in the client, from sending the request to the first content
chunk (queueing and prefill included). Aggregate tok/s = completion tokens (the server's
``usage``) / wall time of the load phase. The run is bounded: it gives up after ``--time-limit``
seconds, and the server is stopped in every case.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import openai

REPO = Path(__file__).resolve().parents[1]
QUESTIONS = [
    "What is a lighthouse for?",
    "Give three tips for sleeping better.",
    "Explain what a CPU cache is in two sentences.",
    "Write a short poem about the night sky.",
    "How do I boil an egg?",
    "What is the difference between a list and a tuple in Python?",
    "Name some uses of a desk lamp.",
    "Why do leaves change colour in autumn?",
]


def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "commands", "serve", "--port", "0", "--parallel",
               str(args.parallel), "--context", str(args.context), "--device", "cpu"]
    if args.model:
        command += ["-m", args.model]
    child = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True,
                             env=dict(os.environ))
    assert child.stdout is not None
    line = child.stdout.readline()
    if not line.startswith("Serving at "):
        child.kill()
        raise SystemExit(f"the server did not start: {line!r}")
    return child, line.split()[2]


async def one_request(client: openai.AsyncOpenAI, model: str, question: str,
                      max_tokens: int) -> dict[str, Any]:
    sent = time.perf_counter()
    first: float | None = None
    pieces: list[str] = []
    tokens = 0
    stream = await client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": question}], temperature=0,
        max_tokens=max_tokens, stream=True, stream_options={"include_usage": True})
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            if first is None:
                first = time.perf_counter()
            pieces.append(chunk.choices[0].delta.content)
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
    done = time.perf_counter()
    first = first or done
    return {"question": question, "text": "".join(pieces), "tokens": tokens,
            "ttft_s": first - sent, "total_s": done - sent,
            "decode_tok_s": (tokens - 1) / (done - first) if tokens > 1 and done > first else 0}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def run(url: str, model: str, args: argparse.Namespace) -> dict[str, Any]:
    client = openai.AsyncOpenAI(base_url=url, api_key="benchmark", max_retries=0,
                                timeout=args.time_limit)
    single = [await one_request(client, model, q, args.max_tokens) for q in QUESTIONS]
    reference = {row["question"]: row["text"] for row in single}

    async def client_task(number: int) -> list[dict[str, Any]]:
        rows = []
        for k in range(args.requests):
            question = QUESTIONS[(number + k) % len(QUESTIONS)]
            rows.append(await one_request(client, model, question, args.max_tokens))
        return rows

    started = time.perf_counter()
    per_client = await asyncio.wait_for(
        asyncio.gather(*(client_task(n) for n in range(args.clients))), args.time_limit)
    wall = time.perf_counter() - started
    rows = [row for rows in per_client for row in rows]
    mismatched = sum(row["text"] != reference[row["question"]] for row in rows)
    tokens = sum(row["tokens"] for row in rows)
    single_tokens = sum(row["tokens"] for row in single)
    single_wall = sum(row["total_s"] for row in single)
    return {
        "model": model, "clients": args.clients, "requests_per_client": args.requests,
        "max_tokens": args.max_tokens, "parallel": args.parallel, "context": args.context,
        "single": {
            "requests": len(single), "tokens": single_tokens,
            "tok_s": round(single_tokens / single_wall, 1),
            "decode_tok_s_median": round(statistics.median(r["decode_tok_s"] for r in single), 1),
            "ttft_p50_s": round(percentile([r["ttft_s"] for r in single], 0.5), 3),
            "ttft_p95_s": round(percentile([r["ttft_s"] for r in single], 0.95), 3)},
        "load": {
            "requests": len(rows), "completed": sum(bool(r["tokens"]) for r in rows),
            "mismatched": mismatched, "tokens": tokens, "wall_s": round(wall, 1),
            "tok_s": round(tokens / wall, 1),
            "ttft_p50_s": round(percentile([r["ttft_s"] for r in rows], 0.5), 3),
            "ttft_p95_s": round(percentile([r["ttft_s"] for r in rows], 0.95), 3)},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-m", "--model", default=None, help="default: the default model")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--parallel", type=int, default=16, help="the server's slots")
    parser.add_argument("--context", type=int, default=1024)
    parser.add_argument("--time-limit", type=float, default=900.0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from engine.store import default_model_name

    model = args.model or default_model_name()
    if model is None:
        raise SystemExit("no default model: run `nightlamp models pull` or pass -m")
    child, url = start_server(args)
    try:
        result = asyncio.run(run(url, model, args))
    finally:
        child.send_signal(signal.SIGTERM)
        child.wait(timeout=30)
    single, load = result["single"], result["load"]
    print(f"single client: {single['tok_s']} tok/s (decode {single['decode_tok_s_median']}), "
          f"TTFT p50 {single['ttft_p50_s']} s")
    print(f"{args.clients} clients x {args.requests}: {load['completed']}/{load['requests']} "
          f"completed, {load['mismatched']} mismatched, {load['tok_s']} tok/s aggregate "
          f"({load['tok_s'] / single['tok_s']:.2f}x single), TTFT p50 {load['ttft_p50_s']} s "
          f"p95 {load['ttft_p95_s']} s, wall {load['wall_s']} s")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0 if load["mismatched"] == 0 and load["completed"] == load["requests"] else 1


if __name__ == "__main__":
    sys.exit(main())
