"""Translation of texts and documents with their structure kept, through any ``Translator``.

``translate_file`` and ``translate_text`` are the entry points for the CLI and the desktop app:

- txt and Markdown keep every line's markup (blank lines, list markers, indentation, headings,
  code blocks, tables); HTML keeps its tags and translates text nodes only; DOCX keeps
  paragraphs and run formatting and is written as a new file; PDF becomes Markdown text.
- URLs, code and markup are protected with placeholders and put back (``protect``).
- Answers are cleaned of chatter and checked (not empty, in the target language and script, no
  placeholder brackets or invented markers, no labels, a sane length, placeholders intact);
  a failing one is retried once, then flagged and its segment kept in the source language,
  never dropped or damaged (``pipeline``, ``integrity``).
- Every segment gets a record with its status and a confidence; the result carries them, a
  summary (``summary_line``) and a warning when the model is not fit for the pair
  (``warning``); ``round_trip=True`` also translates each answer back and scores it (chrF).
- A glossary's terms are applied and checked (``glossary``).
- ``source="auto"`` detects the language (``engine.language``); tags are BCP-47.

Everything blocks and can be cancelled through ``should_stop`` (OperationCancelledError); the
desktop app runs it on its worker thread. ``progress(stage, done, total)`` is one bar for the
whole job that never goes back (``pipeline``), and ``on_text`` receives the output text in
document order as groups of units are finished (``stream``): the pieces join to exactly the
final ``translation``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.callbacks import Progress
from engine.documents import ReadLimits, check_file, read_document
from engine.documents.limits import ReadGuard
from engine.errors import ConfigError
from engine.language import detect_language
from engine.translate.files import Plan, plan, read_text_file, write_text
from engine.translate.glossary import Glossary, load_glossary
from engine.translate.html import HtmlLayout
from engine.translate.languages import AUTO, check_known, check_tag, is_known
from engine.translate.pipeline import SECOND_PASS_STAGES, Pipeline, UnitsDone
from engine.translate.protect import Parts, Rule, text_only
from engine.translate.report import (
    Flag,
    GlossaryMiss,
    Outcome,
    SegmentRecord,
    Summary,
    fitness_warning,
    summarize,
    summary_line,
)
from engine.translate.stream import OnText, TextStream
from engine.translate.text import TextLayout
from engine.translate.translators import (
    InstructionFollowing,
    InstructTranslator,
    PairChecking,
    Seq2SeqTranslator,
    ShouldStop,
    Translator,
    make_translator,
    same_or_error,
)

__all__ = ["AUTO", "SECOND_PASS_STAGES", "Flag", "Glossary", "GlossaryMiss",
           "InstructTranslator", "Plan", "SegmentRecord", "Seq2SeqTranslator", "Summary",
           "TranslationResult", "Translator", "check_tag", "load_glossary", "make_translator",
           "plan", "translate_file", "translate_text", "translate_units"]

TEXT_KINDS = ("txt", "markdown", "html")
SAMPLE_CHARS = 20_000  # of the text, to detect its language


@dataclass(frozen=True)
class TranslationResult:
    """A finished translation and its report.

    Attributes:
        translation: the translated text (for a DOCX, its paragraphs as plain text).
        source: the source language tag (detected when ``auto`` was asked).
        target: the target language tag.
        segments: how many segments were sent for translation.
        flagged: segments that need a look (empty, untranslated, protected text moved).
        glossary_misses: glossary terms not translated as required.
        seconds: wall-clock time of the whole translation.
        model: the translator's name.
        output: the file written, if any.
        records: one record per segment sent for translation, in order (status, confidence,
            failed checks; see ``report.SegmentRecord``).
    """

    translation: str
    source: str
    target: str
    segments: int
    flagged: list[Flag] = field(default_factory=list)
    glossary_misses: list[GlossaryMiss] = field(default_factory=list)
    seconds: float = 0.0
    model: str = ""
    output: Path | None = None
    records: list[SegmentRecord] = field(default_factory=list)

    @property
    def summary(self) -> Summary:
        """Counts translated / retried / kept in the source, and the mean confidence."""
        return summarize(self.records)

    def summary_line(self) -> str:
        """The summary in plain words: "42 segments: 38 translated, 3 retried, 1 kept in
        English; mean confidence 0.81"."""
        return summary_line(self.summary, self.source)

    def warning(self) -> str | None:
        """A one-line warning when the model is not fit for this language pair, else None."""
        return fitness_warning(self.summary, self.source, self.target, self.model)

    def to_json(self) -> dict[str, Any]:
        return {
            "translation": self.translation, "source": self.source, "target": self.target,
            "segments": self.segments,
            "flagged": [vars(flag) for flag in self.flagged],
            "glossary_misses": [vars(miss) for miss in self.glossary_misses],
            "seconds": round(self.seconds, 3), "model": self.model,
            "output": str(self.output) if self.output else None,
            "summary": self.summary.to_json(), "warning": self.warning(),
            "records": [record.to_json() for record in self.records],
        }


