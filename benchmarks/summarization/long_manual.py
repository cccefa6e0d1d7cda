"""A 2,415-page manual end to end, and how fast Stop is answered while it runs.

    NIGHTLAMP_HOME=/tmp/nlbench .venv/bin/python benchmarks/summarization/long_manual.py \
        [--stops 5 20 45 80] [--threads 2]

The document is R's reference manual (``refman.pdf`` from Debian's ``r-doc-pdf``, fetched once
with ``apt-get download`` as ``faithfulness.py`` does). One full ``auto`` summary (medium length)
with the time spent reading, sectioning and summarizing and the peak resident memory; then one
run per ``--stops`` value in which Stop is pressed that many seconds after the start (a flag the
summarizer polls, as the app's Stop button sets its cancel token), reporting how long after the
press the summary ended. Everything runs in this process; peak memory is this process's.
"""

from __future__ import annotations

import argparse
import resource
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))
sys.path.insert(0, str(HERE))

from faithfulness import CACHE, fetch_package_file  # noqa: E402

from engine.documents import read_document  # noqa: E402
from engine.errors import OperationCancelledError  # noqa: E402
from engine.model import Model, load_model  # noqa: E402
from engine.summarize import summarize  # noqa: E402


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stops", type=float, nargs="*", default=[5, 20, 45, 80])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    path = fetch_package_file("refman", "r-doc-pdf", "usr/share/doc/r-doc-pdf/manual/refman.pdf")
    model = load_model(None, device="cpu", threads=args.threads)
    assert isinstance(model, Model)
    print(f"model loaded: peak {peak_mb():.0f} MB ({CACHE})")
    started = time.perf_counter()
    document = read_document(path)
    read_s = time.perf_counter() - started
    print(f"read: {document.pages} pages, {document.char_count:,} characters, {read_s:.1f} s, "
          f"peak {peak_mb():.0f} MB")
    stages: dict[str, float] = {}

    def progress(stage: str, done: int, total: int) -> None:
        stages.setdefault(stage, time.perf_counter() - started)

    result = summarize(document, model, "auto", "medium", progress=progress)
    total_s = time.perf_counter() - started
    grounding = result.grounding
    assert grounding is not None
    print(f"summary: {len(result.sections)} sections, {result.chunks} inputs, "
          f"{total_s:.1f} s end to end (summarizing {result.seconds:.1f} s), peak "
          f"{peak_mb():.0f} MB; sentences {grounding.checked} checked, "
          f"{grounding.regenerated} regenerated, {grounding.replaced} replaced; first stage "
          f"times {', '.join(f'{k} {v:.1f} s' for k, v in stages.items())}")
    for after in args.stops:
        pressed: list[float] = []
        def press(box: list[float] = pressed) -> None:
            box.append(time.perf_counter())

        timer = threading.Timer(after, press)
        timer.start()
        began = time.perf_counter()
        try:
            summarize(document, model, "auto", "medium", should_stop=pressed.__len__)
            print(f"stop at {after:.0f} s: finished before it")
        except OperationCancelledError:
            ended = time.perf_counter()
            print(f"stop at {after:.0f} s (pressed {pressed[0] - began:.2f} s in): ended "
                  f"{ended - pressed[0]:.3f} s after the press")
        timer.cancel()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
