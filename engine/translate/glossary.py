"""A user's glossary: terms that must be translated a given way, applied and then checked.

The file is UTF-8 text, one ``source term<TAB>required translation`` per line; blank lines and
lines starting with ``#`` are ignored. Terms match case-insensitively, as whole words when they
start or end with a letter of a spaced script (so "cat" is not found in "category"), anywhere for
CJK terms, longest first.

How a term is applied depends on the translator: an instruct model is told the terms that occur in
each segment; a dedicated model cannot take instructions, so the term is replaced by a placeholder
and its translation put in afterwards. Either way every translated segment is checked: a term
found in the source whose required translation is missing from the result is reported.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.errors import ConfigError
from engine.text.scripts import EAST_ASIAN_LETTER
from engine.translate.protect import Parts, Rule, Token

MAX_BYTES = 4 * 1024 * 1024
MAX_TERMS = 20_000
_SPACED_LETTER = re.compile(r"[^\W\d_]")
_CJK = EAST_ASIAN_LETTER


@dataclass(frozen=True)
class Term:
    source: str
    target: str


def _bounded(term: str) -> str:
    """A pattern for ``term`` that only matches whole words at its word-like ends."""
    pattern = re.escape(term)
    if _SPACED_LETTER.match(term[0]) and not _CJK.match(term[0]):
        pattern = r"(?<!\w)" + pattern
    if _SPACED_LETTER.match(term[-1]) and not _CJK.match(term[-1]):
        pattern += r"(?!\w)"
    return pattern


class Glossary:
    """Required translations of terms.

    Args:
        terms: (source term, required translation) pairs.
        name: where they came from, for messages.
    """

    def __init__(self, terms: Sequence[tuple[str, str]], name: str = "glossary") -> None:
        self.name = name
        self.terms = tuple(Term(s, t) for s, t in terms)
        self._by_key = {term.source.casefold(): term for term in self.terms}
        ordered = sorted(self._by_key, key=len, reverse=True)
        self._pattern = re.compile("|".join(_bounded(t) for t in ordered), re.IGNORECASE) \
            if ordered else None

    def __len__(self) -> int:
        return len(self.terms)

    def _term(self, match: re.Match[str]) -> Term:
        found = self._by_key.get(match.group(0).casefold())
        if found is None:  # a case pairing casefold() and re disagree on (Turkish İ, ẞ)
            found = next(t for t in self.terms
                         if re.fullmatch(re.escape(t.source), match.group(0), re.IGNORECASE))
        return found

    def find(self, text: str) -> list[Term]:
        """The terms that occur in ``text``, each once, in order of appearance."""
        if self._pattern is None:
            return []
        found: dict[str, Term] = {}
        for match in self._pattern.finditer(text):
            term = self._term(match)
            found.setdefault(term.source, term)
        return list(found.values())

    def rule(self) -> Rule:
        """A protection rule that replaces each term by a token carrying its translation."""
        assert self._pattern is not None

        def replace(match: re.Match[str]) -> Parts:
            term = self._term(match)
            return [Token(term.target, "text", term=match.group(0))]

        return self._pattern, replace

    def misses(self, source_text: str, translation: str) -> list[Term]:
        """Terms of ``source_text`` whose required translation is not in ``translation``."""
        got = translation.casefold()
        return [term for term in self.find(source_text) if term.target.casefold() not in got]


def load_glossary(path: Path) -> Glossary:
    """Reads a glossary file (``term<TAB>translation`` per line, UTF-8).

    Raises:
        ConfigError: a missing, unreadable or malformed file, naming the line at fault.
    """
    path = Path(path)
    try:
        with path.open("rb") as file:
            data = file.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"glossary {path}: file not found; check the path") from None
    except OSError as error:
        raise ConfigError(f"glossary {path}: cannot be read ({error.strerror})") from None
    if len(data) > MAX_BYTES:
        raise ConfigError(f"glossary {path}: larger than 4 MB; split it or keep only the terms "
                          "this document needs")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ConfigError(f"glossary {path}: not UTF-8 text (byte {error.start}); save it as "
                          "UTF-8") from None
    terms: dict[str, tuple[int, str, str]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 2 or not fields[0].strip() or not fields[1].strip():
            raise ConfigError(f"glossary {path} line {number}: expected 'source term<TAB>"
                              f"translation', got {line[:60]!r}")
        source, target = fields[0].strip(), fields[1].strip()
        earlier = terms.get(source.casefold())
        if earlier is not None and earlier[2] != target:
            raise ConfigError(f"glossary {path} line {number}: {source!r} is already on line "
                              f"{earlier[0]} with another translation; keep one")
        terms[source.casefold()] = (number, source, target)
        if len(terms) > MAX_TERMS:
            raise ConfigError(f"glossary {path}: more than {MAX_TERMS:,} terms; keep only the "
                              "terms this document needs")
    if not terms:
        raise ConfigError(f"glossary {path}: no terms found; write one 'term<TAB>translation' "
                          "per line")
    return Glossary([(s, t) for _, s, t in terms.values()], name=str(path))