def resolve_source(units: Sequence[Parts], source: str, target: str,
                   translator: Translator) -> str:
    """The source language: ``source`` itself, or detected from the text for ``auto``.

    Raises:
        ConfigError: undetectable language, source == target, or a pair the model lacks.
    """
    if source == AUTO:
        sample: list[str] = []
        size = 0
        for parts in units:
            text = text_only(parts)
            sample.append(text)
            size += len(text)
            if size >= SAMPLE_CHARS:
                break
        source = detect_language("\n".join(sample))
        if source == "und":
            listed = translator.source_languages if isinstance(translator, PairChecking) else ()
            if len(listed) != 1:
                raise ConfigError("cannot tell which language the text is in",
                                  hint="pass --from LANG",
                                  app_hint="choose the source language instead of Detect")
            source = listed[0]
    same_or_error(source, target)
    if isinstance(translator, PairChecking):
        translator.check_pair(source, target)
    elif isinstance(translator, InstructionFollowing):  # it must be told the languages' names
        check_known(target, "target")
        if is_known(source):
            return source
        raise ConfigError(f"the text's language {source!r} is unknown to Nightlamp",
                          hint="pass --from with a tag such as en, de or zh",
                          app_hint="choose the source language instead of Detect")
    return source


def translate_units(units: Sequence[Parts], rules: Sequence[Rule], translator: Translator,
                    target: str, source: str = AUTO, *, glossary: Glossary | None = None,
                    should_stop: ShouldStop | None = None,
                    progress: Progress | None = None,
                    on_units: UnitsDone | None = None,
                    round_trip: bool = False) -> tuple[Outcome, str]:
    """Translates a format's units; returns the outcome and the resolved source language.

    A text without any letters is returned as it is (nothing to translate is not an error).
    ``on_units(done, results)`` is called after each group: the first ``done`` results are final.
    ``round_trip`` translates every accepted segment back to score it (twice the requests).

    Raises:
        ConfigError: a bad tag, an undetectable source, source == target, or a pair the model
            does not support (in either direction with ``round_trip``).
        OperationCancelledError: ``should_stop`` returned True.
    """
    target = check_tag(target, "target")
    source = check_tag(source, "source", allow_auto=True)
    if not any(any(c.isalpha() for c in text_only(parts)) for parts in units):
        return Outcome([None] * len(units), 0), (source if source != AUTO else "und")
    source = resolve_source(units, source, target, translator)
    pipeline = Pipeline(translator, source, target, rules=rules, glossary=glossary,
                        should_stop=should_stop, progress=progress, round_trip=round_trip)
    return pipeline.run(units, on_units), source


