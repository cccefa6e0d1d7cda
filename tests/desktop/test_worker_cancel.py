"""Each answer request has its own cancel token: a Stop reaches exactly the request it was for.

With one shared cancel flag, cleared by whichever request the worker picked up next, a Stop
pressed after sending but before the worker got to the request was lost (the answer streamed in
full), and a late Stop meant for an older request stopped the newer one instead.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from tests_desktop_fakes import Relay, fake_worker

from desktop.main_window import MainWindow
from desktop.protocol import ChatJob, GenerateRequest, LoadModel
from desktop.worker import WorkerThread
from engine.generation import TextChunk


class GatedEngine:
    """A fake engine: a prompt named in ``gates`` streams until its gate opens (or it is
    stopped); any other prompt answers at once. Every call is recorded."""

    def __init__(self, *gated: str) -> None:
        self.gates = {prompt: threading.Event() for prompt in gated}
        self.calls: list[Any] = []

    def __call__(self, model: Any, prompt: Any, config: Any,
                 should_stop: Any) -> Iterator[TextChunk]:
        self.calls.append(prompt)
        key = prompt if isinstance(prompt, str) else prompt[-1]["content"]
        gate = self.gates.get(key)
        yield TextChunk(f"{key}-1 ")
        while gate is not None and not gate.wait(0.01):
            if should_stop():
                yield TextChunk("", "cancelled")
                return
        yield TextChunk(f"{key}-2 ", "stop")


def _started(qtbot: Any, worker: Any) -> tuple[Relay, dict[int, str]]:
    """Loads the fake model; returns the worker's relay and where requests' endings go."""
    relay = Relay(worker)
    ended: dict[int, str] = {}
    relay.finished.connect(lambda request, reason, stats: ended.__setitem__(request, reason))
    relay.failed.connect(lambda request, message: ended.__setitem__(request, "failed"))
    with qtbot.waitSignal(relay.model_loaded, timeout=5000):
        worker.load_model_requested.emit(LoadModel(1, "fake", "cpu"))
    return relay, ended


def test_a_stop_before_the_worker_picks_the_request_up_is_not_lost(qtbot: Any) -> None:
    engine = GatedEngine("busy")
    worker = fake_worker(engine)
    thread = WorkerThread(worker)
    try:
        _relay, ended = _started(qtbot, worker)
        busy = GenerateRequest(2, "complete", ChatJob("busy"))
        worker.generate_requested.emit(busy)
        qtbot.waitUntil(lambda: engine.calls == ["busy"], timeout=5000)  # the worker is taken
        queued = GenerateRequest(3, "complete", ChatJob("queued"))
        worker.generate_requested.emit(queued)
        queued.cancel.cancel()  # Stop, while the request waits behind the busy one
        engine.gates["busy"].set()
        qtbot.waitUntil(lambda: len(ended) == 2, timeout=5000)
    finally:
        assert thread.stop()
    assert ended == {2: "stop", 3: "cancelled"}  # the busy one was not stopped by it either
    assert engine.calls == ["busy"]  # the stopped one never reached the engine


def test_an_older_requests_stop_never_stops_a_newer_one(qtbot: Any) -> None:
    engine = GatedEngine("old", "new")
    worker = fake_worker(engine)
    thread = WorkerThread(worker)
    tokens: list[str] = []
    try:
        relay, ended = _started(qtbot, worker)
        relay.token_generated.connect(lambda request, text: tokens.append(text))
        old = GenerateRequest(2, "complete", ChatJob("old"))
        new = GenerateRequest(3, "complete", ChatJob("new"))
        worker.generate_requested.emit(old)
        worker.generate_requested.emit(new)  # queued behind the old one
        qtbot.waitUntil(lambda: "old-1 " in tokens, timeout=5000)
        old.cancel.cancel()
        qtbot.waitUntil(lambda: "new-1 " in tokens, timeout=5000)
        old.cancel.cancel()  # a late Stop for the old answer, while the new one streams
        qtbot.wait(50)
        engine.gates["new"].set()
        qtbot.waitUntil(lambda: len(ended) == 2, timeout=5000)
    finally:
        assert thread.stop()
    assert ended == {2: "cancelled", 3: "stop"}
    assert tokens == ["old-1 ", "new-1 ", "new-2 "]


def test_the_windows_stop_reaches_an_answer_still_waiting_for_the_worker(
        qtbot: Any, windows: list[MainWindow]) -> None:
    engine = GatedEngine("busy")
    window = MainWindow(worker=fake_worker(engine), model="fake")
    windows.append(window)
    qtbot.addWidget(window)
    if window.model_info is None:
        with qtbot.waitSignal(window.model_ready, timeout=5000):
            pass
    # Something else holds the worker (its answers are not the window's: a foreign id).
    window.worker.generate_requested.emit(GenerateRequest(10_000, "complete", ChatJob("busy")))
    qtbot.waitUntil(lambda: engine.calls == ["busy"], timeout=5000)
    window.chat.input.setPlainText("hello")
    window.chat.send()  # queued behind the busy request
    with qtbot.waitSignal(window.answer_finished, timeout=5000) as blocker:
        window.chat.stop_button.click()
        engine.gates["busy"].set()
    assert blocker.args == ["cancelled"]
    assert window.chat.messages[-1]["status"] == "cancelled"
    assert window.chat.messages[-1]["content"] == ""
    assert engine.calls == ["busy"]  # the chat answer was never generated
    assert window._tokens == {}  # ended requests leave no token behind
