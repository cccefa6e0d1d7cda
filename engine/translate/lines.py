"""Line-level pieces of plain text: whether a paragraph is hard-wrapped, and joining its lines.

The Markdown block grammar (headings, tables, cells) lives in ``engine.text.markdown_blocks``,
shared with the document reader. Everything here is linear in the line's length.
"""

from __future__ import annotations

from engine.text.scripts import CJK_WIDE_CHAR
from engine.translate.wrap import width

WRAPPED_MIN_WIDTH = 40  # a paragraph narrower than this is verse or an address, not wrapped
_SENTENCE_END = (".", "!", "?", ":", ";", "。", "！", "？", "；", "：", "…", '"', "”", "」")
_CJK = CJK_WIDE_CHAR


def hard_wrapped(lines: list[str]) -> int:
    """The width a paragraph was wrapped to, or 0 when its lines are not hard-wrapped prose:
    one line, narrow lines (verse, addresses), a short line before the last, or every line
    ending a sentence (one sentence per line)."""
    if len(lines) < 2:
        return 0
    widths = [width(line.rstrip()) for line in lines]
    widest = max(widths)
    if widest < WRAPPED_MIN_WIDTH or any(w < 0.5 * widest for w in widths[:-1]):
        return 0
    if all(line.rstrip().endswith(_SENTENCE_END) for line in lines[:-1]):
        return 0
    return widest


def join_lines(texts: list[str]) -> str:
    """Wrapped lines as one text: a space between them, none between two CJK characters."""
    joined = texts[0]
    for text in texts[1:]:
        cjk = bool(_CJK.match(joined[-1:]) and _CJK.match(text[:1]))
        joined += ("" if cjk else " ") + text
    return joined
