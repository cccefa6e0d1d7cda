"""Text repair after extraction: typographic characters, running headers/footers, broken words.

Extractors hand over text as the page drew it, not as it was written. ``clean_pages`` turns a PDF's
page texts (from any PDF library) into readable text: ligature glyphs become letters, running
headers, footers and page numbers are dropped, hyphenated and space-split words are joined
(``engine.documents.words``). ``fix_characters`` is the character part alone, for formats whose
words and lines are already right (HTML, DOCX).

Characters mapped, and why only these (Unicode's NFKC would also fold full-width CJK punctuation,
superscripts, fractions, ™ and circled numbers, which changes what the text says):

- the Latin ligatures U+FB00-FB06 (ﬀ ﬁ ﬂ ﬃ ﬄ ﬅ ﬆ) become their letters: they are glyph choices
  of the font, never a different word, and they hide "file" from every word match;
- the typographic spaces U+2000-U+200A and U+205F become a plain space: they only set a width;
- the soft hyphen U+00AD is dropped (after it has joined a word broken at a line end) and so is
  U+FEFF inside the text: both are invisible by definition.

No-break spaces (U+00A0, U+202F), the ideographic space U+3000, zero-width joiners and all
other characters are kept as extracted.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

from engine.documents.words import join_hyphenation, join_split_words, vocabulary

_LIGATURES = {"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl",
              "\ufb05": "st", "\ufb06": "st"}
_SPACES = {chr(code): " " for code in (*range(0x2000, 0x200B), 0x205F)}
_CHARACTERS = {**_LIGATURES, **_SPACES, "\ufeff": ""}
# str.translate looks up every character in Python; a regex finds the rare ones in C.
_MAPPED = re.compile(f"[{''.join(_CHARACTERS)}]")

# A running line must recur at the top or bottom of this many pages (a chapter's running header
# recurs on that chapter's pages only, so a share of all pages would miss it).
MIN_PAGES = 3
_EDGE_LINES = 3  # lines looked at from the top and from the bottom of each page
_MIN_LETTERS = 4  # a repeated text line needs this many letters ("}" or "END" is code, not chrome)
_DIGITS = re.compile(r"\d+")
_ROMAN = re.compile(r"[ivxlcdm]{1,8}")  # front-matter page numbers are lowercase
_PAGE_NUMBER = re.compile(r"(?:page|p\.|seite|página|pagina|страница|页)?\s*[-–—(\[]?\s*#\s*"
                          r"[-–—)\]]?\s*(?:(?:/|of|von|de|sur|из)\s*#)?")


def fix_characters(text: str, soft_hyphens: bool = True) -> str:
    """Ligatures as letters, typographic spaces as spaces, invisible characters dropped.

    Args:
        text: extracted text.
        soft_hyphens: drop soft hyphens too; False keeps them for ``join_hyphenation``, which
            uses one at a line end as a sure sign of a broken word.
    """
    text = _MAPPED.sub(lambda match: _CHARACTERS[match.group()], text)
    return text.replace("\u00ad", "") if soft_hyphens else text


def _key(line: str) -> str:
    """What a running line keeps from page to page: its words, with numbers as ``#``.

    Every page number ("12", "Page 3 of 9", "- 4 -", "iv") has the key ``#``, so a title page's
    "iv" and a chapter start's "12" count as the same running line.
    """
    stripped = line.strip()
    if _ROMAN.fullmatch(stripped):
        return "#"
    key = _DIGITS.sub("#", " ".join(stripped.split()).casefold())
    return "#" if _PAGE_NUMBER.fullmatch(key) else key


def _edges(lines: list[str]) -> list[tuple[str, int, int]]:
    """(side, rank, index) of the first and last few non-blank lines of a page.

    The rank counts from that side's edge (0 is the topmost or bottommost line), so a running
    line must recur at the same place, which body text that merely repeats does not.
    """
    filled = [index for index, line in enumerate(lines) if line.strip()]
    return ([("top", rank, index) for rank, index in enumerate(filled[:_EDGE_LINES])]
            + [("bottom", rank, index) for rank, index in enumerate(filled[::-1][:_EDGE_LINES])])


def drop_running_lines(pages: list[list[str]]) -> None:
    """Drops running headers, footers and page numbers from each page's lines, in place.

    A line is running when a line with the same words (numbers aside) stands at the same place
    (say, second from the top) among the first or last three lines of at least ``MIN_PAGES``
    pages and has at least four letters, or is a page number ("12", "Page 3 of 9", "- 4 -",
    "iv"). Only runs of such lines reaching from the top or the bottom of a page are dropped, so
    body text between them never is. The first page keeps its text lines: a title page's title
    often is the running header of the pages after it.
    """
    if len(pages) < MIN_PAGES:
        return
    seen: Counter[tuple[str, int, str]] = Counter()
    for lines in pages:
        seen.update({(side, rank, _key(lines[index])) for side, rank, index in _edges(lines)})
    running = {place for place, count in seen.items() if count >= MIN_PAGES and
               (place[2] == "#" or sum(c.isalpha() for c in place[2]) >= _MIN_LETTERS)}
    if not running:
        return
    for number, lines in enumerate(pages):
        dropped: set[int] = set()
        stopped: set[str] = set()  # sides where a line that stays was reached
        for side, rank, index in _edges(lines):
            key = _key(lines[index])
            if side in stopped or index in dropped or (side, rank, key) not in running or (
                    number == 0 and key != "#"):
                stopped.add(side)
                continue
            dropped.add(index)
        if dropped:
            lines[:] = [line for index, line in enumerate(lines) if index not in dropped]


def clean_pages(pages: list[str], check: Callable[[], None] | None = None) -> list[str]:
    """Extracted page texts repaired for reading: see the module docstring.

    Args:
        pages: each page's text, newline-normalised, in page order.
        check: called now and then (once per page in the longer steps) so a deadline or a
            cancel can stop the work by raising.

    Returns:
        The repaired text of each page, as many as were given (a page may become empty).
    """
    lines = [fix_characters(page, soft_hyphens=False).split("\n") for page in pages]
    drop_running_lines(lines)
    if check is not None:
        check()
    # One count of the words serves both repairs (the hyphenation updates it as it joins).
    words, compounds = vocabulary("\n\n".join("\n".join(page) for page in lines))
    join_hyphenation(lines, words, compounds)
    texts = ["\n".join(page).replace("\u00ad", "") for page in lines]
    return join_split_words(texts, words, check)
