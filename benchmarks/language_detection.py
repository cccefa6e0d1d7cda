"""Language detection accuracy and speed: function-word counting (before issue 27) vs py3langid.

    .venv/bin/python benchmarks/language_detection.py [--per-language 150] [--json out.json]

The labelled set is built from what every Debian/Ubuntu machine has: the translated messages of
the gettext catalogs in /usr/share/locale/<locale>/LC_MESSAGES/*.mo (English: their msgids). The
messages are cleaned (format specifiers such as ``%s`` / ``{name}``, command-line options, markup,
mnemonics and paths removed; country and language name lists left out), and a message whose
translation is its msgid is skipped. Three sets, drawn with a fixed seed:

- ``tiny``: single messages of 8-19 characters (one to three words);
- ``short``: single messages of 20-60 characters, at least three words (CJK and Thai: 20-60
  characters without a word count);
- ``long``: random messages of one language joined by ". " up to about 200 characters.

``legacy_detect`` is engine/language.py's ``detect_language`` as it was before issue 27, copied
here so the comparison stays reproducible.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
import unicodedata
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from locale_catalogs import catalog_pairs

# Tag -> locale folders its messages come from ("en": the msgids of the German catalogs).
SOURCES = {
    "en": ("de",), "zh": ("zh_CN",), "fr": ("fr",), "de": ("de",), "es": ("es",),
    "it": ("it",), "pt": ("pt", "pt_BR"), "ja": ("ja",), "ko": ("ko",), "ru": ("ru",),
    "nl": ("nl",), "pl": ("pl",), "tr": ("tr",), "vi": ("vi",), "id": ("id",), "ar": ("ar",),
    "hi": ("hi",), "uk": ("uk",), "sv": ("sv",), "el": ("el",), "he": ("he",), "th": ("th",),
}
UNSPACED = {"zh", "ja", "th"}  # no spaces between words: a word count means nothing
NON_LATIN = {"zh", "ja", "ko", "ru", "ar", "hi", "uk", "el", "he", "th"}
_FORMAT = re.compile(r"%(?:\d+\$)?[-+ #0']*\d*(?:\.\d+)?(?:hh|h|ll|l|L|q|j|z|Z|t)?[a-zA-Z%]"
                     r"|\{[^{}]*\}|\$\{?\w+\}?|<[^<>]*>|&\w+;")
_OPTION = re.compile(r"(?<!\w)--?[A-Za-z][\w-]*(?:=\S*)?")
_PATH = re.compile(r"\S*[/\\]\S+|\S+\.(?:c|h|so|py|conf|txt)\b|https?://\S+")
_MNEMONIC = re.compile(r"[_&~](?=\w)")
_SPACE = re.compile(r"\s+")


# --- the detector before issue 27 (engine/language.py at that time, unchanged) -------------------

_LEGACY_FUNCTION_WORDS = {
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
_LEGACY_WORDS = {tag: set(words.split()) for tag, words in _LEGACY_FUNCTION_WORDS.items()}
_LEGACY_TOKEN = re.compile(r"[^\W\d_]+", re.UNICODE)


def legacy_script(char: str) -> str | None:
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


def legacy_detect(text: str, sample_chars: int = 20_000) -> str:
    sample = text[:sample_chars]
    scripts = Counter(s for s in map(legacy_script, sample) if s)
    if not scripts:
        return "und"
    if scripts["kana"] > 0.05 * (scripts["kana"] + scripts["han"]) and scripts["kana"] >= 3:
        return "ja"
    top, _ = scripts.most_common(1)[0]
    if top == "latin" and scripts["han"] > 0.1 * scripts["latin"]:
        top = "han"
    by_script = {"han": "zh", "hangul": "ko", "arabic": "ar", "hebrew": "he", "greek": "el",
                 "thai": "th", "devanagari": "hi"}
    if top in by_script:
        return by_script[top]
    words = [w.lower() for w in _LEGACY_TOKEN.findall(sample)]
    if top == "cyrillic":
        return "uk" if sum(w in {"і", "що", "це", "та", "як"} for w in words) > 2 else "ru"
    if top != "latin" or not words:
        return "und"
    hits = {tag: sum(w in vocabulary for w in words) for tag, vocabulary in _LEGACY_WORDS.items()}
    best = max(hits, key=lambda tag: hits[tag])
    return best if hits[best] > 0 else "en"


# --- the labelled set ---------------------------------------------------------------------------

def clean(message: str) -> str:
    message = _FORMAT.sub(" ", message)
    message = _OPTION.sub(" ", message)
    message = _PATH.sub(" ", message)
    message = _MNEMONIC.sub("", message)
    return _SPACE.sub(" ", message).strip(" :;,.-=*#|\"'")


def _latin_share(text: str) -> float:
    letters = [c for c in text if c.isalpha()]
    return sum(c.isascii() for c in letters) / len(letters) if letters else 1.0


def messages(tag: str) -> list[str]:
    """Cleaned, distinct messages of one language, sorted (the draw below is seeded)."""
    found: set[str] = set()
    for locale in SOURCES[tag]:
        for msgid, msgstr in catalog_pairs(locale):
            source, text = clean(msgid), clean(msgstr if tag != "en" else msgid)
            if tag != "en" and (text == source or not text):
                continue
            if tag in NON_LATIN and _latin_share(text) > 0.3:
                continue  # mostly English terms left untranslated
            found.add(text)
    return sorted(found)


def build_sets(per_language: int, seed: int = 0) -> dict[str, dict[str, list[str]]]:
    """{set name: {tag: texts}} for the tiny, short and long sets."""
    rng = random.Random(seed)
    sets: dict[str, dict[str, list[str]]] = {"tiny": {}, "short": {}, "long": {}}
    for tag in SOURCES:
        pool = messages(tag)
        def words(text: str, tag: str = tag) -> bool:
            return tag in UNSPACED or len(text.split()) >= 3
        tiny = [m for m in pool if 8 <= len(m) < 20 and len(m.split()) <= 3]
        short = [m for m in pool if 20 <= len(m) <= 60 and words(m)]
        usable = [m for m in pool if len(m) >= 20 and words(m)]
        sets["tiny"][tag] = rng.sample(tiny, min(per_language, len(tiny)))
        sets["short"][tag] = rng.sample(short, min(per_language, len(short)))
        long = []
        for _ in range(min(per_language, len(usable) // 4)):
            text = ""
            while len(text) < 200:
                text += rng.choice(usable) + ". "
            long.append(text[:220].rstrip())
        sets["long"][tag] = long
    return sets


# --- the measurement ----------------------------------------------------------------------------

def model_only(text: str) -> str:
    """py3langid on every text, no script path (to see what the script path is worth)."""
    from engine.language import MODEL_CHARS, _model

    return str(_model().classify(text[:MODEL_CHARS])[0])


def measure(detect, texts: dict[str, list[str]]) -> tuple[dict[str, tuple[int, int]], float]:  # type: ignore[no-untyped-def]
    """({tag: (right, total)}, mean seconds per call: the best of three passes, since the
    machine may be shared)."""
    right = {tag: (sum(detect(text) == tag for text in items), len(items))
             for tag, items in texts.items()}
    calls = sum(len(items) for items in texts.values())
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for items in texts.values():
            for text in items:
                detect(text)
        best = min(best, time.perf_counter() - started)
    return right, best / max(calls, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-language", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    started = time.perf_counter()
    from engine.language import detect_language
    imported = time.perf_counter() - started
    started = time.perf_counter()
    detect_language("Ceci est une phrase.")  # loads the model
    loaded = time.perf_counter() - started
    built = time.perf_counter()
    sets = build_sets(args.per_language, args.seed)
    built = time.perf_counter() - built
    result: dict[str, object] = {"import_s": round(imported, 4), "first_call_s": round(loaded, 3),
                                 "build_s": round(built, 1), "sets": {}}
    for name, texts in sets.items():
        old, old_s = measure(legacy_detect, texts)
        new, new_s = measure(detect_language, texts)
        model, model_s = measure(model_only, texts)
        result["sets"][name] = {  # type: ignore[index]
            "per_language": {tag: {"n": old[tag][1], "old": old[tag][0], "new": new[tag][0],
                                   "model_only": model[tag][0]} for tag in texts},
            "old_right": sum(r for r, _ in old.values()),
            "new_right": sum(r for r, _ in new.values()),
            "total": sum(n for _, n in old.values()),
            "model_only_right": sum(r for r, _ in model.values()),
            "old_us_per_call": round(old_s * 1e6, 1), "new_us_per_call": round(new_s * 1e6, 1),
            "model_only_us_per_call": round(model_s * 1e6, 1),
        }
    # The languages the script decides alone, short messages: what the script path saves.
    scripted = {tag: sets["short"][tag] for tag in ("zh", "ja", "ko", "ar", "hi", "el", "he", "th")}
    result["script_path_short_us_per_call"] = {
        label: round(measure(detect, scripted)[1] * 1e6, 1)
        for label, detect in (("new", detect_language), ("model_only", model_only))}
    # Whole documents: the summarizer detects over up to 20,000 characters.
    document = " ".join(sets["long"]["de"])[:20_000]
    timings = {}
    for label, detect in (("old", legacy_detect), ("new", detect_language)):
        runs = []
        for _ in range(20):
            started = time.perf_counter()
            detect(document)
            runs.append(time.perf_counter() - started)
        timings[label] = round(sorted(runs)[len(runs) // 2] * 1e3, 2)  # median
    result["document_ms_per_call"] = {"chars": len(document), **timings}
    print(json.dumps(result, indent=1, ensure_ascii=False))
    for name, data in result["sets"].items():  # type: ignore[attr-defined]
        print(f"\n{name}: old {data['old_right']}/{data['total']} "
              f"({100 * data['old_right'] / data['total']:.1f}%), new {data['new_right']}/"
              f"{data['total']} ({100 * data['new_right'] / data['total']:.1f}%); "
              f"model only {data['model_only_right']}; {data['old_us_per_call']} vs "
              f"{data['new_us_per_call']} (model only {data['model_only_us_per_call']}) us/call")
        print("| language | n | old | new | model only |")
        for tag, row in data["per_language"].items():
            n = row["n"]
            print(f"| {tag} | {n} | {100 * row['old'] / n:.0f}% | {100 * row['new'] / n:.0f}% "
                  f"| {100 * row['model_only'] / n:.0f}% |")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
