"""Which language a text is written in: its script first, then py3langid's byte n-gram model.

Scripts decide most languages at once and without a model (kana is Japanese, Han without kana
Chinese, Hangul Korean, and Arabic, Hebrew, Greek, Thai and Devanagari have one language each
among those the app offers). Latin- and Cyrillic-script text goes to py3langid (a naive Bayes
model over byte n-grams, BSD-3, numpy only) restricted to the same languages: on short UI
messages it is right 97% of the time where function-word counting was right 72% (Ukrainian,
Turkish and Polish were the worst); see benchmarks/language_detection.py. The model is read on
the first call that needs it (about a second; it then holds about 55 MB), once per process, never
at import.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections import Counter
from functools import lru_cache
from typing import TYPE_CHECKING

from engine.text.scripts import HAN, HANGUL, KANA

if TYPE_CHECKING:
    from py3langid.langid import LanguageIdentifier

# BCP-47 tag -> English name, as used in prompts to instruct models; in the order language
# pickers offer them (most asked-for first).
NAMES = {
    "en": "English", "zh": "Simplified Chinese", "fr": "French", "de": "German",
    "es": "Spanish", "it": "Italian", "pt": "Portuguese", "ja": "Japanese", "ko": "Korean",
    "ru": "Russian", "nl": "Dutch", "pl": "Polish", "tr": "Turkish", "vi": "Vietnamese",
    "id": "Indonesian", "ar": "Arabic", "hi": "Hindi", "uk": "Ukrainian", "sv": "Swedish",
    "el": "Greek", "he": "Hebrew", "th": "Thai",
}
# The languages detection knows and the app offers, in picker order (BCP-47 tags).
LANGUAGES = tuple(NAMES)
# Scripts that name the language outright among LANGUAGES (no model needed).
_BY_SCRIPT = {"han": "zh", "hangul": "ko", "arabic": "ar", "hebrew": "he", "greek": "el",
              "thai": "th", "devanagari": "hi"}
# Scripts shared by several of LANGUAGES: the model chooses among these, and the first is the
# answer when the text gives it nothing to go on (a word or two of letters it has no n-grams
# for), as function-word counting answered before.
_BY_MODEL = {
    "latin": ("en", "fr", "de", "es", "it", "pt", "nl", "pl", "tr", "vi", "id", "sv"),
    "cyrillic": ("ru", "uk"),
}
# The most frequent short words of each Latin-script language (short lists on purpose: they
# dominate any running text and rarely overlap). Detection no longer uses them; the translation
# checks weigh them to tell how clear-cut a Latin-script answer is (``function_word_hits``).
_FUNCTION_WORDS = {
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
# The model reads at most this many characters: it is right on every 200-character message of
# the benchmark, and its time grows with the length.
MODEL_CHARS = 2_000

_EAST_ASIAN = [(name, re.compile(f"[{ranges}]")) for name, ranges in
               (("kana", KANA), ("han", HAN), ("hangul", HANGUL))]
_lock = threading.Lock()
_identifier: LanguageIdentifier | None = None


@lru_cache(maxsize=4096)
def script(char: str) -> str | None:
    """The script of one character (``han``, ``kana``, ``hangul``, ``latin``, ``cyrillic`` ...;
    ``other`` for letters of other scripts), or None for anything that is not a letter."""
    for name, letters in _EAST_ASIAN:
        if letters.match(char):
            return name
    if not char.isalpha():
        return None
    name = unicodedata.name(char, "")
    for found in ("CYRILLIC", "ARABIC", "HEBREW", "GREEK", "THAI", "DEVANAGARI", "LATIN"):
        if name.startswith(found):
            return found.lower()
    return "other"


def _scripts(sample: str) -> Counter[str]:
    """Letters per script (each distinct character classified once)."""
    scripts: Counter[str] = Counter()
    for char, count in Counter(sample).items():
        found = script(char)
        if found:
            scripts[found] += count
    return scripts


def _model() -> LanguageIdentifier:
    """py3langid's identifier restricted to LANGUAGES, loaded once (thread-safe)."""
    global _identifier
    if _identifier is None:
        with _lock:
            if _identifier is None:
                from py3langid.langid import MODEL_FILE, LanguageIdentifier

                identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
                identifier.set_languages(LANGUAGES)
                if hasattr(identifier, "_full_model"):
                    # It keeps all 140 languages' weights (28 MB) to allow un-restricting;
                    # only ours are ever used. About 55 MB stay (mostly its n-gram automaton).
                    identifier._full_model = (identifier.nb_ptc, identifier.nb_pc,
                                              identifier.nb_classes)
                _identifier = identifier
    return _identifier


def detect_language(text: str, sample_chars: int = 20_000) -> str:
    """The BCP-47 tag of the main language of ``text``, or "und" when it has no letters.

    Also "und" when its letters are of a script none of LANGUAGES is written in (Armenian,
    Georgian ...). Latin or Cyrillic letters that the model finds nothing in (a word or two)
    read as English or Russian. Below about 20 characters the answer is a guess (88% right on
    the benchmark's 8-19 character messages, English 71%); callers that need certainty check
    the length first.
    """
    sample = text[:sample_chars]
    scripts = _scripts(sample)
    if not scripts:
        return "und"
    # Japanese mixes kana with Han; any real share of kana means Japanese, not Chinese.
    if scripts["kana"] > 0.05 * (scripts["kana"] + scripts["han"]) and scripts["kana"] >= 3:
        return "ja"
    top, _ = scripts.most_common(1)[0]
    if top == "latin" and scripts["han"] > 0.1 * scripts["latin"]:
        top = "han"  # Chinese text with many Latin names or code still reads as Chinese
    if top in _BY_SCRIPT:
        return _BY_SCRIPT[top]
    if top not in _BY_MODEL:
        return "und"
    candidates = _BY_MODEL[top]
    ranked = _model().rank(sample[:MODEL_CHARS])
    if ranked[0][1] - ranked[-1][1] < 1e-6:  # no n-gram the model knows: all equally likely
        return candidates[0]
    return next(tag for tag, _ in ranked if tag in candidates)


def _hits(words: list[str]) -> dict[str, int]:
    return {tag: sum(w in vocabulary for w in words) for tag, vocabulary in _WORDS.items()}


def function_word_hits(text: str) -> dict[str, int]:
    """For each Latin-script language of LANGUAGES, how many of the words of ``text`` are among
    its most frequent function words: for callers that need to know how clear-cut a
    Latin-script text's language is (the translation checks)."""
    return _hits([w.lower() for w in _TOKEN.findall(text)])


def language_name(tag: str) -> str:
    """An English name for prompts ("zh" -> "Simplified Chinese"); the tag itself if unknown."""
    return NAMES.get(tag.split("-")[0].lower(), tag)
