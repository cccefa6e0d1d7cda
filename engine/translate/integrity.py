"""The integrity checks every translated segment passes before it goes into the document.

``check`` looks at one answer (placeholders already resolved, so only the words are left) next to
its source and names the first check it fails, in this order:

- ``markers``: a bracket of our placeholders (⟦ ⟧) is left in the text (``1⟧``, ``⟦1``, an
  invented ``⟦7⟧`` that ``intact`` refused), or the model made up look-alike markers: a symbol
  (Unicode So/Sm/Co, outside ASCII) that the source does not have, used twice or more or
  glued to a digit (``☎1 ☎2``, ``⌛1``). A few symbols translations rightly introduce (°, ×, ±)
  count only when repeated.
- ``label``: the answer still starts with a label ``clean_answer`` could not safely strip (the
  target's or source's English name without a colon: "Simplified Chinese 激发..."), or echoes
  the prompt ("Here is the translation", "Translate into ..."), when the source does not say
  so itself.
- ``script``: the target is written in a known script (Chinese: Han, Japanese: kana or Han,
  Korean: Hangul, Russian: Cyrillic ...; Latin for the Latin-script languages) and the answer
  has not a single letter of it (a Chinese "translation" in English, a German one in Chinese)
  while the source has at least ``MIN_SCRIPT_LETTERS`` letters or the answer has letters of a
  script neither language explains (a shorter source may rightly come back as it was).
- ``language``: for Latin-script targets detection knows, the answer's function words are
  clearly another language's (at least ``MIN_OTHER_HITS`` of them and ``OTHER_FACTOR`` times as
  many as the target's), for an answer of at least ``MIN_DETECT_LETTERS`` letters; words the
  answer copied from the source (names, identifiers) do not count. A Chinese target answered
  with kana (Japanese) fails too.
- ``length``: the answer's length (non-space characters) against the source's is outside the
  pair's bounds (``bounds``), which are wide: only a broken answer falls outside them.

The answer's other properties feed its confidence (``confidence``): whether its language could
be positively confirmed, and whether its length is usual for the pair.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from engine.language import function_word_hits, script
from engine.translate.answers import MIN_DETECT_LETTERS
from engine.translate.languages import base, name, same_language

MIN_SCRIPT_LETTERS = 12  # a shorter source may rightly stay as it is ("Python 3.12", "NumPy")
MIN_OTHER_HITS = 3
OTHER_FACTOR = 3
MIN_RATIO_CHARS = 20  # the lower length bound applies from this many source characters
LENGTH_SLACK = 12  # characters always allowed on top of the upper bound (short headings)
# A symbol a translation may rightly bring in once (5 degrees -> 5°, 3 x 4 -> 3×4).
_USUAL_SYMBOLS = frozenset("°×±÷™®©−≈")
# Typographic forms of ASCII a translation may use where the source wrote the ASCII.
_EQUIVALENTS = {"→": "->", "←": "<-", "⇒": "=>", "≤": "<=", "≥": ">=", "≠": "!=", "−": "-",
                "×": "x"}
_CJK = frozenset({"zh", "ja", "ko", "yue"})
# Characters of the target per character of the source, [low, high]: hard bounds (beyond: the
# answer is broken) and the usual range (beyond it the confidence is lower). Measured in
# characters, so a Chinese or Japanese answer to English is 4-5 times shorter (a Han character
# holds a word) and an English answer to Chinese as many times longer; Korean sits in between
# and shares the CJK bounds. Alphabetic pairs differ by at most about half (German is longer
# than English, English than Spanish shorter...): 0.2-4 only refuses nonsense.
_BOUNDS = {  # (source is CJK, target is CJK) -> (hard, usual)
    (False, False): ((0.2, 4.0), (0.5, 2.0)),
    (False, True): ((0.05, 2.0), (0.15, 1.0)),
    (True, False): ((0.5, 12.0), (1.0, 6.0)),
    (True, True): ((0.2, 4.0), (0.5, 2.0)),
}
# The script each target must use (Latin for the languages detection tells by function words).
_SCRIPTS = {"zh": ("han",), "ja": ("kana", "han"), "ko": ("hangul",), "ru": ("cyrillic",),
            "uk": ("cyrillic",), "bg": ("cyrillic",), "mk": ("cyrillic",), "sr": ("cyrillic",
            "latin"), "be": ("cyrillic",), "kk": ("cyrillic",), "ar": ("arabic",),
            "fa": ("arabic",), "ur": ("arabic",), "he": ("hebrew",), "el": ("greek",),
            "th": ("thai",), "hi": ("devanagari",)}
_LATIN = ("en", "fr", "de", "es", "it", "pt", "nl", "sv", "pl", "tr", "vi", "id")
_LATIN_SCRIPT = frozenset({*_LATIN, "af", "ca", "cs", "cy", "da", "et", "eu", "fi", "ga", "gl",
                           "hr", "hu", "is", "lt", "lv", "ms", "mt", "nb", "nn", "no", "ro",
                           "sk", "sl", "sq", "sw", "tl", "uz", "zu", "la", "eo", "az"})
_BRACKETS = re.compile("[⟦⟧]")
# The prompt's own words (``translators.InstructTranslator.messages``) and a model's preface.
_PROMPT_ECHO = re.compile(
    r"here(?:'s| is| are) (?:the|your|a|my) (?:\w+ )?translation|reply with the"
    r"|placeholders? such as|do not repeat the original"
    r"|以下是(?:\S{0,6})?翻译|翻译如下|译文如下|翻译结果", re.IGNORECASE)
# Words an English translation may rightly hold ("Translate the text into English").
_INSTRUCTION_ECHO = re.compile(r"translate (?:into|to|the text)|translation into"
                               r"|translated (?:text|version)", re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_]+")


@dataclass(frozen=True)
class Verdict:
    """What the checks found in one answer.

    Attributes:
        reason: the first failed check (see the module docstring), None when all passed.
        confirmed: the answer's language or script was positively recognised as the target's.
        usual_length: its length is in the pair's usual range (or too short to judge).
    """

    reason: str | None
    confirmed: bool = False
    usual_length: bool = True


def _chars(text: str) -> int:
    return sum(1 for c in text if not c.isspace())


def _letters(text: str) -> int:
    return sum(1 for c in text if c.isalpha())


def _normal(char: str) -> str:
    return unicodedata.normalize("NFKC", char)


def invented_symbols(answer: str, source: str) -> list[str]:
    """Symbols of ``answer`` that look like made-up markers: not in ``source`` (compared after
    NFKC, so a full-width ＋ matches +; nor → where the source has ->), not ASCII, of category
    So, Sm or Co, and either used twice or more or next to a digit (unless it is one of the
    usual ones: °, ×, ±, −...)."""
    have = {_normal(c) for c in source}
    found: list[str] = []
    for index, char in enumerate(answer):
        if ord(char) < 128 or char in found or _normal(char) in have \
                or _EQUIVALENTS.get(char, "\0") in source:
            continue
        if unicodedata.category(char) not in ("So", "Sm", "Co"):
            continue
        repeated = answer.count(char) >= 2
        near = answer[max(0, index - 1):index + 2]
        by_digit = any(c.isdigit() for c in near) and char not in _USUAL_SYMBOLS
        if repeated or by_digit:
            found.append(char)
    return found


def leaked_markers(answer: str, source: str) -> bool:
    """A placeholder bracket or an invented marker symbol in the answer (see the module)."""
    return bool(_BRACKETS.search(answer)) or bool(invented_symbols(answer, source))


def _names(tag: str) -> list[str]:
    names = [name(tag)]
    if base(tag) == "zh":
        names += ["Chinese", "Simplified Chinese", "Traditional Chinese"]
    return names


def leaked_label(answer: str, source: str, source_tag: str, target: str) -> bool:
    """An instruction or label left in the answer that the source does not have."""
    lowered, plain = answer.casefold(), source.casefold()
    english = base(target) == "en"
    for pattern in (_PROMPT_ECHO,) if english else (_PROMPT_ECHO, _INSTRUCTION_ECHO):
        echo = pattern.search(answer)
        if echo and echo.group(0).casefold() not in plain:
            return True
    if english:
        return False  # an English answer may rightly name languages
    head = lowered[:40]
    for label in _names(target) + _names(source_tag):
        word = label.casefold()
        if re.match(rf"^\W{{0,3}}{re.escape(word)}\b", head) and word not in plain:
            return True
    return False


def target_scripts(target: str) -> tuple[str, ...]:
    """The scripts an answer in ``target`` is written in (empty: unknown, not checked)."""
    primary = base(target)
    if primary in _SCRIPTS:
        return _SCRIPTS[primary]
    return ("latin",) if primary in _LATIN_SCRIPT else ()


def _script_letters(text: str, scripts: tuple[str, ...]) -> int:
    return sum(1 for c in text if script(c) in scripts)


def _foreign_letters(answer: str, source: str, scripts: tuple[str, ...]) -> bool:
    """Letters in the answer of a script neither the target nor the source uses."""
    known = {*scripts, *(script(c) for c in source)}
    return any(c.isalpha() and script(c) not in known for c in answer)


def _japanese(text: str) -> bool:
    """Kana enough to call the text Japanese (as ``detect_language`` does)."""
    kana, han = _script_letters(text, ("kana",)), _script_letters(text, ("han",))
    return kana >= 3 and kana > 0.05 * (kana + han)


def bounds(source: str, target: str) -> tuple[tuple[float, float], tuple[float, float]]:
    """The pair's (hard, usual) bounds of answer characters per source character."""
    return _BOUNDS[(base(source) in _CJK, base(target) in _CJK)]


