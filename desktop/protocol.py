"""What the window and the inference worker send each other: typed requests and a cancel token.

Every request the UI sends is one frozen dataclass of plain data, emitted as a queued signal's
``object`` argument (no widgets, nothing the worker could touch on the GUI thread's behalf). An
answer request carries its own ``CancelToken``: the UI keeps it by request id and sets it
directly on Stop (a queued "cancel" signal would wait behind the running answer), and the worker
checks only that request's token. So a Stop pressed after a request was sent but before the
worker picked it up still stops exactly that request, and an older request's Stop never stops a
newer one (superqt's ``GeneratorWorker`` keeps its abort flag per worker the same way).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from engine.generation import GenerationConfig


class CancelToken:
    """One request's stop flag, safe to set from any thread and to poll from the worker."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    def is_cancelled(self) -> bool:
        return self._event.is_set()

    def __repr__(self) -> str:
        return f"CancelToken(cancelled={self.is_cancelled()})"


@dataclass(frozen=True)
class ModelChoice:
    """The model an answer needs; the worker switches to it before answering."""

    spec: str  # a model name or folder; "" = the default model
    device: str = "auto"  # "auto", "cpu" or "cuda"


@dataclass(frozen=True)
class ChatJob:
    """A chat answer or a plain completion streamed token by token."""

    prompt: str | list[dict[str, str]]  # text to complete, or chat messages
    config: GenerationConfig = field(default_factory=GenerationConfig)
    fit_context: bool = False  # leave out the oldest messages that no longer fit (on the worker)
    context_limit: int | None = None  # the conversation's own context cap (0/None = the model's)
    documents: str = ""  # answer the last question from this document collection ("" = none)

    @property
    def needs_model(self) -> bool:
        return True


@dataclass(frozen=True)
class SummaryJob:
    """The Summarize panel's request (run by ``desktop.tasks.summary_job``)."""

    text: str  # the input as shown
    name: str = "text"  # the document's name, for headings and messages
    method: str = "auto"  # "extractive", "abstractive" or "auto"
    length: str = "medium"  # "short", "medium" or "long"
    path: str | None = None  # an opened, unedited document: read again from its file

    @property
    def needs_model(self) -> bool:
        return self.method != "extractive"  # key sentences are picked without a model


@dataclass(frozen=True)
class TranslationJob:
    """The Translate panel's request (run by ``desktop.tasks.translation_job``)."""

    target: str  # BCP-47 tag of the language to translate into
    source: str = "auto"  # the text's language, or "auto" to detect it
    text: str | None = None  # pasted text (translated as Markdown-like text) ...
    path: str | None = None  # ... or an opened file, translated in its own format
    output: str | None = None  # where the translated file is written
    round_trip: bool = False  # translate every segment back to check it (twice the time)

    @property
    def needs_model(self) -> bool:
        return True


Job = ChatJob | SummaryJob | TranslationJob


@dataclass(frozen=True)
class GenerateRequest:
    """One answer: ends with exactly one ``finished`` or ``failed`` for ``request_id``."""

    request_id: int
    task: str  # "chat", "complete", "summarize", "translate": for logs and messages
    job: Job
    model: ModelChoice | None = None  # switch to this model first (None = keep the current one)
    cancel: CancelToken = field(default_factory=CancelToken, compare=False)


@dataclass(frozen=True)
class LoadModel:
    """Make ``spec`` the current model: ends with ``model_loaded`` or ``failed``."""

    request_id: int
    spec: str  # a model name or folder; "" = the default model
    device: str = "auto"


@dataclass(frozen=True)
class ReleaseModel:
    """Close the sessions of the model in ``folder`` (it is about to be removed)."""

    folder: str


@dataclass(frozen=True)
class ModelInfo:
    """What ``model_loaded`` says about the model now in use."""

    spec: str  # as requested
    name: str
    device: str  # where it really runs ("cpu" / "cuda")
    folder: str
    context_length: int
    precision: str
    tasks: tuple[str, ...]
    load_s: float  # how long the switch took (a kept model: almost nothing)
