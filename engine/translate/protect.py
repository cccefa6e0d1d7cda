"""Protected text: what a translator must not touch travels as numbered placeholders.

A piece of text to translate is a list of parts: plain strings and Tokens. A Token stands for
something that must come back unchanged (a URL, inline code, an HTML tag, a DOCX run holding a
picture) or, for glossary terms, a required translation. In a segment handed to a translator each
token is a placeholder ``⟦1⟧``, ``⟦2⟧``...; spans (a link, bold text) are an "open" and a "close"
token with a shared pair id, so a translation that moves words can still keep them well nested.

A translation is accepted only if every placeholder of its segment is there exactly once, the
spans are nested as before and every span that held words still holds some (``filled``);
otherwise the caller asks again, and in the end keeps the source, or, for a segment protecting
only atoms (no spans that would be left empty), translates it without placeholders and puts the
protected parts at its end (``append_tokens``): clumsy but never lost or reordered inside.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

PLACEHOLDER = "⟦{}⟧"
# Models sometimes add spaces inside the brackets; those still count.
_PLACEHOLDER = re.compile(r"⟦\s*(\d{1,6})\s*⟧")
_BRACKETS = re.compile(r"[⟦⟧]")
_PAIR_IDS = itertools.count(1)
_TRAILING_PUNCTUATION = re.compile(r"""[\s]*[.!?;:。！？；：…]+["'”’」』)\]]*\s*$""")


@dataclass(eq=False)
class Token:
    """Something a translator must keep.

    Attributes:
        raw: what goes back into the output: markup, code or a URL (str), or a format's own object
            (a DOCX element).
        role: ``atom`` (stands alone), ``open``/``close`` (the ends of a span) or ``text`` (a
            glossary term's required translation: output as translated text, not as markup).
        pair: the span id shared by an open and its close token.
        term: for ``text`` tokens, the source term it replaced (for reports and checks).
    """

    raw: object
    role: str = "atom"
    pair: int | None = None
    term: str | None = None

    def display(self) -> str:
        """How the token reads in a report: its text, or ``…`` for non-text objects."""
        if self.term is not None:
            return self.term
        return self.raw if isinstance(self.raw, str) else "…"


Part = str | Token
Parts = list[Part]
Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], Parts]]


def new_pair(open_raw: object, close_raw: object) -> tuple[Token, Token]:
    """An open and a close token sharing a fresh pair id."""
    pair = next(_PAIR_IDS)
    return Token(open_raw, "open", pair), Token(close_raw, "close", pair)


def atom(match: re.Match[str]) -> Parts:
    """A rule action that protects the whole match."""
    return [Token(match.group(0))]


def apply_rules(parts: Sequence[Part], rules: Sequence[Rule]) -> Parts:
    """Parts with every match of every rule, in order, replaced by what the rule's action
    returns; later rules only see the text earlier ones left as text."""
    current = list(parts)
    for pattern, action in rules:
        result: Parts = []
        for part in current:
            if not isinstance(part, str):
                result.append(part)
                continue
            position = 0
            for match in pattern.finditer(part):
                if match.end() == match.start():
                    continue
                result.append(part[position:match.start()])
                result.extend(action(match))
                position = match.end()
            result.append(part[position:])
        current = [p for p in result if not isinstance(p, str) or p]
    return current


def bracket_rule() -> Rule:
    """Literal ⟦ and ⟧ in the text become atoms, so no text can pose as a placeholder."""
    return _BRACKETS, atom


def plain_text(parts: Sequence[Part]) -> str:
    """The parts as a reader sees them (tokens by their text), for checks and reports."""
    return "".join(p if isinstance(p, str) else p.display() for p in parts)


def text_only(parts: Sequence[Part]) -> str:
    """Only the translatable text of the parts (tokens left out, glossary terms kept)."""
    return "".join(p if isinstance(p, str) else (p.term or "") for p in parts)


def mark(parts: Sequence[Part]) -> tuple[str, list[Token]]:
    """One string with ``⟦n⟧`` for the n-th token (1-based), and the tokens."""
    pieces: list[str] = []
    tokens: list[Token] = []
    for part in parts:
        if isinstance(part, str):
            pieces.append(part)
        else:
            tokens.append(part)
            pieces.append(PLACEHOLDER.format(len(tokens)))
    return "".join(pieces), tokens


def placeholder_ids(text: str) -> list[int]:
    return [int(m.group(1)) for m in _PLACEHOLDER.finditer(text)]


def relabel(text: str, tokens: Sequence[Token]) -> tuple[str, list[Token]]:
    """A piece of a marked string, renumbered from 1 with its own token list."""
    local: list[Token] = []
    numbers: dict[int, int] = {}

    def renumber(match: re.Match[str]) -> str:
        index = int(match.group(1))
        if index not in numbers:
            local.append(tokens[index - 1])
            numbers[index] = len(local)
        return PLACEHOLDER.format(numbers[index])

    return _PLACEHOLDER.sub(renumber, text), local


