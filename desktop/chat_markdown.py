"""Chat Markdown: fenced code blocks (found, each given a "copy" link) and kept line breaks.

Pure text functions, no Qt: the Chat panel renders each message with :func:`add_copy_links` and
keeps the returned code strings, so a click on ``copy:N`` copies block N exactly as written.

The parser follows CommonMark's fence rules (```` ``` ```` or ``~~~``, three or more, an optional
info string whose first word is the language, a closing fence of the same character at least as
long) with one leniency: an opening fence may be indented by any number of spaces, because models
put code blocks in nested list items. Block quotes are not looked into (no link, nothing lost).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["CodeBlock", "add_copy_links", "copy_link_target", "find_code_blocks",
           "keep_line_breaks"]

# A list item's first line: "- ", "* ", "+ ", "1. " or "1) " after any indentation.
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d{1,9}[.)])\s+\S")
# Up to any indentation, then three or more backticks or tildes, then the info string.
_OPENING = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


@dataclass(frozen=True)
class CodeBlock:
    """One fenced code block of a Markdown text."""

    code: str  # the text between the fences, fence indentation removed, no final newline
    language: str  # first word of the info string; "" when there is none
    opening_line: int  # 0-based line number of the opening fence
    closing_line: int | None  # line number of the closing fence; None while still open
    fence: str  # the opening fence itself, e.g. "```" or "~~~~"
    indent: int  # spaces before the opening fence


def copy_link_target(number: int) -> str:
    """The link target that asks the panel to copy block ``number`` (1-based)."""
    return f"copy:{number}"


def _opening_fence(line: str) -> tuple[int, str, str] | None:
    """(indent, fence, language) when ``line`` opens a fenced block, else None."""
    match = _OPENING.match(line)
    if match is None:
        return None
    fence, info = match["fence"], match["info"].strip()
    # A backtick info string may not hold a backtick: "```x```" is inline code, not a block.
    if fence[0] == "`" and "`" in info:
        return None
    language = info.split()[0] if info else ""
    return len(match["indent"]), fence, language


def _closes(line: str, fence: str, indent: int) -> bool:
    stripped = line.lstrip(" ")
    # CommonMark lets a closing fence sit up to 3 spaces deeper than its block.
    if len(line) - len(stripped) > indent + 3:
        return False
    run = len(stripped) - len(stripped.lstrip(fence[0]))
    return run >= len(fence) and not stripped[run:].strip()


def _dedent(line: str, indent: int) -> str:
    """Removes up to ``indent`` leading spaces, as CommonMark does for fenced content."""
    spaces = len(line) - len(line.lstrip(" "))
    return line[min(spaces, indent):]


def _lines(text: str) -> list[str]:
    # Not str.splitlines(): it also splits on form feeds and other separators that belong to
    # the code, and "exact text" means exact.
    lines = text.replace("\r\n", "\n").split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def find_code_blocks(text: str) -> list[CodeBlock]:
    """Every fenced code block of ``text``, in order.

    A block with no closing fence (an answer still streaming, or one that was stopped) runs to
    the end of the text, as CommonMark says; its ``closing_line`` is None.
    """
    lines = _lines(text)
    blocks = []
    index = 0
    while index < len(lines):
        opening = _opening_fence(lines[index])
        if opening is None:
            index += 1
            continue
        indent, fence, language = opening
        end = index + 1
        while end < len(lines) and not _closes(lines[end], fence, indent):
            end += 1
        closing = end if end < len(lines) else None
        code = "\n".join(_dedent(line, indent) for line in lines[index + 1:end])
        blocks.append(CodeBlock(code, language, index, closing, fence, indent))
        index = end + 1
    return blocks


def _escape_link_text(label: str) -> str:
    # A translated label must not end the link early or turn into emphasis.
    return re.sub(r"([\\\[\]*_`])", r"\\\1", label)


def add_copy_links(text: str, label: str, first: int = 1) -> tuple[str, list[str]]:
    """Adds a ``[label](copy:N)`` link after every fenced code block.

    Args:
        text: One message's Markdown.
        label: The link text (already translated).
        first: The number of this text's first block; numbers go on across messages so one
            view can hold many.

    Returns:
        The Markdown with the links, and the code of each block in order (block ``first`` is
        item 0). A block still open at the end is closed first, so the link (and whatever the
        view shows after this message) is not swallowed into the code.
    """
    blocks = find_code_blocks(text)
    if not blocks:
        return text, []
    lines = _lines(text)
    after: dict[int, list[str]] = {}  # line number -> lines to insert after it
    for number, block in enumerate(blocks, start=first):
        pad = " " * block.indent  # the link stays in the block's list item
        link = f"{pad}[{_escape_link_text(label)}]({copy_link_target(number)})"
        if block.closing_line is None:
            after[len(lines) - 1] = [pad + block.fence, link, ""]
        else:
            # The blank line after the link ends its paragraph before the next line.
            after[block.closing_line] = [link, ""]
    out = []
    for number, line in enumerate(lines):
        out.append(line)
        out.extend(after.get(number, []))
    return "\n".join(out).rstrip("\n"), [block.code for block in blocks]


def keep_line_breaks(text: str) -> str:
    """Makes every single line break of ``text`` a hard one, outside fenced code.

    Markdown joins the lines of a paragraph, but chat answers use a single break on purpose (a
    poem, an address, steps one per line): GitHub and chat apps render them as breaks, so we do
    too. Two trailing spaces are CommonMark's hard break; code keeps its lines exactly. Inside
    a list item the break is a line separator (U+2028) instead: Qt's Markdown reader makes a
    hard break there a new block, which it shows as another, numbered, item.
    """
    lines = _lines(text)
    in_code: set[int] = set()
    for block in find_code_blocks(text):
        end = len(lines) - 1 if block.closing_line is None else block.closing_line
        in_code.update(range(block.opening_line, end + 1))
    out: list[str] = []
    in_item = False  # the line belongs to a list item (its first line or a continuation)
    for number, line in enumerate(lines):
        following = lines[number + 1] if number + 1 < len(lines) else ""
        in_item = number not in in_code and bool(line.strip()) and (
            bool(_LIST_ITEM.match(line)) or in_item)
        breaks = (number not in in_code and number + 1 not in in_code and line.strip()
                  and following.strip() and not line.endswith(("  ", "\\")))
        if breaks and in_item and not _LIST_ITEM.match(following):
            lines[number + 1] = f"{line}\u2028{following.lstrip()}"  # one line, two rows
            continue
        if breaks:
            line += "  "
        out.append(line)
    return "\n".join(out)
