"""The main window: panels in tabs, the status bar, and the one controller of the worker.

The window shows at once; the model loads on the worker thread while the status bar says
"loading", then "ready" or what failed. Every request carries an id and answers to older ones are
dropped, so switching models or stopping never mixes two answers. Every answer request has its
own cancel token (desktop.protocol), kept here by request id until it ends: Stop sets the token of
the answer in flight, even one the worker has not picked up yet, and no other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtGui import QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QStackedWidget,
    QTabWidget,
    QWidget,
)

from desktop.chat_panel import ChatPanel
from desktop.choices import PANELS
from desktop.conversation_list import ConversationList
from desktop.conversations import ChatHistory
from desktop.documents_dialog import DocumentsDialog
from desktop.menus import Menus
from desktop.models_panel import ModelsPanel
from desktop.protocol import (
    CancelToken,
    ChatJob,
    GenerateRequest,
    Job,
    LoadModel,
    ModelChoice,
    ModelInfo,
    ReleaseModel,
    SummaryJob,
    TranslationJob,
)
from desktop.settings import AppSettings
from desktop.task_panels import SummarizePanel, TaskPanel, TranslatePanel
from desktop.welcome import WelcomePage
from desktop.worker import InferenceWorker, WorkerThread
from engine.errors import EngineError
from engine.generation import GenerationConfig
from engine.retrieval.collection import list_collections
from engine.store import home, installed_models, model_folder, remove_model


class MainWindow(QMainWindow):
    """The app window. Its own signals are emitted on the GUI thread (safe to wait on)."""

    model_ready = Signal(object)  # the model's ModelInfo
    model_failed = Signal(str)
    answer_finished = Signal(str)  # complete / cancelled / failed

    def __init__(self, worker: InferenceWorker | None = None, model: str | None = None,
                 device: str | None = None, history_path: Path | None = None,
                 settings: AppSettings | None = None) -> None:
        """``model`` and ``device`` override the saved choices for this run (``-m``)."""
        super().__init__()
        self.setWindowTitle("Nightlamp")
        self.resize(1040, 720)
        self.settings = settings or AppSettings()
        self.device = device or self.settings.device
        # The model each panel uses ("" = the default model); -m applies to all of them.
        self.panel_models = {panel: model if model is not None else
                             self.settings.panel_model(panel) for panel in PANELS}
        self.worker = worker or InferenceWorker()
        self.worker_thread = WorkerThread(self.worker)
        self._next_id = 0
        self._active_generation: int | None = None
        self._active_load: int | None = None
        self._current_spec: str | None = None  # the model the worker has (or is loading)
        self._removing: dict[str, str] = {}  # folder -> name, waiting for the worker to let go
        self._tokens: dict[int, CancelToken] = {}  # answers not ended yet, by request id
        self.model_info: ModelInfo | None = None
        self.remember_layout = True  # saved on close; a screenshot leaves the user's layout

        self.tabs = QTabWidget()
        self.chat = ChatPanel()
        self.conversations = ConversationList()
        chat_page = QWidget()
        chat_layout = QHBoxLayout(chat_page)
        chat_layout.addWidget(self.conversations)
        chat_layout.addWidget(self.chat, 1)
        self.tabs.addTab(chat_page, self.tr("Chat"))
        self.summarize = SummarizePanel()
        self.translate = TranslatePanel()
        self.tabs.addTab(self.summarize, self.tr("Summarize"))
        translate_title = self.tr("Translate")  # own line: lupdate misreads "self.translate, tr("
        self.tabs.addTab(self.translate, translate_title)
        self.models = ModelsPanel()
        self.tabs.addTab(self.models, self.tr("Models"))
        self._target: ChatPanel | TaskPanel | None = None  # who receives the active answer
        self.welcome = WelcomePage()
        self.pages = QStackedWidget()
        self.pages.addWidget(self.tabs)
        self.pages.addWidget(self.welcome)
        self.setCentralWidget(self.pages)
        self.menus = Menus(self, self.settings)
        self.model_label = QLabel(self.tr("No model"))
        self.speed_label = QLabel("")
        self.statusBar().addWidget(self.model_label, 1)
        self.statusBar().addPermanentWidget(self.speed_label)
        self.server_label = QLabel("")
        self.statusBar().addPermanentWidget(self.server_label)

        self.documents_dialog: DocumentsDialog | None = None  # made when first opened
        self.chat.show_collections(list_collections())
        self.chat.manage_documents_requested.connect(self.show_documents)
        self.chat.send_requested.connect(self._generate_chat)
        self.chat.stop_requested.connect(self.stop)
        for panel in (self.summarize, self.translate):
            panel.run_requested.connect(lambda request, p=panel: self._generate_task(p, request))
            panel.stop_requested.connect(self.stop)
        self._add_shortcuts()
        self.history = ChatHistory(self.chat, self.conversations,
                                   history_path or home() / "history.sqlite3", self)
        self.history.switching.connect(self._leave_conversation)
        self.history.save_failed.connect(lambda text: self.statusBar().showMessage(text, 15_000))
        self.history.start()
        self.worker.model_loaded.connect(self._on_model_loaded)
        self.worker.token_generated.connect(self._on_token)
        self.worker.section_done.connect(self._on_section)
        self.worker.finished.connect(self._on_finished)
        self.worker.failed.connect(self._on_failed)
        self.worker.context_trimmed.connect(self._on_trimmed)
        self.worker.sources_found.connect(self._on_sources)
        self.worker.progress.connect(self._on_progress)
        self.worker.released.connect(self._on_released)
        self.models.panel_model_changed.connect(self._choose_panel_model)
        self.models.device_changed.connect(self._choose_device)
        self.models.models_changed.connect(self._models_changed)
        self.models.remove_requested.connect(self.remove_model)
        self.models.refresh(self.panel_models, self.device)
        self._restore_server()
        self.welcome.model_installed.connect(self._models_changed)
        self.welcome.import_requested.connect(self._show_models_panel)
        self._restore_window()
        if model is None and not installed_models():
            self.pages.setCurrentWidget(self.welcome)  # first run: offer a model, not an error
        else:
            self.load_model(self.panel_models["chat"], self.device)

    def _restore_window(self) -> None:
        geometry, state, tab = self.settings.window_state()
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)
        self.tabs.setCurrentIndex(min(tab, self.tabs.count() - 1))

    def _add_shortcuts(self) -> None:
        """Ctrl+1..3 switch panels, Ctrl+N starts a chat, Ctrl+Shift+C copies the last answer
        (Ctrl+Enter sends and Esc stops, in the chat panel)."""
        for index in range(self.tabs.count()):
            QShortcut(QKeySequence(f"Ctrl+{index + 1}"), self,
                      lambda i=index: self.tabs.setCurrentIndex(i))
        QShortcut(QKeySequence("Ctrl+N"), self, self._new_chat_from_keyboard)
        QShortcut(QKeySequence("Ctrl+Shift+C"), self, self.copy_last_answer)

    def _new_chat_from_keyboard(self) -> None:
        self.tabs.setCurrentIndex(0)
        self.history.new_conversation()
        self.chat.input.setFocus()

    def copy_last_answer(self) -> None:
        QGuiApplication.clipboard().setText(self.chat.last_answer())

    def _leave_conversation(self) -> None:
        """Another conversation is about to be shown: the chat answer in flight stops here."""
        self.stop()
        if self._target is self.chat:
            self._finish_target("cancelled", "")

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    # Requests ---------------------------------------------------------------------------

    def load_model(self, spec: str | None, device: str | None = None) -> int:
        """Loads a model in the background (cancelling a running generation first)."""
        self.stop()
        if device is not None:
            self.device = device
        request = self._active_load = self._new_id()
        self._current_spec = spec or ""
        self.model_info = None
        self.model_label.setText(self.tr("Loading model…"))
        self.worker.load_model_requested.emit(LoadModel(request, spec or "", self.device))
        return request

    # Documents --------------------------------------------------------------------------

    def show_documents(self) -> DocumentsDialog:
        """Opens the Documents window (not modal: chatting goes on while a folder is read)."""
        if self.documents_dialog is None:
            self.documents_dialog = DocumentsDialog(self)
            self.documents_dialog.collections_changed.connect(self.chat.show_collections)
        else:
            self.documents_dialog.refresh()
        self.documents_dialog.show()
        self.documents_dialog.raise_()
        return self.documents_dialog

    def _on_sources(self, request: int, documents: dict[str, Any]) -> None:
        if request == self._active_generation and self._target is self.chat:
            self.chat.set_sources(documents)

    # Models panel -----------------------------------------------------------------------

    def _restore_server(self) -> None:
        """Turns the local server back on if it was on when the app last closed."""
        box = self.models.server_box
        self.models.server.state_changed.connect(self._on_server_state)
        box.switch.toggled.connect(
            lambda on: self.settings.set_server(on, box.port.value()))
        enabled, port = self.settings.server()
        if port:
            box.port.setValue(port)
        if enabled:
            box.switch.setChecked(True)

    def _on_server_state(self, state: str, detail: str) -> None:
        self.server_label.setText(self.tr("Server: {url}").format(url=detail)
                                  if state == "on" else "")
        if state == "failed":
            self.statusBar().showMessage(
                self.tr("The server stopped: {reason}").format(reason=detail), 15_000)

    def _show_models_panel(self) -> None:
        self.pages.setCurrentWidget(self.tabs)
        self.tabs.setCurrentWidget(self.models)

    def _choose_panel_model(self, panel: str, name: str) -> None:
        self.panel_models[panel] = name
        self.settings.set_panel_model(panel, name)
        if self._active_generation is None and name != self._current_spec:
            self.load_model(name)  # have it ready; the other panels switch when they run

    def _choose_device(self, device: str) -> None:
        self.settings.device = device
        self.load_model(self._current_spec or self.panel_models["chat"], device)

    def _models_changed(self) -> None:
        self.models.refresh()
        if self.pages.currentWidget() is self.welcome and installed_models():
            self.pages.setCurrentWidget(self.tabs)
        if self.model_info is None and installed_models():
            self.load_model(self.panel_models["chat"])

    def remove_model(self, name: str) -> None:
        """Deletes an installed model once the worker has closed its sessions."""
        self.stop()
        folder = model_folder(name)
        self._removing[str(folder)] = name
        self.worker.release_requested.emit(ReleaseModel(str(folder)))

    def _on_released(self, folder: str) -> None:
        name = self._removing.pop(folder, None)
        if name is None:
            return
        if self.model_info is not None and self.model_info.folder == folder:
            self.model_info = None
            self._current_spec = None
            self.model_label.setText(self.tr("No model"))
        try:
            remove_model(name)  # engine.store: a linked entry loses only its link
            self.models.jobs.status.setText(self.tr("Removed {name}.").format(name=name))
        except EngineError as error:
            self.models.jobs.status.setText(self.tr("{name} could not be removed: {error}")
                                            .format(name=name, error=error.for_app()))
        self.models.refresh()
        if not installed_models():
            self.pages.setCurrentWidget(self.welcome)

    def _not_ready(self, task: str) -> bool:
        """True when the model this task needs is the one still loading or failed to load."""
        return self.model_info is None and self.panel_models[task] == self._current_spec

    def _generate_chat(self, messages: list[dict[str, str]]) -> None:
        if self._not_ready("chat"):
            self.chat.finish_answer("failed")
            self.chat.show_notice(self.tr("The model is not ready yet."))
            return
        self.chat.show_notice("")  # first: a notice that saving failed must stay visible
        self.history.begin_answer()
        chosen = self.chat.settings  # this conversation's own sampling settings
        config = GenerationConfig(max_new_tokens=chosen.max_tokens, sampling=chosen.sampling())
        self._start(self.chat, "chat", ChatJob(messages, config, fit_context=True,
                                               context_limit=chosen.context_length,
                                               documents=chosen.documents))

    def _generate_task(self, panel: TaskPanel, job: SummaryJob | TranslationJob) -> None:
        task = "summarize" if panel is self.summarize else "translate"
        if self._not_ready(task) and job.needs_model:
            panel.finish("failed", self.tr("The model is not ready yet."))
            return
        self._start(panel, task, job)

    def _start(self, target: ChatPanel | TaskPanel, task: str, job: Job) -> None:
        """Asks the worker for an answer: a chat answer or a panel's job (desktop.tasks)."""
        self.stop()  # a newer request wins
        if self._target is not None and self._target is not target:
            self._finish_target("cancelled", "")
        request_id = self._active_generation = self._new_id()
        self._target = target
        spec = self.panel_models[task]
        model = None
        if job.needs_model and spec != self._current_spec:  # another model: the worker switches
            model = ModelChoice(spec, self.device)
            self._current_spec = spec
            self.model_info = None
            self.model_label.setText(self.tr("Loading model…"))
        request = GenerateRequest(request_id, task, job, model)
        self._tokens[request_id] = request.cancel
        self.worker.generate_requested.emit(request)

    def _finish_target(self, status: str, message: str,
                       stats: dict[str, Any] | None = None) -> None:
        target, self._target = self._target, None
        self._active_generation = None
        if target is self.chat:
            self.history.finish_answer(status, stats)
            self.chat.finish_answer(status)
            if status == "failed":
                self.chat.show_notice(message)
        elif isinstance(target, TaskPanel):
            target.finish(status, message, stats)

    def stop(self) -> None:
        """Stops the answer in flight, whether the worker is making it or has yet to start it:
        its token is set here, on the GUI thread (a queued signal would wait behind it)."""
        token = self._tokens.get(self._active_generation) \
            if self._active_generation is not None else None
        if token is not None:
            token.cancel()

    # Answers ----------------------------------------------------------------------------

    def _on_model_loaded(self, request: int, info: ModelInfo) -> None:
        if request not in (self._active_load, self._active_generation):
            return
        self.model_info = info
        self.model_label.setText(self.tr("{name} · {device} · ready").format(
            name=info.name, device=info.device.upper()))
        self.models.set_device_in_use(self.tr("{device} ({name})").format(
            device=info.device.upper(), name=info.name))
        self.model_ready.emit(info)

    def _on_trimmed(self, request: int, dropped: int) -> None:
        if request == self._active_generation and self._target is self.chat:
            self.chat.show_notice(self.tr("The {count} oldest messages no longer fit the model's "
                                          "context and were left out of the prompt; they are "
                                          "still here.").format(count=dropped))

    def _on_progress(self, request: int, stage: str, done: int, total: int) -> None:
        if request == self._active_generation and isinstance(self._target, TaskPanel) \
                and stage != "loading":
            self._target.show_progress(stage, done, total)

    def _on_section(self, request: int, section: dict[str, Any]) -> None:
        if request == self._active_generation and self._target is self.summarize:
            self.summarize.add_section(section)

    def _on_token(self, request: int, text: str) -> None:
        if request == self._active_generation and self._target is not None:
            self._target.append_token(text)
            if self._target is self.chat:
                self.history.save_partial()

    def _on_finished(self, request: int, reason: str, stats: dict[str, Any]) -> None:
        self._tokens.pop(request, None)  # it has ended: its Stop is of no more use
        if request != self._active_generation:
            return
        status = "cancelled" if reason == "cancelled" else "complete"
        self._finish_target(status, "", stats)
        if stats and "tokens_per_s" in stats:
            self.speed_label.setText(self.tr("{speed:.1f} tok/s · first token {ttft:.2f} s")
                                     .format(speed=stats["tokens_per_s"], ttft=stats["ttft_s"]))
        self.answer_finished.emit(status)

    def _on_failed(self, request: int, message: str) -> None:
        self._tokens.pop(request, None)
        if request == self._active_generation and self.model_info is None:
            self._active_load = request  # the panel's model failed to load: say so below too
        if request == self._active_load:
            self.model_label.setText(self.tr("Model failed to load: {message}")
                                     .format(message=message))
            self.model_failed.emit(message)
        if request == self._active_generation:
            self._finish_target("failed", message)
            self.answer_finished.emit("failed")

    def closeEvent(self, event: Any) -> None:  # noqa: N802 (Qt's name)
        if self.remember_layout:
            self.settings.save_window_state(self.saveGeometry(), self.saveState(),
                                            self.tabs.currentIndex())
            self.settings.sync()
        for token in self._tokens.values():  # queued answers too: none may start now
            token.cancel()
        if self.documents_dialog is not None:
            self.documents_dialog.cancel()  # an indexing process does not outlive the app
        self.models.server.stop(wait=True)  # nor does the server (its switch stays as it was)
        self.worker_thread.stop()
        if self._target is self.chat:
            self.history.finish_answer("cancelled", None)
        # Answers still queued for this window are dropped: nothing may touch the closed store.
        self._target = self._active_generation = self._active_load = None
        self.history.close()
        super().closeEvent(event)

