"""Word repair for extracted page text: line-end hyphenation and words split by stray spaces.

PDF text extractors rebuild words from glyph positions, and two artefacts follow from that:
typeset hyphenation ("manip-" at a line end, "ulation" on the next line) and words split where
kerning or justification moved a glyph far enough to look like a word gap ("e xecutes",
"ar gument", "T able"). Both are repaired here from plain text, whichever library extracted it.

There is no dictionary: the document's own vocabulary (how often each word occurs on its own) is
the evidence, so the repair works in any language that separates words by spaces. It is
deliberately conservative: a join that turns correct text into a wrong word ("a way" into "away")
is worse than a split left in place, so a join needs the joined word to occur unsplit elsewhere
in the document and its fragments not to be words in their own right.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from itertools import accumulate

_OPENING = "([{\"'“‘«„¿¡"
_CLOSING = ".,;:!?)]}\"'”’»…"
_HYPHENS = "-\u2010"  # hyphen-minus and the typographic hyphen
_SOFT_HYPHEN = "\u00ad"  # a discretionary hyphen: always a break inside one word
_OPEN, _CLOSE = re.escape(_OPENING), re.escape(_CLOSING)
# A word: a whitespace-separated chunk of letters, less its surrounding punctuation.
_WORD = re.compile(rf"(?<!\S)[{_OPEN}]*([^\W\d_]+)[{_CLOSE}]*(?!\S)")
_COMPOUND = re.compile(rf"(?<!\S)[{_OPEN}]*([^\W\d_]+(?:[-\u2010][^\W\d_]+)+)[{_CLOSE}]*(?!\S)")
_MAX_PIECES = 4  # "ex ecu tes": more pieces than that is not a kerning artefact
_MIN_JOINED = 3  # "a n" -> "an" is never worth the risk
# A word followed by up to three more, one space apart, the last one ending its chunk: every
# possible split word, found by the regex engine (a Python loop over the words was 8x slower).
_RUN = re.compile(rf"(?<!\S)[{_OPEN}]*([^\W\d_]+)"
                  rf"(?=((?: [^\W\d_]+){{1,{_MAX_PIECES - 1}}})[{_CLOSE}]*(?!\S))")
# First halves that make compounds rather than hyphenated words ("non-" + "negative"). Only
# consulted when the document gives no evidence either way; most prefixes are also the start of
# ordinary words ("ex-ample", "ill-ustrate", "so-lution"), so the list is short.
_COMPOUND_PREFIXES = frozenset({"self", "non", "quasi", "pseudo", "well"})


def _core(chunk: str) -> str:
    return chunk.lstrip(_OPENING).rstrip(_CLOSING)


def vocabulary(text: str) -> tuple[Counter[str], Counter[str]]:
    """Case-folded counts of the words (letters only) and of hyphenated compounds in ``text``.

    A word is a whitespace-separated chunk without its surrounding punctuation, so "e.g." is not
    the word "e" and "(argument)," is the word "argument".
    """
    folded = text.casefold()
    return Counter(_WORD.findall(folded)), Counter(_COMPOUND.findall(folded))


# --- hyphenation ---------------------------------------------------------------------------------

def _hyphen_site(line: str, following: str) -> tuple[str, str, str] | None:
    """(left half, hyphen, first chunk of the next line) when ``line`` ends in a broken word."""
    if not line or line[-1] not in _HYPHENS + _SOFT_HYPHEN:
        return None
    last = line.rsplit(None, 1)[-1]
    left = last[:-1].lstrip(_OPENING)
    first = following.split(None, 1)[0] if following.strip() else ""
    if not left or not left[-1].isalpha() or not first or not first[0].isalnum():
        return None
    return left, line[-1], first


def _is_plain_word(word: str) -> bool:
    """Lowercase or capitalised letters: "ulation", "Docu"; not "YYMMDDhh" or "OP"."""
    return word.isalpha() and (word.islower() or (word[0].isupper() and word[1:].islower()))


def _hyphen_decision(left: str, hyphen: str, first: str, words: Counter[str],
                     compounds: Counter[str]) -> bool:
    """True to drop the hyphen ("manip-" + "ulation"), False to keep it ("long-" + "term")."""
    right = _core(first)
    if not right[0].isalpha():
        return False  # "COVID-" + "19"
    if hyphen == _SOFT_HYPHEN:
        return True
    if not (left + right).isalpha():
        return False  # "state-" + "of-the-art", "hh-" + "mm’ss"
    joined, compound = (left + right).casefold(), f"{left}-{right}".casefold()
    if words[joined] != compounds[compound]:
        # The document's own spelling decides, whatever the case ("ELE-" + "MENT").
        return words[joined] > compounds[compound]
    if not right.islower() or not _is_plain_word(left):
        return False  # "Anglo-" + "Saxon", codes and identifiers
    if left.casefold() in _COMPOUND_PREFIXES:
        return False
    # Two halves that are both words of the document ("long", "term") read as a compound; a
    # half that is no word ("manip", "ulation") is a typeset break.
    both_words = all(len(half) >= 3 and words[half.casefold()] > 0 for half in (left, right))
    return not both_words


def join_hyphenation(pages: list[list[str]], words: Counter[str],
                     compounds: Counter[str]) -> None:
    """Joins words broken at line ends, within a paragraph and across a page break, in place.

    The second half moves up to the first line, so the word is whole on one line; the hyphen is
    dropped for a typeset break and kept for a real compound (whose lines stay as they are when
    the second half is capitalised: that may be a new sentence). A line left empty by the move is
    removed, so a paragraph never gains a blank line.

    Args:
        pages: the lines of each page; changed in place.
        words: ``vocabulary`` of the pages' text; updated to count the joined words.
        compounds: the compounds of the same ``vocabulary``; updated likewise.
    """
    sites = []
    previous: tuple[int, int] | None = None  # the last non-blank line, if still in a paragraph
    for page_index, lines in enumerate(pages):
        for line_index, line in enumerate(lines):
            if not line.strip():
                previous = None
                continue
            if previous is not None:
                before = pages[previous[0]][previous[1]]
                site = _hyphen_site(before, line)
                if site is not None:
                    sites.append((previous, (page_index, line_index), site))
            previous = (page_index, line_index)
    if not sites:
        return
    for _, _, (_, _, first) in sites:
        core = _core(first)
        if core.isalpha():
            words[core.casefold()] -= 1  # a second half is evidence only where it stands alone
    emptied: set[tuple[int, int]] = set()
    for (top_page, top_line), (next_page, next_line), (left, hyphen, first) in sites:
        upper, lower = pages[top_page][top_line], pages[next_page][next_line]
        if not upper.endswith(hyphen) or not lower.lstrip().startswith(first):
            continue  # an earlier join already changed one of the two lines
        drop = _hyphen_decision(left, hyphen, first, words, compounds)
        right = _core(first)
        if not drop and right[0].isupper():
            continue  # "Anglo-" + "Saxon", or a line that merely starts a new sentence
        if (left + right).isalpha():  # the whole word now counts as the document's own
            if drop:
                words[(left + right).casefold()] += 1
            else:
                compounds[f"{left}-{right}".casefold()] += 1
        pages[top_page][top_line] = (upper[:-1] if drop else upper) + first
        rest = lower.lstrip()[len(first):].lstrip()
        pages[next_page][next_line] = rest
        if not rest:
            emptied.add((next_page, next_line))
    for page_index in {page for page, _ in emptied}:  # not the blank lines that were there
        lines = pages[page_index]
        lines[:] = [line for index, line in enumerate(lines)
                    if (page_index, index) not in emptied]


# --- words split by a stray space ----------------------------------------------------------------

def _first_piece(word: str) -> bool:
    """A split word may start lowercase, capitalised, or with one capital ("T able")."""
    return word.islower() or (word[0].isupper() and (len(word) == 1 or word[1:].islower()))


def _runs(text: str, words: Counter[str]) -> Iterator[tuple[int, int, list[str]]]:
    """(start, end, pieces) of each run of pieces whose joined word the document knows.

    At each start the longest run comes first; ``end`` is where its last piece ends.
    """
    for match in _RUN.finditer(text):
        first = match.group(1)
        if not _first_piece(first):
            continue
        following = match.group(2)[1:].split(" ")
        # Only the lowercase pieces right after the first can continue it.
        count = next((index for index, piece in enumerate(following) if not piece.islower()),
                     len(following))
        if count == 0:
            continue
        joins = list(accumulate(following[:count], initial=first))[1:]
        start = match.start(1)
        for pieces in range(count, 0, -1):
            joined = joins[pieces - 1].casefold()
            if len(joined) >= _MIN_JOINED and words[joined] > 0:
                end = start + len(joins[pieces - 1]) + pieces  # the pieces and their spaces
                yield start, end, [first, *following[:pieces]]


def join_split_words(pages: list[str], words: Counter[str],
                     check: Callable[[], None] | None = None) -> list[str]:
    """Joins words that extraction split with a space ("ar gument" -> "argument").

    A run of two to four pieces on one line is joined when all of these hold:

    - the joined word occurs unsplit elsewhere in the document;
    - the pieces after the first are lowercase (a new word may start with a capital);
    - at least one piece never stands alone elsewhere (it is no word of the document);
    - any piece that does stand alone elsewhere does so at most half as often as the joined
      word occurs, so "a way" stays when the document says "a" more often than "away", and
      "Some times" stays next to "sometimes" unless "some" is rare.

    Args:
        pages: each page's text.
        words: the word counts of ``vocabulary`` for the same text.
        check: called once per page, to let a caller's deadline or cancel stop the work.

    Returns:
        The pages' texts with the split words joined.
    """
    found: list[list[tuple[int, int, list[str]]]] = []
    # How often each word occurs as a piece of a possible split: the rest are occurrences where
    # it stands alone, the evidence that it is a word in its own right.
    as_piece: Counter[str] = Counter()
    for text in pages:
        if check is not None:
            check()
        runs = list(_runs(text, words))
        found.append(runs)
        counted: set[int] = set()
        for start, _, pieces in runs:
            position = start
            for piece in pieces:
                if position not in counted:
                    counted.add(position)
                    as_piece[piece.casefold()] += 1
                position += len(piece) + 1
    return [_join(text, runs, words, as_piece) if runs else text
            for text, runs in zip(pages, found, strict=True)]


def _join(text: str, runs: list[tuple[int, int, list[str]]], words: Counter[str],
          as_piece: Counter[str]) -> str:
    parts: list[str] = []
    done = 0  # text before this is already in parts
    for start, end, pieces in runs:
        if start < done:
            continue  # inside a run already joined (or a shorter run at the same start)
        alone = [words[key] - as_piece[key] for key in (piece.casefold() for piece in pieces)]
        if min(alone) <= 0 and 2 * max(alone) <= words["".join(pieces).casefold()]:
            parts += [text[done:start], "".join(pieces)]
            done = end
    parts.append(text[done:])
    return "".join(parts)
