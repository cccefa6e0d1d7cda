"""What came back from a translator: chatter removed, and empty or untranslated answers found.

Instruct models wrap translations in chatter: a preface ("Sure! Here is the translation:"), a
label ("German translation:", "Simplified Chinese:", "Chinese (Simplified):", "Deutsch:", the
prompt's "Translate into German:"), quotes around the whole answer, the source repeated first, notes
after it. Segments are single sentences on one line, so an answer's first line (after a preface)
is the translation and everything after it is commentary. Each cleaning step only applies when
it leaves something behind and when the source itself does not have that shape (a quoted source
keeps its quotes).

An answer is a problem when it is empty, or when it is still the source: the same words (for a
source of at least three words; names and product titles are often rightly left as they are), or
detected as the source language while long enough for detection to be trusted and the target is
a language detection can recognise.
"""

from __future__ import annotations

import re
import unicodedata

from engine.language import NAMES, detect_language
from engine.text.scripts import EAST_ASIAN_LETTER
from engine.translate.languages import EXTRA_NAMES, base, same_language

MIN_DETECT_LETTERS = 30  # below this detect_language guesses rather than knows
MIN_SAME_WORDS = 3
DETECT_CHARS = 200  # a segment's language is told from its start (detection is per character)
_LINE_PREFACE = re.compile(r"^.{0,80}?(?:translat|traduc|übersetz|翻译|译文|翻訳|here is|here's|"
                           r"below is).{0,80}?[:：]\s*$", re.IGNORECASE)
_INTERJECTION = re.compile(r"^(?:sure|certainly|of course|okay|ok|absolutely|alright)\b"
                           r"[\s,.!]*$", re.IGNORECASE)
_INLINE_PREFACE = re.compile(
    r"^(?:(?:sure|certainly|of course|okay|ok)[,!.]?\s+)?(?:here(?:'s| is| are)|below is)"
    r"[^:\n：]{0,80}[:：]\s*", re.IGNORECASE)
_LABEL = re.compile(
    r"^(?:[\w-]+\s+)?(?:translation|translated text|traduction|übersetzung|译文|翻译)"
    r"\s*(?:\([^)\n]{0,40}\))?\s*[:：]\s*", re.IGNORECASE)
# Language names a small model puts before its answer as a label ("Simplified Chinese: ...",
# "Chinese (Simplified): ...", "Deutsch: ..."): English names and the names in the language.
_ENDONYMS = ("中文", "简体中文", "繁體中文", "繁体中文", "汉语", "漢語", "中文（简体）", "日本語",
             "日语", "한국어", "Deutsch", "Français", "Español", "Italiano", "Português",
             "Nederlands", "Svenska", "Polski", "Türkçe", "Tiếng Việt", "Bahasa Indonesia",
             "Русский", "Українська", "العربية", "עברית", "Ελληνικά", "ไทย", "हिन्दी",
             "英语", "英文", "德语", "法语", "西班牙语", "日文", "韩语")
_LANGUAGE_NAMES = sorted({*NAMES.values(), *EXTRA_NAMES.values(), "Chinese", "Traditional Chinese",
                          "Mandarin", *_ENDONYMS}, key=len, reverse=True)
_LANGUAGE_LABEL = re.compile(
    r"^(?:" + "|".join(re.escape(n) for n in _LANGUAGE_NAMES) + r")"
    r"\s*(?:[(（][^)）\n]{0,30}[)）])?\s*(?:translation|text|version|译文|翻译)?\s*[:：]\s*",
    re.IGNORECASE)
# The prompt's own words given back before the answer: "Translate into German: ...".
_PROMPT_LABEL = re.compile(r"^(?:please\s+)?translate(?:d)?\b[^:\n：]{0,60}[:：]\s*",
                           re.IGNORECASE)
_ECHO_LABEL = re.compile(r"^(?:original|source|source text|原文)\s*[:：]", re.IGNORECASE)
_TRAILING_NOTE = re.compile(
    r"\s*[(（](?:note|notes|n\.b\.|translator'?s? note|literally|lit\.|注|注意)[^)）]*[)）]\s*$",
    re.IGNORECASE)
_SEPARATOR = re.compile(r"^\s*(?:->|=>|→|—|-|:|：)?\s*")
_QUOTES = {'"': '"', "“": "”", "„": "“", "«": "»", "「": "」", "『": "』", "'": "'", "‘": "’",
           "`": "`"}
_FENCE = re.compile(r"^```[\w-]*\n(.*?)\n?```$", re.DOTALL)
_WORD = re.compile(r"[^\W\d_]+")
_NOT_ALNUM = re.compile(r"[\W_]+")
_NOT_LETTER = re.compile(r"[\W\d_]+")
_ENGLISH = frozenset({"the", "of", "and", "to", "in", "is", "that", "it", "for", "was", "on", "are",
                      "with", "as", "this", "be", "by", "not", "or", "have", "from"})
_CJK = EAST_ASIAN_LETTER


def _normal(text: str) -> str:
    """Letters and digits only, case-folded: for comparing a source and an answer."""
    return _NOT_ALNUM.sub("", unicodedata.normalize("NFKC", text).casefold())


def _first_line(lines: list[str]) -> str:
    return next((line.strip() for line in lines if line.strip()), "")


