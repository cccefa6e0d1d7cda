"""Plain text and Markdown, line by line: every piece of markup kept exactly, only prose translated.

Each line is one of: blank; code (fenced, or indented in Markdown), copied as it is; another line
kept verbatim (thematic break, setext underline, empty list item, HTML block, link definition,
front matter, table delimiter); or text between a prefix (quote markers, indentation, list marker,
heading hashes) and a suffix (closing hashes, trailing spaces of a hard break). Table rows and
tab-separated lines are translated cell by cell, pipes and tabs kept.

Consecutive lines of one paragraph are translated together when they are hard-wrapped prose (long
lines of similar length that don't each end a sentence), and the translation is wrapped again to
the same width with the same prefixes; other multi-line paragraphs (addresses, verse, one
sentence per line) are translated line by line. So blank lines, markers and indentation always
come out as they went in, and a paragraph is never merged into or split across another.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from engine.text.markdown_blocks import (
    atx_heading,
    fenced_code,
    front_matter_end,
    is_thematic_break,
    list_marker_end,
    quote_prefix,
    setext_level,
    split_cells,
    table_end,
    without_quote,
)
from engine.translate.lines import hard_wrapped, join_lines
from engine.translate.protect import Parts
from engine.translate.rules import MARKDOWN_RULES, TEXT_RULES
from engine.translate.wrap import width, wrap

# The block grammar (fences, quotes, breaks, headings, list markers, tables, front matter) is
# engine.text.markdown_blocks, shared with the document reader. What follows is this reader's
# own choice, not grammar: plain text has its own list bullets, and in Markdown indented code,
# HTML blocks and link definitions are copied verbatim (nothing in them is prose to translate),
# where a summary reads them as paragraphs.
_TXT_LIST = re.compile(r"^[ \t]*(?:[-*+•·‣▪◦–]|\d{1,9}[.)]|[a-zA-Z]\)|\(\w{1,3}\))[ \t]+")
_INDENT = re.compile(r"^[ \t]*")
_HTML_BLOCK = re.compile(
    r"^[ ]{0,3}<(?:!--|/?(?:address|article|aside|blockquote|details|dialog|div|dl|fieldset|"
    r"figcaption|figure|footer|form|h[1-6]|header|hr|iframe|li|main|nav|ol|p|pre|script|"
    r"section|style|summary|table|tbody|td|tfoot|th|thead|tr|ul|video|audio|picture|img|br|"
    r"center)\b)", re.IGNORECASE)
_LINK_DEFINITION = re.compile(r"^[ ]{0,3}\[[^\]\n]{1,200}\]:[ \t]*\S")


@dataclass
class _Slot:
    """Text to translate from one or more source lines, and how to write it back."""

    prefix: str
    text: str
    suffix: str
    original: list[str]  # the source lines, written back when nothing was translated
    rest_prefix: str = ""
    wrap: int = 0  # 0: one line; else rewrap the translation to this many columns
    unit: int = -1


@dataclass
class _Group:
    """Lines of one paragraph or list item while they are being read."""

    quote: str
    item: bool
    lines: list[tuple[str, str, str]] = field(default_factory=list)  # (prefix, text, suffix)

    def hard_break(self) -> bool:
        suffix = self.lines[-1][2]
        return suffix.startswith("\\") or suffix.count(" ") >= 2 or "\t" in suffix


Item = str | _Slot | list[str | _Slot]


class TextLayout:
    """A txt or Markdown text split into verbatim lines and translatable slots.

    Args:
        text: the whole text (newlines already normalised to ``\\n``).
        markdown: read Markdown structure (tables, indented code, HTML blocks, links).
    """

    def __init__(self, text: str, markdown: bool) -> None:
        self.markdown = markdown
        self.rules = MARKDOWN_RULES if markdown else TEXT_RULES
        self.items: list[Item] = []
        self.slots: list[_Slot] = []
        self._group: _Group | None = None
        self._parse(text.split("\n"))

    @property
    def units(self) -> list[Parts]:
        return [[slot.text] for slot in self.slots]

    # -- reading ---------------------------------------------------------------------------

    def _slot(self, slot: _Slot) -> _Slot:
        slot.unit = len(self.slots)
        self.slots.append(slot)
        return slot

    def _verbatim(self, line: str) -> None:
        self._flush()
        self.items.append(line)

    def _parse(self, lines: list[str]) -> None:
        index = self._front_matter(lines)
        previous_blank, previous_code, in_list = True, False, False
        while index < len(lines):
            line = lines[index]
            indent = len(_INDENT.match(line).group(0).expandtabs(4))  # type: ignore[union-attr]
            if previous_blank and line.strip() and indent == 0 and not self._list_marker(line):
                in_list = False  # a flush-left paragraph after a blank line ends any list
            fence = fenced_code(lines, index)
            if fence is not None:  # copied as it is, closing fence included
                self._flush()
                self.items.extend(lines[index:fence.end])
                index = fence.end
                previous_blank, previous_code = False, False
                continue
            if not line.strip():
                self._verbatim(line)
                previous_blank, previous_code = True, False
                index += 1
                continue
            if self.markdown and indent >= 4 and (previous_blank or previous_code) \
                    and not in_list:
                self._verbatim(line)
                previous_blank, previous_code = False, True
                index += 1
                continue
            if self.markdown and _HTML_BLOCK.match(line):
                while index < len(lines) and lines[index].strip():
                    self._verbatim(lines[index])
                    index += 1
                previous_blank, previous_code = False, False
                continue
            end = table_end(lines, index) if self.markdown else index
            if end > index:
                self._table(lines, index, end)
                index = end
                previous_blank = previous_code = in_list = False
                continue
            if self.markdown and _LINK_DEFINITION.match(line):
                self._verbatim(line)
            else:
                in_list = self._text_line(line, previous_blank, in_list)
            previous_blank, previous_code = False, False
            index += 1
        self._flush()

    def _marker_end(self, rest: str) -> int:
        """Where a list item's text begins in a line without its quote prefix (0: no item):
        Markdown's markers, or plain text's wider choice of bullets."""
        if self.markdown:
            return list_marker_end(rest)
        marker = _TXT_LIST.match(rest)
        return marker.end() if marker else 0

    def _list_marker(self, line: str) -> bool:
        return self._marker_end(without_quote(line)) > 0

    def _front_matter(self, lines: list[str]) -> int:
        """Copies YAML front matter verbatim and returns the index after it."""
        end = front_matter_end(lines) if self.markdown else 0
        self.items.extend(lines[:end])
        return end

    def _table(self, lines: list[str], start: int, end: int) -> None:
        """Copies a table's delimiter row and splits its other rows into cells to translate,
        each row's quote prefix kept."""
        self._flush()
        for index in range(start, end):
            line = lines[index]
            if index == start + 1:
                self.items.append(line)
                continue
            prefix = quote_prefix(line)
            self.items.append(self._cells(line[len(prefix):], "|", prefix))

    def _cells(self, line: str, separator: str, prefix: str = "") -> list[str | _Slot]:
        """A line as separators (kept) and cells (translated); a pipe inside `code` or after a
        backslash is not a separator."""
        pieces: list[str | _Slot] = [prefix] if prefix else []
        for number, cell in enumerate(split_cells(line, separator)):
            if number:
                pieces.append(separator)
            core = cell.strip()
            if not core:
                pieces.append(cell)
                continue
            lead = cell[:len(cell) - len(cell.lstrip())]
            pieces.append(lead)
            pieces.append(self._slot(_Slot("", core, "", [core])))
            pieces.append(cell[len(lead) + len(core):])
        return [p for p in pieces if not isinstance(p, str) or p]

    def _text_line(self, line: str, previous_blank: bool, in_list: bool) -> bool:
        """Reads one line of text; returns whether a list is open."""
        quote = quote_prefix(line)
        rest = line[len(quote):]
        if not rest.strip() or self._is_rule(quote, rest):
            self._verbatim(line)
            return in_list
        heading = atx_heading(rest)
        if heading:
            self._flush()
            if not heading.text:
                self.items.append(line)
            else:
                self.items.append(self._slot(_Slot(quote + heading.prefix, heading.text,
                                                   heading.suffix, [line])))
            return False
        marker = self._marker_end(rest)
        if marker and rest[marker:].strip():
            self._flush()
            self._group = _Group(quote, True)
            self._add(quote + rest[:marker], rest[marker:])
            return True
        if marker:  # an empty item (a bare marker or checkbox) is all markup
            self._verbatim(line)
            return True
        indent = _INDENT.match(rest).group(0)  # type: ignore[union-attr]
        body = rest[len(indent):]
        if "\t" in body.rstrip():
            self._flush()
            self.items.append(self._cells(body, "\t", quote + indent))
            return in_list
        if not self._continues(quote, indent):
            self._flush()
            self._group = _Group(quote, False)
            in_list = in_list and not (previous_blank and not indent)
        self._add(quote + indent, body)
        return in_list

    def _is_rule(self, quote: str, rest: str) -> bool:
        """A thematic break or a setext underline, kept verbatim: a line of ``=`` always, a
        line of ``-`` when it underlines a paragraph (else it may be an empty list item)."""
        level = setext_level(rest)
        group = self._group
        underlines = group is not None and not group.item and group.quote == quote
        return is_thematic_break(rest) or level == 1 or (level == 2 and underlines)

    def _continues(self, quote: str, indent: str) -> bool:
        group = self._group
        if group is None or group.quote != quote or group.hard_break():
            return False
        if group.item:
            return True
        first = len(group.lines[0][0]) - len(quote)
        if len(group.lines) == 1:
            return len(indent) <= first
        return group.lines[1][0] == quote + indent

    def _add(self, prefix: str, body: str) -> None:
        assert self._group is not None
        text = body.rstrip()
        suffix = body[len(text):]
        if self.markdown and text.endswith("\\") and not text.endswith("\\\\"):
            text, suffix = text[:-1].rstrip(), text[len(text[:-1].rstrip()):] + suffix
        self._group.lines.append((prefix, text, suffix))

    def _flush(self) -> None:
        group, self._group = self._group, None
        if group is None:
            return
        lines = group.lines
        columns = hard_wrapped([prefix + text for prefix, text, _ in lines])
        if not columns:
            for prefix, text, suffix in lines:
                self.items.append(self._slot(_Slot(prefix, text, suffix, [prefix + text
                                                                          + suffix])))
            return
        original = [p + t + s for p, t, s in lines]
        self.items.append(self._slot(_Slot(lines[0][0], join_lines([t for _, t, _ in lines]),
                                           lines[-1][2], original, rest_prefix=lines[1][0],
                                           wrap=columns)))

    # -- writing ---------------------------------------------------------------------------

    def render(self, translated: Sequence[Parts | None]) -> str:
        """The text with every slot replaced by its translation (None: left as it was)."""
        return "".join(self.piece(index, translated) for index in range(len(self.items)))

    @property
    def needs(self) -> list[int]:
        """For each piece of the output (``piece``), the last unit it shows (-1: none), so a
        stream can write it as soon as that unit is translated."""
        return [-1 if isinstance(item, str) else item.unit if isinstance(item, _Slot)
                else max((p.unit for p in item if isinstance(p, _Slot)), default=-1)
                for item in self.items]

    def piece(self, index: int, translated: Sequence[Parts | None]) -> str:
        """The output of item ``index`` with the line break before it: the pieces in order
        join to exactly ``render``."""
        item = self.items[index]
        if isinstance(item, str):
            text = item
        elif isinstance(item, _Slot):
            text = "\n".join(self._lines(item, translated[item.unit]))
        else:
            text = "".join(p if isinstance(p, str) else
                           "".join(self._lines(p, translated[p.unit])) for p in item)
        return f"\n{text}" if index else text

    def _lines(self, slot: _Slot, parts: Parts | None) -> list[str]:
        if parts is None:
            return slot.original
        if not slot.wrap:
            text = "".join(p if isinstance(p, str) else str(p.raw) for p in parts)
            return [slot.prefix + " ".join(text.splitlines()) + slot.suffix]
        lines = wrap(parts, slot.wrap - width(slot.prefix), slot.wrap - width(slot.rest_prefix))
        lines = [slot.prefix + lines[0]] + [slot.rest_prefix + line for line in lines[1:]]
        lines[-1] += slot.suffix
        return lines
