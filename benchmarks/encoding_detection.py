"""Encoding detection of legacy text files: the old small detector vs charset-normalizer.

    .venv/bin/python benchmarks/encoding_detection.py [--seeds 20] [--json out.json]

The same texts in 14 encodings: translated messages from the gettext catalogs of this machine
(/usr/share/locale/<locale>/LC_MESSAGES/*.mo, those the codecs can encode), drawn once per seed
(0..N-1) and joined into a note of about 150 characters and a page of about 2,000; each encoded,
detected, and decoded with what was detected. Right means the decoded text is the original text
(so Latin-1 read as cp1252, which decodes them alike, is right). ``legacy_detect_encoding`` is
engine/documents/text.py's ``detect_encoding`` as it was before issue 27, copied here so the
comparison stays reproducible.
"""

from __future__ import annotations

import argparse
import codecs
import json
import random
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from locale_catalogs import catalog_pairs

from engine.documents.text import detect_encoding

# Encoding -> the locale whose messages it carries (pairs sharing a locale get the same text).
CASES = {
    "big5": "zh_TW", "gb18030": "zh_CN", "cp1251": "ru", "koi8-r": "ru", "iso8859-2": "pl",
    "iso8859-7": "el", "cp1254": "tr", "euc-kr": "ko", "euc-jp": "ja", "shift_jis": "ja",
    "cp1252": "fr", "latin-1": "de", "utf-8": "uk", "utf-16": "ru",
}
SIZES = {"note": 150, "page": 2_000}
NON_LATIN = ("zh_TW", "zh_CN", "ru", "el", "ko", "ja", "uk")
_NOISE = re.compile(r"%(?:\d+\$)?[-+ #0]*\d*(?:\.\d+)?[hlLqjzt]*[a-zA-Z]|\{[^{}]*\}|<[^<>]*>")


# --- the detector before issue 27 (engine/documents/text.py at that time, unchanged) ------------

_SAMPLE_BYTES = 64 * 1024
_BOMS = (  # UTF-32 first: its little-endian BOM starts with UTF-16's.
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# Signatures of common binary files, so the refusal can say what the file really is.
_CONTROL_BYTES = bytes(range(0x09)) + bytes(range(0x0E, 0x1B)) + bytes(range(0x1C, 0x20))
_STRAY_CONTROLS = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f]")


def _utf16_without_bom(sample: bytes) -> str | None:
    """UTF-16 text in a Latin script has a NUL in every other byte; which half says the order.

    The NUL pattern alone is not enough: ASCII text with NULs here and there has it too, and
    decodes to a soup of CJK-looking characters (each made of two ASCII letters). So the sample
    must also decode cleanly and read like text (`_reads_like_utf16`).
    """
    half = len(sample) // 2
    if half < 2:
        return None
    even, odd = sample[0 : half * 2 : 2].count(0), sample[1 : half * 2 : 2].count(0)
    if odd >= 0.2 * half and even <= 0.02 * half:
        encoding = "utf-16-le"
    elif even >= 0.2 * half and odd <= 0.02 * half:
        encoding = "utf-16-be"
    else:
        return None
    text = _sample_text(sample[: half * 2], encoding)
    return encoding if text is not None and _reads_like_utf16(text) else None


def _reads_like_utf16(text: str) -> bool:
    """Whether decoded UTF-16 looks like text, not bytes of another encoding read in pairs.

    ASCII text with stray NULs decodes to ASCII plus characters whose two bytes are both
    printable ASCII, nothing else. Real text beyond Latin-1 has such characters too (a fifth
    of Chinese, a third of kana), but most of its characters have other bytes (Cyrillic, Greek,
    Hangul: always). Also refused: many control or private-use characters (surrogates were
    refused by the strict decode).
    """
    if not text:
        return False
    wide = [ord(char) for char in text if ord(char) > 0xFF]
    paired = sum(1 for code in wide if _ascii_byte(code >> 8) and _ascii_byte(code & 0xFF))
    private = sum(1 for code in wide if 0xE000 <= code <= 0xF8FF or code in (0xFFFE, 0xFFFF))
    controls = len(_STRAY_CONTROLS.findall(text))
    return controls <= 0.05 * len(text) and private <= 0.02 * len(text) \
        and (paired <= 4 or paired <= 0.6 * len(wide))


def _ascii_byte(byte: int) -> bool:
    return 0x20 <= byte <= 0x7E or byte in (0x09, 0x0A, 0x0D)


def _decodes(data: bytes, encoding: str) -> str | None:
    try:
        return data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return None


def _sample_text(sample: bytes, encoding: str) -> str | None:
    """The sample decoded strictly, tolerating a character cut off at its end."""
    try:
        return codecs.getincrementaldecoder(encoding)().decode(sample, final=False)
    except UnicodeDecodeError:
        return None


def _encodable(char: str, encoding: str) -> bool:
    try:
        char.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True


def _cjk_score(text: str, encoding: str) -> float:
    """Share of non-ASCII characters that are common for the candidate's language (0..1).

    GB18030 decodes Japanese or Latin bytes into rare characters outside GB2312, and Shift-JIS
    decodes Chinese bytes into half-width katakana; real Japanese always has some kana.
    """
    wide = [c for c in text if ord(c) > 0x7F]
    if not wide:
        return 0.0
    if encoding == "gb18030":
        common = {c for c in set(wide) if _encodable(c, "gb2312")}
        return sum(c in common for c in wide) / len(wide)
    kana = sum("\u3040" <= c <= "\u30ff" for c in wide)
    if kana < 0.1 * len(wide):
        return 0.0
    odd = sum("\uff61" <= c <= "\uff9f" or "\ue000" <= c <= "\uf8ff" for c in wide)
    return 1 - odd / len(wide)


