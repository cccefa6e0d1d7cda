"""Sentences and words of running text, for English-like and Chinese/Japanese writing alike.

Western sentences end at . ! ? followed by a space and a capital, digit or quote (known
abbreviations such as "e.g." or "Dr." don't end one); CJK sentences end at 。！？ with no space
after. Words for ranking are lower-cased Latin words without the most common function words, and
overlapping pairs of Han/kana characters (CJK has no spaces, and character pairs are the usual
stand-in for words in retrieval).
"""

from __future__ import annotations

import itertools
import re

from engine.text.scripts import CJK_LETTERS

# Abbreviations after which a capital does not start a sentence ("e.g. Python", "Dr. Lee").
_ABBREVIATIONS = {"e.g", "i.e", "etc", "vs", "cf", "al", "approx", "inc", "ltd", "jr", "sr", "p",
                  "pp", "vol", "fig", "no",
                  # titles, always before a name: "Mt. Fuji", "St. Michael's"
                  "mr", "mrs", "ms", "dr", "prof", "st", "mt", "ft", "rev", "gen", "col", "capt",
                  "lt", "sgt", "hon", "sen", "rep", "gov", "pres", "messrs", "mme", "mlle"}
# ... and before a number: "Eq. 2", "N°. 12", "Jan. 5".
_BEFORE_NUMBER = {"eq", "eqs", "figs", "nos", "n°", "nr", "ch", "chap", "sec", "secs", "tab",
                  "art", "op", "ex", "ca", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep",
                  "sept", "oct", "nov", "dec"}
# After "U.S." or "a.m." a capital starts a sentence only when it is a usual first word.
_STARTER_WORDS = """how i we it the this that these they he she you what when where why who there
but so then if in on at a an my our his her its their yes no"""
_SENTENCE_STARTERS = frozenset(_STARTER_WORDS.split())
_MONTHS_DE = "januar februar märz april mai juni juli august september oktober november dezember"
_GERMAN_MONTHS = frozenset(_MONTHS_DE.split())
_MULTI_PERIOD = re.compile(r"^(?:[^\W\d_]{1,2}\.)+[^\W\d_]{1,2}$")  # u.s, a.m, ph.d, m.i.t
_OPENERS = "\"'“‘„«‹(\\["
_CLOSERS = "\"'”’“»«›‹)\\]」』"
_WESTERN_END = re.compile(
    rf"([.!?…]+[{_CLOSERS}]*)\s+(?=[{_OPENERS}¿¡]?[A-Z0-9À-ÖØ-Þ])")
_CJK = CJK_LETTERS
# Full-width marks end a CJK sentence; ASCII ! and ? only right after a CJK character ("Yahoo!"
# in English text is not the end of anything).
_CJK_END = re.compile(rf"((?:[。！？；]|(?<=[{_CJK}])[!?])+[”’」』）]*)")
_CJK_CHAR = re.compile(rf"[{_CJK}]")
# Inline list markers: "1.)", "2)", "3.", "a.", "• 9.", "⁃10." before an item's first word.
_LIST_MARKER = re.compile(
    r"(?:^|(?<=\s))(?P<bullet>[•⁃▪‣◦])?\s?(?:(?P<number>\d{1,3})|(?P<letter>[a-z]))?"
    r"(?P<style>\.\)|\)|\.)?\s+(?=\S)")
