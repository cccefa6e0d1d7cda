"""Paragraphs from a PDF page's glyph boxes: lines rebuilt, columns kept apart, breaks found.

A PDF page holds glyphs at positions, not paragraphs; text extractors (PDFium's included) give
one line after another and nothing more. ``page_text`` rebuilds the page from the glyphs' boxes
(PDFium's "loose" boxes: font ascent to descent, the same for every glyph of a font and size):

1. runs: glyphs in PDFium's order (``pdf_child`` passes whole words, boxed from their first to
   their last glyph), cut at its line breaks, at a jump back or up and down, and at a horizontal
   gap wider than the text is tall (a column gutter, or a table's cell gap);
2. columns: when an empty vertical band in the middle of the page separates runs that stand side
   by side and fill their halves, the page has two columns; runs crossing the band (titles,
   full-width figures) cut the page into bands, read one column after the other within each;
3. lines: the runs of one column that share a height, left to right;
4. paragraphs: a break before a line whose baseline gap is wider than the page's line spacing,
   whose size differs (a heading), that starts with a bullet, or that is indented after a flush
   line; and after a line too short to have been filled (justified text: any line that stops
   short of the column's right edge; ragged text: a line with room left for the next line's
   first word). Runs of short lines that start at the same place (code, verse, addresses) stay
   together.

Right-to-left lines (Hebrew, Arabic) are put in reading order, but the indent and short-line
rules assume left-to-right text: there only gaps, sizes and bullets break paragraphs.

The result is the page's text with lines joined by ``\\n`` and paragraphs by a blank line, which
``cleanup.clean_pages`` repairs (running headers, broken words) and ``text.split_paragraphs``
splits. Pure Python on plain tuples: ``pdf_child`` reads the boxes from PDFium.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise
from statistics import median

# One glyph or word: its text and loose box in PDF points (y grows upward):
# (text, left, bottom, right, top). "\n" alone is a line break from the extractor; a whitespace
# text is a space (its box is ignored, extractors often generate spaces with no box).
Char = tuple[str, float, float, float, float]

_FAR = 1e5  # points; a real page is at most 14,400 (200 inches)
_GRID_CELLS = 4000  # the gutter search's grid: 1 pt cells, coarser on an absurdly wide page
RUN_GAP = 1.0  # a horizontal gap wider than this many text heights ends a run
GAP_RATIO = 1.2  # a baseline gap this much wider than the usual line spacing is a paragraph break
SIZE_CHANGE = 0.15  # a line this much taller or shorter than the one before starts a paragraph
INDENT = 0.5  # a first-line indent is at least this many text heights ...
MAX_INDENT = 6.0  # ... and at most this many (more is a centred or right-aligned line)
FILLED = 0.15  # a line ending within this share of the column's width of its right edge is full
SHORT_BLOCK = 0.3  # lines this much (of the column's width) short of its right edge are "short"
# Bullet glyphs only: "(1)" or "a." often start a line in the middle of a sentence.
_BULLET = re.compile(r"[•◦▪‣●○■□►▸✓*-]\s")


@dataclass
class Run:
    """Glyphs on one baseline with no wide gap between them."""

    text: str
    left: float
    right: float
    bottom: float
    top: float
    base: float  # the usual glyph bottom: a baseline that ignores sub- and superscripts
    size: float  # the usual glyph height

    @property
    def height(self) -> float:
        return self.top - self.bottom

    @property
    def middle(self) -> float:
        return (self.top + self.bottom) / 2


@dataclass
class Line:
    """A text line of one column: its text and where it stands."""

    text: str
    left: float
    right: float
    base: float  # the usual glyph bottom: a baseline that ignores sub- and superscripts
    size: float  # the usual glyph height
    column: str  # "page" (one column), "left", "right", or "span" (across both columns)


def runs_from_chars(chars: Iterable[Char]) -> list[Run]:
    """Glyphs (or words) grouped into runs (step 1 of the module docstring)."""
    runs: list[Run] = []
    pieces: list[str] = []
    bottoms: list[float] = []
    heights: list[float] = []
    left = right = bottom = top = 0.0
    space = False

    def close() -> None:
        if pieces:
            runs.append(Run("".join(pieces), left, right, bottom, top, median(bottoms),
                            median(heights)))
            pieces.clear()
            bottoms.clear()
            heights.clear()

    for text, x0, y0, x1, y1 in chars:
        if text == "\n":
            close()
            space = False
            continue
        if text.isspace():
            space = bool(pieces)
            continue
        if not (-_FAR < x0 <= x1 < _FAR and -_FAR < y0 < y1 < _FAR):
            # No box (or NaN, or one far off any page): the text joins the run it is in.
            if pieces:
                pieces.append(" " + text if space else text)
                space = False
            continue
        if pieces:
            height = max(top - bottom, y1 - y0)
            middle = (y0 + y1) / 2
            if x0 - right > RUN_GAP * height or x0 < left - height / 2 or not (
                    bottom <= middle <= top):
                close()
                space = False
        if not pieces:
            left, right, bottom, top = x0, x1, y0, y1
        else:
            right, bottom, top = max(right, x1), min(bottom, y0), max(top, y1)
            if space:
                pieces.append(" ")
        space = False
        pieces.append(text)
        bottoms.append(y0)
        heights.append(y1 - y0)
    close()
    return runs


def _gutter(runs: list[Run]) -> float | None:
    """The x of the gap between two text columns, or None for a one-column page (step 2).

    The gap is the widest stretch in the middle of the page that few runs cross (a title or a
    full-width heading may): at most a fifth of them, counted on a 1 pt grid.
    """
    if len(runs) < 8:
        return None
    low, high = min(run.left for run in runs), max(run.right for run in runs)
    width = high - low
    if width < 100:
        return None
    step = max(1.0, width / _GRID_CELLS)
    cells = int(width / step) + 2
    starts = [0] * cells  # a difference array: +1 where a run begins, -1 after it ends
    for run in runs:
        starts[int((run.left - low) / step)] += 1
        starts[int((run.right - low) / step) + 1] -= 1
    allowed = len(runs) // 5
    need = max(0.8 * median(run.height for run in runs), 0.015 * width) / step
    best: tuple[int, float] | None = None  # (gap width, x)
    covered = 0
    begin: int | None = None
    for cell in range(cells):
        covered += starts[cell]
        inside = 0.3 * width <= cell * step <= 0.7 * width
        if inside and covered <= allowed:
            begin = cell if begin is None else begin
            continue
        if begin is not None and cell - begin >= need and (best is None or cell - begin > best[0]):
            best = (cell - begin, low + step * (begin + cell) / 2)
        begin = None
    if best is None:
        return None
    x = best[1]
    left_runs = [run for run in runs if run.right <= x]
    right_runs = [run for run in runs if run.left >= x]
    if (len(left_runs) < 3 or len(right_runs) < 3
            or median(run.right - run.left for run in left_runs) < 0.5 * (x - low)
            or median(run.right - run.left for run in right_runs) < 0.5 * (high - x)):
        return None  # a table, a form or ragged text, not two columns of prose
    beside = (a for a in left_runs
              if any(min(a.top, b.top) > max(a.bottom, b.bottom) for b in right_runs))
    return x if sum(1 for _ in zip(beside, range(3), strict=False)) == 3 else None


def _lines(runs: list[Run], column: str) -> list[Line]:
    """Runs of one column grouped into lines, top to bottom (step 3)."""
    lines: list[Line] = []
    group: list[Run] = []

    def flush() -> None:
        # Right-to-left scripts (Hebrew, Arabic) read from the right edge.
        group.sort(key=(lambda run: -run.right) if _right_to_left(group) else
                   (lambda run: run.left))
        parts = [group[0].text]
        for previous, run in pairwise(group):
            gap = max(run.left - previous.right, previous.left - run.right)
            parts.append(("" if gap < 0.1 * run.height else " ") + run.text)
        main = max(group, key=lambda run: len(run.text))  # its baseline, not a superscript's
        lines.append(Line(" ".join("".join(parts).split()), group[0].left,
                          max(run.right for run in group), main.base, main.size, column))

    for run in sorted(runs, key=lambda run: (-run.middle, run.left)):
        if group:
            first = group[0]
            overlap = min(first.top, run.top) - max(first.bottom, run.bottom)
            if overlap <= 0.5 * min(first.height, run.height):
                flush()
                group = []
        group.append(run)
    if group:
        flush()
    return [line for line in lines if line.text]


def _right_to_left(runs: list[Run]) -> bool:
    """Whether the first letter with a direction in these runs is a right-to-left one."""
    for run in runs:
        for char in run.text:
            direction = unicodedata.bidirectional(char)
            if direction in ("R", "AL"):
                return True
            if direction == "L":
                return False
    return False


def page_lines(runs: list[Run]) -> list[Line]:
    """The page's lines in reading order: column by column within each band (step 2 and 3)."""
    x = _gutter(runs)
    if x is None:
        return _lines(runs, "page")
    spans = _lines([run for run in runs if run.left < x < run.right], "span")
    ordered: list[Line] = []
    remaining = [run for run in runs if not run.left < x < run.right]
    for span in [*spans, None]:
        above = [run for run in remaining if span is None or run.bottom > span.base]
        remaining = [run for run in remaining if span is not None and run.bottom <= span.base]
        ordered += _lines([run for run in above if run.right <= x], "left")
        ordered += _lines([run for run in above if run.left >= x], "right")
        if span is not None:
            ordered.append(span)
    return ordered