def check(source_text: str, answer: str, source: str, target: str) -> Verdict:
    """Runs the checks on one segment's answer (see the module docstring).

    Args:
        source_text: the segment's words (placeholders left out).
        answer: the cleaned answer's words (placeholders resolved or left out).
        source: the segment's language tag.
        target: the target language tag.
    """
    if leaked_markers(answer, source_text):
        return Verdict("markers")
    if leaked_label(answer, source_text, source, target):
        return Verdict("label")
    confirmed = False
    scripts = target_scripts(target)
    if scripts and not same_language(source, target):
        found = _script_letters(answer, scripts)
        if not found and (_letters(source_text) >= MIN_SCRIPT_LETTERS
                          or _foreign_letters(answer, source_text, scripts)):
            return Verdict("script")
        # Han in a Chinese answer to English confirms it; Latin letters in a German answer
        # to English do not (the function words below may).
        confirmed = bool(found) and scripts != ("latin",) \
            and not _script_letters(source_text, scripts)
    if base(target) == "zh" and _japanese(answer):
        return Verdict("language")
    if base(target) in _LATIN and _letters(answer) >= MIN_DETECT_LETTERS:
        # Words copied from the source (names, identifiers) are no evidence either way.
        copied = {w.casefold() for w in _WORD.findall(source_text)}
        new = " ".join(w for w in _WORD.findall(answer) if w.casefold() not in copied)
        hits = function_word_hits(new)
        mine = hits.get(base(target), 0)
        other = max((n for tag, n in hits.items() if tag != base(target)), default=0)
        if other >= MIN_OTHER_HITS and other >= OTHER_FACTOR * mine:
            return Verdict("language")
        confirmed = mine > 0 and mine >= other
    (low, high), (usual_low, usual_high) = bounds(source, target)
    have, got = _chars(source_text), _chars(answer)
    if got > high * have + LENGTH_SLACK or (have >= MIN_RATIO_CHARS and got < low * have):
        return Verdict("length", confirmed)
    usual = have < MIN_RATIO_CHARS or usual_low * have <= got <= usual_high * have + LENGTH_SLACK
    return Verdict(None, confirmed, usual)


