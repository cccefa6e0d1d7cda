"""Summaries of documents of any length: extractive, abstractive (map-reduce) or auto.

``summarize`` is the one entry point for the CLI, the desktop app and the benchmark:

- ``extractive``: the most central sentences of the document itself (no model needed).
- ``auto``: an instruct model writes the summary, and every sentence it writes is checked
  against the source (``sectioned``, ``grounding``): a document that fits one input in one pass;
  a longer one section by section along its outline (a long section read through its most
  central sentences), then the sections' summaries combined; extractive without a model.
- ``abstractive``: the same, but a long section is read part by part (slower, reads it all).

The summary is written in the document's language unless ``language`` says otherwise.
``DEFAULT_METHOD`` (the CLI's and the app's default) is ``extractive``: the check catches invented
names, numbers and identifiers, not a wrong paraphrase, and the default model (135M parameters)
writes many of those; the method that only ever quotes the document stays the default until the
models a user gets here write better than they invent (benchmarks/RESULTS.md, "Grounded
summaries").
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from engine.documents import Document, read_text
from engine.errors import ConfigError, OperationCancelledError
from engine.generation import prompt_ids
from engine.language import detect_language, language_name
from engine.model import Model
from engine.summarize.abstractive import (
    OnText,
    Progress,
    ShouldStop,
    Summarizer,
)
from engine.summarize.extractive import extractive_summary
from engine.summarize.sectioned import Grounding, OnSection, SectionedSummary, SectionSummary
from engine.text.sentences import words

METHODS = ("auto", "abstractive", "extractive")
DEFAULT_METHOD = "extractive"
LENGTHS = ("short", "medium", "long")

__all__ = ["DEFAULT_METHOD", "LENGTHS", "METHODS", "Grounding", "SectionSummary",
           "SummaryResult", "summarize"]


@dataclass(frozen=True)
class SummaryResult:
    summary: str
    method: str  # what was done: extractive, abstractive or sectioned
    chunks: int  # model inputs the document was read in (1 when it fit at once)
    seconds: float
    input_tokens: int | None  # the document in the model's tokens; None when no model read it
    language: str  # the BCP-47 tag the summary was asked in
    input_words: int = 0  # the document's length in words, the same whatever the method
    # How the model's sentences fared against the source (None: extractive, nothing to check).
    grounding: Grounding | None = None
    sections: list[SectionSummary] = field(default_factory=list)  # empty: one pass


def can_summarize(model: Model | None) -> bool:
    """Whether ``auto`` should let ``model`` write summaries: an instruct model (chat template,
    and a chat or summarize task). ``abstractive`` asks any model with a chat template."""
    return model is not None and bool(model.manifest.chat_template) and \
        bool({"chat", "summarize"} & set(model.manifest.tasks))


PIECE_CHARS = 100_000  # text tokenized at once when a whole document is counted


def _count_tokens(model: Model, text: str, should_stop: ShouldStop) -> int:
    """The document's length in the model's tokens, as a prompt (BOS included), counted piece
    by piece between paragraphs: a 2,400-page manual takes seconds to tokenize, and Stop is
    answered between pieces. (A piece boundary may split what would be one token: the count is
    exact to within a token per piece.)"""
    if len(text) <= PIECE_CHARS:
        return len(prompt_ids(model, text))
    total = len(prompt_ids(model, ""))
    start = 0
    while start < len(text):
        if should_stop():
            raise OperationCancelledError("the summary was cancelled")
        end = text.rfind("\n\n", start + 1, start + PIECE_CHARS)
        end = len(text) if start + PIECE_CHARS >= len(text) else \
            (end if end > start else start + PIECE_CHARS)
        total += len(model.tokenizer.encode(text[start:end]))
        start = end
    return total


def summarize(source: Document | str, model: Model | None = None,
              method: str = DEFAULT_METHOD,
              length: str = "medium", language: str | None = None,
              should_stop: ShouldStop | None = None, progress: Progress | None = None,
              on_text: OnText | None = None, max_words: int | None = None,
              on_section: OnSection | None = None) -> SummaryResult:
    """Summarizes a document or text.

    Args:
        source: a Document from ``engine.documents`` or plain text.
        model: an instruct model for abstractive summaries (None: extractive only).
        method: auto, abstractive or extractive (``DEFAULT_METHOD``).
        length: short (a few sentences), medium (a paragraph) or long (section by section).
        language: the summary's language as a BCP-47 tag (default: the document's).
        should_stop: checked between and during model passes; True ends the summary.
        progress: called with (stage, done, total) as parts are summarized.
        on_text: receives the summary's draft as it is written (a one-pass summary as it is
            generated, a sectioned one section by section); the result's text is the checked
            one, which may differ.
        max_words: for extractive summaries, a length in words instead of ``length``'s.
        on_section: receives each section's checked summary as it is done (sectioned).

    Raises:
        ConfigError: an unknown method or length, or ``abstractive`` without a usable model.
        OperationCancelledError: ``should_stop`` returned True.
    """
    if method not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)} (got {method!r})")
    if max_words is not None and max_words < 1:
        raise ConfigError(f"max_words must be a positive number (got {max_words})")
    if length not in LENGTHS:
        raise ConfigError(f"length must be one of {', '.join(LENGTHS)} (got {length!r})")
    document = read_text(source) if isinstance(source, str) else source
    started = time.perf_counter()
    text = document.text()
    tag = language or detect_language(text)
    input_words = len(words(text))
    if method == "abstractive" and (model is None or not model.manifest.chat_template):
        raise ConfigError("abstractive summaries need an instruct (chat) model",
                          hint="pass -m MODEL or use --method extractive",
                          app_hint="choose a chat model for Summarize in Models, or the Key "
                                   "sentences method")
    if method == "extractive" or (method == "auto" and not can_summarize(model)):
        summary = extractive_summary(document, length, max_words)
        return SummaryResult(summary, "extractive", 1, time.perf_counter() - started,
                             None, tag, input_words=input_words)
    assert model is not None
    summarizer = Summarizer(model, length, language_name(tag), should_stop, progress, on_text)
    # As the model reads the document as a prompt (with its BOS token, if it has one).
    input_tokens = _count_tokens(model, text, should_stop or (lambda: False))
    # A summary in another language than the source's cannot be checked word for word.
    same_language = language is None or tag == detect_language(text)
    grounded = SectionedSummary(summarizer, every_part=method == "abstractive",
                                on_section=on_section, check=same_language)
    if summarizer.fits(text) and not (length == "long" and len(document.sections()) > 1):
        summary, done = grounded.single(document), "abstractive"
    else:
        summary, done = grounded.document(document), "sectioned"
    if not summary.strip():  # an unchecked answer that came back empty: the key sentences
        summary, done = extractive_summary(document, length, max_words), "extractive"
    return SummaryResult(summary, done, grounded.inputs, time.perf_counter() - started,
                         input_tokens, tag, input_words=input_words,
                         grounding=grounded.grounding, sections=grounded.sections)
