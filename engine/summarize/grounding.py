"""Checking a summary's sentences against their source: which facts does the source not contain?

A small model's summary reads well and invents: a package the manual never mentions, a version
number, a function name, a quotation. The words that carry such facts are recognisable by their
shape, and each one either occurs in the source or it does not:

- numbers (``3.2``, ``2019``, ``64-bit``) and words with digits (``SHA256``, ``x86``);
- identifiers: ``snake_case``, ``dotted.names``, ``camelCase``, ``ALLCAPS``, ``paths/like/this``,
  URLs, anything in backticks;
- proper names: capitalised words inside a sentence (a sentence's first word is capitalised
  anyway; it counts only when its shape says identifier or number);
- quoted strings: the whole quotation must occur in the source;
- rare words: a word the source lacks that the model's tokenizer needs three or more pieces for
  (``libghogwadu``, ``dplyr``: common words are one or two), when the caller says how to tell
  (``rare``);
- a drifted topic: a sentence most of whose content words (leaving out the words any summary
  uses: "document", "describes", "overview" ...) have no word of the same stem in the source
  ("visualize the effects of time dilation" in a manual about R).

A term is supported when the source has it, ignoring case and a plural or possessive ending; a
hyphenated term also when each of its parts occurs. Anything else in a sentence
(paraphrase, common words) is not judged: this catches invented specifics, not every mistake.
The summarizer regenerates a flagged sentence once with those terms banned, and replaces it with
the best-matching source sentence if it is still flagged (``best_source_sentence``).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from engine.text.sentences import split_sentences, words

_TOKEN = re.compile(r"[^\W_](?:[\w'’.\-/:+#]*[\w+#])?")
_QUOTED = re.compile(r"`([^`\n]{1,80})`|\"([^\"\n]{3,80})\"|“([^”\n]{3,80})”")
_PART = re.compile(r"[.\-/:_]+")
_HYPHEN = re.compile(r"-+")
_ENDINGS = ("'s", "’s", "es", "s")
_CAMEL = re.compile(r"[a-z][A-Z]")
_URL = re.compile(r"\b(?:https?://|www\.)\S+")
RARE_MIN_LETTERS = 5  # shorter words are too often common ones split oddly
Rare = Callable[[str], bool]


# Words a summary uses whatever it summarizes; they say nothing about the source.
SUMMARY_WORDS = frozenset((
    "document", "documents", "section", "sections", "chapter", "chapters", "text", "texts", "part",
    "parts", "paper", "article", "manual", "guide", "summary", "summarize", "summarizes",
    "summarized", "overview", "describe", "describes", "described", "description", "explain",
    "explains", "explained", "explanation", "discuss", "discusses", "discussed", "discussion",
    "cover", "covers", "covered", "include", "includes", "included", "including", "provide",
    "provides", "provided", "present", "presents", "presented", "introduce", "introduces",
    "introduced", "introduction", "focus", "focuses", "focused", "highlight", "highlights",
    "highlighted", "outline", "outlines", "outlined", "detail", "details", "detailed", "detailing",
    "various", "several", "also", "comprehensive", "key", "main", "important", "point", "points",
    "feature", "features", "information", "aspect", "aspects", "topic", "topics", "concept",
    "concepts", "example", "examples", "use", "uses", "used", "using", "user", "users", "reader",
    "readers", "explore", "explores", "explored", "list", "lists", "offer", "offers", "offered",
    "contain", "contains", "contained", "based", "well", "different", "overall", "additionally",
    "finally", "first", "second", "third", "begin", "begins", "start", "starts", "end", "ends",
    "give", "gives", "brief", "briefly", "concise", "way", "ways", "help", "helps", "step",
    "steps", "learn", "understand", "understanding",
))
STEM_LETTERS = 6  # words sharing their first six letters count as one ("configure", "configured")
DRIFT_SHARE = 0.5  # a sentence with more than this share of content words new to the source ...
DRIFT_MIN_WORDS = 3  # ... and at least this many of them has drifted from it


def _stem(word: str) -> str:
    return word[:STEM_LETTERS]


@dataclass(frozen=True)
class SourceIndex:
    """What a source contains, for fast checks: its terms (and their parts), the stems of its
    words, and its text, all case-folded."""

    terms: frozenset[str]
    text: str
    stems: frozenset[str] = frozenset()

    @classmethod
    def of(cls, text: str) -> SourceIndex:
        folded = " ".join(text.casefold().split())
        terms: set[str] = set()
        for match in _TOKEN.finditer(folded):
            term = match.group().strip(".'’:-/")
            terms.add(term)
            terms.update(piece for piece in _PART.split(term) if piece)
        return cls(frozenset(terms), folded, frozenset(_stem(word) for word in words(folded)))

    def new_words(self, sentence: str) -> list[str]:
        """The sentence's content words with no word of the same stem in the source, when
        they are most of its content words (a drifted topic; see the module docstring)."""
        content = [word for word in dict.fromkeys(words(sentence))
                   if len(word) >= 4 and word not in SUMMARY_WORDS]
        new = [word for word in content if _stem(word) not in self.stems]
        drifted = len(new) >= DRIFT_MIN_WORDS and len(new) > DRIFT_SHARE * len(content)
        return new if drifted else []

    def has(self, term: str) -> bool:
        folded = " ".join(term.casefold().split()).strip(".,;:'’")
        if not folded:
            return True
        if " " in folded:
            return folded in self.text
        if folded in self.terms:
            return True
        for ending in _ENDINGS:
            if folded.endswith(ending) and folded[:-len(ending)] in self.terms:
                return True
        # "memory-safe" is supported by "memory" and "safe"; "asn1_parse" is not by "asn1" and
        # "parse": an identifier is a name, and a name must be written as it is.
        pieces = [piece for piece in _HYPHEN.split(folded) if piece]
        return len(pieces) > 1 and all(piece in self.terms for piece in pieces)


def _identifier_like(token: str) -> bool:
    return (any(char.isdigit() for char in token) or "_" in token
            or bool(_CAMEL.search(token)) or bool(re.search(r"\w[./:]\w", token))
            or (len(token) >= 2 and token.isupper() and token.isalpha()))


def fact_terms(sentence: str) -> list[str]:
    """The words and quotations of ``sentence`` that state checkable facts (module doc)."""
    found: list[str] = []
    for match in _QUOTED.finditer(sentence):
        found.append(next(group for group in match.groups() if group).strip())
    found += [url.rstrip(".,;:)") for url in _URL.findall(sentence)]
    tokens = [(match.group(), match.start()) for match in _TOKEN.finditer(sentence)]
    for position, (token, start) in enumerate(tokens):
        token = token.rstrip(".'’:-/")
        if not token:
            continue
        first = position == 0 or sentence[:start].rstrip().endswith((":", "(", "\""))
        name = token[0].isupper() and not first and token.casefold() != "i"
        if name or _identifier_like(token):
            found.append(token)
    return list(dict.fromkeys(found))


def unsupported_terms(sentence: str, source: SourceIndex, rare: Rare | None = None) -> list[str]:
    """The fact terms of ``sentence`` that ``source`` does not contain, and (given ``rare``)
    its rare words that the source lacks."""
    missing = [term for term in fact_terms(sentence) if not source.has(term)]
    missing += [word for word in source.new_words(sentence)
                if not any(word in term.casefold() for term in missing)]
    if rare is not None:
        for match in _TOKEN.finditer(sentence):
            word = match.group().rstrip(".'’:-/")
            inside = any(word.casefold() in term.casefold() for term in missing)
            if word.isalpha() and len(word) >= RARE_MIN_LETTERS and not inside \
                    and not source.has(word) and rare(word.lower()):
                missing.append(word)
    return missing


@dataclass(frozen=True)
class SentenceCheck:
    text: str
    unsupported: tuple[str, ...]

    @property
    def supported(self) -> bool:
        return not self.unsupported


def check_text(text: str, source: SourceIndex, rare: Rare | None = None) -> list[SentenceCheck]:
    """Every sentence of ``text`` with the terms the source lacks."""
    return [SentenceCheck(sentence, tuple(unsupported_terms(sentence, source, rare)))
            for sentence in split_sentences(text)]


def _scores(sentence: str, candidates: list[str]) -> list[float]:
    """How much each candidate shares with ``sentence``: its words weighted by rarity among
    the candidates, over the square root of its length (long sentences don't win by size);
    0 for a candidate of fewer than three words."""
    counts = [Counter(words(candidate)) for candidate in candidates]
    frequency = Counter(term for count in counts for term in count)
    wanted = Counter(words(sentence))
    scores = []
    for count in counts:
        if len(count) < 3:
            scores.append(0.0)
            continue
        score = sum(min(n, count[term]) * math.log(1 + len(candidates) / frequency[term])
                    for term, n in wanted.items() if term in count)
        scores.append(score / math.sqrt(sum(count.values())))
    return scores


def best_source_sentence(sentence: str, candidates: list[str],
                         used: set[str] | None = None) -> str | None:
    """The candidate (a source sentence) that matches ``sentence`` best: what replaces a summary
    sentence whose facts the source does not support. Candidates in ``used`` are skipped, so
    two replacements never repeat one sentence; None when nothing shares a word with it."""
    used = used or set()
    ranked = sorted(((score, -index) for index, score in
                     enumerate(_scores(sentence, candidates))
                     if score > 0 and candidates[index] not in used), reverse=True)
    return candidates[-ranked[0][1]] if ranked else None


def relevant_sentences(sentence: str, candidates: list[str], count: int) -> list[str]:
    """The ``count`` candidates that match ``sentence`` best, in their own order: the short
    source a flagged sentence is regenerated from (cheaper to read than the whole section)."""
    scores = _scores(sentence, candidates)
    best = sorted(range(len(candidates)), key=lambda i: -scores[i])[:count]
    return [candidates[i] for i in sorted(best)]
