"""UI heartbeat during generation: does the GUI's generation starve its own UI thread? (issue 26)

    .venv/bin/python benchmarks/ui_heartbeat.py                      # burners 0 1 2, 3 answers each
    .venv/bin/python benchmarks/ui_heartbeat.py --burners 0 1 --answers 1 --json /tmp/hb.json

Method. The real app is started as the user gets it (``desktop.app.application``: fonts, theme,
translators; ``desktop.main_window.MainWindow`` on the CPU) on Qt's offscreen platform, with its
settings and chat history in a throw-away folder (the model comes from the store in
NIGHTLAMP_HOME; ``-m`` names another one, default: the store's default model). The chat is set
to greedy decoding (temperature 0) and 128 new tokens and asked for a long story; the first
answer is sent, every later one is the chat's Regenerate (same prompt, so the prompt's cache is
kept and each answer is mostly decode).

While answers are generated a 10 ms precise QTimer on the GUI thread records the time between
its ticks (QElapsedTimer, nanoseconds). An idle event loop ticks every ~10 ms; a longer gap is
time the GUI thread could not run: its own work (rendering the streamed text, saving the
history), waiting for the GIL held by the worker thread, or waiting for a CPU. The tick is a
Python slot, so it measures exactly what the app's Python slots experience. Each answer's decode
speed is the worker's own figure (``finished`` stats ``tokens_per_s``: tokens after the first
over the time they took), so no tokenizer is needed; its wall time from the click to
``answer_finished`` is recorded too.

A busy machine is simulated by CPU burners: child processes spinning in Python. For each
``--burners`` count that many start, the script waits 1 s for the scheduler to feel them, runs
``--answers`` answers, then kills them (always; on Ctrl-C too). A burner also checks every 0.2 s
that its parent is still the benchmark and exits when it is not, so none outlives a benchmark
that was killed outright.

Output: one table row per burner count (ticks, gap p50 / p99 / max, gaps over 50 and 100 ms,
median decode tok/s); ``--json PATH`` writes every gap, every answer's stats and machine facts
(CPU count, platform, load average before starting). Each answer times out after 120 s; at the
defaults a run should take about a minute on a 2-core machine (estimated from a 9 s run of
``--burners 0 1 --answers 1``). MainWindow takes no thread count, so there is no ``--threads``:
ONNX Runtime uses its default (one thread per core), as the app does.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before Qt is imported

import argparse
import contextlib
import json
import math
import platform
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cpu_burners import SETTLE_S, cpu_burners
from PySide6 import __version__ as pyside_version
from PySide6.QtCore import QElapsedTimer, QEventLoop, QObject, Qt, QTimer, Slot
from PySide6.QtWidgets import QApplication

from desktop.app import application
from desktop.chat_settings import ChatSettings
from desktop.main_window import MainWindow
from desktop.settings import AppSettings
from engine.errors import EngineError
from engine.store import default_model_name, resolve_model

HEARTBEAT_MS = 10
ANSWER_TIMEOUT_S = 120.0
LOAD_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 10.0  # after a timed-out answer's Stop, how long it may take to end
MAX_TOKENS = 128
MAX_BURNERS = 64
MAX_ANSWERS = 100
MAX_HISTORY = 64  # earlier turns; a long chat is cut to the context anyway
LATE_MS = (50, 100)
PROMPT = ("Write a long story about a lighthouse keeper who finds a lamp that never goes out. "
          "Describe the lighthouse, the sea, the village and every night of the first week.")
class _OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one line (and exit code 2), not usage plus message."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _whole_number(low: int, high: int) -> Callable[[str], int]:
    """An argparse type for a whole number from ``low`` to ``high`` (the bounds keep a run
    finite: more burners only measure the scheduler's queue, more answers only take longer)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high} (got {value})")
        return value
    return parse


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line; every bad value ends the run at once with one line and exit code 2."""
    parser = _OneLineParser(prog="ui_heartbeat.py", description=__doc__.splitlines()[0])
    parser.add_argument("-m", "--model", default=None,
                        help="model name in the store or folder (default: the store's default)")
    parser.add_argument("--burners", type=_whole_number(0, MAX_BURNERS), nargs="+",
                        default=[0, 1, 2], metavar="N",
                        help="CPU-burner counts to measure under (default: 0 1 2)")
    parser.add_argument("--answers", type=_whole_number(1, MAX_ANSWERS), default=3, metavar="N",
                        help="answers per burner count (default: 3)")
    parser.add_argument("--history", type=_whole_number(0, MAX_HISTORY), default=0, metavar="TURNS",
                        help="earlier turns already in the conversation (the chat view "
                             "re-renders all of them while an answer streams; default 0)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH",
                        help="also write every gap, every answer's stats and machine facts")
    args = parser.parse_args(argv)
    if args.json is not None and not args.json.parent.is_dir():
        parser.error(f"--json: folder {args.json.parent} does not exist")
    try:
        args.model_name = _model_spec(args.model)
    except EngineError as error:
        parser.error(f"--model: {error}")
    return args


def _model_spec(spec: str | None) -> str:
    """The model to give the window; checked here so a wrong -m fails before Qt starts.

    None becomes the store's default model by name, so the window loads exactly that one (its
    own choice would come from the user's settings, which this run does not read).
    """
    resolve_model(spec)  # raises the store's own one-line message (nothing installed, ...)
    if spec is not None:
        return spec
    name = default_model_name()
    assert name is not None  # resolve_model(None) found it
    return name


# Qt side ------------------------------------------------------------------------------------


class Interrupt:
    """Turns SIGINT / SIGTERM into KeyboardInterrupt between event loops.

    Python runs its signal handlers only between bytecodes, and an exception raised inside a Qt
    slot is printed and swallowed, so the handler just quits the loop being waited in; the wait
    then raises. A 100 ms no-op timer wakes Python up while Qt's loop would otherwise sleep."""

    def __init__(self) -> None:
        self.fired = False
        self.loops: list[QEventLoop] = []
        self._wake = QTimer()
        self._wake.setInterval(100)
        self._wake.timeout.connect(lambda: None)
        self._wake.start()
        signal.signal(signal.SIGINT, self._handle)
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.fired = True
        for loop in self.loops:
            loop.quit()

    def check(self) -> None:
        if self.fired:
            raise KeyboardInterrupt


def wait_for(interrupt: Interrupt, signals: Sequence[Any],
             timeout_s: float) -> tuple[Any, ...] | None:
    """Runs the event loop (the GUI keeps working) until one of ``signals`` fires: its
    arguments, or None on time-out."""
    interrupt.check()
    loop = QEventLoop()
    fired: list[tuple[Any, ...]] = []

    def on_signal(*args: Any) -> None:
        if not fired:
            fired.append(args)
        loop.quit()

    for sig in signals:
        sig.connect(on_signal)
    timer = QTimer()
    timer.setSingleShot(True)
    timer.timeout.connect(loop.quit)
    timer.start(int(timeout_s * 1000))
    interrupt.loops.append(loop)
    try:
        loop.exec()
    finally:
        interrupt.loops.remove(loop)
        timer.stop()
        for sig in signals:
            sig.disconnect(on_signal)
    interrupt.check()
    return fired[0] if fired else None


def pump(interrupt: Interrupt, seconds: float) -> None:
    """Keeps the event loop running for ``seconds`` (waiting without freezing the window)."""
    interrupt.check()
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    interrupt.loops.append(loop)
    try:
        loop.exec()
    finally:
        interrupt.loops.remove(loop)
    interrupt.check()


class Heartbeat:
    """A 10 ms timer on the GUI thread; the gaps between its ticks are the UI's latency.

    Precise, so Qt does not itself move ticks by up to 5% to batch wake-ups; one clock that is
    never restarted, so no time is lost between reading and restarting it."""

    def __init__(self, interval_ms: int = HEARTBEAT_MS) -> None:
        self.gaps_ms: list[float] = []
        self._clock = QElapsedTimer()
        self._last_ns = 0
        self._timer = QTimer()
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)

    def start(self) -> None:
        self._clock.start()
        self._last_ns = 0
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def now_ms(self) -> float:
        """Time since start(), to place answers among the gaps in the JSON."""
        return self._clock.nsecsElapsed() / 1e6

    def _tick(self) -> None:
        now = self._clock.nsecsElapsed()
        self.gaps_ms.append((now - self._last_ns) / 1e6)
        self._last_ns = now


