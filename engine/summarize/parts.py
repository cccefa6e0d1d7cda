"""Splitting a document into parts that fit a model's context, along its structure.

A part never splits a paragraph unless the paragraph alone is too long (then it is cut between
sentences); a new part starts at a major heading once the current one is half full, so parts
follow the document's sections and a summary can name them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from engine.documents.model import Document
from engine.text.sentences import join_sentences, split_sentences

CountTokens = Callable[[str], int]


@dataclass
class Part:
    heading: str  # the section this part starts in ("" before the first heading)
    texts: list[str] = field(default_factory=list)
    tokens: int = 0
    pages: list[int] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n\n".join(self.texts)


def split_parts(document: Document, count_tokens: CountTokens, budget: int) -> list[Part]:
    """Parts of at most ``budget`` tokens each (as counted by ``count_tokens``), in order."""
    parts: list[Part] = []
    heading = ""
    current = Part(heading)

    def flush() -> None:
        nonlocal current
        if current.texts:
            parts.append(current)
        current = Part(heading)

    for block in document.blocks:
        if block.kind == "heading":
            if block.level <= 2 and current.tokens > budget // 2:
                flush()
            heading = block.text
            if not current.texts:
                current.heading = heading
        text = block.render()
        cost = count_tokens(text) + 2
        pieces = [text] if cost <= budget else _cut(text, count_tokens, budget)
        for piece in pieces:
            piece_cost = cost if len(pieces) == 1 else count_tokens(piece) + 2
            if current.tokens + piece_cost > budget:
                flush()
            current.texts.append(piece)
            current.tokens += piece_cost
            if block.page is not None and block.page not in current.pages:
                current.pages.append(block.page)
    flush()
    return parts


def _cut(text: str, count_tokens: CountTokens, budget: int) -> list[str]:
    """A too-long paragraph in pieces of whole sentences (a single huge sentence by length)."""
    pieces: list[list[str]] = [[]]
    used = 0
    for sentence in split_sentences(text):
        cost = count_tokens(sentence) + 1
        if cost > budget:  # no sentence boundary to use: cut the characters evenly
            step = max(1, len(sentence) * budget // (cost * 2))
            for start in range(0, len(sentence), step):
                pieces.append([sentence[start:start + step]])
            pieces.append([])
            used = 0
            continue
        if used + cost > budget and pieces[-1]:
            pieces.append([])
            used = 0
        pieces[-1].append(sentence)
        used += cost
    return [join_sentences(p) for p in pieces if p]
