"""The main window: panels in tabs, the status bar, and the one controller of the worker.

The window shows at once; the model loads on the worker thread while the status bar says
"loading", then "ready" or what failed. Every request carries an id and answers to older ones are
dropped, so switching models or stopping never mixes two answers.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel, QMainWindow, QTabWidget

from desktop.chat_panel import ChatPanel
from desktop.worker import InferenceWorker, WorkerThread
from engine.generation import GenerationConfig
from engine.sampling import SamplingSettings


class MainWindow(QMainWindow):
    """The app window. Its own signals are emitted on the GUI thread (safe to wait on)."""

    model_ready = Signal(object)  # the model's info dict
    model_failed = Signal(str)
    answer_finished = Signal(str)  # complete / cancelled / failed

    def __init__(self, worker: InferenceWorker | None = None, model: str | None = None,
                 device: str = "auto") -> None:
        super().__init__()
        self.setWindowTitle("Nightlamp")
        self.resize(980, 700)
        self.worker = worker or InferenceWorker()
        self.worker_thread = WorkerThread(self.worker)
        self._next_id = 0
        self._active_generation: int | None = None
        self._active_load: int | None = None
        self.model_info: dict[str, Any] | None = None

        self.tabs = QTabWidget()
        self.chat = ChatPanel()
        self.tabs.addTab(self.chat, self.tr("Chat"))
        self.setCentralWidget(self.tabs)
        self.model_label = QLabel(self.tr("No model"))
        self.speed_label = QLabel("")
        self.statusBar().addWidget(self.model_label, 1)
        self.statusBar().addPermanentWidget(self.speed_label)

        self.chat.send_requested.connect(self._generate_chat)
        self.chat.stop_requested.connect(self.stop)
        self.worker.model_loaded.connect(self._on_model_loaded)
        self.worker.token_generated.connect(self._on_token)
        self.worker.finished.connect(self._on_finished)
        self.worker.failed.connect(self._on_failed)
        self.load_model(model, device)

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    # Requests ---------------------------------------------------------------------------

    def load_model(self, spec: str | None, device: str = "auto") -> int:
        """Loads a model in the background (cancelling a running generation first)."""
        self.stop()
        request = self._active_load = self._new_id()
        self.model_info = None
        self.model_label.setText(self.tr("Loading model…"))
        self.worker.load_model_requested.emit(request, spec or "", device)
        return request

    def _generate_chat(self, messages: list[dict[str, str]]) -> None:
        if self.model_info is None:
            self.chat.finish_answer("failed")
            self.chat.show_notice(self.tr("The model is not ready yet."))
            return
        self.worker.cancel()  # a newer request wins
        request = self._active_generation = self._new_id()
        config = GenerationConfig(max_new_tokens=512, sampling=SamplingSettings(temperature=0.7))
        self.chat.show_notice("")
        self.worker.generate_requested.emit(request, "chat",
                                            {"prompt": messages, "config": config})

    def stop(self) -> None:
        if self._active_generation is not None:
            self.worker.cancel()

    # Answers ----------------------------------------------------------------------------

    def _on_model_loaded(self, request: int, info: dict[str, Any]) -> None:
        if request != self._active_load:
            return
        self.model_info = info
        self.model_label.setText(self.tr("{name} · {device} · ready").format(
            name=info["name"], device=info["device"].upper()))
        self.model_ready.emit(info)

    def _on_token(self, request: int, text: str) -> None:
        if request == self._active_generation:
            self.chat.append_token(text)

    def _on_finished(self, request: int, reason: str, stats: dict[str, Any]) -> None:
        if request != self._active_generation:
            return
        self._active_generation = None
        status = "cancelled" if reason == "cancelled" else "complete"
        self.chat.finish_answer(status)
        if stats:
            self.speed_label.setText(self.tr("{speed:.1f} tok/s · first token {ttft:.2f} s")
                                     .format(speed=stats["tokens_per_s"], ttft=stats["ttft_s"]))
        self.answer_finished.emit(status)

    def _on_failed(self, request: int, message: str) -> None:
        if request == self._active_load:
            self.model_label.setText(self.tr("Model failed to load: {message}")
                                     .format(message=message))
            self.model_failed.emit(message)
        elif request == self._active_generation:
            self._active_generation = None
            self.chat.finish_answer("failed")
            self.chat.show_notice(message)
            self.answer_finished.emit("failed")

    def closeEvent(self, event: Any) -> None:  # noqa: N802 (Qt's name)
        self.worker_thread.stop()
        super().closeEvent(event)

