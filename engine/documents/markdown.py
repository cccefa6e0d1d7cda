"""Markdown: headings (ATX and setext), list items, fenced code, pipe tables and paragraphs.

A small line-based reader, not a full CommonMark parser: it only has to recover the structure a
summarizer uses. Text is kept as written (inline emphasis and links stay) minus the block markup
(``#``, list bullets, fences, table pipes, ``>`` quote markers). Indented code blocks read as
paragraphs; YAML front matter is skipped.
"""

from __future__ import annotations

import re

from engine.documents.limits import ReadGuard
from engine.documents.model import Block

_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_BREAK = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_FENCE = re.compile(r"^( {0,3})(`{3,}|~{3,})(.*)$")
_LIST = re.compile(r"^([ \t]*)(?:[-*+]|\d{1,9}[.)])(?:[ \t]+(.*))?$")
_DELIMITER_CELL = re.compile(r"^:?-+:?$")
_QUOTE = re.compile(r"^ {0,3}> ?")
_PIPE = re.compile(r"(?<!\\)\|")
_CHECK_EVERY = 2000  # lines between guard checks: cheap, and a 20 M-character file stays responsive


def _cells(line: str) -> list[str]:
    """The cells of a pipe-table row (outer pipes optional, ``\\|`` is a literal pipe)."""
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|") and not line.endswith("\\|"):
        line = line[:-1]
    return [cell.strip().replace("\\|", "|") for cell in _PIPE.split(line)]


def _is_table_start(line: str, next_line: str | None) -> bool:
    """A header row followed by a delimiter row with as many cells (GFM's rule)."""
    if next_line is None or "|" not in line or "-" not in next_line:
        return False
    delimiter = _cells(next_line)
    return (all(_DELIMITER_CELL.match(cell) for cell in delimiter)
            and len(delimiter) == len(_cells(line)))


def _front_matter_end(lines: list[str]) -> int:
    """Index of the first line after YAML front matter, or 0 when there is none."""
    if not lines or lines[0].strip() != "---":
        return 0
    for index in range(1, min(len(lines), 200)):
        if lines[index].strip() in ("---", "..."):
            return index + 1
    return 0


def _indent_width(indent: str) -> int:
    return len(indent.replace("\t", "    "))


class _Reader:
    """The parse state: the blocks so far and the paragraph or list item being collected."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.paragraph: list[str] = []
        self.item: list[str] | None = None
        self.item_level = 0
        self.indents: list[int] = []  # indentation of the enclosing list items, outermost first

    def flush(self) -> None:
        if self.paragraph:
            self.blocks.append(Block("paragraph", "\n".join(self.paragraph)))
            self.paragraph = []
        if self.item is not None:
            # Continuation lines of an item are soft wraps: one line reads better after "- ".
            text = " ".join(self.item).strip()
            if text:
                self.blocks.append(Block("list_item", text, level=self.item_level))
            self.item = None

    def fence(self, lines: list[str], start: int, indent: int, marker: str) -> int:
        """Collects a fenced code block opened at ``start``; returns the index after it."""
        body: list[str] = []
        index = start + 1
        while index < len(lines):
            line = lines[index]
            stripped = line.strip()
            if stripped.startswith(marker) and stripped.rstrip(marker[0]) == "":
                index += 1
                break
            # Lines lose as much indentation as the opening fence had, as CommonMark says.
            body.append(line[min(indent, len(line) - len(line.lstrip(" "))):])
            index += 1
        code = "\n".join(body).strip("\n")
        if code.strip():
            self.blocks.append(Block("code", code))
        return index

    def table(self, header: str, lines: list[str], start: int) -> int:
        """Collects a pipe table whose header row is at ``start``; returns the index after it."""
        rows = [_cells(header)]
        index = start + 2  # skip the delimiter row
        while index < len(lines) and lines[index].strip() and "|" in lines[index]:
            rows.append(_cells(_QUOTE.sub("", lines[index])))
            index += 1
        self.blocks.append(Block("table", "\n".join("\t".join(row) for row in rows)))
        return index

    def line(self, line: str) -> None:
        """Handles one line that is not part of a fence or a table."""
        if not line.strip():
            self.flush()
            return
        setext = _SETEXT.match(line)
        if setext and self.paragraph:
            text = " ".join(part.strip() for part in self.paragraph)
            self.paragraph = []
            self.blocks.append(Block("heading", text, level=1 if setext.group(1)[0] == "=" else 2))
            return
        if _BREAK.match(line):
            self.flush()
            self.indents = []
            return
        heading = _ATX.match(line)
        if heading:
            self.flush()
            self.indents = []
            if heading.group(2):
                self.blocks.append(Block("heading", heading.group(2).strip(),
                                         level=len(heading.group(1))))
            return
        item = _LIST.match(line)
        if item:
            self.flush()
            # Nesting follows indentation relative to the items above, not a fixed width.
            indent = _indent_width(item.group(1))
            while self.indents and self.indents[-1] >= indent:
                self.indents.pop()
            self.item, self.item_level = [item.group(2) or ""], min(len(self.indents), 10)
            self.indents.append(indent)
            return
        if self.item is not None:  # a continuation line of the current item
            self.item.append(line.strip())
            return
        self.indents = []
        self.paragraph.append(line.strip())


def read_markdown(text: str, guard: ReadGuard) -> list[Block]:
    """Markdown text (already decoded and normalised) as blocks in reading order."""
    lines = text.split("\n")
    reader = _Reader()
    index = _front_matter_end(lines)
    checked = index
    while index < len(lines):
        if index - checked >= _CHECK_EVERY:
            guard.check()
            checked = index
        line = lines[index]
        while _QUOTE.match(line):  # quoted text reads as the text itself
            line = _QUOTE.sub("", line, count=1)
        fence = _FENCE.match(line)
        if fence and not (fence.group(2)[0] == "`" and "`" in fence.group(3)):
            reader.flush()
            index = reader.fence(lines, index, len(fence.group(1)), fence.group(2))
            continue
        next_line = _QUOTE.sub("", lines[index + 1]) if index + 1 < len(lines) else None
        if _is_table_start(line, next_line):
            reader.flush()
            index = reader.table(line, lines, index)
            continue
        reader.line(line)
        index += 1
    reader.flush()
    return reader.blocks
