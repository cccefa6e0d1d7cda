"""A document cut into the sections a summary reports on, along the document's own outline.

The outline is the document's headings (Markdown, HTML and DOCX headings, a PDF's bookmarks), or,
where it has none, its numbered section titles ("3.2 Reading data"). Sections start at the
top-level headings; then the longest section is cut at its subheadings, again and again while
the document stays within ``MAX_SECTIONS`` sections, so a 15-page guide is reported subsection by
subsection and a 400-page manual by its chapters and their largest parts; deeper headings stay
inside their section's text. A section with almost no prose of its own (a chapter title followed
at once by its first subsection) joins the next one; when a document has more top-level sections
than the limit, neighbours are grouped. A document with no outline at all is cut into runs of
paragraphs of the model's input size, reported as "Part 1", "Part 2" ...
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.documents.model import Block, Document
from engine.text.sentences import words

MAX_SECTIONS = 40  # lines a reader can take in at a glance; more and neighbours are grouped
MIN_WORDS = 40  # a section with less prose than this joins its neighbour
SPLIT_WORDS = 600  # a section shorter than this is not cut at its subheadings
PROSE = ("paragraph", "list_item", "table", "code")
# "3", "3.2", "A.1", "IV." then a capitalised title of a few words with no sentence end.
_NUMBERED_TITLE = re.compile(r"^(?P<number>(?:[0-9]+|[A-Z])(?:\.[0-9]+)*)\.?\s+(?=\S)"
                             r"(?P<title>[^\n]{2,80})$")
_MAX_TITLE_WORDS = 10
_LEADERS = re.compile(r"(?:\.\s?){5,}")  # ". . . . ." between a title and its page number
LISTING_WORDS = 12  # a dot leader per this many words or fewer: contents or an index


@dataclass
class Section:
    """One section of a document: its title, where it is, and its blocks (subheadings too)."""

    title: str  # "" for the text before the first heading
    level: int  # heading level of the title (0 when there is none)
    blocks: list[Block] = field(default_factory=list)
    _counted: tuple[int, int] = field(default=(0, 0), init=False, repr=False, compare=False)

    @property
    def pages(self) -> tuple[int, int] | None:
        """The first and last page its blocks are on (PDF), else None."""
        numbers = [block.page for block in self.blocks if block.page is not None]
        return (min(numbers), max(numbers)) if numbers else None

    @property
    def text(self) -> str:
        return "\n\n".join(block.render() for block in self.blocks)

    def prose_words(self) -> int:
        """Words of its prose; counted once per block (``blocks`` only ever grows, and
        sectioning a long manual asks this thousands of times)."""
        counted = self._counted
        if counted[0] != len(self.blocks):
            extra = sum(len(words(block.text)) for block in self.blocks[counted[0]:]
                        if block.kind in PROSE)
            self._counted = counted = (len(self.blocks), counted[1] + extra)
        return counted[1]

    def body(self) -> str:
        """Its text without its own title (the summarizer names the section separately)."""
        blocks = self.blocks[1:] if self.blocks and self.blocks[0].kind == "heading" and \
            self.blocks[0].text == self.title else self.blocks
        return "\n\n".join(block.render() for block in blocks)

    def is_listing(self) -> bool:
        """Whether it is a table of contents or an index (titles and page numbers joined by
        dot leaders), which has nothing to summarize."""
        text = self.text
        leaders = len(_LEADERS.findall(text))
        return leaders >= 3 and leaders * LISTING_WORDS >= len(words(text))

    def where(self) -> str:
        """"p. 4", "pp. 5-7", or "" where the document has no pages."""
        pages = self.pages
        if pages is None:
            return ""
        first, last = pages
        return f"p. {first}" if first == last else f"pp. {first}\u2013{last}"


def _numbered_titles(document: Document) -> list[Block]:
    """The blocks with numbered section titles made headings (level = the number's depth),
    when at least two are found; else the blocks as they are."""
    found = 0
    out = []
    for block in document.blocks:
        match = _NUMBERED_TITLE.match(block.text.strip()) if block.kind == "paragraph" else None
        if match and _is_title(match["title"]):
            out.append(Block("heading", block.text.strip(), match["number"].count(".") + 1,
                             page=block.page))
            found += 1
        else:
            out.append(block)
    return out if found >= 2 else list(document.blocks)


def _is_title(text: str) -> bool:
    title_words = text.split()
    return (len(title_words) <= _MAX_TITLE_WORDS and text[:1].isupper()
            and not text.rstrip().endswith((".", ",", ";", ":", "?", "!")))


def _split(section: Section) -> list[Section] | None:
    """The section cut at its own subheadings of the highest level (its text before the first
    one stays with its title); None when it has none."""
    inner = [block.level for block in section.blocks[1:] if block.kind == "heading"]
    if not inner:
        return None
    level = min(inner)
    pieces = [Section(section.title, section.level, section.blocks[:1])]
    for block in section.blocks[1:]:
        if block.kind == "heading" and block.level == level:
            pieces.append(Section(block.text, block.level))
        pieces[-1].blocks.append(block)
    return pieces


def _refine(sections: list[Section]) -> list[Section]:
    """The longest sections cut at their subheadings, longest first, while the document stays
    within MAX_SECTIONS and a section is long enough to be worth it (chapters of a manual
    become its sections; a guide's short sections stay whole)."""
    settled: set[int] = set()
    while True:
        candidates = [s for s in sections if id(s) not in settled
                      and s.prose_words() >= SPLIT_WORDS]
        if not candidates:
            return sections
        longest = max(candidates, key=Section.prose_words)
        pieces = _split(longest)
        if pieces is None or len(sections) - 1 + len(pieces) > MAX_SECTIONS:
            settled.add(id(longest))
            continue
        at = sections.index(longest)
        sections[at:at + 1] = pieces


def _merge_small(sections: list[Section]) -> list[Section]:
    """Sections with almost no prose joined to a neighbour: a parent's title followed at once by
    its first subsection joins that subsection (under the parent's title); a subsection joins
    the section before it if that is its sibling or child (it continues that part of the
    document), else the next one. Contents and indexes
    stay apart (they are not summarized)."""
    merged: list[Section] = []
    carry: Section | None = None
    for section in sections:
        if carry is not None:
            # Under the carried title only if it is this one's parent (a chapter's title and
            # its first subsection); the text before the first heading is no one's parent.
            parent = 0 < carry.level < section.level
            section = Section(carry.title if parent else section.title,
                              carry.level if parent else section.level,
                              carry.blocks + section.blocks)
            carry = None
        if section.prose_words() >= MIN_WORDS or section.is_listing():
            merged.append(section)
        elif merged and section.level >= merged[-1].level:
            merged[-1].blocks.extend(section.blocks)
        else:
            carry = section
    if carry is not None:
        if merged:
            merged[-1].blocks.extend(carry.blocks)
        elif carry.prose_words():
            merged.append(carry)
    return merged


def _group(sections: list[Section]) -> list[Section]:
    """At most MAX_SECTIONS sections: runs of neighbours grouped evenly, titled first to last."""
    if len(sections) <= MAX_SECTIONS:
        return sections
    size = -(-len(sections) // MAX_SECTIONS)
    grouped = []
    for start in range(0, len(sections), size):
        run = sections[start:start + size]
        title = run[0].title if len(run) == 1 else f"{run[0].title} \u2026 {run[-1].title}"
        grouped.append(Section(title, run[0].level, [b for s in run for b in s.blocks]))
    return grouped


def split_sections(document: Document, count_tokens: Callable[[str], int] | None = None,
                   budget: int = 0) -> list[Section]:
    """The document's sections in order (see the module docstring); empty for an empty one.

    Args:
        count_tokens, budget: how a document without an outline is cut into parts (the model's
            tokens per input); without them it is one section.
    """
    blocks = list(document.blocks)
    if not any(block.kind == "heading" for block in blocks):
        blocks = _numbered_titles(document)
    levels = [block.level for block in blocks if block.kind == "heading"]
    if not levels:
        return _parts(document, count_tokens, budget)
    top = min(levels)
    sections = [Section("", 0)]
    for block in blocks:
        if block.kind == "heading" and block.level == top:
            sections.append(Section(block.text, block.level))
        sections[-1].blocks.append(block)
    sections = _group([s for s in sections if s.blocks])
    return _merge_small(_refine(sections))


def _parts(document: Document, count_tokens: Callable[[str], int] | None,
           budget: int) -> list[Section]:
    """Blocks in runs of at most ``budget`` tokens (a longer block is a run of its own)."""
    if count_tokens is None or budget <= 0:
        return [Section("", 0, list(document.blocks))] if document.blocks else []
    runs: list[list[Block]] = [[]]
    used = 0
    for block in document.blocks:
        cost = count_tokens(block.render()) + 2
        if runs[-1] and used + cost > budget:
            runs.append([])
            used = 0
        runs[-1].append(block)
        used += cost
    if len(runs) == 1:
        return [Section("", 0, runs[0])] if runs[0] else []
    return [Section(f"Part {number}", 0, run) for number, run in enumerate(runs, 1)]