@dataclass
class _Column:
    """What lines of one column have in common: margins, and whether it is justified."""

    left: float
    right: float
    width: float
    filled: bool  # most lines reach near the right edge: prose, where a short line means an end
    justified: bool


def _columns(lines: list[Line]) -> dict[str, _Column]:
    found = {}
    for name in {line.column for line in lines}:
        mine = [line for line in lines if line.column == name]
        lefts = Counter(round(line.left) for line in mine)
        left, count = lefts.most_common(1)[0]
        margin_left = float(left) if count > 1 else min(line.left for line in mine)
        rights = sorted(line.right for line in mine)
        # The edge most lines reach; a long URL or formula may stick out past it (a few lines
        # can't tell one from the other, so there it is the longest line's).
        margin_right = rights[int(0.9 * (len(rights) - 1))] if len(rights) >= 10 else rights[-1]
        size = median(line.size for line in mine)
        width = max(margin_right - margin_left, 1.0)
        flush = sum(margin_right - line.right < size / 2 for line in mine)
        full = sum(margin_right - line.right < FILLED * width for line in mine)
        # A few lines, or lines of any length (a list, a form, a title page), say nothing about
        # where this column's lines end.
        found[name] = _Column(margin_left, margin_right, width,
                              len(mine) >= 4 and full >= 0.5 * len(mine),
                              len(mine) >= 4 and flush >= 0.6 * len(mine))
    return found