def intact(translation: str, tokens: Sequence[Token]) -> bool:
    """Every placeholder exactly once, none invented, and every span that lies wholly inside this
    segment still opens before it closes and nests with the others."""
    found = placeholder_ids(translation)
    if sorted(found) != list(range(1, len(tokens) + 1)):
        return False
    pairs = [tokens[i - 1].pair for i in found if tokens[i - 1].role in ("open", "close")]
    complete = {pair for pair in pairs if pairs.count(pair) == 2}
    stack: list[int | None] = []
    for index in found:
        token = tokens[index - 1]
        if token.pair not in complete:
            continue
        if token.role == "open":
            stack.append(token.pair)
        elif not stack or stack.pop() != token.pair:
            return False
    return not stack


def filled(translation: str, source: str, tokens: Sequence[Token]) -> bool:
    """Every span that lies wholly inside the segment and holds words in ``source`` still holds
    some in ``translation``. A model can keep both markers of a bold run and leave out (or move
    out) the words between them; taking such an answer would silently drop the run's text.

    Args:
        translation: the answer, with the segment's placeholders (call ``intact`` first).
        source: the segment as it was sent (marked with the same placeholders).
        tokens: the segment's tokens.
    """
    wanted = _span_contents(source, tokens)
    got = _span_contents(translation, tokens)
    return all(got.get(pair, False) for pair, has_words in wanted.items() if has_words)


def _span_contents(text: str, tokens: Sequence[Token]) -> dict[int, bool]:
    """For each span opened and closed in ``text``: whether it encloses words (a letter or
    digit, or a glossary term's placeholder)."""
    opened: dict[int, int] = {}
    spans: dict[int, bool] = {}
    for match in _PLACEHOLDER.finditer(text):
        index = int(match.group(1))
        if not 1 <= index <= len(tokens):
            continue
        token = tokens[index - 1]
        if token.pair is None:
            continue
        if token.role == "open":
            opened[token.pair] = match.end()
        elif token.role == "close" and token.pair in opened:
            inside = text[opened.pop(token.pair):match.start()]
            terms = any(tokens[int(m.group(1)) - 1].role == "text"
                        for m in _PLACEHOLDER.finditer(inside)
                        if 1 <= int(m.group(1)) <= len(tokens))
            spans[token.pair] = terms or any(c.isalnum() for c in _PLACEHOLDER.sub("", inside))
    return spans


def restore(translation: str, tokens: Sequence[Token]) -> Parts:
    """The translation's placeholders replaced by their tokens (glossary terms as text).
    Call ``intact`` first: unknown numbers are dropped here."""
    parts: Parts = []
    position = 0
    for match in _PLACEHOLDER.finditer(translation):
        parts.append(translation[position:match.start()])
        index = int(match.group(1))
        if 1 <= index <= len(tokens):
            parts.append(_resolved(tokens[index - 1]))
        position = match.end()
    parts.append(translation[position:])
    return merge_text(parts)


def _resolved(token: Token) -> Part:
    return str(token.raw) if token.role == "text" else token


def merge_text(parts: Sequence[Part]) -> Parts:
    """Adjacent strings joined, empty strings dropped."""
    merged: Parts = []
    texts: list[str] = []
    for part in parts:
        if isinstance(part, str):
            texts.append(part)
            continue
        if texts:
            merged.append("".join(texts))
            texts = []
        merged.append(part)
    if texts:
        merged.append("".join(texts))
    return [p for p in merged if not isinstance(p, str) or p]


def without_tokens(text: str, tokens: Sequence[Token]) -> str:
    """A marked segment to translate again without placeholders: glossary terms are written
    out as their required translation, everything else is left out (``append_tokens`` puts it
    back at the end)."""
    def replace(match: re.Match[str]) -> str:
        index = int(match.group(1))
        token = tokens[index - 1] if 1 <= index <= len(tokens) else None
        return str(token.raw) if token is not None and token.role == "text" else ""

    return re.sub(r"[ \t]{2,}", " ", _PLACEHOLDER.sub(replace, text)).strip()


def append_tokens(translation: str, tokens: Sequence[Token]) -> Parts:
    """The fallback: a translation made without placeholders, with the protected parts (other
    than glossary terms, already written out) put back in their original order at its end,
    before its closing punctuation."""
    kept = [t for t in tokens if t.role != "text"]
    # Placeholders first: with their brackets gone, the numbers would be left in the text.
    translation = _BRACKETS.sub("", _PLACEHOLDER.sub("", translation)).strip()
    if not kept:
        return merge_text([translation])
    ending = _TRAILING_PUNCTUATION.search(translation)
    head = translation[:ending.start()] if ending else translation
    tail = translation[ending.start():].strip() if ending else ""
    # Only atoms show text of their own; emptied spans (a bold run's markers) need no space,
    # which would otherwise stand alone before the full stop in a Word paragraph.
    spaced = head and not head[-1].isspace() and any(t.role == "atom" for t in kept)
    parts: Parts = [head, " " if spaced else ""]
    for index, token in enumerate(kept):
        if index and token.role == kept[index - 1].role == "atom":
            parts.append(" ")  # two pieces of code or two URLs must not run together
        parts.append(token)
    parts.append(tail)
    return merge_text(parts)
