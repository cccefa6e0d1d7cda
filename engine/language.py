"""Which language a text is written in, from its letters alone (no model, no data files).

Scripts decide most languages at once (Han without kana is Chinese, kana is Japanese, Hangul
Korean, Cyrillic Russian ...); Latin-script text is told apart by its most frequent short words.
Good enough to answer "write the summary in the document's language" and "translate from: auto";
not meant for one-word inputs.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

# BCP-47 tag -> English name, as used in prompts to instruct models.
NAMES = {
    "en": "English", "zh": "Simplified Chinese", "ja": "Japanese", "ko": "Korean",
    "ru": "Russian", "uk": "Ukrainian", "ar": "Arabic", "he": "Hebrew", "el": "Greek",
    "th": "Thai", "hi": "Hindi", "fr": "French", "de": "German", "es": "Spanish",
    "it": "Italian", "pt": "Portuguese", "nl": "Dutch", "sv": "Swedish", "pl": "Polish",
    "tr": "Turkish", "vi": "Vietnamese", "id": "Indonesian",
}
# The most frequent function words of each Latin-script language (short lists on purpose:
# they dominate any running text and rarely overlap between the languages).
_FUNCTION_WORDS = {
    # "a" is Portuguese too: a tie goes to the first language listed, English.
    "en": "the of and to in is that it for was on are with as this be by not or have from a an "
          "at but so you we they he she his her which",
    "fr": "le la les de des et est un une du en que qui dans pour pas sur au avec il ce sont",
    "de": "der die das und ist nicht ein eine zu den von mit sich des auf für im dem auch es",
    "es": "el la los las de y que en un una es por con para del se no su al lo como más",
    "it": "il la di che e un una è per non sono del della le gli con si da nel anche come",
    "pt": "o a os as de e que em um uma é do da para com não no na por se mais dos das",
    "nl": "de het een en van is dat op te in zijn niet met voor er aan ook als door maar",
    "sv": "och att det som en är på för med av den till inte har om ett var jag men de",
    "pl": "i w na z że się nie do to jest jak po co ale od za tak przez dla jego już",
    "tr": "ve bir bu da de için ile ne çok olarak daha gibi en ama olan var mı ki",
    "vi": "và của là có không được trong một những các cho với người này đã để khi",
    "id": "dan yang di ini itu dengan untuk dari tidak ada dalam akan pada juga ke",
}
_WORDS = {tag: set(words.split()) for tag, words in _FUNCTION_WORDS.items()}
_TOKEN = re.compile(r"[^\W\d_]+", re.UNICODE)


def script(char: str) -> str | None:
    """The script of one character (``han``, ``kana``, ``hangul``, ``latin``, ``cyrillic`` ...;
    ``other`` for letters of other scripts), or None for anything that is not a letter."""
    code = ord(char)
    if 0x3040 <= code <= 0x30FF or 0x31F0 <= code <= 0x31FF:
        return "kana"
    if 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0xF900 <= code <= 0xFAFF:
        return "han"
    if 0xAC00 <= code <= 0xD7AF or 0x1100 <= code <= 0x11FF:
        return "hangul"
    if not char.isalpha():
        return None
    name = unicodedata.name(char, "")
    for found in ("CYRILLIC", "ARABIC", "HEBREW", "GREEK", "THAI", "DEVANAGARI", "LATIN"):
        if name.startswith(found):
            return found.lower()
    return "other"


def detect_language(text: str, sample_chars: int = 20_000) -> str:
    """The BCP-47 tag of the main language of ``text``, or "und" when it has no letters."""
    sample = text[:sample_chars]
    scripts = Counter(s for s in map(script, sample) if s)
    if not scripts:
        return "und"
    # Japanese mixes kana with Han; any real share of kana means Japanese, not Chinese.
    if scripts["kana"] > 0.05 * (scripts["kana"] + scripts["han"]) and scripts["kana"] >= 3:
        return "ja"
    top, _ = scripts.most_common(1)[0]
    if top == "latin" and scripts["han"] > 0.1 * scripts["latin"]:
        top = "han"  # Chinese text with many Latin names or code still reads as Chinese
    by_script = {"han": "zh", "hangul": "ko", "arabic": "ar", "hebrew": "he", "greek": "el",
                 "thai": "th", "devanagari": "hi"}
    if top in by_script:
        return by_script[top]
    words = [w.lower() for w in _TOKEN.findall(sample)]
    if top == "cyrillic":
        return "uk" if sum(w in {"і", "що", "це", "та", "як"} for w in words) > 2 else "ru"
    if top != "latin" or not words:
        return "und"
    hits = _hits(words)
    best = max(hits, key=lambda tag: hits[tag])
    return best if hits[best] > 0 else "en"


def _hits(words: list[str]) -> dict[str, int]:
    return {tag: sum(w in vocabulary for w in words) for tag, vocabulary in _WORDS.items()}


def function_word_hits(text: str) -> dict[str, int]:
    """For each Latin-script language detection knows, how many of the words of ``text`` are
    among its most frequent function words: the evidence ``detect_language`` weighs, for
    callers that need to know how clear-cut a Latin-script answer is."""
    return _hits([w.lower() for w in _TOKEN.findall(text)])


def language_name(tag: str) -> str:
    """An English name for prompts ("zh" -> "Simplified Chinese"); the tag itself if unknown."""
    return NAMES.get(tag.split("-")[0].lower(), tag)