def _spacing(lines: list[Line]) -> float | None:
    """The page's usual baseline distance, in text heights, between lines of similar size."""
    ratios = [(previous.base - line.base) / line.size
              for previous, line in pairwise(lines)
              if previous.column == line.column and line.size > 0
              and abs(previous.size - line.size) <= SIZE_CHANGE * line.size
              and 0 < previous.base - line.base < 4 * line.size]
    return median(ratios) if ratios else None


def _breaks(previous: Line, line: Line, columns: dict[str, _Column],
            spacing: float | None) -> bool:
    """Whether ``line`` starts a new paragraph after ``previous`` (step 4)."""
    if (previous.column == "span") != (line.column == "span"):
        return True
    if abs(previous.size - line.size) > SIZE_CHANGE * max(previous.size, line.size):
        return True
    if _BULLET.match(line.text):
        return True
    same = previous.column == line.column
    if same and spacing is not None:
        gap = (previous.base - line.base) / line.size
        if gap <= 0 or gap > spacing * GAP_RATIO:
            return True
    here, before = columns[line.column], columns[previous.column]
    indent = line.left - here.left
    if INDENT * line.size < indent < MAX_INDENT * line.size and (
            previous.left - before.left < INDENT * previous.size / 2):
        return True
    short = before.right - previous.right
    width = max(previous.right - previous.left, 1.0)
    char = width / max(len(previous.text), 1)
    if not before.filled:
        return False
    if (short > SHORT_BLOCK * before.width and here.right - line.right > SHORT_BLOCK * here.width
            and same and abs(previous.left - line.left) < previous.size / 4):
        return False  # a block of short lines: code, verse, an address, a list of names
    if before.justified:
        return short > 2 * char
    words = line.text.split()
    needed = (len(words[0]) + 1) * char if words else 0.0
    return short > needed + char


def paragraphs(lines: list[Line]) -> list[list[Line]]:
    """The page's lines (in reading order) grouped into paragraphs (step 4)."""
    if not lines:
        return []
    columns = _columns(lines)
    spacing = _spacing(lines)
    found = [[lines[0]]]
    for previous, line in pairwise(lines):
        if _breaks(previous, line, columns, spacing):
            found.append([line])
        else:
            found[-1].append(line)
    return found


def page_text(chars: Iterable[Char]) -> str:
    """A page's text from its glyphs: lines joined by newlines, paragraphs by a blank line."""
    groups = paragraphs(page_lines(runs_from_chars(chars)))
    return "\n\n".join("\n".join(line.text for line in group) for group in groups)