def _drop_preface(text: str, source: str) -> str:
    lines = [line.strip() for line in text.split("\n")]
    filled = [index for index, line in enumerate(lines) if line]
    if len(filled) > 1:
        first, rest = lines[filled[0]], "\n".join(lines[filled[1]:]).strip()
        if (_LINE_PREFACE.match(first) or _INTERJECTION.match(first)
                or _ECHO_LABEL.match(first)) and not _LINE_PREFACE.match(source):
            text = rest
    for pattern in (_INLINE_PREFACE, _PROMPT_LABEL, _LANGUAGE_LABEL, _LABEL):
        match = pattern.match(text)
        if match and text[match.end():].strip() and not pattern.match(source):
            text = text[match.end():].strip()
    return text


def _drop_echo(text: str, source: str) -> str:
    """Removes the source when the answer starts by repeating it."""
    if not source.strip() or len(text) <= len(source):
        return text
    wanted = _normal(source)
    if not wanted or not _normal(text[:2 * len(source) + 16]).startswith(wanted):
        return text
    seen = ""
    for index, char in enumerate(text):  # walk until the normalised prefix covers the source
        if char.isalnum() or unicodedata.normalize("NFKC", char).casefold().isalnum():
            seen += _normal(char)
        if len(seen) >= len(wanted):
            rest = text[index + 1:]
            separated = re.match(r"\s*(?:\n|->|=>|→|—|:|：)", rest) is not None
            if seen != wanted or rest[:1].isalnum() or \
                    (not separated and len(_WORD.findall(source)) < 2):
                return text  # the translation only begins like the source ("Lamp" -> "Lampe")
            rest = re.sub(r"^[\s\"'”’)»」』.!?。！？]*", "", rest)
            rest = _SEPARATOR.sub("", rest)
            rest = _LABEL.sub("", rest).strip()
            return rest or text
    return text


def _unquote(text: str, source: str) -> str:
    stripped_source = source.strip()
    for opening, closing in _QUOTES.items():
        if len(text) > 2 and text.startswith(opening) and text.endswith(closing):
            inner = text[len(opening):-len(closing)]
            if closing in inner or (opening != closing and opening in inner):
                return text  # several quotations, not one around everything
            if stripped_source.startswith(opening) and stripped_source.endswith(closing):
                return text
            return inner.strip() or text
    return text


def clean_answer(answer: str, source: str) -> str:
    """The translation in an instruct model's answer, without chatter.

    Args:
        answer: the raw answer.
        source: the segment that was translated (a single line).

    Returns:
        The cleaned answer (possibly empty).
    """
    # An answer cut at the length limit can end in half a character, which the detokenizer
    # flushes as U+FFFD; it must not reach the translated document.
    text = answer.replace("\r\n", "\n").strip().rstrip("\ufffd").strip()
    fence = _FENCE.match(text)
    if fence and "```" not in source:
        text = fence.group(1).strip()
    text = _drop_preface(text, source)
    text = _drop_echo(text, source)
    if "\n" not in source.strip():
        text = _first_line(text.split("\n"))
    note = _TRAILING_NOTE.search(text)
    if note and note.start() > 0 and not _TRAILING_NOTE.search(source):
        text = text[:note.start()].rstrip()
    text = _unquote(text, source)
    return text.strip()


def _letters(text: str) -> int:
    return len(_NOT_LETTER.sub("", text))


def _words(text: str) -> int:
    return len(_WORD.findall(text)) + len(_CJK.findall(text)) // 2


def detectable(tag: str) -> bool:
    """Whether detect_language can tell ``tag`` from other languages."""
    return base(tag) in NAMES


def segment_language(text: str, fallback: str) -> str:
    """The language of one segment when the text is long enough to tell, else ``fallback``."""
    if _letters(text) < MIN_DETECT_LETTERS and len(_CJK.findall(text)) < 4:
        return fallback
    found = detect_language(text, sample_chars=DETECT_CHARS)
    return fallback if found == "und" else found


def problem(source_text: str, translation: str, source: str, target: str) -> str | None:
    """Why a translation cannot be used: ``empty``, ``untranslated``, or None when it is fine.

    Args:
        source_text: the segment's text without placeholders.
        translation: the cleaned translation without placeholders.
        source: the segment's language tag.
        target: the target language tag.
    """
    if not _normal(translation):
        return None if not _normal(source_text) else "empty"
    if same_language(source, target):
        return None
    if _normal(translation) == _normal(source_text) and _words(source_text) >= MIN_SAME_WORDS:
        return "untranslated"
    if _letters(translation) >= MIN_DETECT_LETTERS and detectable(target) and detectable(source):
        found = detect_language(translation, sample_chars=DETECT_CHARS)
        if found == base(source) and not same_language(found, target) and \
                (found != "en" or _looks_english(translation)):
            return "untranslated"
    return None


def _looks_english(text: str) -> bool:
    """English function words in ``text``: detect_language answers "en" for any Latin-script
    text it cannot place (a German sentence without "der" or "und", or noise), so "en" alone
    is no evidence that a translation is still English."""
    found = [w for w in _WORD.findall(text[:DETECT_CHARS].lower()) if w in _ENGLISH]
    return len(found) >= 2
