"""The inference worker: owns the model and runs every load and generation on its own thread.

One ``InferenceWorker`` is created without a parent and moved to one ``QThread`` at start-up;
only that thread touches ONNX Runtime. The UI talks to it through queued signals carrying the
typed requests of ``desktop.protocol``; answers come back the same way, carrying plain Python data
and the request id they answer (the UI drops stale ones). Cancelling is each answer request's own
``CancelToken``, which the UI sets directly: a queued "cancel" signal would wait behind the
generation it is meant to stop, and one shared flag was cleared by the next request picked up
(losing a Stop pressed before the worker got to it).
"""

from __future__ import annotations

import gc
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import asdict
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from desktop.protocol import (
    CancelToken,
    ChatJob,
    GenerateRequest,
    LoadModel,
    ModelInfo,
    ReleaseModel,
    SummaryJob,
    TranslationJob,
)
from desktop.tasks import documents_chat_job, summary_job, translation_job
from engine.conversation import answer_reserve, fit_to_context
from engine.errors import EngineError
from engine.generation import GenerationConfig, TextChunk, generate
from engine.model import Model, load_model
from engine.retrieval.embedder import Embedder, load_embedder
from engine.seq2seq import Seq2SeqModel
from engine.summarize import SummaryResult, summarize

logger = logging.getLogger(__name__)

LoadFunction = Callable[..., Model | Seq2SeqModel]
GenerateFunction = Callable[..., Iterator[TextChunk]]
FitFunction = Callable[..., tuple[list[dict[str, str]], int]]
SummarizeFunction = Callable[..., SummaryResult]
TaskFunction = Callable[..., tuple[str, dict[str, Any]]]
# Models kept loaded at once: a different model per panel switches without reloading, while
# memory stays bounded (the least recently used one is dropped first).
MODELS_KEPT = 2


