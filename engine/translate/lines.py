"""Line-level pieces of plain text and Markdown: heading text, table cells, wrapped paragraphs.

Everything here is linear in the line's length (no backtracking regex on user lines), so a
10 MB line costs what reading it costs.
"""

from __future__ import annotations

import re

from engine.translate.wrap import width

MAX_TABLE_LINE = 10_000  # longer lines are never read as table rows (no regex on huge lines)
WRAPPED_MIN_WIDTH = 40  # a paragraph narrower than this is verse or an address, not wrapped
_DELIMITER_ROW = re.compile(r"^[ \t]*\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$")
_SENTENCE_END = (".", "!", "?", ":", ";", "。", "！", "？", "；", "：", "…", '"', "”", "」")
_CJK = re.compile(r"[\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
                  r"\uff00-\uffef]")


def is_table_start(lines: list[str], index: int) -> bool:
    """A Markdown table: a row with a pipe followed by a delimiter row (``|---|:-:|``)."""
    line = lines[index]
    if "|" not in line or index + 1 >= len(lines) or len(line) > MAX_TABLE_LINE:
        return False
    following = lines[index + 1]
    return "-" in following and len(following) <= MAX_TABLE_LINE and \
        bool(_DELIMITER_ROW.match(following))


def split_cells(line: str, separator: str) -> list[str]:
    """The cells of a tab-separated line or a table row; a pipe inside `code` or after a
    backslash does not separate."""
    if separator == "\t":
        return line.split("\t")
    cells: list[str] = []
    start, in_code = 0, False
    for position, char in enumerate(line):
        if char == "`":
            in_code = not in_code
        elif char == separator and not in_code and (position == 0 or
                                                    line[position - 1] != "\\"):
            cells.append(line[start:position])
            start = position + 1
    cells.append(line[start:])
    return cells


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


def heading_text(body: str) -> tuple[str, str]:
    """An ATX heading's text and suffix (closing hashes and trailing space), without regex
    backtracking on long lines."""
    text = body.rstrip()
    suffix = body[len(text):]
    end = len(text)
    while end > 0 and text[end - 1] == "#":
        end -= 1
    if end < len(text) and (end == 0 or text[end - 1] in " \t"):
        start = end
        while start > 0 and text[start - 1] in " \t":
            start -= 1
        return text[:start], text[start:] + suffix
    return text, suffix
