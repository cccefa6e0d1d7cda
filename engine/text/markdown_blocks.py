"""The line-level Markdown block grammar that every reader of Markdown shares.

Summaries (``engine.documents.markdown``) and translation (``engine.translate.text``) both split
Markdown into blocks; when each had its own rules they disagreed about what a fence, a quote, a
table or a heading is, so a document could be summarised as one structure and translated as
another. These recognisers are the one answer. Where CommonMark/GFM and real documents differ the
rule follows the documents:

- a fence opens at any indentation (fences indented inside list items are real), and closes at
  any indentation with a run of the same character at least as long; a backtick fence's info
  string may not contain a backtick;
- a line of only ``=`` is a setext underline, never prose: under a paragraph it makes a heading,
  elsewhere it is a rule drawn with ``=``;
- a quote prefix is every nested ``>`` marker (up to 3 spaces before each, one space or tab
  after);
- a table is GFM's: a header row with a separating pipe, then a delimiter row with as many cells;
  a pipe inside a `code` span or after a backslash does not separate cells, and a line longer than
  ``MAX_TABLE_LINE`` is never a row;
- a list marker needs whitespace or the end of the line after it and may carry a task checkbox
  (``[ ]``, ``[x]``), which is markup, not the item's text.

Everything is linear in the line's length (plain scans, no backtracking regex on user lines), so
a 10 MB line costs what reading it costs.
"""

from __future__ import annotations

from typing import NamedTuple

MAX_TABLE_LINE = 10_000  # longer lines are never table rows (no real row is that long)
_MAX_FRONT_MATTER = 200  # lines searched for the end of YAML front matter
_SPACE = " \t"


class AtxHeading(NamedTuple):
    """An ATX heading split so that ``prefix + text + suffix`` is the line again."""

    level: int  # 1 to 6, the number of opening hashes
    prefix: str  # indentation, hashes and the whitespace before the text
    text: str  # the heading's words ("" for an empty heading)
    suffix: str  # closing hashes and trailing whitespace


class FencedCode(NamedTuple):
    """Where a fenced code block lies in a list of lines, and how its body is indented."""

    marker: str  # the opening run of backticks or tildes
    depth: int  # quote markers before the opening fence; every body line has as many
    indent: int  # whitespace characters before the opening marker (body lines lose as many)
    body_end: int  # index after the last line of code
    end: int  # index after the block: after its closing fence, when it has one


# -- quotes ----------------------------------------------------------------------------------


def _after_quote_marker(line: str, start: int) -> int:
    """Where the text after one ``>`` marker at ``start`` begins (up to 3 spaces before the
    marker, one space or tab after it), or -1 when there is no marker there."""
    position = start
    while position < len(line) and position - start < 3 and line[position] == " ":
        position += 1
    if position >= len(line) or line[position] != ">":
        return -1
    position += 1
    if position < len(line) and line[position] in _SPACE:
        position += 1
    return position


def quote_prefix(line: str) -> str:
    """The whole nested quote prefix of a line (``"> > "``), or "" when it is not quoted."""
    end = 0
    while (after := _after_quote_marker(line, end)) >= 0:
        end = after
    return line[:end]


def without_quote(line: str) -> str:
    """The line without its whole quote prefix: quoted text reads as the text itself."""
    return line[len(quote_prefix(line)):]


def quote_depth(prefix: str) -> int:
    """How many quotes a prefix from ``quote_prefix`` opens."""
    return prefix.count(">")


def unquote(line: str, depth: int) -> str | None:
    """The line without its first ``depth`` quote markers, or None when it has fewer (the
    quote has ended, and with it any block inside the quote)."""
    end = 0
    for _ in range(depth):
        end = _after_quote_marker(line, end)
        if end < 0:
            return None
    return line[end:]


# -- fences, breaks and setext underlines ------------------------------------------------------


def fence_open(line: str) -> str | None:
    """The marker (three or more backticks or tildes) of a line that opens a fenced code block,
    or None. Any indentation is allowed: fences indented inside list items are real."""
    body = line.lstrip(_SPACE)
    char = body[:1]
    if char not in ("`", "~"):
        return None
    run = len(body) - len(body.lstrip(char))
    if run < 3:
        return None
    if char == "`" and "`" in body[run:]:
        return None  # ```foo``` is inline code, not a fence
    return body[:run]


