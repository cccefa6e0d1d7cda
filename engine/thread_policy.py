"""Decoding fast on a desktop that is never idle: a second CPU session when the CPU is shared.

ONNX Runtime's intra-op pool spins its threads between operators. On a quiet machine that is the
fastest setting (a 135M model on 2 cores: ~85 tok/s against ~60 with one thread), but when
another program keeps a core busy, a spinning thread that shares that core stalls every
operator until the scheduler gives it a turn, and decode collapses (~40 tok/s, where one thread
still gives ~62). No fixed setting is good in both cases (benchmarks/RESULTS.md, issue 26).

So the runner watches its own steps. While the process gets clearly less CPU time during a step
than its threads could use, something else runs on our cores: then (once per model, in the
background) it opens a *narrow* session of the same graph, half the threads and no spinning, and
from then on times its one-token steps, keeps using whichever session is faster and now and then
tries the other one for a few steps, because the machine's load changes while the user chats. A
step that suddenly takes much longer than it used to makes it try the other session at once.

Both sessions run the same graph on the same cache buffers, so the choice never changes a token.
A quiet machine never pays for the second session's memory (a copy of the prepacked weights: 175
MB for the default model). An explicit ``threads`` count, CUDA, a single core, or too little
free memory keep one session, as before.
"""

from __future__ import annotations

import logging
import os
import statistics
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path

import onnxruntime as ort

from engine.device import cpu_cores
from engine.memory import available_memory

logger = logging.getLogger(__name__)

WIDE, NARROW = 0, 1
FIRST_PROBE_AFTER = 16  # one-token steps before the first try of the other session
MAX_PROBE_INTERVAL = 512  # steps; at ~60 tok/s a lost probe costs ~2% at this spacing
PROBE_STEPS = 5  # steps on the other session per try; the first only wakes its threads
SWITCH_GAIN = 0.9  # switch when the other session's steps take < 90% of the current ones
SLOWDOWN = 1.6  # the current session's steps this much slower than at the last choice: re-probe
SHARED_CPU = 0.8  # CPU time per step below this share of the wide threads' means a shared CPU
CPU_WINDOW = 16  # steps over which the CPU share is measured
_RECENT = 8  # steps whose median stands for the current session
# The narrow session holds its own prepacked weights: only when that leaves plenty of memory.
_MEMORY_SHARE = 0.25


def physical_cores() -> int:
    """Physical cores among the usable ones (ONNX Runtime's default pool has a thread each);
    the usable count where the OS does not say which logical CPUs share a core."""
    try:
        usable = os.sched_getaffinity(0)
    except (AttributeError, OSError):
        return cpu_cores()
    cores = set()
    for cpu in usable:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            cores.add((topology.joinpath("physical_package_id").read_text().strip(),
                       topology.joinpath("core_id").read_text().strip()))
        except OSError:
            return cpu_cores()
    return max(1, len(cores))


