"""ONNX Runtime thread settings against a busy CPU: what issue 26's thread policy was chosen from.

    .venv/bin/python benchmarks/thread_settings.py [-m MODEL] [--burners 0 1 2] [--runs 3]
        [--settings t1 t2-spin ...] [--json OUT]

For every burner count (other processes each keeping a core busy, ``benchmarks/cpu_burners.py``)
and every setting below, the model's decoder graph is opened in a session of that setting and
timed the way ``nightlamp bench`` times it: a 128-token prompt in one pass (prefill tok/s), then
``--new-tokens`` greedy one-token steps (decode tok/s, the median of ``--runs`` runs after a
warm-up). ``auto`` is the engine's own policy (``load_model`` with no thread count: one thread
per physical core, and the narrow no-spin session once the CPU is shared, see
``engine/thread_policy.py``). Each setting gets a fresh session; the burners run for the whole
round of settings.

Settings (threads, then session config entries):
- ``t1``: 1 thread (no pool at all)
- ``t2-pinned``: ONNX Runtime's default count and affinity (one pinned thread per physical core)
- ``t2-spin``: 2 threads, spinning (ONNX Runtime's default spinning)
- ``t2-nospin``: 2 threads, ``session.intra_op.allow_spinning=0``
- ``t2-spin-dbb4`` / ``t2-nospin-dbb4``: the same with ``session.dynamic_block_base=4``
- ``t2-spin50us`` / ``t2-spin500us``: ``session.intra_op.spin_duration_us`` 50 / 500
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import onnxruntime as ort
from cpu_burners import cpu_burners

from engine.benchmark import bench_prompt, measure_once
from engine.formats import check_inside
from engine.model import Model, load_model, require_decoder
from engine.runner import DecoderRunner

SETTINGS: dict[str, tuple[int, dict[str, str]]] = {
    "t1": (1, {}),
    "t2-pinned": (0, {}),
    "t2-spin": (2, {}),
    "t2-nospin": (2, {"session.intra_op.allow_spinning": "0"}),
    "t2-spin-dbb4": (2, {"session.dynamic_block_base": "4"}),
    "t2-nospin-dbb4": (2, {"session.intra_op.allow_spinning": "0",
                           "session.dynamic_block_base": "4"}),
    "t2-spin50us": (2, {"session.intra_op.spin_duration_us": "50"}),
    "t2-spin500us": (2, {"session.intra_op.spin_duration_us": "500"}),
}
PROMPT_TOKENS = 128


def open_setting(model: Model, threads: int, entries: dict[str, str]) -> ort.InferenceSession:
    """The model's decoder graph in a CPU session of one setting."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    for key, value in entries.items():
        options.add_session_config_entry(key, value)
    path = check_inside(model.folder, model.manifest.decoder_file, "files.decoder")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def measure(model: Model, runs: int, new_tokens: int) -> dict[str, Any]:
    """Prefill and decode tok/s of the model's runner (a warm-up, then ``runs`` runs)."""
    prompt = bench_prompt(model, PROMPT_TOKENS)
    # A full-length warm-up: "auto" finds out about a busy CPU during it (what the first answer
    # after another program starts pays), reported apart from the measured runs.
    first = measure_once(model, prompt, new_tokens)
    done = [measure_once(model, prompt, new_tokens) for _ in range(runs)]
    return {"decode_tok_s": round(statistics.median(r.decode_tok_s for r in done), 1),
            "warm_up_decode_tok_s": round(first.decode_tok_s, 1),
            "decode_runs": [round(r.decode_tok_s, 1) for r in done],
            "prefill_tok_s": round(PROMPT_TOKENS / statistics.median(r.ttft_s for r in done))}


def run_setting(name: str, model_spec: str, base: Model, runs: int,
                new_tokens: int) -> dict[str, Any]:
    if name == "auto":
        model = require_decoder(load_model(model_spec, device="cpu"))
        figures = measure(model, runs, new_tokens)
        runner = model.decoder_runner()
        chooser = runner.chooser
        figures["sessions_opened"] = len(runner.sessions)
        figures["switches"] = chooser.switches if chooser is not None else 0
        return figures
    threads, entries = SETTINGS[name]
    session = open_setting(base, threads, entries)
    # The runner is what load_model's Model would make, on this session.
    base._runner = DecoderRunner(session, base.manifest, "cpu")
    return measure(base, runs, new_tokens)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-m", "--model", default=None, help="store name or folder (default: "
                        "the default model)")
    parser.add_argument("--burners", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--settings", nargs="+", default=["auto", *SETTINGS],
                        choices=["auto", *SETTINGS])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if any(b < 0 for b in args.burners) or args.runs < 1 or args.new_tokens < 2:
        parser.error("--burners >= 0, --runs >= 1 and --new-tokens >= 2")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    base = require_decoder(load_model(args.model, device="cpu", threads=1))
    rows: list[dict[str, Any]] = []
    print(f"{base.name}, {os.cpu_count()} CPUs, load average {os.getloadavg()}")
    print("| busy cores | setting | prefill tok/s | decode tok/s (runs) |")
    print("|---:|---|---:|---|")
    for burners in args.burners:
        with cpu_burners(burners):
            for name in args.settings:
                row = {"busy_cores": burners, "setting": name,
                       **run_setting(name, args.model, base, args.runs, args.new_tokens)}
                rows.append(row)
                print(f"| {burners} | {name} | {row['prefill_tok_s']} | {row['decode_tok_s']} "
                      f"({', '.join(map(str, row['decode_runs']))}) |", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"model": base.name, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