class InferenceWorker(QObject):
    """Loads models and generates text on the worker thread.

    Requests (connect from the UI, delivered queued; desktop.protocol):
    ``load_model_requested(LoadModel)``, ``generate_requested(GenerateRequest)`` whose job is a
    ``ChatJob`` (streamed tokens, generation stats) or a panel's ``SummaryJob`` /
    ``TranslationJob`` (desktop.tasks; its ``finished`` stats carry the final text); with a
    ``model`` it first switches to that model, announcing it with ``model_loaded``;
    ``release_requested(ReleaseModel)``.
    Answers: ``model_loaded(request_id, ModelInfo)``, ``token_generated(request_id, text)``,
    ``finished(request_id, reason, stats)`` (stats: a plain dict), ``failed(request_id,
    message)``, ``progress(request_id, stage, done, total)``, ``section_done(request_id,
    section)`` (a summary's sections as each is checked), ``sources_found(request_id,
    documents)`` (a documents answer's passages, before and after it streams),
    ``released(folder)``. A load ends
    with ``model_loaded`` or ``failed``, an answer with exactly one ``finished`` (reason
    "cancelled" when its token was set, even before it started) or ``failed``.
    """

    load_model_requested = Signal(object)  # LoadModel
    generate_requested = Signal(object)  # GenerateRequest
    model_loaded = Signal(int, object)  # request id, ModelInfo
    token_generated = Signal(int, str)
    section_done = Signal(int, object)  # request id, one section's checked summary (a dict)
    finished = Signal(int, str, object)
    failed = Signal(int, str)
    progress = Signal(int, str, int, int)
    context_trimmed = Signal(int, int)  # request id, how many old messages were left out
    sources_found = Signal(int, object)  # request id, {"collection", "relevant", "sources"}
    release_requested = Signal(object)  # ReleaseModel: a model folder about to be removed
    released = Signal(str)

    def __init__(self, load: LoadFunction = load_model,
                 generate_fn: GenerateFunction = generate,
                 fit_context: FitFunction = fit_to_context,
                 summarize_fn: SummarizeFunction = summarize,
                 translate_fn: TaskFunction = translation_job) -> None:
        super().__init__()  # no parent: it is moved to its own thread
        self._running: CancelToken | None = None  # the token of the answer being made
        self._load = load
        self._generate = generate_fn
        self._fit = fit_context
        self._summarize = summarize_fn
        self._translate = translate_fn
        self._model: Model | Seq2SeqModel | None = None
        self._loaded: OrderedDict[tuple[str, str], Model | Seq2SeqModel] = OrderedDict()
        self._embedders: dict[str, Embedder] = {}  # by name: loaded once, kept (about 60 MB)
        self.load_model_requested.connect(self._on_load)
        self.generate_requested.connect(self._on_generate)
        self.release_requested.connect(self._on_release)

    def cancel(self) -> None:
        """Stops the answer now running at its next token (safe from any thread; for shutdown:
        the UI stops its own requests through their tokens)."""
        running = self._running
        if running is not None:
            running.cancel()

    @Slot(object)
    def _on_load(self, request: LoadModel) -> None:
        self._switch_model(request.request_id, request.spec, request.device)

    def _switch_model(self, request_id: int, spec: str, device: str) -> bool:
        """Makes ``spec`` the current model (from the kept ones, or loading it) and announces it
        with ``model_loaded``; on failure emits ``failed`` and returns False."""
        started = time.perf_counter()
        key = (spec, device or "auto")
        try:
            model = self._loaded.get(key)
            if model is None:
                self.progress.emit(request_id, "loading", 0, 1)
                while len(self._loaded) >= MODELS_KEPT:  # free memory before loading another
                    self._loaded.popitem(last=False)
                    _free_dropped_models()
                model = self._load(spec or None, device=key[1])
                self._loaded[key] = model
        except EngineError as error:
            self.failed.emit(request_id, error.for_app())
            return False
        except Exception as error:  # the UI must hear about every request, whatever happened
            logger.exception("loading %s failed", spec)
            self.failed.emit(request_id, f"could not load the model: {error}")
            return False
        self._loaded.move_to_end(key)
        self._model = model
        self.progress.emit(request_id, "loading", 1, 1)
        self.model_loaded.emit(request_id, ModelInfo(
            spec=spec, name=model.name, device=model.device, folder=str(model.folder),
            context_length=model.manifest.context_length, precision=model.manifest.precision,
            tasks=tuple(model.manifest.tasks), load_s=time.perf_counter() - started))
        return True

    @Slot(object)
    def _on_release(self, request: ReleaseModel) -> None:
        """Closes the sessions of the model in ``folder`` (before it is deleted: Windows can't
        delete files a session holds open) and says so with ``released``."""
        folder = request.folder
        for key, model in list(self._loaded.items()):
            if str(model.folder) == folder:
                del self._loaded[key]
        if self._model is not None and str(self._model.folder) == folder:
            self._model = None
        _free_dropped_models()  # its files stay open until its sessions are really gone
        self.released.emit(folder)

    @Slot(object)
    def _on_generate(self, request: GenerateRequest) -> None:
        self._running = request.cancel
        try:
            self._generate_one(request)
        finally:
            self._running = None

    def _generate_one(self, request: GenerateRequest) -> None:
        request_id, job, token = request.request_id, request.job, request.cancel
        # The switch happens even when the answer was stopped before it got here: the UI counts
        # on the model it announced (newer requests are sent without a model of their own).
        # A stop pressed while the model loads still stops this answer below.
        if request.model is not None and not self._switch_model(
                request_id, request.model.spec, request.model.device):
            return
        if token.is_cancelled():  # stopped between sending and now: nothing is generated
            self.finished.emit(request_id, "cancelled", {})
            return
        if self._model is None and job.needs_model:
            self.failed.emit(request_id, "no model is loaded yet; pick one in Models")
            return

        def on_text(text: str) -> None:
            self.token_generated.emit(request_id, text)

        if isinstance(job, SummaryJob):
            def on_section(section: dict[str, Any]) -> None:
                self.section_done.emit(request_id, section)

            self._task(request_id, token, summary_job, job, on_text, self._summarize,
                       on_section)
        elif isinstance(job, TranslationJob):
            self._task(request_id, token, self._translate, job, on_text)
        elif job.documents:
            def on_sources(documents: dict[str, Any]) -> None:
                self.sources_found.emit(request_id, documents)

            self._task(request_id, token, self._documents_chat, job, on_text, on_sources)
        else:
            self._chat(request, job)

    def _chat(self, request: GenerateRequest, job: ChatJob) -> None:
        """Streams a chat answer or completion; every outcome ends the request."""
        assert self._model is not None
        request_id, config, prompt = request.request_id, job.config, job.prompt
        try:
            if job.fit_context:  # tokenizing a long conversation: here, not in the UI
                reserve = answer_reserve(self._model.manifest.context_length,
                                         config.max_new_tokens, job.context_limit)
                prompt, dropped = self._fit(self._model, prompt, reserve)
                if dropped:
                    self.context_trimmed.emit(request_id, dropped)
            reason, stats = self._answer(request_id, prompt, config, request.cancel)
            self.finished.emit(request_id, reason, stats)
        except EngineError as error:
            self.failed.emit(request_id, error.for_app())
        except Exception as error:
            logger.exception("%s request %d failed", request.task, request_id)
            self.failed.emit(request_id, f"generation failed: {error}")

    def _documents_chat(self, job: ChatJob, model: Model, should_stop: Callable[[], bool],
                        _progress: Any, on_text: Callable[[str], None],
                        on_sources: Callable[[dict[str, Any]], None]
                        ) -> tuple[str, dict[str, Any]]:
        return documents_chat_job(job, model, self._embedder, should_stop, on_text, on_sources,
                                  self._generate)

    def _embedder(self, name: str) -> Embedder:
        if name not in self._embedders:
            self._embedders[name] = load_embedder(name)
        return self._embedders[name]

    def _task(self, request_id: int, token: CancelToken,
              job: Callable[..., tuple[str, dict[str, Any]]],
              request: SummaryJob | TranslationJob | ChatJob, *callbacks: Any) -> None:
        """Runs a panel's job (desktop.tasks); every outcome ends the request."""
        def progress(stage: str, done: int, total: int) -> None:
            self.progress.emit(request_id, stage, done, total)

        try:
            reason, stats = job(request, self._model, token.is_cancelled, progress, *callbacks)
        except EngineError as error:
            self.failed.emit(request_id, error.for_app())
            return
        except Exception as error:  # the UI must hear about every request, whatever happened
            logger.exception("request %d failed", request_id)
            self.failed.emit(request_id, f"it failed: {error}")
            return
        self.finished.emit(request_id, reason, stats)

    def _answer(self, request_id: int, prompt: Any, config: GenerationConfig,
                token: CancelToken) -> tuple[str, dict[str, Any]]:
        """Streams one answer's tokens; returns its finish reason and stats."""
        assert self._model is not None
        for chunk in self._generate(self._model, prompt, config, token.is_cancelled):
            if chunk.text:
                self.token_generated.emit(request_id, chunk.text)
            if chunk.finish_reason is not None:
                return chunk.finish_reason, asdict(chunk.stats) if chunk.stats else {}
        return "stop", {}


