"""Checks a DOCX (zip) archive before any XML parser sees it: zip bombs and XML entities.

A DOCX is a zip of XML parts. Two classic attacks target readers: a zip bomb (a few kilobytes that
expand to gigabytes) and an XML DTD with entities (billion laughs, external entities). Word never
writes a DTD into a document, so any ``<!DOCTYPE`` or ``<!ENTITY`` is refused outright, before
python-docx (lxml) parses anything. Sizes are checked first from the central directory, then
again while every entry is actually inflated, since a directory can lie.
"""

from __future__ import annotations

import re
import struct
import xml.etree.ElementTree as ElementTree
import zipfile
import zlib
from pathlib import Path

from engine.documents.limits import ReadGuard, ReadLimits, format_size
from engine.errors import DocumentError, OperationCancelledError

CONTENT_TYPES = "[Content_Types].xml"
CHUNK_BYTES = 1 << 20
CONTENT_TYPES_MAX = 1 << 20  # a real [Content_Types].xml is a few kilobytes
# Below this size an entry's compression ratio says nothing: it cannot hurt whatever it is.
RATIO_MIN_BYTES = 1 << 20
# Lower-cased forms of the DTD markers in every encoding an XML parser detects by itself.
_DTD_MARKERS = tuple(marker.encode(encoding)
                     for marker in ("<!doctype", "<!entity")
                     for encoding in ("utf-8", "utf-16-le", "utf-16-be", "utf-32-le",
                                      "utf-32-be"))
_OVERLAP = max(len(marker) for marker in _DTD_MARKERS)
_XML_ENCODING = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)")
_SAFE_XML_ENCODINGS = {b"utf-8", b"utf8", b"utf-16", b"utf16", b"utf-16le", b"utf-16be"}
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_EOCD = struct.Struct("<4s4H2LH")  # end of central directory record
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")


def _declared_entries(path: Path) -> int | None:
    """The entry count the end-of-central-directory record declares, read without loading the
    directory: zipfile builds an object per entry first, which a hostile archive could abuse."""
    with path.open("rb") as file:
        size = file.seek(0, 2)
        file.seek(max(0, size - _EOCD.size - 0xFFFF))  # the record ends in a comment of <64 KB
        tail = file.read()
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or at + _EOCD.size > len(tail):
            return None
        entries = int(_EOCD.unpack_from(tail, at)[4])
        locator = at - _ZIP64_LOCATOR.size
        if entries != 0xFFFF or locator < 0 or tail[locator : locator + 4] != b"PK\x06\x07":
            return entries
        file.seek(_ZIP64_LOCATOR.unpack_from(tail, locator)[2])
        record = file.read(_ZIP64_EOCD.size)
        if len(record) < _ZIP64_EOCD.size or not record.startswith(b"PK\x06\x06"):
            return None
        return int(_ZIP64_EOCD.unpack(record)[7])


def _bomb(guard: ReadGuard, what: str) -> DocumentError:
    return guard.fail(f"refused: {what}, which looks like a zip bomb")


def _check_directory(infos: list[zipfile.ZipInfo], guard: ReadGuard, limits: ReadLimits) -> None:
    """Entry count, declared sizes and ratios, from the central directory alone."""
    if len(infos) > limits.max_zip_entries:
        raise _bomb(guard, f"the archive has {len(infos):,} entries "
                           f"(limit {limits.max_zip_entries:,})")
    total = sum(info.file_size for info in infos)
    if total > limits.max_total_uncompressed:
        raise _bomb(guard, f"the archive expands to {format_size(total)} "
                           f"(limit {format_size(limits.max_total_uncompressed)})")
    for info in infos:
        if info.flag_bits & 0x1:
            raise guard.fail("the document is encrypted; remove the password in Word and try "
                             "again")
        if info.file_size > limits.max_entry_uncompressed:
            raise _bomb(guard, f"{info.filename} expands to {format_size(info.file_size)} "
                               f"(limit {format_size(limits.max_entry_uncompressed)})")
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_MIN_BYTES and ratio > limits.max_compression_ratio:
            raise _bomb(guard, f"{info.filename} is compressed {ratio:,.0f} to 1 "
                               f"(limit {limits.max_compression_ratio:,.0f} to 1)")


