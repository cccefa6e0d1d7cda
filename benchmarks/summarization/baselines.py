"""The baselines: lead-N and sumy's LexRank, on one shared sentence splitter.

Both see the same sentences: the document's lines (each is one block: a paragraph, a list item)
split at sentence ends, with ``# Title`` lines left out, since a title is not a sentence a
summary would quote (sumy itself never selects headings). sumy's default English tokenizer needs
nltk's punkt data, which cannot be downloaded here, so ``Splitter`` is passed to
``PlaintextParser.from_string`` instead.
"""

from __future__ import annotations

import re

# A sentence ends at . ! ? (plus closing quotes or brackets) before a space and a capital, digit,
# quote or bracket, unless the word before the stop is a known abbreviation or an initial.
_END = re.compile(r"[.!?][\"')\]]*(?=\s+[\"'(\[A-Z0-9])")
_ABBREVIATIONS = {"e.g.", "i.e.", "etc.", "vs.", "cf.", "mr.", "mrs.", "dr.", "st.", "no.",
                  "fig.", "approx.", "al.", "ca.", "p.", "pp.", "vol."}
_INITIAL = re.compile(r"(?:^|\s)[A-Z]\.$")
_WORD = re.compile(r"\w+")


def count_words(text: str) -> int:
    """Words as ROUGE and the table count them: runs of letters, digits and underscores."""
    return len(_WORD.findall(text))


def split_sentences(text: str) -> list[str]:
    """Sentences of a plain-text block, in order."""
    sentences: list[str] = []
    start = 0
    for match in _END.finditer(text):
        candidate = text[start : match.end()].strip()
        last_word = candidate.rsplit(None, 1)[-1].lower() if candidate else ""
        if last_word.strip("\"'()[]") in _ABBREVIATIONS or _INITIAL.search(candidate):
            continue
        sentences.append(candidate)
        start = match.end()
    rest = text[start:].strip()
    if rest:
        sentences.append(rest)
    return [sentence for sentence in sentences if _WORD.search(sentence)]


def body_sentences(document: str) -> list[str]:
    """The document's sentences without its ``# Title`` lines; a list item's dash is kept."""
    return [sentence for line in document.splitlines()
            if line.strip() and not line.startswith("# ")
            for sentence in split_sentences(line.strip())]


class Splitter:
    """The tokenizer object sumy's parsers take: ``to_sentences`` and ``to_words``."""

    language = "english"

    def to_sentences(self, paragraph: str) -> tuple[str, ...]:
        return tuple(split_sentences(paragraph))

    def to_words(self, sentence: str) -> tuple[str, ...]:
        return tuple(_WORD.findall(sentence))


def sentences_for_length(sentences: list[str], target_words: int) -> int:
    """How many leading sentences come closest to ``target_words`` words (at least one)."""
    total, best, best_gap = 0, 1, None
    for count, sentence in enumerate(sentences, start=1):
        total += count_words(sentence)
        gap = abs(total - target_words)
        if best_gap is None or gap < best_gap:
            best, best_gap = count, gap
        if total >= target_words:
            break
    return best


def lead(document: str, count: int) -> str:
    """The first ``count`` sentences of the body, one line each."""
    return "\n".join(body_sentences(document)[:count])


def lexrank(document: str, count: int) -> str:
    """sumy's LexRank (English stemmer and stop words) picking ``count`` sentences, in order.

    Raises:
        SystemExit: sumy is not installed (it is a benchmark-only package).
    """
    try:
        from sumy.nlp.stemmers import Stemmer
        from sumy.parsers.plaintext import PlaintextParser
        from sumy.summarizers.lex_rank import LexRankSummarizer
        from sumy.utils import get_stop_words
    except ImportError:
        raise SystemExit("sumy is missing: .venv/bin/pip install sumy==0.13.0") from None
    # One paragraph per line, as the document is written; the titles are left out.
    body = "\n\n".join(line for line in document.splitlines()
                       if line.strip() and not line.startswith("# "))
    parser = PlaintextParser.from_string(body, Splitter())
    summarizer = LexRankSummarizer(Stemmer("english"))
    summarizer.stop_words = get_stop_words("english")
    return "\n".join(str(sentence) for sentence in summarizer(parser.document, count))
