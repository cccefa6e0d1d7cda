"""The inference worker on its thread: streaming, stop, failures, and a responsive event loop."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QElapsedTimer, QTimer
from tests_desktop_fakes import Relay, fake_model, fake_worker, slow_generate

from desktop.protocol import ChatJob, GenerateRequest, LoadModel, ModelInfo
from desktop.worker import InferenceWorker, WorkerThread
from engine.generation import GenerationConfig, TextChunk
from engine.sampling import SamplingSettings

GREEDY = GenerationConfig(max_new_tokens=12,
                          sampling=SamplingSettings(temperature=0, repetition_penalty=1.0))


@pytest.fixture
def running(qtbot: Any) -> Iterator[tuple[InferenceWorker, Relay]]:
    worker = InferenceWorker()
    relay = Relay(worker)
    thread = WorkerThread(worker)
    yield worker, relay
    assert thread.stop()


def _load(qtbot: Any, worker: InferenceWorker, relay: Relay, folder: Path) -> ModelInfo:
    with qtbot.waitSignal(relay.model_loaded, timeout=30_000) as blocker:
        worker.load_model_requested.emit(LoadModel(1, str(folder), "cpu"))
    request, info = blocker.args
    assert request == 1
    return info


def test_tokens_stream_in_order_then_finished(qtbot: Any, running: Any,
                                              transformer_model_dir: Path) -> None:
    worker, relay = running
    info = _load(qtbot, worker, relay, transformer_model_dir)
    assert info.name == "tiny-transformer" and info.device == "cpu"
    tokens: list[str] = []
    worker.token_generated.connect(lambda request, text: tokens.append(text))
    with qtbot.waitSignal(relay.finished, timeout=30_000) as blocker:
        worker.generate_requested.emit(GenerateRequest(7, "complete",
                                                      ChatJob("The lamp", GREEDY)))
    request, reason, stats = blocker.args
    assert (request, reason) == (7, "length")
    assert stats["completion_tokens"] == 12 and stats["device"] == "cpu"
    # The same text as the engine produces directly, in order.
    from engine.generation import generate
    from engine.model import load_model

    direct = "".join(c.text for c in generate(load_model(transformer_model_dir, device="cpu"),
                                              "The lamp", GREEDY))
    assert "".join(tokens) == direct


def test_stop_ends_with_cancelled_quickly(qtbot: Any) -> None:
    worker = fake_worker(slow_generate)
    relay = Relay(worker)
    thread = WorkerThread(worker)
    try:
        with qtbot.waitSignal(relay.model_loaded, timeout=5000):
            worker.load_model_requested.emit(LoadModel(1, "fake", "cpu"))
        request = GenerateRequest(2, "chat", ChatJob("x"))
        with qtbot.waitSignal(relay.token_generated, timeout=5000):
            worker.generate_requested.emit(request)
        timer = QElapsedTimer()
        with qtbot.waitSignal(relay.finished, timeout=5000) as blocker:
            timer.start()
            request.cancel.cancel()
        assert blocker.args[:2] == [2, "cancelled"]
        assert timer.elapsed() < 500
    finally:
        assert thread.stop()


def test_event_loop_never_stalls_while_generating(qtbot: Any) -> None:
    worker = fake_worker(slow_generate)
    relay = Relay(worker)
    thread = WorkerThread(worker)
    gaps: list[int] = []
    clock = QElapsedTimer()
    heartbeat = QTimer()
    heartbeat.setInterval(10)

    def beat() -> None:
        gaps.append(clock.restart())

    heartbeat.timeout.connect(beat)
    try:
        with qtbot.waitSignal(relay.model_loaded, timeout=5000):
            worker.load_model_requested.emit(LoadModel(1, "fake", "cpu"))
        clock.start()
        heartbeat.start()
        request = GenerateRequest(2, "chat", ChatJob("x"))
        worker.generate_requested.emit(request)
        qtbot.wait(1500)  # ~75 tokens arrive meanwhile, one signal each
        with qtbot.waitSignal(relay.finished, timeout=5000):
            request.cancel.cancel()
    finally:
        heartbeat.stop()
        assert thread.stop()
    assert len(gaps) > 50
    assert max(gaps[1:]) < 100


def test_generating_without_a_model_fails_with_a_message(qtbot: Any, running: Any) -> None:
    worker, relay = running
    with qtbot.waitSignal(relay.failed, timeout=5000) as blocker:
        worker.generate_requested.emit(GenerateRequest(3, "chat", ChatJob("x")))
    assert blocker.args[0] == 3 and "no model" in blocker.args[1]


def test_a_bad_model_folder_fails_with_a_readable_message(qtbot: Any, running: Any,
                                                          tmp_path: Path) -> None:
    worker, relay = running
    (tmp_path / "broken").mkdir()
    with qtbot.waitSignal(relay.failed, timeout=10_000) as blocker:
        worker.load_model_requested.emit(LoadModel(4, str(tmp_path / "broken"), "cpu"))
    assert blocker.args[0] == 4
    assert "not a model folder" in blocker.args[1] and "\n" not in blocker.args[1]


def test_an_unexpected_error_still_ends_the_request(qtbot: Any) -> None:
    def explode(*args: Any) -> Iterator[TextChunk]:
        raise RuntimeError("boom")
        yield TextChunk("")  # pragma: no cover

    worker = fake_worker(explode)
    relay = Relay(worker)
    thread = WorkerThread(worker)
    try:
        with qtbot.waitSignal(relay.model_loaded, timeout=5000):
            worker.load_model_requested.emit(LoadModel(1, "fake", "cpu"))
        with qtbot.waitSignal(relay.failed, timeout=5000) as blocker:
            worker.generate_requested.emit(GenerateRequest(2, "chat", ChatJob("x")))
        assert blocker.args == [2, "generation failed: boom"]
    finally:
        assert thread.stop()


def test_the_worker_runs_on_its_own_thread(qtbot: Any) -> None:
    seen: list[int] = []

    def record(*args: Any, **kwargs: Any) -> Any:
        seen.append(threading.get_ident())
        return fake_model()

    worker = InferenceWorker(load=record)
    relay = Relay(worker)
    thread = WorkerThread(worker)
    try:
        with qtbot.waitSignal(relay.model_loaded, timeout=5000):
            worker.load_model_requested.emit(LoadModel(1, "x", "cpu"))
    finally:
        assert thread.stop()
    assert seen and seen[0] != threading.get_ident()


def _long_chat(turns: int) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": "Be brief."}]
    for index in range(turns):
        messages.append({"role": "user", "content": f"The reader writes page {index}."})
        messages.append({"role": "assistant", "content": "The lamp lights the page."})
    messages.append({"role": "user", "content": "The night?"})
    return messages


@pytest.mark.parametrize("context_limit", [0, 48])
def test_chat_prompts_are_fitted_by_the_engines_one_policy(
        qtbot: Any, transformer_model_dir: Path, context_limit: int) -> None:
    """The worker trims exactly what `nightlamp chat` trims: engine.conversation's policy."""
    from engine.conversation import answer_reserve, fit_to_context
    from engine.model import load_model

    prompts: list[Any] = []

    def record(model: Any, prompt: Any, config: Any, should_stop: Any) -> Iterator[TextChunk]:
        prompts.append(prompt)
        yield TextChunk("", "stop")

    worker = InferenceWorker(generate_fn=record)
    relay = Relay(worker)
    thread = WorkerThread(worker)
    messages = _long_chat(6)
    config = GenerationConfig(max_new_tokens=40)
    try:
        _load(qtbot, worker, relay, transformer_model_dir)
        with qtbot.waitSignal(relay.finished, timeout=30_000):
            worker.generate_requested.emit(GenerateRequest(2, "chat", ChatJob(
                messages, config, fit_context=True, context_limit=context_limit)))
    finally:
        assert thread.stop()
    model = load_model(transformer_model_dir, device="cpu")
    reserve = answer_reserve(model.manifest.context_length, 40, context_limit)
    expected, dropped = fit_to_context(model, messages, reserve)
    assert dropped > 0 and prompts == [expected]
