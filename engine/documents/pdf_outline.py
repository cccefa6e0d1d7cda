"""A PDF's bookmarks (its outline) turned into heading blocks among its paragraphs.

A PDF's text has no headings, only lines of larger type; its outline names the sections and the
page each starts on. Each entry is looked for on its page (and the next: bookmarks often point at
the top of the page before the title), from where the previous entry was found on, because the
table of contents near the front lists every title too:

- a paragraph that is the title (perhaps with a section number the outline leaves out: the text
  "2.1 ASN.1 syntax" for the entry "ASN.1 syntax") becomes the heading;
- a paragraph that starts with it (the title set in the same size as the text, so the paragraph
  finder did not break after it) is split into the heading and the rest;
- else a heading is inserted before the page's first paragraph, so the section still starts on
  the right page.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from engine.documents.model import Block

# "2.1", "A.3.", "IV", "Chapter 3:", the numbering a title may carry in the text but not in
# the outline (or the other way round).
_NUMBER = r"(?:(?:chapter|section|appendix|part)\s+)?(?:[0-9]+|[A-Z]|[IVXLC]+)(?:\.[0-9]+)*[.:]?"
_LEADING_NUMBER = re.compile(rf"^{_NUMBER}\s+", re.IGNORECASE)
MAX_LEVEL = 6
LOOK_AHEAD_PAGES = 1  # a title is looked for on its bookmark's page and this many after it


def _title_pattern(title: str) -> re.Pattern[str] | None:
    """Matches the title at the start of a paragraph: any spacing, any case, with or without a
    section number in front."""
    bare = _LEADING_NUMBER.sub("", title).strip() or title.strip()
    words = bare.split()
    if not words:
        return None
    body = r"\s+".join(re.escape(word) for word in words)
    return re.compile(rf"^\s*(?:{_NUMBER}\s+)?{body}(?=\s|$)", re.IGNORECASE)


def apply_outline(blocks: list[Block], entries: Sequence[Sequence[Any]]) -> list[Block]:
    """``blocks`` with a heading for each outline entry (level 0 = heading level 1).

    Args:
        blocks: the PDF's paragraph blocks in reading order, each with its page.
        entries: [level, title, 1-based page] in the outline's order.
    """
    out = list(blocks)
    cursor = 0
    for level, title, page in entries:
        pattern = _title_pattern(str(title))
        if pattern is None:
            continue
        heading_level = max(1, min(int(level) + 1, MAX_LEVEL))
        start = next((i for i in range(cursor, len(out))
                      if (out[i].page or 0) >= page), len(out))
        found = None
        for index in range(start, len(out)):
            block = out[index]
            if (block.page or 0) > page + LOOK_AHEAD_PAGES:
                break
            if block.kind != "heading" and (match := pattern.match(block.text)):
                found = index, match
                break
        if found is None:
            out.insert(start, Block("heading", str(title), heading_level,
                                    page=out[start].page if start < len(out) else page))
            cursor = start + 1
            continue
        index, match = found
        block = out[index]
        rest = block.text[match.end():].strip()
        heading = Block("heading", " ".join(match.group().split()), heading_level,
                        page=block.page)
        out[index:index + 1] = [heading, Block(block.kind, rest, block.level, block.page)] \
            if rest else [heading]
        cursor = index + 1
    return out