def closes_fence(line: str, marker: str) -> bool:
    """Whether a line closes a fence opened by ``marker``: the same character, at least as
    many times, and nothing else on the line."""
    body = line.strip()
    return body.startswith(marker) and not body.strip(marker[0])


def fenced_code(lines: list[str], start: int) -> FencedCode | None:
    """The fenced code block opened at ``lines[start]`` (inside any quote), or None. It runs to
    its closing fence, to the end, or to the first line that has left the opening's quote."""
    prefix = quote_prefix(lines[start])
    opening = lines[start][len(prefix):]
    marker = fence_open(opening)
    if marker is None:
        return None
    depth = quote_depth(prefix)
    indent = len(opening) - len(opening.lstrip(_SPACE))
    index = start + 1
    while index < len(lines):
        body = unquote(lines[index], depth)
        if body is None:
            return FencedCode(marker, depth, indent, index, index)
        if closes_fence(body, marker):
            return FencedCode(marker, depth, indent, index, index + 1)
        index += 1
    return FencedCode(marker, depth, indent, index, index)


def fence_body(lines: list[str], start: int, fence: FencedCode) -> list[str]:
    """The code of the fenced block opened at ``lines[start]``: quote markers dropped, and each
    line losing as much indentation as the opening fence had, as CommonMark says."""
    body: list[str] = []
    for line in lines[start + 1:fence.body_end]:
        code = unquote(line, fence.depth) or ""  # never None: the block ends with its quote
        body.append(code[min(fence.indent, len(code) - len(code.lstrip(_SPACE))):])
    return body


def is_thematic_break(line: str) -> bool:
    """A thematic break: three or more ``-``, ``*`` or ``_`` (spaces between allowed) after at
    most 3 spaces of indentation."""
    body = line.lstrip(" ")
    if len(line) - len(body) > 3 or body[:1] not in ("-", "*", "_"):
        return False
    char = body[0]
    return body.count(char) >= 3 and not body.strip(char + _SPACE)


def setext_level(line: str) -> int:
    """1 for a line of ``=`` (a level-1 setext underline), 2 for a line of ``-``, 0 otherwise;
    at most 3 spaces before and only whitespace after."""
    body = line.lstrip(" ")
    if len(line) - len(body) > 3 or body[:1] not in ("=", "-"):
        return 0
    marks = body.rstrip(_SPACE)
    if marks.strip(body[0]):
        return 0
    return 1 if body[0] == "=" else 2


# -- headings and list items -------------------------------------------------------------------


def heading_text(body: str) -> tuple[str, str]:
    """An ATX heading's text and suffix (closing hashes and trailing whitespace): the closing
    hashes count only after whitespace, so ``C#`` keeps its hash."""
    text = body.rstrip()
    suffix = body[len(text):]
    end = len(text)
    while end > 0 and text[end - 1] == "#":
        end -= 1
    if end < len(text) and (end == 0 or text[end - 1] in _SPACE):
        start = end
        while start > 0 and text[start - 1] in _SPACE:
            start -= 1
        return text[:start], text[start:] + suffix
    return text, suffix


def atx_heading(line: str) -> AtxHeading | None:
    """An ATX heading (``## Title ##``): up to 3 spaces, 1 to 6 hashes, then whitespace or the
    end of the line. Found by scanning, so a 10 MB line of ``#`` and spaces costs one pass."""
    body = line.lstrip(" ")
    indent = len(line) - len(body)
    if indent > 3:
        return None
    level = len(body) - len(body.lstrip("#"))
    if not 1 <= level <= 6 or body[level:level + 1] not in ("", " ", "\t"):
        return None
    text_start = len(line) - len(body[level:].lstrip(_SPACE))
    text, suffix = heading_text(line[text_start:])
    return AtxHeading(level, line[:text_start], text, suffix)


def _after_space(line: str, start: int) -> int:
    """The end of the spaces and tabs from ``start``, or -1 when a character other than
    whitespace follows at once (a marker must be followed by whitespace or the line's end)."""
    end = len(line) - len(line[start:].lstrip(_SPACE))
    return end if end > start or start == len(line) else -1


