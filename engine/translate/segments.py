"""Cutting a marked piece of text into segments a translator can take, and joining them back.

Segments are sentences (``engine.text.sentences.split_sentences``: Western and CJK
punctuation, abbreviations). Two caps keep every request inside the model's context and the work
linear in the input, whatever it is (a 10 MB line without a full stop):

- text is first cut into chunks of at most ``CHUNK_CHARS`` characters (at a space when there is
  one near the end, else between characters), so sentence splitting never sees a huge string;
- a sentence still longer than the translator's ``max_segment_tokens`` is halved, at the space
  nearest its middle (else between characters), until every piece fits.

No cut ever falls inside a placeholder. Each segment remembers how it joins the one before it:
after a sentence end (a space, or nothing between CJK sentences), or exactly as it was cut.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from engine.text.scripts import CJK_WIDE_CHAR
from engine.text.sentences import split_sentences

CHUNK_CHARS = 4000  # longest text handed to the sentence splitter at once
_PLACEHOLDER = re.compile(r"⟦\s*\d{1,6}\s*⟧")
_CJK = CJK_WIDE_CHAR
CountTokens = Callable[[str], int]


@dataclass(frozen=True)
class Piece:
    """One segment's text and how it attaches to the previous one of its unit.

    Attributes:
        text: the marked text (placeholders as ``⟦n⟧`` of the whole unit).
        glue: ``None`` after a sentence end (joined by the language's rule), else the exact
            separator the text was cut at: ``" "`` or ``""``.
    """

    text: str
    glue: str | None = None


def _inside_placeholder(text: str, position: int) -> range | None:
    """The span of a placeholder that ``position`` would cut through, if any."""
    start = text.rfind("⟦", max(0, position - 12), position)
    if start < 0:
        return None
    match = _PLACEHOLDER.match(text, start)
    if match and match.start() < position < match.end():
        return range(match.start(), match.end())
    return None


def _cut_point(text: str, target: int, low: int) -> tuple[int, str]:
    """Where to cut ``text`` near ``target`` (never before ``low``): the last space in
    ``[low, target]``, else ``target`` itself moved out of any placeholder."""
    space = max(text.rfind(" ", low, target + 1), text.rfind("\t", low, target + 1))
    if space > 0:
        return space, " "
    position = max(1, min(target, len(text) - 1))
    span = _inside_placeholder(text, position)
    if span is not None:
        position = span.start if span.start > 0 else span.stop
    return position, ""


def _split_at(text: str, cut: int, glue: str) -> tuple[str, str]:
    if glue:
        return text[:cut].rstrip(), text[cut:].lstrip()
    return text[:cut], text[cut:]


def chunks(text: str, limit: int = CHUNK_CHARS) -> list[Piece]:
    """``text`` in pieces of at most about ``limit`` characters, cut at spaces where possible."""
    pieces: list[Piece] = []
    glue: str | None = None
    start = 0
    while len(text) - start > limit:
        window = text[start:start + limit + 1]  # only this much is ever copied per piece
        cut, how = _cut_point(window, limit, limit // 2)
        left = window[:cut].rstrip() if how else window[:cut]
        start += cut
        if how:
            while start < len(text) and text[start] in " \t":
                start += 1
        if left:
            pieces.append(Piece(left, glue))
            glue = how
    if start < len(text):
        pieces.append(Piece(text[start:], glue))
    return pieces


def fit(text: str, count: CountTokens, max_tokens: int) -> list[Piece]:
    """``text`` halved until every piece has at most ``max_tokens`` tokens (by ``count``); the
    first piece has no glue of its own. A piece that cannot be cut further is kept as it is."""
    if len(text) <= 1 or count(text) <= max_tokens:
        return [Piece(text)]
    middle = len(text) // 2
    cut, how = _cut_point(text, middle, len(text) // 4)
    if how == " ":  # prefer the space nearest the middle, on either side
        after = text.find(" ", middle, middle + (middle - cut))
        if after > 0:
            cut = after
    left, right = _split_at(text, cut, how)
    if not left or not right:
        return [Piece(text)]
    pieces = fit(left, count, max_tokens)
    tail = fit(right, count, max_tokens)
    return [*pieces, Piece(tail[0].text, how), *tail[1:]]


def segment(text: str, count: CountTokens, max_tokens: int) -> list[Piece]:
    """The sentences of a marked text, each within ``max_tokens``, with their glue."""
    pieces: list[Piece] = []
    for chunk in chunks(text):
        for index, sentence in enumerate(split_sentences(chunk.text)):
            for number, piece in enumerate(fit(sentence, count, max_tokens)):
                glue = piece.glue if number else (chunk.glue if index == 0 else None)
                pieces.append(Piece(piece.text, glue))
    return pieces


def joiner(before: str, after: str, glue: str | None) -> str:
    """The separator between two translated segments: as cut, or after a sentence end a space
    unless both sides are CJK (Chinese and Japanese put no space between sentences)."""
    cjk_pair = bool(before and after and _CJK.match(before[-1]) and _CJK.match(after[0]))
    if glue is not None:
        return "" if cjk_pair else glue
    return "" if cjk_pair else " "