class StatsRecorder(QObject):
    """Collects the worker's ``finished`` stats (tokens/s), delivered queued on the GUI thread.

    The window keeps them only in its status-bar text, so we listen to the worker ourselves."""

    def __init__(self) -> None:
        super().__init__()
        self.stats: list[dict[str, Any]] = []

    @Slot(int, str, object)
    def on_finished(self, request: int, reason: str, stats: object) -> None:
        self.stats.append(dict(stats) if isinstance(stats, dict) else {})


# Measuring ----------------------------------------------------------------------------------


@dataclass
class Answer:
    status: str  # complete / cancelled / failed / timeout
    wall_s: float  # click to answer_finished
    start_ms: float  # on the heartbeat's clock
    end_ms: float
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass
class Round:
    burners: int
    gaps_ms: list[float]
    answers: list[Answer]
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]


def one_answer(interrupt: Interrupt, window: MainWindow, recorder: StatsRecorder,
               heartbeat: Heartbeat, start: Callable[[], None]) -> Answer:
    """Clicks ``start`` (Send or Regenerate) and waits for the answer's end.

    The click runs on the GUI thread between two ticks, so its own work (storing the message,
    opening the answer's history row) shows in the heartbeat like any other."""
    known = len(recorder.stats)
    began, start_ms = time.perf_counter(), heartbeat.now_ms()
    start()
    if not window.chat.generating:  # ignored, or failed at once: no answer_finished would come
        raise RuntimeError(f"the chat did not start an answer: {window.chat.notice.text()!r}")
    fired = wait_for(interrupt, [window.answer_finished], ANSWER_TIMEOUT_S)
    status = str(fired[0]) if fired else "timeout"
    if fired is None:  # stop it, so the next answer can start
        window.stop()
        if wait_for(interrupt, [window.answer_finished], STOP_TIMEOUT_S) is None:
            raise RuntimeError(f"an answer ran past {ANSWER_TIMEOUT_S:g} s and did not stop")
    wall, end_ms = time.perf_counter() - began, heartbeat.now_ms()
    # The stats come in a queued call posted right after the window's own: let it arrive.
    deadline = time.perf_counter() + 1.0
    while len(recorder.stats) == known and time.perf_counter() < deadline:
        QApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
    stats = recorder.stats[-1] if len(recorder.stats) > known else {}
    return Answer(status, wall, start_ms, end_ms, stats)