def _free_dropped_models() -> None:
    """Frees the models just dropped, now rather than whenever Python's cycle collector runs.

    After a generation a model sits in a reference cycle (model -> decoder runner -> its shared
    cache -> the generator -> model), with its ONNX Runtime session and KV-cache OrtValues. The
    collector runs when Python objects pile up, not native memory, so without this every switch
    kept one more model alive: with SmolLM2-135M, RSS grew from 0.9 GB to 1.9 GB in 45 cycles
    (malloc arenas were not the cause: MALLOC_ARENA_MAX=2 changed nothing).
    """
    gc.collect()


class WorkerThread:
    """Starts the worker on its own QThread and shuts it down cleanly."""

    def __init__(self, worker: InferenceWorker) -> None:
        self.worker = worker
        self.thread = QThread()
        self.thread.setObjectName("nightlamp-inference")
        worker.moveToThread(self.thread)
        # Qt's pattern for workers: destroy it on its own thread once that thread ends, not
        # later from Python's garbage collector on another thread (which crashed at exit).
        self.thread.finished.connect(worker.deleteLater)
        self.thread.start()

    def stop(self, timeout_ms: int = 5000) -> bool:
        """Cancels any generation, ends the thread's event loop and waits for it."""
        self.worker.cancel()
        self.thread.quit()
        return self.thread.wait(timeout_ms)

    def __del__(self) -> None:
        # A window dropped without being closed must not destroy a running QThread (Qt aborts
        # the whole process when that happens).
        try:
            if self.thread.isRunning():
                self.stop()
        except RuntimeError:
            pass  # the C++ thread object is already gone
