"""Plain text: encoding detection, newline normalisation, binary refusal and paragraph splitting.

What most files are is settled here, quickly and for certain: byte-order marks, UTF-16 without a
BOM (recognised by where its NUL bytes fall), binary content (refused), and UTF-8 (anything that
decodes as UTF-8 is taken as UTF-8). Only the rest, legacy 8-bit and CJK code pages, goes to
charset-normalizer (MIT), which scores every candidate codec on how plausible its decoded text is
(Big5 vs GB18030 vs EUC-KR, cp1251 vs KOI8-R, ISO-8859-2/-7, cp1254 ...); cp1252 / Latin-1 only
when it finds nothing. The encoding assumed is reported (``decode_text``) so a reader can say it.
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
# The code pages of the languages the app offers (Western, Central European, Cyrillic, Greek,
# Turkish, Hebrew, Arabic, Vietnamese, Chinese, Japanese, Korean): what legacy files of its users
# are in, and all that charset-normalizer chooses among. Not Thai's cp874: every byte above 0xA0
# is a Thai letter there, and it wins over GB18030 and EUC-KR on a line or two of CJK.
LEGACY_ENCODINGS = (
    "cp1252", "latin_1", "iso8859_15", "cp1250", "iso8859_2", "cp1251", "koi8_r", "koi8_u",
    "iso8859_5", "cp866", "cp1253", "iso8859_7", "cp1254", "iso8859_9", "cp1255", "iso8859_8",
    "cp1256", "iso8859_6", "cp1258", "gb18030", "big5", "cp932", "shift_jis", "euc_jp",
    "cp949", "euc_kr",
)
_USUAL_NAMES = {"cp932": "shift_jis", "cp949": "euc_kr", "euc_jis_2004": "euc_jp"}
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


def detect_encoding(data: bytes) -> tuple[str, int]:
    """The most likely encoding of ``data`` and the length of its byte-order mark.

    Returns:
        (codec name, BOM length). ``"binary"`` as the codec when the bytes are not text.
    """
    return _certain_encoding(data) or (_legacy_encoding(data), 0)


def choose_encoding(data: bytes, declared: str | None = None) -> tuple[str, int]:
    """The encoding ``decode_text`` decodes ``data`` with, and the length of its byte-order mark.

    ``declared`` (HTML's ``<meta charset>``) wins over anything but a byte-order mark, a UTF-16
    NUL pattern or binary content, as in browsers; then no guess is made at all.
    """
    certain = _certain_encoding(data)
    if certain is not None and (certain[1] or certain[0] == "binary"
                                or certain[0].startswith("utf-16")):
        return certain
    if declared is not None:
        return declared, 0
    return certain or (_legacy_encoding(data), 0)


def _certain_encoding(data: bytes) -> tuple[str, int] | None:
    """A byte-order mark, UTF-16 by its NULs, binary content or UTF-8; None for the rest."""
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
    return None


def _legacy_encoding(data: bytes) -> str:
    """charset-normalizer's best guess for bytes that are not UTF-8 (a codec name).

    Only LEGACY_ENCODINGS are candidates: with all of Python's codecs it also finds Nordic,
    Celtic, DOS-Baltic or Mac code pages, and JIS X 0213 for KOI8-R, on a few lines of text. It
    reads at most SAMPLE_BYTES, cut after a newline or space (bytes that are never part of a
    multi-byte character in these code pages): a character cut in half would rule out the
    right one.
    """
    from charset_normalizer import from_bytes

    sample = data
    if len(data) > SAMPLE_BYTES:
        sample = data[:SAMPLE_BYTES]
        cut = max(sample.rfind(b"\n"), sample.rfind(b" "))
        if cut > SAMPLE_BYTES // 2:
            sample = sample[: cut + 1]
    matches = list(from_bytes(sample, cp_isolation=list(LEGACY_ENCODINGS)))
    if not matches:  # its default limit of chaos (0.2) also rules out mixed Korean and English
        matches = list(from_bytes(sample, cp_isolation=list(LEGACY_ENCODINGS), threshold=0.5))
    if not matches:
        return "cp1252" if _decodes(data, "cp1252") is not None else "latin-1"
    # Candidates it cannot tell apart (chaos within 0.5%, coherence within 2%: cp1250, cp1252
    # and cp1254 on French or Turkish, cp1253 and ISO-8859-7 on Greek) it leaves in arbitrary
    # order when they are single-byte. Among those the one that reads more bytes as letters
    # wins (ISO-8859-7's "Ά" is cp1253's "¶"), then the less chaotic, the more coherent, and
    # cp1252, the most common. (Multi-byte ones it orders itself, by bytes in multi-byte
    # characters.)
    best = matches[0]
    close = [m for m in matches if abs(m.chaos - best.chaos) < 0.005
             and abs(m.coherence - best.coherence) <= 0.02]
    if len(close) > 1 and not any(m.multi_byte_usage for m in close):
        best = max(close, key=lambda m: (sum(map(str.isalpha, str(m))), -m.chaos, m.coherence,
                                         m.encoding == "cp1252"))
    # The usual name when it decodes the same: German "in cp1250" is cp1252 text, Japanese "in
    # cp932" (Microsoft's superset) is Shift_JIS unless it uses the extra characters.
    text = str(best)
    for usual in (_USUAL_NAMES.get(best.encoding), "cp1252"):
        if usual and usual != best.encoding and _decodes(sample, usual) == text \
                and _decodes(data, usual) is not None:
            return usual
    return codecs.lookup(best.encoding).name  # bytes past the sample it cannot decode: U+FFFD


def normalise(text: str) -> str:
    """Unix newlines, form feeds as paragraph breaks, no stray control characters."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\v", "\n")
    text = text.replace("\f", "\n\n")
    return _STRAY_CONTROLS.sub("", text.lstrip("\ufeff"))


def decode_text(data: bytes, guard: ReadGuard, limits: ReadLimits,
                declared: str | None = None) -> tuple[str, str]:
    """Bytes of a text-like file (txt, Markdown, HTML) as normalised text, and its encoding.

    Args:
        data: the file's bytes.
        guard: names the document in errors.
        limits: ``max_chars`` applies.
        declared: an encoding the file declares (HTML's ``<meta charset>``); a byte-order mark or
            a UTF-16 NUL pattern still wins, as in browsers.

    Returns:
        (text, the codec name it was decoded with: ``utf-8``, ``cp1251``, ``big5`` ...).

    Raises:
        DocumentError: binary content, or more text than ``limits.max_chars``.
    """
    encoding, bom = choose_encoding(data, declared)
    if encoding == "binary":
        raise binary_error(guard, data)
    text = data[bom:].decode(encoding, errors="replace")
    # UTF-16/32 picked by NUL pattern or BOM: a binary file can still fake one, so look again.
    controls = len(_STRAY_CONTROLS.findall(text[:SAMPLE_BYTES]))
    if controls > 0.05 * min(len(text), SAMPLE_BYTES):
        raise binary_error(guard, data)
    check_chars(len(text), guard, limits)
    return normalise(text), encoding


def decode_document(data: bytes, guard: ReadGuard, limits: ReadLimits,
                    declared: str | None = None) -> str:
    """Bytes of a text-like file as normalised text (``decode_text`` without the encoding)."""
    return decode_text(data, guard, limits, declared)[0]


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
    return text_blocks(decode_document(data, guard, limits), guard)


def text_blocks(text: str, guard: ReadGuard) -> list[Block]:
    """Decoded plain text as paragraph blocks (one per blank-line-separated paragraph)."""
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
