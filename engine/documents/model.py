"""The reader's result: a Document made of typed Blocks, with plain-text and section views.

Every reader (txt, Markdown, HTML, PDF, DOCX) produces the same small structure, so the summarizer
and the desktop app never care which format a document came from.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Literal

BlockKind = Literal["heading", "paragraph", "list_item", "table", "code"]
BLOCK_KINDS: tuple[BlockKind, ...] = ("heading", "paragraph", "list_item", "table", "code")
# Typographic ligatures (ﬀ ﬁ ﬂ ﬃ ﬄ ﬅ ﬆ), common in PDFs: spelled out, so "ﬁle" is the word "file"
# to the summarizer and the translator. Only these: NFKC on the whole text would also change
# full-width CJK punctuation, superscripts and fractions, which mean something.
_LIGATURES = re.compile("[\ufb00-\ufb06]")


@dataclass(frozen=True)
class Block:
    """One unit of a document's text.

    Attributes:
        kind: heading, paragraph, list_item, table or code.
        text: the text as written (ligatures spelled out, except in code); a table's rows are
            lines with tab-separated cells.
        level: heading level (1-6) or list nesting depth (0 = top level); 0 otherwise.
        page: the 1-based page the block is on, when the format has pages (PDF).
    """

    kind: BlockKind
    text: str
    level: int = 0
    page: int | None = None

    def __post_init__(self) -> None:
        # A typo in a reader ("list" for "list_item") would otherwise surface much later as an
        # oddly rendered summary; fail where the block is made.
        if self.kind not in BLOCK_KINDS:
            raise ValueError(f"block kind must be one of {', '.join(BLOCK_KINDS)}, "
                             f"got {self.kind!r}")
        if self.kind != "code" and _LIGATURES.search(self.text):
            object.__setattr__(self, "text", _LIGATURES.sub(
                lambda m: unicodedata.normalize("NFKC", m[0]), self.text))

    def render(self) -> str:
        """The block as a Markdown-flavoured plain-text line or lines."""
        if self.kind == "heading":
            return f"{'#' * max(1, min(self.level, 6))} {self.text}"
        if self.kind == "list_item":
            return f"{'  ' * self.level}- {self.text}"
        return self.text


def _separator(previous: Block, block: Block) -> str:
    """What ``Document.text`` puts between two blocks: consecutive list items stay on
    consecutive lines, anything else is a blank line apart."""
    return "\n" if previous.kind == block.kind == "list_item" else "\n\n"


@dataclass(frozen=True)
class Document:
    """A document read into blocks.

    Attributes:
        name: the file name (or "pasted text"), used in messages and titles.
        format: txt, markdown, html, pdf, docx or text (pasted).
        blocks: the content in reading order.
        pages: the page count when the format has pages (PDF), else None.
        encoding: the codec a txt, Markdown or HTML file was decoded with (``utf-8``,
            ``cp1251``, ``big5`` ...; a guess for legacy files, so worth showing), else None.
    """

    name: str
    format: str
    blocks: list[Block] = field(default_factory=list)
    pages: int | None = None
    encoding: str | None = None

    @property
    def char_count(self) -> int:
        """Characters of text in all blocks (markup such as ``# `` or ``- `` not counted)."""
        return sum(len(block.text) for block in self.blocks)

    def text(self) -> str:
        """The whole document as readable plain text.

        Headings become ``#`` lines, list items ``- `` lines (indented by depth), tables keep their
        tab-separated rows. Blocks are separated by a blank line, except that consecutive list
        items stay on consecutive lines so a list still reads as one list.
        """
        parts: list[str] = []
        for index, block in enumerate(self.blocks):
            if index:
                parts.append(_separator(self.blocks[index - 1], block))
            parts.append(block.render())
        return "".join(parts)

    def block_offsets(self) -> list[int]:
        """Where each block's rendered text starts in ``text()``, block by block (the
        character offsets a cited passage points at)."""
        offsets, at = [], 0
        for index, block in enumerate(self.blocks):
            if index:
                at += len(_separator(self.blocks[index - 1], block))
            offsets.append(at)
            at += len(block.render())
        return offsets

    def sections(self) -> list[tuple[Block | None, list[Block]]]:
        """The blocks grouped under the heading that precedes them.

        Returns:
            (heading, blocks) pairs in order; blocks before the first heading come first with
            heading None (omitted when there are none). Every heading starts a new group,
            whatever its level, so a summarizer can take one group at a time.
        """
        groups: list[tuple[Block | None, list[Block]]] = [(None, [])]
        for block in self.blocks:
            if block.kind == "heading":
                groups.append((block, []))
            else:
                groups[-1][1].append(block)
        if not groups[0][1]:
            groups.pop(0)
        return groups
