"""The panels' longer work, run on the inference worker's thread: summaries, translations and
chat answers from a document collection.

Plain functions over the engine (no Qt): each takes the panel's request (desktop.protocol), the
loaded model and the worker's callbacks (``should_stop`` polls that request's own cancel token),
and returns how it ended plus the stats the panel shows. The worker turns the callbacks into
signals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from desktop.protocol import ChatJob, SummaryJob, TranslationJob
from engine.callbacks import OnText, Progress, ShouldStop
from engine.documents import read_document, read_text
from engine.errors import ConfigError, OperationCancelledError
from engine.model import Model
from engine.retrieval.answer import GenerateFunction, fit_passages, new_answer, stream_answer
from engine.retrieval.collection import Collection
from engine.retrieval.embedder import Embedder
from engine.retrieval.search import search
from engine.summarize import summarize
from engine.translate import TranslationResult, make_translator, translate_file, translate_text
from engine.translate.report import KEPT_SOURCE

LOW_CONFIDENCE = 0.5  # segments below it are marked in the Translate panel
PASSAGES = 5  # passages looked up for a question; those that fit the context are given


def summary_job(request: SummaryJob, model: Model | None, should_stop: ShouldStop,
                progress: Progress, on_text: OnText,
                summarize_fn: Callable[..., Any] = summarize,
                on_section: Callable[[dict[str, Any]], None] | None = None,
                ) -> tuple[str, dict[str, Any]]:
    """A document summary: parts as progress, the draft as it is written, each section's
    checked summary (as plain data) to ``on_section`` as it is done."""
    try:
        document = read_document(Path(request.path), should_stop=should_stop) if request.path \
            else read_text(request.text, request.name or "text")
        sections = (lambda section: on_section(asdict(section))) if on_section else None
        result = summarize_fn(document, model, request.method, request.length,
                              should_stop=should_stop, progress=progress, on_text=on_text,
                              on_section=sections)
    except OperationCancelledError:
        return "cancelled", {}
    return "stop", asdict(result)


def translation_job(request: TranslationJob, model: Model | None, should_stop: ShouldStop,
                    progress: Progress, on_text: OnText) -> tuple[str, dict[str, Any]]:
    """A translation of pasted text (kept as Markdown-like text, streamed to ``on_text`` as
    paragraphs are done) or of an opened file (written in its own format to ``output``),
    with progress (the pipeline's stage: translating, retrying, ...). ``round_trip`` in the
    request also translates every segment back to check it (twice the time)."""
    assert model is not None  # the worker checks before it runs a job that needs one
    translator = make_translator(model)
    common: dict[str, Any] = {"should_stop": should_stop, "progress": progress,
                              "round_trip": request.round_trip}
    try:
        if request.path:
            output = Path(request.output) if request.output else None
            result = translate_file(Path(request.path), translator, request.target,
                                    request.source, output=output, on_text=on_text, **common)
        else:
            result = translate_text(request.text or "", translator, request.target,
                                    request.source, kind="markdown", on_text=on_text, **common)
    except OperationCancelledError:
        return "cancelled", {}
    return "stop", translation_stats(result, request.round_trip)


def translation_stats(result: TranslationResult, round_trip: bool = False) -> dict[str, Any]:
    """What the Translate panel shows, as plain data: the text, the counts, whether the model
    is unfit for the pair, and only the segments to mark (not every record: those carry the
    whole text twice over, source and translation)."""
    return {
        "translation": result.translation, "source": result.source, "target": result.target,
        "segments": result.segments, "seconds": round(result.seconds, 3),
        "model": result.model, "output": str(result.output) if result.output else None,
        "flagged": len(result.flagged), "glossary_misses": len(result.glossary_misses),
        "counts": result.summary.to_json(), "unfit": result.warning() is not None,
        "round_trip": round_trip,
        "marks": [{"index": record.index, "text": record.translation, "status": record.status,
                   "confidence": record.confidence, "reasons": list(record.reasons)}
                  for record in result.records
                  if record.status == KEPT_SOURCE or record.confidence < LOW_CONFIDENCE],
    }


def documents_chat_job(request: ChatJob, model: Model, embedder_for: Callable[[str], Embedder],
                       should_stop: ShouldStop, on_text: OnText,
                       on_sources: Callable[[dict[str, Any]], None],
                       generate_fn: GenerateFunction) -> tuple[str, dict[str, Any]]:
    """An answer to the conversation's last question from the collection ``request.documents``:
    the passages found go to ``on_sources`` before the answer streams (so its citations can be
    opened at once) and again after it, marked with what it cited. The stats carry them too,
    for the history."""
    if not isinstance(model, Model) or not model.manifest.chat_template:
        raise ConfigError(f"{model.name} is not a chat model; answers from documents need one",
                          app_hint="choose a chat model for Chat in Models")
    messages = request.prompt if isinstance(request.prompt, list) else []
    question = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
    if not question.strip():
        raise ConfigError("there is no question to look up in the documents")
    with Collection.open(request.documents) as collection:
        hits = search(collection, embedder_for(collection.embedding_model), question, PASSAGES)
    answer = new_answer(fit_passages(model, question, hits, request.config.max_new_tokens))

    def sources() -> dict[str, Any]:
        return {"collection": request.documents, "relevant": answer.relevant,
                "sources": answer.sources()}

    on_sources(sources())
    for shown in stream_answer(model, question, answer, request.config, should_stop,
                               generate_fn):
        on_text(shown)
    on_sources(sources())
    return answer.finish_reason, {**answer.stats, "documents": sources()}
