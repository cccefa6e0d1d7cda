"""What a translation reports besides the text: a record per segment, a summary, flagged
segments and glossary misses, and a plain warning when the model is not fit for the pair.

Every segment sent for translation gets a ``SegmentRecord``: its status (``translated``: the
first answer passed every check; ``retried``: it needed the strict second prompt or had its
protected parts put at its end; ``kept_source``: no answer passed, so the source text stands),
the checks it failed on the way and a confidence in [0, 1] (``integrity.confidence``; 0 when
kept in the source). ``Summary`` counts them for the CLI and the app.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.translate.languages import name
from engine.translate.protect import Parts

TRANSLATED, RETRIED, KEPT_SOURCE = "translated", "retried", "kept_source"
UNFIT_KEPT_SHARE = 0.5  # more than this share of segments kept in the source: not fit
UNFIT_CONFIDENCE = 0.4  # a mean confidence below this: not fit


# Each check's failure in plain words, for people (the CLI's stderr, the app's tooltips).
REASON_TEXT = {"empty": "no translation came back, kept the original",
               "untranslated": "still in the source language, kept the original",
               "placeholders": "code, links or markup did not come back intact",
               "markers": "the answer had stray marker characters, kept the original",
               "label": "the answer was an instruction or a label, kept the original",
               "script": "the answer was not in the target script, kept the original",
               "language": "the answer was in another language, kept the original",
               "length": "the answer was far too long or short, kept the original"}


def reason_text(reason: str) -> str:
    """A check's name (``Flag.reason``, ``SegmentRecord.reasons``) in plain words; an unknown
    one as it is."""
    return REASON_TEXT.get(reason, reason)


@dataclass(frozen=True)
class Flag:
    """A segment whose translation needs a look: ``empty`` (kept in the source language),
    ``untranslated`` (still in the source language after a retry), ``placeholders`` (protected
    text could not be kept in place: moved to the end of the sentence, or the source kept), or
    a failed integrity check (``markers``, ``label``, ``script``, ``language``, ``length``: the
    source kept; see ``integrity``)."""

    segment: int  # 1-based, in document order among the segments sent for translation
    reason: str
    source: str
    translation: str


@dataclass(frozen=True)
class GlossaryMiss:
    segment: int
    term: str
    expected: str
    got: str  # the segment's translation


@dataclass(frozen=True)
class SegmentRecord:
    """One segment sent for translation, as it ended up.

    Attributes:
        index: 1-based, in document order (the same numbers as ``Flag.segment``).
        source: the segment's text as a reader sees it.
        translation: what went into the document (the source itself when ``kept_source``).
        status: ``translated``, ``retried`` or ``kept_source``.
        confidence: how far to trust it, 0..1 (0 when kept in the source).
        reasons: the checks it failed on the way, in order (empty: none).
        round_trip: the back-translation's chrF against the source (0..1), when one was made.
    """

    index: int
    source: str
    translation: str
    status: str
    confidence: float
    reasons: tuple[str, ...] = ()
    round_trip: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "source": self.source, "translation": self.translation,
                "status": self.status, "confidence": self.confidence,
                "reasons": list(self.reasons), "round_trip": self.round_trip}


@dataclass(frozen=True)
class Summary:
    """Counts over a translation's segment records."""

    segments: int
    translated: int
    retried: int
    kept_source: int
    mean_confidence: float  # 0.0 when there were no segments

    def to_json(self) -> dict[str, Any]:
        return {"segments": self.segments, "translated": self.translated,
                "retried": self.retried, "kept_source": self.kept_source,
                "mean_confidence": self.mean_confidence}


def summarize(records: Sequence[SegmentRecord]) -> Summary:
    """The counts and mean confidence of ``records``."""
    count = {status: sum(1 for r in records if r.status == status)
             for status in (TRANSLATED, RETRIED, KEPT_SOURCE)}
    mean = sum(r.confidence for r in records) / len(records) if records else 0.0
    return Summary(len(records), count[TRANSLATED], count[RETRIED], count[KEPT_SOURCE],
                   round(mean, 2))


def summary_line(summary: Summary, source: str) -> str:
    """The summary in plain words, for the CLI: "42 segments: 38 translated, 3 retried, 1 kept
    in English; mean confidence 0.81"."""
    if not summary.segments:
        return "nothing to translate"
    noun = "segment" if summary.segments == 1 else "segments"
    return (f"{summary.segments} {noun}: {summary.translated} translated, {summary.retried} "
            f"retried, {summary.kept_source} kept in {name(source)}; mean confidence "
            f"{summary.mean_confidence:.2f}")


def fitness_warning(summary: Summary, source: str, target: str,
                    model: str = "the model") -> str | None:
    """A one-line warning when ``model`` is not fit for the pair, else None: more than half of
    the segments kept in the source language, or a mean confidence under 0.4.

    Example: "the model translates English→Simplified Chinese poorly: 30 of 42 segments kept
    in English, mean confidence 0.21; try another model".
    """
    if not summary.segments:
        return None
    kept_share = summary.kept_source / summary.segments
    if kept_share <= UNFIT_KEPT_SHARE and summary.mean_confidence >= UNFIT_CONFIDENCE:
        return None
    return (f"{model or 'the model'} translates {name(source)}→{name(target)} poorly: "
            f"{summary.kept_source} of {summary.segments} segments kept in {name(source)}, "
            f"mean confidence {summary.mean_confidence:.2f}; try another model")


@dataclass
class Outcome:
    units: list[Parts | None]  # None: nothing in the unit was translated (keep it as it was)
    segments: int
    flagged: list[Flag] = field(default_factory=list)
    glossary_misses: list[GlossaryMiss] = field(default_factory=list)
    records: list[SegmentRecord] = field(default_factory=list)  # one per segment, in order

    def summary(self) -> Summary:
        return summarize(self.records)
