"""Fake engine pieces for desktop tests, where only the threading and UI are under test."""

from __future__ import annotations

import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal

from engine.errors import OperationCancelledError
from engine.generation import GenerationStats, TextChunk
from engine.summarize import SummaryResult


def fake_model(*args: Any, **kwargs: Any) -> Any:
    """Stands in for engine.model.load_model where only the worker's plumbing is under test."""
    manifest = SimpleNamespace(context_length=64, precision="fp32", tasks=("chat",))
    return SimpleNamespace(name="fake", device="cpu", folder="/nowhere", manifest=manifest)


def slow_generate(model: Any, prompt: Any, config: Any,
                  should_stop: Any) -> Iterator[TextChunk]:
    """A fake engine: one token every 20 ms, up to 150, honouring should_stop."""
    count = 0
    for count in range(1, 151):
        if should_stop():
            break
        time.sleep(0.02)
        yield TextChunk(f"t{count} ")
    reason = "cancelled" if should_stop() else "length"
    yield TextChunk("", reason, GenerationStats(1, count, 0.01, 50.0, 1.0, "cpu"))


class Relay(QObject):
    """Re-emits a worker's answers on the GUI thread, so tests can wait on them safely.

    A plain Python callable connected to a signal from another thread runs on that thread;
    pytest-qt's waiting helpers must run on the GUI thread.
    """

    model_loaded = Signal(int, object)
    token_generated = Signal(int, str)
    finished = Signal(int, str, object)
    failed = Signal(int, str)

    def __init__(self, worker: Any) -> None:
        super().__init__()
        queued = Qt.ConnectionType.QueuedConnection
        for name in ("model_loaded", "token_generated", "finished", "failed"):
            getattr(worker, name).connect(getattr(self, name), queued)


def quick_generate(model: Any, prompt: Any, config: Any,
                   should_stop: Any) -> Iterator[TextChunk]:
    """A fake engine that answers at once with five tokens."""
    for index in range(5):
        yield TextChunk(f"w{index} ")
    yield TextChunk("", "stop", GenerationStats(1, 5, 0.01, 500.0, 0.01, "cpu"))


def no_trim(model: Any, messages: Any, reserve: int) -> tuple[Any, int]:
    """A fake model has no tokenizer: keep every message."""
    return messages, 0


def quick_summarize(document: Any, model: Any, method: str, length: str,
                    should_stop: Any, progress: Any, on_text: Any,
                    on_section: Any = None) -> SummaryResult:
    """A fake summarizer: two parts of progress, then streams "s0 s1 " (or is cancelled)."""
    for part in range(2):
        if should_stop():
            raise OperationCancelledError("the summary was cancelled")
        progress("summarizing", part, 2)
        on_text(f"s{part} ")
    return SummaryResult(f"[{method}/{length}] {document.blocks[0].text[:20]}", method, 2, 0.01,
                         10, "en")


def fake_worker(generate_fn: Any) -> Any:
    """A worker with the fake model and the given fake engine."""
    from desktop.worker import InferenceWorker

    return InferenceWorker(load=fake_model, generate_fn=generate_fn, fit_context=no_trim,
                           summarize_fn=quick_summarize)