def translate_text(text: str, translator: Translator, target: str, source: str = AUTO, *,
                   kind: str = "txt", glossary: Glossary | None = None,
                   should_stop: ShouldStop | None = None,
                   progress: Progress | None = None,
                   on_text: OnText | None = None,
                   round_trip: bool = False) -> TranslationResult:
    """Translates text in one of ``txt``, ``markdown`` or ``html``, keeping its structure.

    Args:
        progress: called with ``(stage, done, total)``; see the module docstring.
        on_text: called with each newly finished stretch of the output, in order; all of them
            joined are exactly the result's ``translation`` (the output does not depend on it).
        round_trip: also translate each segment's answer back and score it against the source
            (chrF), as part of its confidence; twice the requests.

    Raises:
        ConfigError: see ``translate_units``, or an unknown ``kind``.
        OperationCancelledError: ``should_stop`` returned True.
    """
    if kind not in TEXT_KINDS:
        raise ConfigError(f"kind must be one of {', '.join(TEXT_KINDS)} (got {kind!r})")
    started = time.perf_counter()
    limits = ReadLimits()
    layout: TextLayout | HtmlLayout = \
        HtmlLayout(text, ReadGuard("text", limits.timeout_s, should_stop)) if kind == "html" \
        else TextLayout(text, markdown=kind == "markdown")
    stream = TextStream(layout.needs, layout.piece, on_text) if on_text is not None else None
    outcome, resolved = translate_units(layout.units, layout.rules, translator, target, source,
                                        glossary=glossary, should_stop=should_stop,
                                        progress=progress, round_trip=round_trip,
                                        on_units=stream.advance if stream else None)
    if stream is not None:
        stream.finish(outcome.units)
    return TranslationResult(layout.render(outcome.units), resolved, check_tag(target),
                             outcome.segments, outcome.flagged, outcome.glossary_misses,
                             time.perf_counter() - started, translator.name,
                             records=outcome.records)


def translate_file(path: Path, translator: Translator, target: str, source: str = AUTO, *,
                   output: Path | None = None, glossary: Glossary | None = None,
                   should_stop: ShouldStop | None = None, progress: Progress | None = None,
                   limits: ReadLimits | None = None,
                   on_text: OnText | None = None,
                   round_trip: bool = False) -> TranslationResult:
    """Translates a document file; writes ``output`` when given (its suffix picks the format).

    ``progress``, ``on_text`` and ``round_trip`` work as in ``translate_text``; ``on_text``
    receives the result's ``translation`` (for a DOCX, its body's paragraphs as plain text),
    not the file.

    Raises:
        DocumentError: the input cannot be read (missing, damaged, unsafe, too large).
        ConfigError: an impossible output (see ``files.plan``), bad languages, an unwritable
            output.
        OperationCancelledError: ``should_stop`` returned True.
    """
    path = Path(path)
    how = plan(path, output)
    limits = limits or ReadLimits()
    check_file(path, ReadGuard(path.name, limits.timeout_s, should_stop), limits)
    started = time.perf_counter()
    common: dict[str, Any] = {"glossary": glossary, "should_stop": should_stop,
                              "progress": progress, "round_trip": round_trip}
    if how.route == "docx":
        from engine.translate.docx import DocxLayout

        document = DocxLayout(path, limits, should_stop)
        docx_stream = TextStream(document.needs, document.piece, on_text) \
            if on_text is not None else None

        def placed(done: int, results: Sequence[Parts | None]) -> None:
            document.apply(results, done)  # finished paragraphs are rebuilt as they come
            if docx_stream is not None:
                docx_stream.advance(done, results)

        outcome, resolved = translate_units(document.units, document.rules, translator, target,
                                            source, on_units=placed, **common)
        document.apply(outcome.units)
        if docx_stream is not None:
            docx_stream.finish(outcome.units)
        if output is not None:
            try:
                document.save(output)
            except OSError as error:
                raise ConfigError(f"cannot write {output} ({error.strerror}); check the "
                                  "folder") from None
        translation = document.text()
    else:
        encoding = None
        if how.route == "blocks":
            text = read_document(path, limits, should_stop).text()
            layout: TextLayout | HtmlLayout = TextLayout(text, markdown=True)
        else:
            text, encoding = read_text_file(path, how.input_kind, limits, should_stop)
            guard = ReadGuard(path.name, limits.timeout_s, should_stop)
            layout = HtmlLayout(text, guard) if how.route == "html" else \
                TextLayout(text, markdown=how.input_kind == "markdown")
        stream = TextStream(layout.needs, layout.piece, on_text) if on_text is not None \
            else None
        outcome, resolved = translate_units(layout.units, layout.rules, translator, target,
                                            source, on_units=stream.advance if stream else None,
                                            **common)
        if stream is not None:
            stream.finish(outcome.units)
        translation = layout.render(outcome.units)
        if output is not None:
            write_text(output, translation, encoding)
    return TranslationResult(translation, resolved, check_tag(target), outcome.segments,
                             outcome.flagged, outcome.glossary_misses,
                             time.perf_counter() - started, translator.name, output,
                             outcome.records)
