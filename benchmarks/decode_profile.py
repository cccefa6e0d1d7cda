"""Where a decode step's time goes: per-operator milliseconds, bytes read per token, and how
close the step is to this machine's memory-bandwidth limit.

    .venv/bin/python benchmarks/decode_profile.py -m smollm2-135m-instruct --context 128 512

For each context length: a prompt of that many tokens, then 64 decode steps profiled with ONNX
Runtime's profiler (per-operator kernel times; the profiler itself slows each step, so the
shares matter more than the sum), and 128 unprofiled steps for the real step time. Bytes per
token = every weight a step reads (the quantized matrices with their scales and zero points,
the norms, one embedding row) + the KV cache read at that context. Bandwidth is measured here:
2 threads summing a 1 GiB array. Prints a JSON object per context and a Markdown table.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.model import Model, load_model
from engine.runner import DecoderRunner

PROFILED_STEPS = 64
TIMED_STEPS = 128


def read_bandwidth_gbs(threads: int = 2, size_gib: float = 1.0, repeats: int = 5) -> float:
    """Best of `repeats`: `threads` threads each summing their share of one large array (numpy
    releases the GIL while it sums), bytes read / seconds."""
    data = np.ones(int(size_gib * 2**30) // 8, dtype=np.float64)
    parts = np.array_split(data, threads)
    best = 0.0
    for _ in range(repeats):
        workers = [threading.Thread(target=np.sum, args=(part,)) for part in parts]
        started = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        best = max(best, data.nbytes / (time.perf_counter() - started) / 1e9)
    return best


def weight_bytes_per_token(path: Path) -> int:
    """Bytes of weights one decode step reads: every initializer, except that of a gathered
    table (embeddings) only one row is read and of the rotary tables one position."""
    graph = onnx.load(str(path), load_external_data=False).graph
    sizes = {t.name: int(np.prod(t.dims)) * onnx.helper.tensor_dtype_to_np_dtype(
        t.data_type).itemsize for t in graph.initializer}
    rows = {t.name: int(t.dims[0]) if t.dims else 1 for t in graph.initializer}
    partial: set[str] = set()
    for node in graph.node:
        if node.op_type in ("Gather", "GatherBlockQuantized"):
            partial.update(name for index, name in enumerate(node.input) if index != 1)
        elif node.op_type == "GroupQueryAttention":
            partial.update(node.input[7:9])
    return sum(size // rows[name] if name in partial else size
               for name, size in sizes.items())


def kv_bytes(model: Model, context: int) -> int:
    cache = model.manifest.kv_cache
    assert cache is not None
    itemsize = 2 if cache.dtype == "float16" else 4
    return 2 * cache.num_layers * cache.num_kv_heads * cache.head_dim * itemsize * context


def profile(model: Model, threads: int, context: int) -> dict[str, object]:
    prompt = [(7 * i + 11) % (model.manifest.vocab_size - 10) + 5 for i in range(context)]
    runner = DecoderRunner(model.session, model.manifest)
    token = int(np.argmax(runner.forward(prompt)))
    started = time.perf_counter()
    for _ in range(TIMED_STEPS):
        token = int(np.argmax(runner.forward([token])))
    step_ms = (time.perf_counter() - started) / TIMED_STEPS * 1000

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.enable_profiling = True
    options.profile_file_prefix = str(Path(tempfile.gettempdir()) / "nightlamp_decode_profile")
    options.log_severity_level = 3
    session = ort.InferenceSession(str(model.folder / model.manifest.decoder_file), options,
                                   providers=["CPUExecutionProvider"])
    profiled = DecoderRunner(session, model.manifest)
    token = int(np.argmax(profiled.forward(prompt)))
    for _ in range(PROFILED_STEPS):
        token = int(np.argmax(profiled.forward([token])))
    profile_file = Path(session.end_profiling())
    events = json.loads(profile_file.read_text(encoding="utf-8"))
    profile_file.unlink()
    runs = [e for e in events if e.get("cat") == "Session" and e["name"] == "model_run"]
    first_step = runs[1]["ts"]
    per_op: collections.Counter[str] = collections.Counter()
    count: collections.Counter[str] = collections.Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time") \
                and event["ts"] >= first_step:
            per_op[event["args"]["op_name"]] += event["dur"]
            count[event["args"]["op_name"]] += 1
    profiled_ms = sum(e["dur"] for e in runs[1:]) / PROFILED_STEPS / 1000
    kernels = sum(per_op.values()) / PROFILED_STEPS / 1000
    weights = weight_bytes_per_token(model.folder / model.manifest.decoder_file)
    read = weights + kv_bytes(model, context + TIMED_STEPS // 2)
    return {
        "context": context, "step_ms": round(step_ms, 3),
        "decode_tok_s": round(1000 / step_ms, 1),
        "profiled_step_ms": round(profiled_ms, 3),
        "operators": {op: {"ms": round(us / PROFILED_STEPS / 1000, 3),
                           "share": round(us / PROFILED_STEPS / 1000 / kernels, 3),
                           "nodes": count[op] // PROFILED_STEPS}
                      for op, us in per_op.most_common()},
        "outside_kernels_share": round(1 - kernels / profiled_ms, 3),
        "weight_mb": round(weights / 1e6, 1),
        "kv_mb": round(kv_bytes(model, context + TIMED_STEPS // 2) / 1e6, 1),
        "bytes_per_token_mb": round(read / 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-m", "--model", default=None)
    parser.add_argument("--context", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    model = load_model(args.model, device="cpu", threads=args.threads)
    bandwidth = read_bandwidth_gbs(args.threads)
    print(f"{model.name} ({model.manifest.precision}), {args.threads} threads; measured read "
          f"bandwidth {bandwidth:.1f} GB/s")
    rows = []
    for context in args.context:
        result = profile(model, args.threads, context)
        limit = bandwidth * 1e3 / result["bytes_per_token_mb"]  # type: ignore[operator]
        result["bandwidth_gbs"] = round(bandwidth, 1)
        result["bandwidth_limit_tok_s"] = round(limit, 1)
        print(json.dumps(result))
        rows.append(result)
    print("\n| context | step | tok/s | MB read/token | bandwidth limit | of limit | top operators "
          "(share of kernel time) |\n|---|---|---|---|---|---|---|")
    for row in rows:
        ops = row["operators"]
        assert isinstance(ops, dict)
        top = ", ".join(f"{op} {v['share']:.0%}" for op, v in list(ops.items())[:4])
        print(f"| {row['context']} | {row['step_ms']} ms | {row['decode_tok_s']} | "
              f"{row['bytes_per_token_mb']} | {row['bandwidth_limit_tok_s']} tok/s | "
              f"{row['decode_tok_s'] / row['bandwidth_limit_tok_s']:.0%} | {top} |")  # type: ignore[operator]


if __name__ == "__main__":
    main()