_LATIN_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?", re.UNICODE)
_FUNCTION_WORDS = """a an the and or but if of to in on at by for with from as is are was were be
been being it its this that these those there here i you he she we they them his her our their
your my me us not no so than then too very can could would should will shall may might must do
does did done have has had having into over under about after before also just only such which
who whom whose what when where why how all any both each few more most other some own same"""
_STOP_WORDS = frozenset(_FUNCTION_WORDS.split())


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` in order; line breaks inside a paragraph are treated as spaces."""
    sentences: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        flat = " ".join(paragraph.split())
        if not flat:
            continue
        for piece in _CJK_END.sub(r"\1\n", flat).split("\n"):
            for item in _list_items(piece.strip()):
                sentences.extend(_split_item(item))
    return [s for s in sentences if s]


def _list_items(text: str) -> list[str]:
    """``text`` cut before the markers of an inline list ("1) First 2) Second"), when there is
    one: bullets, or numbers or letters that count up by one with the same punctuation."""
    markers = [m for m in _LIST_MARKER.finditer(text) if _is_marker(m)]
    cuts = sorted({m.start() for pair in itertools.pairwise(markers) if _follows(*pair)
                   for m in pair})
    if not cuts:
        return [text]
    bounds = [0, *[cut for cut in cuts if cut > 0], len(text)]
    return [text[a:b].strip() for a, b in itertools.pairwise(bounds) if text[a:b].strip()]


def _is_marker(match: re.Match[str]) -> bool:
    return bool(match["bullet"] or (_ordinal(match) is not None and match["style"]))


def _ordinal(match: re.Match[str]) -> int | None:
    if match["number"]:
        return int(match["number"])
    return ord(match["letter"]) - ord("a") + 1 if match["letter"] else None


def _follows(previous: re.Match[str], match: re.Match[str]) -> bool:
    """Whether two markers are consecutive items of one list."""
    if previous["bullet"] and match["bullet"]:
        return True
    first, second = _ordinal(previous), _ordinal(match)
    return (first is not None and second == first + 1 and previous["style"] == match["style"]
            and (previous["letter"] is None) == (match["letter"] is None))


def _split_item(text: str) -> list[str]:
    """An item's sentences; a list marker at its start ("2.) The") is not a sentence end."""
    marker = _LIST_MARKER.match(text)
    skip = marker.end() if marker and _is_marker(marker) else 0
    pieces: list[str] = []
    start = 0
    for match in _WESTERN_END.finditer(text):
        if match.start() < skip or not _ends_sentence(text, start, match):
            continue
        pieces.append(text[start:match.end(1)].strip())
        start = match.end()
    pieces.append(text[start:].strip())
    return pieces


def _ends_sentence(text: str, start: int, match: re.Match[str]) -> bool:
    """Whether the stop at ``match`` (punctuation, a space, then a capital or digit) ends a
    sentence, judged by the word before it and the word after it."""
    stop = match.group(1).rstrip(_CLOSERS)
    before = text[start:match.start()]
    if before.endswith(("[", "(")):
        return False  # "[...]": an omission, not an end
    if "!" in stop or "?" in stop:
        return True
    if stop == ".":
        spaced_dots = re.search(r"(?:\.\s)+$", before)
        if spaced_dots:
            # ". . ." leaves words out; ". . . ." ends the sentence where they were left out.
            return spaced_dots.group(0).count(".") >= 3
    if stop != ".":
        return True  # "...." or "…" then a capital
    words_before = before.split()
    last = words_before[-1].lstrip(_OPENERS) if words_before else ""
    word = last.lower().rstrip(".")
    following = text[match.end():].split(None, 1)[0].lstrip(_OPENERS + "¿¡")
    if word in _ABBREVIATIONS:
        return False
    if word in _BEFORE_NUMBER or (word.isdigit() and len(word) <= 2):
        if following[:1].isdigit():
            return False
        if word.isdigit() and following.lower().rstrip(".,;:?!") in _GERMAN_MONTHS:
            return False  # "am 12. Juni"
    if _MULTI_PERIOD.match(word):
        return following.lower().rstrip(".,;:?!") in _SENTENCE_STARTERS
    if len(word) == 1 and word.isalpha():
        # An initial ("Jonas E. Smith"), unless it follows a lower-case word ("you and I. Did").
        previous_word = words_before[-2] if len(words_before) > 1 else ""
        return last.isupper() and previous_word[:1].islower()
    return True


def words(sentence: str) -> list[str]:
    """Terms of a sentence for ranking: content words, and CJK character pairs."""
    terms: list[str] = []
    for run in re.findall(rf"[{_CJK}]+", sentence):
        terms.extend(run[i:i + 2] for i in range(max(1, len(run) - 1)))
    latin = _CJK_CHAR.sub(" ", sentence)
    terms.extend(w for w in (m.lower() for m in _LATIN_WORD.findall(latin))
                 if w not in _STOP_WORDS and not w.isdigit() and len(w) > 1)
    return terms


def join_sentences(sentences: list[str]) -> str:
    """Sentences back into running text: a space after Western ones, none after CJK ones."""
    text = ""
    for sentence in sentences:
        cjk_to_cjk = bool(_CJK_END.search(text[-1:]) and _CJK_CHAR.match(sentence[:1]))
        if text and not cjk_to_cjk:
            text += " "
        text += sentence
    return text