def _bullet_end(line: str, start: int) -> int:
    """The end of a bullet (``-``, ``*``, ``+``) or an ordered marker (``1.``, ``2)``) at
    ``start``, or -1."""
    if line[start:start + 1] in ("-", "*", "+"):
        return start + 1
    digits = start
    while digits < len(line) and digits - start < 10 and line[digits].isascii() \
            and line[digits].isdigit():
        digits += 1
    if 0 < digits - start <= 9 and line[digits:digits + 1] in (".", ")"):
        return digits + 1
    return -1


def list_marker_end(line: str) -> int:
    """Where a list item's text begins: after indentation, the marker, whitespace and an
    optional task checkbox with its whitespace. 0 when the line does not start an item; the
    line's length for an empty item."""
    start = len(line) - len(line.lstrip(_SPACE))
    marker = _bullet_end(line, start)
    if marker < 0:
        return 0
    end = _after_space(line, marker)
    if end < 0:
        return 0
    if line[end:end + 3].lower() in ("[ ]", "[x]"):
        after_box = _after_space(line, end + 3)
        if after_box >= 0:
            return after_box
    return end


# -- tables ------------------------------------------------------------------------------------


def split_cells(line: str, separator: str) -> list[str]:
    """The cells of a tab-separated line or a table row, separators dropped and nothing else:
    joined with the separator they are the line again. A pipe inside `code` or after a
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


def row_cells(line: str) -> list[str]:
    """The cells of a table row without the outer pipes and the whitespace around each cell."""
    cells = split_cells(line.strip(), "|")
    if len(cells) > 1 and not cells[0]:
        cells = cells[1:]
    if len(cells) > 1 and not cells[-1]:
        cells = cells[:-1]
    return [cell.strip() for cell in cells]


def _is_delimiter_cell(cell: str) -> bool:
    """``---``, ``:--``, ``--:`` or ``:-:``: hyphens with an optional colon at each end."""
    hyphens = cell[1:] if cell.startswith(":") else cell
    hyphens = hyphens[:-1] if hyphens.endswith(":") else hyphens
    return bool(hyphens) and not hyphens.strip("-")


def is_table_row(line: str) -> bool:
    """Whether a line (without its quote prefix) can be a row of a table already open."""
    return "|" in line and bool(line.strip()) and len(line) <= MAX_TABLE_LINE


def is_table_start(line: str, next_line: str | None) -> bool:
    """GFM's table start (both lines without their quote prefix): a header row with a pipe that
    separates cells, followed by a delimiter row (``|---|:-:|``) with as many cells."""
    if next_line is None or "-" not in next_line or not is_table_row(line) \
            or len(next_line) > MAX_TABLE_LINE or len(split_cells(line, "|")) < 2:
        return False
    delimiters = row_cells(next_line)
    return all(_is_delimiter_cell(cell) for cell in delimiters) \
        and len(delimiters) == len(row_cells(line))


def _same_quote(line: str, depth: int) -> str | None:
    """The line without its quote prefix when it is quoted exactly ``depth`` deep, else None."""
    prefix = quote_prefix(line)
    return line[len(prefix):] if quote_depth(prefix) == depth else None


def table_end(lines: list[str], start: int) -> int:
    """The index after the table whose header row is ``lines[start]`` (inside any quote), or
    ``start`` when no table starts there. Rows run to a blank line, a line without a pipe, a
    line too long to be a row, or a line quoted otherwise than the header."""
    if start + 1 >= len(lines):
        return start
    prefix = quote_prefix(lines[start])
    depth = quote_depth(prefix)
    delimiter = _same_quote(lines[start + 1], depth)
    if not is_table_start(lines[start][len(prefix):], delimiter):
        return start
    index = start + 2
    while index < len(lines):
        row = _same_quote(lines[index], depth)
        if row is None or not is_table_row(row):
            break
        index += 1
    return index


# -- front matter ------------------------------------------------------------------------------


def front_matter_end(lines: list[str]) -> int:
    """The index of the first line after YAML front matter (``---`` to ``---`` or ``...`` at
    the top, within 200 lines), or 0 when there is none."""
    if not lines or lines[0].strip() != "---":
        return 0
    for index in range(1, min(len(lines), _MAX_FRONT_MATTER)):
        if lines[index].strip() in ("---", "..."):
            return index + 1
    return 0
