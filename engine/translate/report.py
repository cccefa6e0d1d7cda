"""What a translation reports besides the text: flagged segments and glossary misses."""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.translate.protect import Parts


@dataclass(frozen=True)
class Flag:
    """A segment whose translation needs a look: ``empty`` (kept in the source language),
    ``untranslated`` (still in the source language after a retry) or ``placeholders``
    (protected text moved to the end of the sentence)."""

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


@dataclass
class Outcome:
    units: list[Parts | None]  # None: nothing in the unit was translated (keep it as it was)
    segments: int
    flagged: list[Flag] = field(default_factory=list)
    glossary_misses: list[GlossaryMiss] = field(default_factory=list)