def legacy_detect_encoding(data: bytes) -> tuple[str, int]:
    """The most likely encoding of ``data`` and the length of its byte-order mark.

    Returns:
        (codec name, BOM length). ``"binary"`` as the codec when the bytes are not text.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding, len(bom)
    sample = data[:_SAMPLE_BYTES]
    utf16 = _utf16_without_bom(sample)
    if utf16 is not None:
        return utf16, 0
    controls = len(sample) - len(sample.translate(None, _CONTROL_BYTES))
    if b"\x00" in sample or controls > 0.05 * len(sample):
        return "binary", 0
    if _decodes(data, "utf-8") is not None:
        return "utf-8", 0
    scored = []
    for encoding in ("gb18030", "shift_jis"):
        text = _sample_text(sample, encoding)
        if text is not None:
            scored.append((_cjk_score(text, encoding), encoding))
    for score, encoding in sorted(scored, reverse=True):
        if score >= 0.9 and _decodes(data, encoding) is not None:
            return encoding, 0
    return ("cp1252" if _decodes(data, "cp1252") is not None else "latin-1"), 0



# --- the texts ----------------------------------------------------------------------------------

def _messages(locale: str, encoding: str) -> list[str]:
    found: set[str] = set()
    for msgid, msgstr in catalog_pairs(locale):
        text = " ".join(_NOISE.sub(" ", msgstr).split())
        if len(text) < 20 or text == " ".join(msgid.split()):
            continue
        if locale in NON_LATIN and sum(not c.isascii() for c in text) < 0.3 * len(text):
            continue  # mostly untranslated English terms
        if _encodable_all(text, encoding):
            found.add(text)
    return sorted(found)


def _encodable_all(text: str, encoding: str) -> bool:
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True


def build_texts(seed: int = 0) -> dict[str, dict[str, str]]:
    """{size: {encoding: text}}; encodings sharing a locale share the text (encodable in both)."""
    texts: dict[str, dict[str, str]] = {size: {} for size in SIZES}
    for locale in dict.fromkeys(CASES.values()):
        encodings = [e for e, loc in CASES.items() if loc == locale]
        pool = [m for m in _messages(locale, encodings[0])
                if all(_encodable_all(m, e) for e in encodings)]
        rng = random.Random(f"{seed}-{locale}")
        rng.shuffle(pool)
        for size, chars in SIZES.items():
            picked, length = [], 0
            for message in pool:
                if length >= chars:
                    break
                picked.append(message)
                length += len(message) + 1
            for encoding in encodings:
                texts[size][encoding] = "\n".join(picked)
    return texts


def plain_best(data: bytes) -> tuple[str, int]:
    """charset-normalizer with its defaults (all codecs, ``.best()``), after the same fast path:
    what the candidate list and tie-breaking of ``_legacy_encoding`` are worth."""
    from charset_normalizer import from_bytes

    encoding, bom = detect_encoding(data)
    if bom or encoding in ("binary", "utf-8") or encoding.startswith("utf-16"):
        return encoding, bom
    best = from_bytes(data).best()
    return (best.encoding if best is not None else "cp1252"), 0


def _decoded(data: bytes, detected: tuple[str, int]) -> str:
    encoding, bom = detected
    return data[bom:].decode(encoding, errors="replace")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20, help="draws of texts (seeds 0..N-1)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    detect_encoding("warm up: é".encode("cp1252"))  # imports charset-normalizer
    result: dict[str, dict[str, dict[str, object]]] = {size: {} for size in SIZES}
    seconds = {size: {"old": 0.0, "new": 0.0, "plain": 0.0} for size in SIZES}
    for seed in range(args.seeds):
        for size, texts in build_texts(seed).items():
            for encoding, text in texts.items():
                data = text.encode(encoding)
                row = result[size].setdefault(encoding, {
                    "old": 0, "new": 0, "plain": 0, "old_wrong": {}, "new_wrong": {},
                    "plain_wrong": {}})
                for label, detect in (("old", legacy_detect_encoding), ("new", detect_encoding),
                                      ("plain", plain_best)):
                    started = time.perf_counter()
                    detected = detect(data)
                    seconds[size][label] += time.perf_counter() - started
                    if detected[0] != "binary" and _decoded(data, detected) == text:
                        row[label] += 1  # type: ignore[operator]
                    else:
                        wrong = row[f"{label}_wrong"]
                        wrong[detected[0]] = wrong.get(detected[0], 0) + 1  # type: ignore[union-attr,attr-defined]
    files = args.seeds * len(CASES)
    report = {"seeds": args.seeds, "sizes": SIZES, "cases": result,
              "ms_per_file": {size: {label: round(t / files * 1e3, 2) for label, t in s.items()}
                              for size, s in seconds.items()}}
    print(json.dumps(report, indent=1))
    for size, rows in result.items():
        old = sum(r["old"] for r in rows.values())  # type: ignore[misc]
        new = sum(r["new"] for r in rows.values())  # type: ignore[misc]
        plain = sum(r["plain"] for r in rows.values())  # type: ignore[misc]
        print(f"\n{size} (~{SIZES[size]} chars): old {old}/{files}, new {new}/{files}, "
              f"charset-normalizer defaults {plain}/{files}; "
              f"{report['ms_per_file'][size]} ms/file")
        print("| written in | old right | new right | defaults right | new's wrong guesses |")
        for encoding, row in rows.items():
            guesses = ", ".join(f"{k} {v}" for k, v in row["new_wrong"].items()) or "-"  # type: ignore[attr-defined]
            print(f"| {encoding} | {row['old']}/{args.seeds} | {row['new']}/{args.seeds} "
                  f"| {row['plain']}/{args.seeds} | {guesses} |")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