def _image_parts(archive: zipfile.ZipFile) -> set[str]:
    """Names of parts whose content type is an image: python-docx never parses those as XML
    (an SVG image may legitimately carry a DOCTYPE)."""
    root = ElementTree.fromstring(archive.read(CONTENT_TYPES))  # already scanned: no DTD
    defaults: dict[str, str] = {}
    overrides: dict[str, str] = {}
    for element in root:
        tag = element.tag.rsplit("}", 1)[-1]
        if tag == "Default":
            defaults[element.get("Extension", "").lower()] = element.get("ContentType", "")
        elif tag == "Override":
            overrides[element.get("PartName", "").lstrip("/")] = element.get("ContentType", "")
    images = set()
    for name in archive.namelist():
        content_type = overrides.get(name, defaults.get(name.rsplit(".", 1)[-1].lower(), ""))
        # Relationship parts and .xml names are parsed by name, whatever type they claim.
        if content_type.startswith("image/") and not name.endswith((".rels", ".xml")):
            images.add(name)
    return images


def _scan_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, scan: bool,
                guard: ReadGuard, limits: ReadLimits) -> int:
    """Inflates one entry in chunks, stopping past its declared size; looks for a DTD.

    Returns:
        The bytes it actually inflated to.
    """
    size = 0
    window = b""
    allowed = min(info.file_size, limits.max_entry_uncompressed)
    with archive.open(info) as stream:
        while chunk := stream.read(CHUNK_BYTES):
            size += len(chunk)
            if size > allowed:
                raise _bomb(guard, f"{info.filename} inflates beyond its declared "
                                   f"{format_size(info.file_size)}")
            if scan:
                if size == len(chunk):
                    _check_xml_start(info.filename, chunk, guard)
                window = (window[-_OVERLAP:] + chunk).lower()
                if any(marker in window for marker in _DTD_MARKERS):
                    raise guard.fail(f"refused: {info.filename} declares a DTD or XML entities "
                                     "(as in a 'billion laughs' attack); Word never writes "
                                     "these, so the file was crafted or damaged")
            guard.check()
    return size


def _check_xml_start(name: str, head: bytes, guard: ReadGuard) -> None:
    """XML parts must be UTF-8 or UTF-16: other encodings could hide a DTD from the scan."""
    if not name.endswith((".xml", ".rels")) or not head.strip():
        return
    if head.startswith(_UTF16_BOMS) or head.startswith(b"<\x00"):
        return
    declared = _XML_ENCODING.match(head.removeprefix(b"\xef\xbb\xbf"))
    first = head.removeprefix(b"\xef\xbb\xbf").lstrip()[:1]
    if first != b"<" or (declared and declared.group(1).lower() not in _SAFE_XML_ENCODINGS):
        raise guard.fail(f"refused: {name} is not UTF-8 or UTF-16 XML; Word never writes "
                         "other encodings, so the file was crafted or damaged")


def check_docx_archive(path: Path, guard: ReadGuard, limits: ReadLimits) -> None:
    """Refuses a DOCX that is not a zip, is a zip bomb, or carries a DTD / XML entities.

    Raises:
        DocumentError: with the reason, before any XML is parsed.
    """
    try:
        with path.open("rb") as file:
            head = file.read(8)
        if head.startswith(b"\xd0\xcf\x11\xe0"):
            raise guard.fail("this is an old Word (.doc) file or a password-protected document; "
                             "save it as .docx without a password and try again")
        if not head.startswith(b"PK"):
            raise guard.fail("not a Word document (not a zip archive); check that it is really "
                             "a .docx file")
        declared = _declared_entries(path)
        if declared is not None and declared > limits.max_zip_entries:
            raise _bomb(guard, f"the archive has {declared:,} entries "
                               f"(limit {limits.max_zip_entries:,})")
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            _check_directory(infos, guard, limits)
            if CONTENT_TYPES not in archive.namelist():
                raise guard.fail("not a Word document (a zip archive without [Content_Types].xml)")
            # Content types first: which parts are images (not scanned) depends on them.
            types_info = archive.getinfo(CONTENT_TYPES)
            if types_info.file_size > CONTENT_TYPES_MAX:
                raise guard.fail(f"refused: {CONTENT_TYPES} is {format_size(types_info.file_size)}"
                                 "; a real one is a few KB, so the file was crafted or damaged")
            total = _scan_entry(archive, types_info, True, guard, limits)
            images = _image_parts(archive)
            for info in infos:
                if info is types_info:
                    continue
                total += _scan_entry(archive, info, info.filename not in images, guard, limits)
                if total > limits.max_total_uncompressed:
                    raise _bomb(guard, f"the archive inflates beyond "
                                       f"{format_size(limits.max_total_uncompressed)}")
    except (DocumentError, OperationCancelledError):
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError,
            NotImplementedError, RuntimeError, ElementTree.ParseError, ValueError) as error:
        raise guard.fail(f"the document is damaged ({' '.join(str(error).split())[:200]}); "
                         "open it in Word and save a new copy") from None
