"""Decoding fast on a desktop that is never idle: a second CPU session when the CPU is shared.

ONNX Runtime's intra-op pool spins its threads between operators. On a quiet machine that is the
fastest setting (a 135M model on 2 cores: ~85 tok/s against ~60 with one thread), but when
another program keeps a core busy, a spinning thread that shares that core stalls every
operator until the scheduler gives it a turn, and decode collapses (~40 tok/s, where one thread
still gives ~62). No fixed setting is good in both cases (benchmarks/RESULTS.md, issue 26).

So the runner watches its own steps. When the process gets clearly less CPU time during its
steps than its threads could use, another program shares our cores: then (once per model, in the
background) it opens a *narrow* session of the same graph, half the threads and no spinning,
and moves to it unless its steps turn out slower. Now and then, at growing spacing, it tries the
wide session again, and moves back once those steps get the whole CPU again and are faster:
the machine's load changes while the user chats.

Both sessions run the same graph on the same cache buffers, so the choice never changes a token.
A quiet machine never pays for the second session's memory (a copy of the prepacked weights: 175
MB for the default model). An explicit ``threads`` count, CUDA, a single core, or too little
free memory keep one session, as before.
"""

from __future__ import annotations

import logging
import statistics
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path

import onnxruntime as ort

from engine.memory import available_memory, weights_bytes

logger = logging.getLogger(__name__)

WIDE, NARROW = 0, 1
RETRY_AFTER_SWITCH = 64  # one-token steps before the session just left is tried again
MAX_PROBE_INTERVAL = 1024  # steps; each lost try quadruples the spacing up to this (~15 s)
PROBE_STEPS = 5  # steps on the other session per try; the first only wakes its threads
CLEAR_LOSS = 1.3  # a tried step this much slower than the current ones ends the try at once
NARROW_TOLERANCE = 1.1  # on a shared CPU, NARROW is kept unless its steps are 10% slower
SHARED_CPU = 0.8  # CPU time per step below this share of the wide threads' means a shared CPU
CPU_WINDOW = 16  # steps over which the CPU share is measured
_RECENT = 8  # steps whose median stands for the current session
# The narrow session holds its own prepacked weights: only when that leaves plenty of memory.
_MEMORY_SHARE = 0.25


def narrow_threads(device: str, threads: int | None, cores: int) -> int | None:
    """Threads of the narrow session beside a wide one on ``cores`` physical cores, or None
    when the model keeps one session: CUDA, an explicit thread count (the caller chose), or a
    single core."""
    if device != "cpu" or threads is not None:
        return None
    return max(1, cores // 2) if cores >= 2 else None


def room_for_second_session(weights_file: Path) -> bool:
    """Whether a second copy of the weights fits comfortably in the free memory."""
    free = available_memory()
    try:
        size = weights_bytes(weights_file)
    except OSError:
        return False
    return free is None or size <= _MEMORY_SHARE * free


class SessionChooser:
    """Picks WIDE or NARROW for each forward pass from what the one-token steps cost.

    On WIDE the CPU share of the steps is watched: well below what its threads could use means
    another program shares the cores, and NARROW is tried (opened first, ``wants_narrow``); it
    is kept unless its steps are slower. On NARROW, WIDE is tried now and then, at growing
    spacing, and taken back only when its steps again get the whole CPU and are faster. The
    CPU share decides because step times under contention swing with the scheduler's time
    slices, and a thread pool that has slept gets the CPU first for a step or two, so a short
    timing comparison alone favours whichever session rested. Prompts (more than one token) run
    on the current choice and are not counted.

    Args:
        wide_threads: threads of the wide session (what its steps could use at most).
    """

    def __init__(self, wide_threads: int) -> None:
        self.wide_threads = wide_threads
        self.current = WIDE
        self.switches = 0
        self.wants_narrow = False
        self.has_narrow = False
        self._window = [0.0, 0.0, 0]  # CPU seconds, wall seconds and steps on WIDE
        self._recent: deque[float] = deque(maxlen=_RECENT)
        self._interval = RETRY_AFTER_SWITCH
        self._until_probe = RETRY_AFTER_SWITCH
        self._windows_to_skip = 0  # shared-CPU windows to let pass after NARROW lost a try
        self._narrow_losses = 0
        self._probe: list[tuple[float, float]] | None = None  # (wall, CPU) on the other session

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
        if self._probe is not None and index == self.other:
            self._probe.append((seconds, cpu_seconds))
            if len(self._probe) >= PROBE_STEPS or self._clearly_lost():
                self._decide()
            return
        self._recent.append(seconds)
        if self.current == WIDE:
            if self._cpu_shared(seconds, cpu_seconds):
                if self.has_narrow:
                    self._probe = []
                else:
                    self.wants_narrow = True
            return
        self._until_probe -= 1
        if self._until_probe <= 0:
            self._probe = []

    def _cpu_shared(self, seconds: float, cpu_seconds: float) -> bool:
        """True at the end of a window of WIDE steps that got clearly less than their CPU."""
        window = self._window
        window[0] += cpu_seconds
        window[1] += seconds
        window[2] += 1
        if window[2] < CPU_WINDOW:
            return False
        cpu, wall = window[0], window[1]
        self._window = [0.0, 0.0, 0]
        logger.debug("wide steps: %.2f of %d cores", cpu / max(wall, 1e-9), self.wide_threads)
        if cpu >= SHARED_CPU * self.wide_threads * wall:
            return False
        if self._windows_to_skip > 0:
            self._windows_to_skip -= 1
            return False
        logger.info("decode steps got %.1f of %d cores: the CPU is shared", cpu / wall,
                    self.wide_threads)
        return True

    def _clearly_lost(self) -> bool:
        """A try of WIDE ends after one measured step when that step is far slower."""
        if self.other != WIDE or self._probe is None or len(self._probe) < 2:
            return False
        return bool(self._recent) and \
            self._probe[-1][0] > CLEAR_LOSS * statistics.median(self._recent)

    def _decide(self) -> None:
        assert self._probe is not None
        tried, self._probe = self._probe[1:], None  # the first step only woke the threads
        mine = statistics.median(self._recent) if self._recent else float("inf")
        theirs = statistics.median(wall for wall, _ in tried)
        if self.other == NARROW:
            better = theirs < NARROW_TOLERANCE * mine
        else:
            share = sum(cpu for _, cpu in tried) / max(sum(wall for wall, _ in tried), 1e-9)
            better = theirs < mine and share >= SHARED_CPU * self.wide_threads
        logger.debug("on session %d: %.1f ms a step; session %d tried: %.1f ms (%s)",
                     self.current, 1000 * mine, self.other, 1000 * theirs,
                     "switching" if better else "staying")
        if better:
            self.current = self.other
            self.switches += 1
            self._recent = deque((wall for wall, _ in tried), maxlen=_RECENT)
            self._interval = self._until_probe = RETRY_AFTER_SWITCH
            self._window = [0.0, 0.0, 0]
        elif self.other == NARROW:  # NARROW is slower even so: ask less often
            self._narrow_losses += 1
            self._windows_to_skip = 4 ** min(self._narrow_losses, 4)
        else:
            self._interval = min(4 * self._interval, MAX_PROBE_INTERVAL)
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
