"""Cutting a document into passages that can be found, embedded whole and cited.

A passage stays under one heading (the heading path, "Tutorial › Lists", goes with it), holds
whole blocks where they fit and whole sentences where a block is too long, and knows where it
is: its pages (PDF) and its character offsets in the document's text (``Document.text``).

Size: ``MAX_WORDS`` words, about 200-250 tokens of technical English for MiniLM's tokenizer:
enough context for the chat model to answer from, while the index embeds a passage's start
(``embedder.PASSAGE_TOKENS``, the heading path first) and keeps all of it for keyword search.
A heading with almost nothing under it joins its first subsection instead of standing alone
(its words still help that passage be found); a short section before a sibling heading stays a
passage of its own, so that it is cited by its own title.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.documents.model import Block, Document
from engine.text.sentences import split_sentences

MAX_WORDS = 150
MIN_WORDS = 40  # a passage this short is merged with the next under the same heading
HEADING_SEPARATOR = " › "


@dataclass(frozen=True)
class Chunk:
    """One passage of a document."""

    text: str
    heading: str  # the heading path above it ("" before the first heading)
    page_start: int | None
    page_end: int | None
    char_start: int  # offsets into Document.text()
    char_end: int

    def embedding_text(self) -> str:
        """What is embedded: the heading path, then the passage (headings carry the topic)."""
        return f"{self.heading}\n{self.text}" if self.heading else self.text

    def where(self) -> str:
        """``p. 4``, ``pp. 4-5``, or the heading when the format has no pages."""
        if self.page_start is None:
            return self.heading
        if self.page_end is None or self.page_end == self.page_start:
            return f"p. {self.page_start}"
        return f"pp. {self.page_start}-{self.page_end}"


@dataclass
class _Piece:
    text: str
    page: int | None
    start: int
    end: int

    @property
    def words(self) -> int:
        return len(self.text.split())


def _pieces(block: Block, offset: int) -> list[_Piece]:
    """A block as pieces of at most MAX_WORDS words: whole, or split at sentence ends (and a
    sentence longer than that at word boundaries)."""
    rendered = block.render()
    if len(rendered.split()) <= MAX_WORDS:
        return [_Piece(rendered, block.page, offset, offset + len(rendered))]
    units: list[str] = []
    for sentence in split_sentences(rendered) or [rendered]:
        words = sentence.split()
        units += [" ".join(words[i:i + MAX_WORDS]) for i in range(0, len(words), MAX_WORDS)]
    spans, cursor = [], 0  # each unit's (start, end) in the rendered block, word by word
    for unit in units:
        first = -1
        for word in unit.split():
            found = rendered.find(word, cursor)
            if found < 0:  # (the splitter changed the text: keep the offsets monotonic)
                continue
            first = found if first < 0 else first
            cursor = found + len(word)
        spans.append((cursor if first < 0 else first, cursor))
    out: list[_Piece] = []
    group: list[int] = []
    for index, unit in enumerate(units):
        in_group = sum(len(units[i].split()) for i in group)
        if group and in_group + len(unit.split()) > MAX_WORDS:
            out.append(_joined(units, spans, group, block.page, offset))
            group = []
        group.append(index)
    if group:
        out.append(_joined(units, spans, group, block.page, offset))
    return out


def _joined(units: list[str], spans: list[tuple[int, int]], group: list[int],
            page: int | None, offset: int) -> _Piece:
    return _Piece(" ".join(units[i] for i in group), page, offset + spans[group[0]][0],
                  offset + spans[group[-1]][1])


def chunk_document(document: Document) -> list[Chunk]:
    """The document's passages, in reading order (see the module docstring)."""
    chunks: list[Chunk] = []
    path: list[tuple[int, str]] = []  # (level, title) of the headings above
    current: list[_Piece] = []
    heading = ""

    def close() -> None:
        nonlocal current
        if current:
            pages = [p.page for p in current if p.page is not None]
            chunks.append(Chunk("\n".join(p.text for p in current), heading,
                                min(pages) if pages else None, max(pages) if pages else None,
                                current[0].start, current[-1].end))
        current = []

    for block, offset in zip(document.blocks, document.block_offsets(), strict=True):
        if block.kind == "heading":
            # A few words under a heading go on into its first subsection ("## Lists" with an
            # opening sentence, then "### Slicing"): the subheading's line becomes part of the
            # passage. A sibling or a higher heading always starts a passage of its own, even
            # after a short one: a short answer in a FAQ is a passage, cited by its own title.
            subsection = bool(path) and block.level > path[-1][0]
            if current and subsection and sum(p.words for p in current) < MIN_WORDS:
                rendered = block.render()
                current.append(_Piece(rendered, block.page, offset, offset + len(rendered)))
            else:
                close()
            while path and path[-1][0] >= block.level:
                path.pop()
            path.append((block.level, block.text.strip()))
            if not current:
                heading = HEADING_SEPARATOR.join(title for _, title in path)
            continue
        for piece in _pieces(block, offset):
            if current and sum(p.words for p in current) + piece.words > MAX_WORDS:
                close()
                heading = HEADING_SEPARATOR.join(title for _, title in path)
            current.append(piece)
    close()
    return chunks
