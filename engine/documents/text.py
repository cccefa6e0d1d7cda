"""Plain text: encoding detection, newline normalisation, binary refusal and paragraph splitting.

The detector is small on purpose and covers what users actually have: byte-order marks, UTF-8,
UTF-16 without a BOM (recognised by where its NUL bytes fall), GB18030 for Chinese, Shift-JIS for
Japanese and cp1252 / Latin-1 for Western legacy files. Legacy CJK candidates are scored on how
many of their characters are common ones, because GB18030 and Shift-JIS decode almost any byte
soup without error.
"""

from __future__ import annotations

import codecs
import re

from engine.documents.limits import ReadGuard, ReadLimits
from engine.documents.model import Block
from engine.errors import DocumentError

SAMPLE_BYTES = 64 * 1024
_BOMS = (  # UTF-32 first: its little-endian BOM starts with UTF-16's.
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# Signatures of common binary files, so the refusal can say what the file really is.
_SIGNATURES = (
    (b"%PDF-", "it is a PDF; rename it to .pdf"),
    (b"PK\x03\x04", "it is a zip archive, e.g. a Word .docx"),
    (b"\xd0\xcf\x11\xe0", "it is an old Office file (.doc, .xls)"),
    (b"\x89PNG", "it is a PNG image"),
    (b"\xff\xd8\xff", "it is a JPEG image"),
    (b"GIF8", "it is a GIF image"),
    (b"\x7fELF", "it is a program"),
    (b"MZ", "it is a Windows program"),
)
# C0 controls other than tab, newline, vertical tab, form feed, carriage return and escape.
_CONTROL_BYTES = bytes(range(0x09)) + bytes(range(0x0E, 0x1B)) + bytes(range(0x1C, 0x20))
_STRAY_CONTROLS = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f]")
_BLANK_LINES = re.compile(r"\n(?:[ \t]*\n)+")


def sniff(data: bytes) -> str | None:
    """What a file's first bytes say it really is (``"it is a PDF; ..."``), if recognisable."""
    return next((hint for signature, hint in _SIGNATURES if data.startswith(signature)), None)


def binary_error(guard: ReadGuard, data: bytes) -> DocumentError:
    """The refusal for binary content, naming the real file type when it is recognisable."""
    hint = sniff(data)
    if hint is not None:
        return guard.fail(f"not a text file ({hint})")
    return guard.fail("not a text file (binary content); choose a .txt, .md or .html file")


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


def detect_encoding(data: bytes) -> tuple[str, int]:
    """The most likely encoding of ``data`` and the length of its byte-order mark.

    Returns:
        (codec name, BOM length). ``"binary"`` as the codec when the bytes are not text.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding, len(bom)
    sample = data[:SAMPLE_BYTES]
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


def normalise(text: str) -> str:
    """Unix newlines, form feeds as paragraph breaks, no stray control characters."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\v", "\n")
    text = text.replace("\f", "\n\n")
    return _STRAY_CONTROLS.sub("", text.lstrip("\ufeff"))


def decode_document(data: bytes, guard: ReadGuard, limits: ReadLimits,
                    declared: str | None = None) -> str:
    """Bytes of a text-like file (txt, Markdown, HTML) as normalised text.

    Args:
        data: the file's bytes.
        guard: names the document in errors.
        limits: ``max_chars`` applies.
        declared: an encoding the file declares (HTML's ``<meta charset>``); a byte-order mark or
            a UTF-16 NUL pattern still wins, as in browsers.

    Raises:
        DocumentError: binary content, or more text than ``limits.max_chars``.
    """
    encoding, bom = detect_encoding(data)
    if encoding == "binary":
        raise binary_error(guard, data)
    if declared is not None and not bom and not encoding.startswith("utf-16"):
        encoding = declared
    text = data[bom:].decode(encoding, errors="replace")
    # UTF-16/32 picked by NUL pattern or BOM: a binary file can still fake one, so look again.
    controls = len(_STRAY_CONTROLS.findall(text[:SAMPLE_BYTES]))
    if controls > 0.05 * min(len(text), SAMPLE_BYTES):
        raise binary_error(guard, data)
    check_chars(len(text), guard, limits)
    return normalise(text)


def check_chars(count: int, guard: ReadGuard, limits: ReadLimits) -> None:
    """Refuses a document with more text than ``limits.max_chars``."""
    if count > limits.max_chars:
        raise guard.fail(f"too much text ({count:,} characters, limit {limits.max_chars:,}); "
                         "split the document and read the parts one at a time")


def split_paragraphs(text: str) -> list[str]:
    """Paragraphs separated by blank lines; lines keep their indentation, lose trailing space."""
    found = []
    for part in _BLANK_LINES.split(text):
        lines = [line.rstrip() for line in part.split("\n")]
        paragraph = "\n".join(lines).strip("\n")
        if paragraph.strip():
            found.append(paragraph)
    return found


def read_txt(data: bytes, guard: ReadGuard, limits: ReadLimits) -> list[Block]:
    """A plain-text file as paragraph blocks (one per blank-line-separated paragraph)."""
    text = decode_document(data, guard, limits)
    guard.check()
    return [Block("paragraph", paragraph) for paragraph in split_paragraphs(text)]


_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")


def pasted_blocks(text: str) -> list[Block]:
    """Pasted text as blocks: paragraphs, and ``# Heading`` lines as headings.

    Only ATX headings are recognised: pasted prose often has lines of dashes or numbered lines
    that full Markdown parsing would misread as structure.
    """
    blocks: list[Block] = []
    for paragraph in split_paragraphs(normalise(text)):
        lines: list[str] = []
        for line in paragraph.split("\n"):
            match = _ATX.match(line)
            if match is None:
                lines.append(line)
                continue
            if lines:
                blocks.append(Block("paragraph", "\n".join(lines)))
                lines = []
            blocks.append(Block("heading", match.group(2), level=len(match.group(1))))
        if lines:
            blocks.append(Block("paragraph", "\n".join(lines)))
    return blocks