# Confidence factors (see ``confidence``).
RETRIED = 0.7  # it took the strict second prompt
MOVED = 0.5  # placeholders failed twice: translated without them, protected parts at the end
UNCONFIRMED = 0.85  # too short (or a language without checks) to confirm the target language
UNUSUAL_LENGTH = 0.8
GLOSSARY_MISS = 0.8


def round_trip_factor(score: float) -> float:
    """What a round trip's chrF (0..1) makes of the confidence: a back-translation sharing half
    its character n-grams with the source (chrF 0.5, usual for a sound translation by a small
    model) keeps it; nothing shared leaves a quarter of it."""
    return min(1.0, 0.25 + 1.5 * max(0.0, score))


def confidence(status: str, verdict: Verdict, *, moved: bool = False,
               glossary_miss: bool = False, round_trip: float | None = None) -> float:
    """How far to trust one segment's translation, in [0, 1].

    0 when it was kept in the source language; else the product of the factors that apply:
    ``RETRIED`` (0.7) when it needed the strict retry, ``MOVED`` (0.5) when its protected parts
    had to be put at its end, ``UNCONFIRMED`` (0.85) when its language could not be confirmed
    (short, or a target without checks), ``UNUSUAL_LENGTH`` (0.8) outside the pair's usual
    length range, ``GLOSSARY_MISS`` (0.8) when a glossary term was not used, and with a round
    trip ``round_trip_factor(chrF)`` (0.25..1). A first-time answer that passed everything and
    was confirmed is 1.0.

    Args:
        status: ``translated``, ``retried`` or ``kept_source``.
        verdict: the checks' verdict on the accepted answer.
        moved: the placeholder fallback was used.
        glossary_miss: a glossary term was not translated as required.
        round_trip: the back-translation's chrF against the source, when one was made.
    """
    if status == "kept_source":
        return 0.0
    value = 1.0
    if status == "retried":
        value *= MOVED if moved else RETRIED
    if not verdict.confirmed:
        value *= UNCONFIRMED
    if not verdict.usual_length:
        value *= UNUSUAL_LENGTH
    if glossary_miss:
        value *= GLOSSARY_MISS
    if round_trip is not None:
        value *= round_trip_factor(round_trip)
    return round(max(0.0, min(1.0, value)), 3)