def narrow_threads(device: str, threads: int | None) -> int | None:
    """Threads of the narrow session, or None when the model keeps one session: CUDA, an
    explicit thread count (the caller chose), or a single core."""
    if device != "cpu" or threads is not None:
        return None
    cores = physical_cores()
    return max(1, cores // 2) if cores >= 2 else None


def room_for_second_session(weights_file: Path) -> bool:
    """Whether a second copy of the weights fits comfortably in the free memory."""
    free = available_memory()
    try:
        size = weights_file.stat().st_size + sum(
            p.stat().st_size for p in weights_file.parent.glob(f"{weights_file.name}*.data"))
    except OSError:
        return False
    return free is None or size <= _MEMORY_SHARE * free


class SessionChooser:
    """Picks WIDE or NARROW for each forward pass from what the steps cost.

    Until the narrow session exists only the CPU share of the wide one's steps is watched
    (``wants_narrow``). Prompts (more than one token) run on the current choice and are not
    timed: their length varies, and a step's time is what tells the two sessions apart.

    Args:
        wide_threads: threads of the wide session (what its steps could use at most).
    """

    def __init__(self, wide_threads: int) -> None:
        self.wide_threads = wide_threads
        self.current = WIDE
        self.switches = 0
        self.wants_narrow = False
        self.has_narrow = False
        self._cpu = [0.0, 0.0]  # CPU and wall seconds of the wide steps in this window
        self._window = 0
        self._recent: deque[float] = deque(maxlen=_RECENT)
        self._baseline: float | None = None  # current's median step time at the last choice
        self._interval = FIRST_PROBE_AFTER
        self._until_probe = FIRST_PROBE_AFTER
        self._probe: list[float] | None = None  # step times on the other session, while trying

    @property
    def other(self) -> int:
        return NARROW if self.current == WIDE else WIDE

    def narrow_ready(self) -> None:
        """The narrow session exists now: try it at once."""
        self.has_narrow = True
        self._probe = []

    def pick(self, tokens: int) -> int:
        """The session for a forward pass of ``tokens`` new tokens."""
        if tokens == 1 and self._probe is not None:
            return self.other
        return self.current

    def record(self, index: int, tokens: int, seconds: float, cpu_seconds: float) -> None:
        """Takes the wall and process CPU time of a forward pass that ran on ``index``."""
        if tokens != 1:
            return
        if not self.has_narrow:
            self._watch_cpu(seconds, cpu_seconds)
            return
        if self._probe is not None and index == self.other:
            self._probe.append(seconds)
            if len(self._probe) >= PROBE_STEPS:
                self._decide(self._probe[1:])
            return
        self._recent.append(seconds)
        self._until_probe -= 1
        if self._slowed_down():
            # Only the slow steps stand for the current session now, not the quiet ones before.
            self._recent = deque(list(self._recent)[-3:], maxlen=_RECENT)
            self._probe = []
        elif self._until_probe <= 0 and len(self._recent) >= 3:
            self._probe = []

    def _watch_cpu(self, seconds: float, cpu_seconds: float) -> None:
        self._cpu[0] += cpu_seconds
        self._cpu[1] += seconds
        self._window += 1
        if self._window < CPU_WINDOW:
            return
        cpu, wall = self._cpu
        if cpu < SHARED_CPU * self.wide_threads * wall and not self.wants_narrow:
            logger.info("decode steps got %.1f of %d cores: the CPU is shared", cpu / wall,
                        self.wide_threads)
            self.wants_narrow = True
        self._cpu, self._window = [0.0, 0.0], 0

    def _slowed_down(self) -> bool:
        if self._baseline is None or len(self._recent) < 3:
            return False
        return statistics.median(list(self._recent)[-3:]) > SLOWDOWN * self._baseline

    def _decide(self, tried: list[float]) -> None:
        mine = statistics.median(self._recent) if self._recent else float("inf")
        theirs = statistics.median(tried)
        self._probe = None
        if theirs < SWITCH_GAIN * mine:
            self.current = self.other
            self.switches += 1
            self._recent = deque(tried, maxlen=_RECENT)
            self._baseline = theirs
            self._interval = FIRST_PROBE_AFTER
        else:
            self._baseline = mine
            self._interval = min(2 * self._interval, MAX_PROBE_INTERVAL)
        self._until_probe = self._interval



class BackgroundSession:
    """A session opened on a thread of its own, so the decode loop never waits for it.

    ``factory`` runs once; ``take`` gives its session when it is done (None until then, and
    forever when it failed: the model then keeps its one session, which is what it had).
    """

    def __init__(self, factory: Callable[[], ort.InferenceSession]) -> None:
        self._factory = factory
        self._session: ort.InferenceSession | None = None
        self._done = threading.Event()
        threading.Thread(target=self._build, name="nightlamp-narrow-session", daemon=True).start()

    def _build(self) -> None:
        try:
            self._session = self._factory()
        except Exception as error:  # the wide session still works: log, don't fail the answer
            logger.warning("could not open a session for a busy CPU: %s", error)
        finally:
            self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def take(self) -> ort.InferenceSession | None:
        session, self._session = self._session, None
        return session