def earlier_turns(count: int) -> list[dict[str, str]]:
    """``count`` finished exchanges of a few lines each, Markdown included (what a real chat
    holds after a while), for the view to render with the new answer."""
    reply = ("Here is what I found about the lighthouse:\n\n- the lamp turns every ten "
             "seconds\n- the keeper writes the log at dawn\n\n```\nlog = open('keeper.txt')\n"
             "```\n\n" + "The sea was calm and the village slept while the lamp turned. " * 4)
    turns: list[dict[str, str]] = []
    for number in range(count):
        turns.append({"role": "user", "content": f"Question {number + 1}: and then?",
                      "status": "complete"})
        turns.append({"role": "assistant", "content": reply, "status": "complete"})
    return turns


def measure_round(interrupt: Interrupt, window: MainWindow, recorder: StatsRecorder,
                  burners: int, answers: int, first: bool, history: int = 0) -> Round:
    """``answers`` answers with ``burners`` burners running and the heartbeat on throughout."""
    load_before = os.getloadavg()
    heartbeat = Heartbeat()
    done: list[Answer] = []
    with cpu_burners(burners, settle_s=0):
        pump(interrupt, SETTLE_S)
        heartbeat.start()
        try:
            for index in range(answers):
                sending = first and index == 0
                if sending:
                    window.chat.set_messages(earlier_turns(history))
                    window.chat.input.setPlainText(PROMPT)
                click = window.chat.send if sending else window.chat.regenerate
                done.append(one_answer(interrupt, window, recorder, heartbeat, click))
        finally:
            heartbeat.stop()
    return Round(burners, heartbeat.gaps_ms, done, load_before, os.getloadavg())


def open_window(interrupt: Interrupt, settings: AppSettings, model: str,
                scratch: Path) -> MainWindow:
    """The real app's window with its settings and history in ``scratch``, model loaded."""
    window = MainWindow(model=model, device="cpu", settings=settings,
                        history_path=scratch / "history.sqlite3")
    window.remember_layout = False
    window.show()
    if window.model_info is None:
        fired = wait_for(interrupt, [window.model_ready, window.model_failed], LOAD_TIMEOUT_S)
        if window.model_info is None:
            reason = fired[0] if fired and isinstance(fired[0], str) else "timed out"
            raise RuntimeError(f"model {model} did not load: {reason}")
    window.chat.set_settings(ChatSettings(temperature=0.0, max_tokens=MAX_TOKENS))
    return window


def close_window(window: MainWindow) -> None:
    """Stops the worker thread and tears Qt objects down now, not at interpreter exit."""
    window.close()
    window.deleteLater()
    QApplication.processEvents()


