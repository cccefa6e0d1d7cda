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
from collections.abc import Callable, Iterable

_CHUNK = re.compile(r"\S+")
_OPENING = "([{\"'“‘«„¿¡"
_CLOSING = ".,;:!?)]}\"'”’»…"
_HYPHENS = "-\u2010"  # hyphen-minus and the typographic hyphen
_SOFT_HYPHEN = "\u00ad"  # a discretionary hyphen: always a break inside one word
_COMPOUND = re.compile(r"[^\W\d_]+(?:[-\u2010][^\W\d_]+)+")
# First halves that make compounds rather than hyphenated words, in the languages users have.
# Only consulted when the document itself gives no evidence either way.
_COMPOUND_PREFIXES = frozenset({
    "well", "self", "non", "ex", "all", "half", "cross", "quasi", "pseudo", "semi", "anti",
    "multi", "co", "pre", "post", "re", "sub", "one", "two", "three", "so", "ill", "un",
})
_MAX_FRAGMENTS = 4  # "ex ecu tes": more pieces than that is not a kerning artefact
_MIN_JOINED = 3  # "a n" -> "an" is never worth the risk


def _core(chunk: str) -> str:
    return chunk.lstrip(_OPENING).rstrip(_CLOSING)


def vocabulary(lines: Iterable[str]) -> tuple[Counter[str], Counter[str]]:
    """Case-folded counts of the words (letters only) and of hyphenated compounds.

    A word is a whitespace-separated chunk without its surrounding punctuation, so "e.g." is not
    the word "e" and "(argument)," is the word "argument".
    """
    words: Counter[str] = Counter()
    compounds: Counter[str] = Counter()
    for line in lines:
        for chunk in line.split():
            core = _core(chunk)
            if core.isalpha():
                words[core.casefold()] += 1
            elif _COMPOUND.fullmatch(core):
                compounds[core.casefold()] += 1
    return words, compounds


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
    return word.isalpha() and (word.islower() or word[0].isupper() and word[1:].islower())


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


def join_hyphenation(pages: list[list[str]]) -> None:
    """Joins words broken at line ends, within a paragraph and across a page break, in place.

    The second half moves up to the first line, so the word is whole on one line; the hyphen is
    dropped for a typeset break and kept for a real compound. A line left empty by the move is
    removed, so a paragraph never gains a blank line.
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
    words, compounds = vocabulary(line for lines in pages for line in lines)
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

def _is_fragment(chunk: str, position: int, count: int) -> str | None:
    """The chunk's letters when it can be piece ``position`` of ``count`` of a split word."""
    core = chunk
    if position == 0:
        core = core.lstrip(_OPENING)
    if position == count - 1:
        core = core.rstrip(_CLOSING)
    if not core.isalpha():
        return None
    if position > 0:
        return core if core.islower() else None  # a continuation never starts a new word
    if core.islower() or core[0].isupper() and (len(core) == 1 or core[1:].islower()):
        return core
    return None


class _SplitFinder:
    """Finds runs of chunks on one line that are one word split by spaces."""

    def __init__(self, words: Counter[str]) -> None:
        self.words = words

    def runs(self, line: str) -> Iterable[tuple[list[re.Match[str]], str]]:
        """(chunks, joined word) for every run whose joined word the document knows."""
        chunks = list(_CHUNK.finditer(line))
        for start in range(len(chunks) - 1):
            for count in range(min(_MAX_FRAGMENTS, len(chunks) - start), 1, -1):
                run = chunks[start : start + count]
                if any(line[a.end() : b.start()] != " " for a, b in zip(run, run[1:])):
                    continue
                pieces = [_is_fragment(m.group(), i, count) for i, m in enumerate(run)]
                if any(piece is None for piece in pieces):
                    continue
                joined = "".join(piece for piece in pieces if piece is not None)
                if len(joined) >= _MIN_JOINED and self.words[joined.casefold()] > 0:
                    yield run, joined


def join_split_words(pages: list[list[str]], check: Callable[[], None] | None = None) -> None:
    """Joins words that extraction split with a space ("ar gument" -> "argument"), in place.

    A run of two to four chunks on one line is joined when all of these hold:

    - the joined word occurs unsplit elsewhere in the document;
    - the pieces after the first are lowercase (a new word may start with a capital);
    - at least one piece never stands alone elsewhere (it is no word of the document);
    - any piece that does stand alone elsewhere does so no more often than the joined word
      occurs, so "a way" stays when the document says "a" far more often than "away".

    Args:
        pages: the lines of each page; changed in place.
        check: called once per page, to let a caller's deadline or cancel stop the work.
    """
    words, _ = vocabulary(line for lines in pages for line in lines)
    finder = _SplitFinder(words)
    # How often each word occurs as a piece of a possible split: the rest are occurrences where
    # it stands alone, the evidence that it is a word in its own right.
    as_piece: Counter[str] = Counter()
    for lines in pages:
        if check is not None:
            check()
        for line in lines:
            seen: set[int] = set()
            for run, _ in finder.runs(line):
                for match in run:
                    if match.start() not in seen:
                        seen.add(match.start())
                        as_piece[_core(match.group()).casefold()] += 1
    if not as_piece:
        return
    for lines in pages:
        if check is not None:
            check()
        for index, line in enumerate(lines):
            lines[index] = _join_line(line, finder, words, as_piece)


def _join_line(line: str, finder: _SplitFinder, words: Counter[str],
               as_piece: Counter[str]) -> str:
    replacements: list[tuple[int, int, str]] = []
    taken = -1
    for run, joined in finder.runs(line):  # by start, longest run first at each start
        if run[0].start() <= taken:
            continue
        alone = [words[key] - as_piece[key] for key in
                 (_core(match.group()).casefold() for match in run)]
        if min(alone) <= 0 and max(alone) <= words[joined.casefold()]:
            text = run[0].group()
            prefix = text[: len(text) - len(text.lstrip(_OPENING))]
            last = run[-1].group()
            suffix = last[len(last.rstrip(_CLOSING)):]
            replacements.append((run[0].start(), run[-1].end(), prefix + joined + suffix))
            taken = run[-1].end()
    for start, end, text in reversed(replacements):
        line = line[:start] + text + line[end:]
    return line
