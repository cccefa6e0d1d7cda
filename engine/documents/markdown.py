"""Markdown: headings (ATX and setext), list items, fenced code, pipe tables and paragraphs.

A small line-based reader, not a full CommonMark parser: it only has to recover the structure a
summarizer uses. Text is kept as written (inline emphasis and links stay) minus the block markup
(``#``, list bullets and task checkboxes, fences, table pipes, ``>`` quote markers). YAML front
matter is skipped.

The block grammar is ``engine.text.markdown_blocks``, shared with translation, so both read the
same structure (a line of ``=`` with no paragraph above is a rule, so it is skipped). What is this
reader's choice, not grammar: indented code blocks, HTML blocks and link definitions read as
paragraphs (their words still count for a summary), where translation copies them verbatim.
"""

from __future__ import annotations

from engine.documents.limits import ReadGuard
from engine.documents.model import Block
from engine.text import markdown_blocks as grammar

_CHECK_EVERY = 2000  # lines between guard checks: cheap, and a 20 M-character file stays responsive


def _cells(line: str) -> list[str]:
    """The cells of a table row as text to read (``\\|`` is a literal pipe)."""
    return [cell.replace("\\|", "|") for cell in grammar.row_cells(grammar.without_quote(line))]


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

    def fence(self, lines: list[str], start: int, fence: grammar.FencedCode) -> None:
        """Collects the code of a fenced block opened at ``start``."""
        code = "\n".join(grammar.fence_body(lines, start, fence)).strip("\n")
        if code.strip():
            self.blocks.append(Block("code", code))

    def table(self, lines: list[str], start: int, end: int) -> None:
        """Collects a pipe table from its header row at ``start`` to ``end``."""
        rows = [_cells(lines[index]) for index in range(start, end) if index != start + 1]
        self.blocks.append(Block("table", "\n".join("\t".join(row) for row in rows)))

    def item_start(self, line: str, marker: int) -> None:
        """Opens a list item whose text begins at ``marker``."""
        self.flush()
        # Nesting follows indentation relative to the items above, not a fixed width.
        indent = _indent_width(line[:len(line) - len(line.lstrip(" \t"))])
        while self.indents and self.indents[-1] >= indent:
            self.indents.pop()
        self.item, self.item_level = [line[marker:]], min(len(self.indents), 10)
        self.indents.append(indent)

    def line(self, line: str) -> None:
        """Handles one line that is not part of a fence or a table."""
        if not line.strip():
            self.flush()
            return
        setext = grammar.setext_level(line)
        if setext and self.paragraph:
            text = " ".join(part.strip() for part in self.paragraph)
            self.paragraph = []
            self.blocks.append(Block("heading", text, level=setext))
            return
        if grammar.is_thematic_break(line) or setext == 1:
            self.flush()
            self.indents = []
            return
        heading = grammar.atx_heading(line)
        if heading:
            self.flush()
            self.indents = []
            if heading.text.strip():
                self.blocks.append(Block("heading", heading.text.strip(), level=heading.level))
            return
        marker = grammar.list_marker_end(line)
        if marker:
            self.item_start(line, marker)
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
    index = grammar.front_matter_end(lines)
    checked = index
    while index < len(lines):
        if index - checked >= _CHECK_EVERY:
            guard.check()
            checked = index
        fence = grammar.fenced_code(lines, index)
        if fence is not None:
            reader.flush()
            reader.fence(lines, index, fence)
            index = fence.end
            continue
        end = grammar.table_end(lines, index)
        if end > index:
            reader.flush()
            reader.table(lines, index, end)
            index = end
            continue
        reader.line(grammar.without_quote(lines[index]))
        index += 1
    reader.flush()
    return reader.blocks