# Reporting ----------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile: always a gap that really happened, not an interpolation."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def summary(result: Round) -> dict[str, Any]:
    """The table's figures for one burner count."""
    gaps = result.gaps_ms
    speeds = [a.stats["tokens_per_s"] for a in result.answers
              if a.status == "complete" and "tokens_per_s" in a.stats]
    row: dict[str, Any] = {
        "burners": result.burners,
        "answers": f"{sum(a.status == 'complete' for a in result.answers)}/{len(result.answers)}",
        "ticks": len(gaps),
        "p50_ms": percentile(gaps, 50), "p99_ms": percentile(gaps, 99),
        "max_ms": max(gaps, default=math.nan),
    }
    for late in LATE_MS:
        row[f"over_{late}ms"] = sum(gap > late for gap in gaps)
    row["decode_tok_s"] = statistics.median(speeds) if speeds else math.nan
    return row


def print_table(rows: list[dict[str, Any]]) -> None:
    """A Markdown table, so it can be pasted into RESULTS.md as it is."""
    print("| burners | answers | ticks | gap p50 ms | gap p99 ms | gap max ms | > 50 ms | "
          "> 100 ms | decode tok/s (median) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['burners']} | {r['answers']} | {r['ticks']} | {r['p50_ms']:.1f} | "
              f"{r['p99_ms']:.1f} | {r['max_ms']:.1f} | {r['over_50ms']} | {r['over_100ms']} | "
              f"{r['decode_tok_s']:.1f} |")


def machine_facts(load_before: tuple[float, float, float]) -> dict[str, Any]:
    """What the figures depend on: cores, platform, versions, how busy the machine already was."""
    cpu_model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    try:
        import onnxruntime
        ort_version = onnxruntime.__version__
    except ImportError:  # pragma: no cover
        ort_version = None
    return {
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": cpu_model, "platform": platform.platform(),
        "python": platform.python_version(), "pyside6": pyside_version,
        "onnxruntime": ort_version, "qt_platform": os.environ.get("QT_QPA_PLATFORM"),
        "load_average_before": load_before,
    }


def write_json(path: Path, args: argparse.Namespace, facts: dict[str, Any],
               rounds: list[Round], rows: list[dict[str, Any]]) -> None:
    """Every raw figure, for anyone who wants another statistic than the table's."""
    data = {
        "benchmark": "ui_heartbeat", "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "argv": sys.argv, "model": args.model_name, "heartbeat_ms": HEARTBEAT_MS,
        "max_tokens": MAX_TOKENS, "temperature": 0.0, "prompt": PROMPT, "machine": facts,
        "summary": rows,
        "rounds": [{**asdict(r), "gaps_ms": [round(g, 3) for g in r.gaps_ms]} for r in rounds],
    }
    path.write_text(json.dumps(data, indent=1, allow_nan=False, default=str) + "\n")


def run(args: argparse.Namespace) -> int:
    """Measures every burner count; 1 when an answer did not complete."""
    facts = machine_facts(os.getloadavg())
    rounds: list[Round] = []
    with tempfile.TemporaryDirectory(prefix="nightlamp-heartbeat-") as scratch:
        window = None
        try:
            settings = AppSettings(Path(scratch) / "settings.ini")
            application(settings)  # the QApplication first: timers need it
            interrupt = Interrupt()
            window = open_window(interrupt, settings, args.model_name, Path(scratch))
            recorder = StatsRecorder()
            window.worker.finished.connect(recorder.on_finished)
            print(f"model {args.model_name}, {facts['usable_cpus']} CPUs, load average "
                  f"{' '.join(f'{x:.2f}' for x in facts['load_average_before'])}", flush=True)
            for index, burners in enumerate(args.burners):
                rounds.append(measure_round(interrupt, window, recorder, burners,
                                            args.answers, first=index == 0,
                                            history=args.history))
                print(f"burners {burners}: done", flush=True)
        finally:
            if window is not None:
                close_window(window)
    rows = [summary(r) for r in rounds]
    print_table(rows)
    if args.json is not None:
        write_json(args.json, args, facts, rounds,
                   [{k: (None if isinstance(v, float) and math.isnan(v) else v)
                     for k, v in row.items()} for row in rows])
        print(f"raw figures: {args.json}")
    return 0 if all(a.status == "complete" for r in rounds for a in r.answers) else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except KeyboardInterrupt:
        print("ui_heartbeat.py: interrupted (burners stopped)", file=sys.stderr)
        return 130
    except (RuntimeError, OSError) as error:
        print(f"ui_heartbeat.py: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
