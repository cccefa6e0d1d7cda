"""Busy cores on demand, for benchmarks of a desktop that is never idle.

    with cpu_burners(1):
        ...  # one core is kept busy by another process meanwhile

Each burner is a child process spinning in pure Python (one core each, no memory). It looks up
every 0.2 s whether its parent is still there and exits when it is not, so a benchmark that is
killed never leaves a burner behind; it runs in a session of its own, so a Ctrl-C in the
terminal reaches only the benchmark, which stops the burners itself.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator

_BURN = (
    "import os, sys, time\n"
    "parent = int(sys.argv[1])\n"
    "while os.getppid() == parent:\n"
    "    end = time.monotonic() + 0.2\n"
    "    while time.monotonic() < end:\n"
    "        pass\n"
)
SETTLE_S = 1.0  # the scheduler spreads the burners over the cores in well under this


def start_burners(count: int) -> list[subprocess.Popen[bytes]]:
    """``count`` CPU-bound children (0: none)."""
    if count < 0:
        raise ValueError(f"burner count must be >= 0 (got {count})")
    return [subprocess.Popen([sys.executable, "-c", _BURN, str(os.getpid())],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
            for _ in range(count)]


def stop_burners(burners: list[subprocess.Popen[bytes]]) -> None:
    """Kills and reaps every burner (safe to call twice, or on ones that already exited)."""
    for burner in burners:
        if burner.poll() is None:
            burner.kill()
    for burner in burners:
        with contextlib.suppress(subprocess.TimeoutExpired):
            burner.wait(timeout=5)


@contextlib.contextmanager
def cpu_burners(count: int, settle_s: float = SETTLE_S) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Keeps ``count`` cores busy for the duration of the block, stopped however it ends;
    waits ``settle_s`` first (pass 0 to wait some other way, e.g. in an event loop)."""
    burners: list[subprocess.Popen[bytes]] = []
    try:
        burners = start_burners(count)
        if burners and settle_s > 0:
            time.sleep(settle_s)
        yield burners
    finally:
        stop_burners(burners)
