"""The PDF reader's child-process side: PDFium (pypdfium2) runs here, under a memory cap.

Only ``engine.documents.pdf`` starts this (through the sandbox); nothing else in the app imports
it, because it is the one place pypdfium2 is imported (``benchmarks/pdf_reader.py`` calls
``page_chars`` in-process to time it). PDFium is native code: a hostile file that makes it
allocate past the cap ends the process (PDFium aborts when an allocation fails), which is why it
runs here and not in the app. Messages sent to the parent, in order:

- ``{"type": "pages", "count": n}`` once the file is open (an owner password alone never stops
  PDFium; a user password does);
- ``{"type": "outline", "entries": [[level, title, page], ...]}`` when the file has bookmarks:
  level 0 for the top, the 1-based page each points at (entries without a page are left out),
  at most ``MAX_OUTLINE`` of them, titles cut at ``MAX_TITLE`` characters;
- ``{"type": "page", "number": i, "text": "..."}`` per page, 1-based, lines joined by newlines
  and paragraphs by blank lines (``pdf_paragraphs``), unless ``n`` is over the page limit (then
  nothing more is extracted);
- ``{"type": "done", "skipped": k}`` with the number of damaged pages that were skipped;
- or ``{"type": "error", "kind": ..., "detail": ...}`` at any point, after which the child exits.
  Kinds: encrypted, encryption_unsupported, memory, corrupt.
"""

from __future__ import annotations

import contextlib
import ctypes
import re
import warnings
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import Any

from engine.documents.pdf_paragraphs import Char, page_text
from engine.documents.sandbox import cap_memory, send

_DETAIL_CHARS = 200  # enough to recognise an error, short enough for a one-line message
# PDFium's FPDF_GetLastError codes after a failed load (fpdfview.h).
_LOAD_ERRORS = {4: "encrypted", 5: "encryption_unsupported"}
_LINE_BREAKS = "\r\n"
_HYPHEN = "\ufffe"  # how PDFium marks a hyphen at the end of a line
_WORDS = re.compile(r"\r\n?|\n|[^\r\n\t \ufffe]*\ufffe|[^\r\n\t \ufffe]+")
_BREAK: Char = ("\n", 0.0, 0.0, 0.0, 0.0)
_SPACE: Char = (" ", 0.0, 0.0, -1.0, 0.0)
_PDFIUM_CAUSE = re.compile(r"\(PDFium: ([^)]+)\)")
# A real manual's outline has hundreds of entries; a hostile one could have millions (each one
# costs a call into PDFium and bytes in the message), so only so many are read.
MAX_OUTLINE = 2000
MAX_TITLE = 300
MAX_DEPTH = 8


def _kind(error: BaseException) -> str:
    """The error kind for the parent."""
    if isinstance(error, MemoryError):
        return "memory"
    return _LOAD_ERRORS.get(getattr(error, "err_code", None) or 0, "corrupt")


def _report(connection: Connection, error: BaseException) -> None:
    detail = " ".join(str(error).split())
    # pypdfium2 says "Failed to load document (PDFium: Data format error)."; the cause will do.
    if found := _PDFIUM_CAUSE.search(detail):
        detail = found.group(1)
    detail = detail[:_DETAIL_CHARS]
    send(connection, {"type": "error", "kind": _kind(error), "detail": detail})


def page_chars(textpage: Any) -> Iterator[Char]:
    """A text page's words with their loose boxes, spaces between them, and PDFium's own line
    breaks as ``"\\n"``.

    Only a word's first and last glyph are measured (a third of the glyphs in English text):
    PDFium ends a word at any gap wide enough to matter, so the glyphs between add nothing to
    the layout, and each glyph costs a call into PDFium.
    """
    import pypdfium2.raw as pdfium_c

    handle = textpage.raw
    count = pdfium_c.FPDFText_CountChars(handle)
    text = textpage.get_text_range(0, count) if count > 0 else ""
    if len(text) != count:  # characters outside the BMP are two UTF-16 units in the text
        text = "".join(chr(code) if 0 < (code := pdfium_c.FPDFText_GetUnicode(handle, index))
                       < 0x110000 else "\ufffd" for index in range(count))
    first, last = pdfium_c.FS_RECTF(), pdfium_c.FS_RECTF()
    loose_box, first_box, last_box = (pdfium_c.FPDFText_GetLooseCharBox, ctypes.byref(first),
                                      ctypes.byref(last))
    end = 0
    for match in _WORDS.finditer(text):
        word, start = match.group(), match.start()
        if word[0] in _LINE_BREAKS:
            yield _BREAK
            end = match.end()
            continue
        if start > end:
            yield _SPACE
        end = match.end()
        if loose_box(handle, start, first_box) and loose_box(handle, end - 1, last_box):
            # min/max: in right-to-left scripts the first glyph is the rightmost.
            yield (word.replace(_HYPHEN, "-"), min(first.left, last.left),
                   min(first.bottom, last.bottom), max(first.right, last.right),
                   max(first.top, last.top))
        else:  # no box: its text stays, its place is unknown
            yield (word.replace(_HYPHEN, "-"), 0.0, 0.0, -1.0, 0.0)
        if word[-1] == _HYPHEN:
            # PDFium joins a word hyphenated at a line end into one and marks the hyphen; the
            # line break is put back (cleanup decides whether the halves make one word).
            yield _BREAK


def outline(document: Any, pages: int) -> list[list[Any]]:
    """The document's bookmarks as [level, title, 1-based page], in order (see module doc)."""
    entries: list[list[Any]] = []
    try:
        for bookmark in document.get_toc(max_depth=MAX_DEPTH):
            if len(entries) >= MAX_OUTLINE:
                break
            dest = bookmark.get_dest()
            index = dest.get_index() if dest is not None else None
            title = " ".join((bookmark.get_title() or "").split())[:MAX_TITLE]
            if index is not None and 0 <= index < pages and title:
                entries.append([int(bookmark.level), title, index + 1])
    except Exception:  # a damaged outline is no reason not to read the text
        pass
    return entries


def _pages(connection: Connection, document: Any, max_pages: int) -> None:
    """Sends the page count, then each page's text; a damaged page is skipped, not fatal."""
    count = len(document)
    send(connection, {"type": "pages", "count": count})
    if count > max_pages:
        return
    if entries := outline(document, count):
        send(connection, {"type": "outline", "entries": entries})
    skipped = 0
    for index in range(count):
        try:
            page = document[index]
            textpage = page.get_textpage()
            text = page_text(page_chars(textpage))
        except MemoryError:
            raise  # the document as a whole is the problem, not this page
        except Exception:
            skipped += 1
            continue
        # Broken /ToUnicode maps can yield lone surrogates, which UTF-8 (and JSON) cannot carry.
        text = text.encode("utf-8", errors="replace").decode("utf-8")
        send(connection, {"type": "page", "number": index + 1, "text": text})
        textpage.close()
        page.close()
    send(connection, {"type": "done", "skipped": skipped})


def extract(connection: Connection, path: str, memory_mb: int, max_pages: int) -> None:
    """The child's entry point: reads ``path`` and reports to ``connection`` (see module doc).

    Args:
        connection: the sending end of the pipe to the parent.
        path: the PDF file.
        memory_mb: address space this process may add after its imports.
        max_pages: the most pages to extract; above it only the count is sent.
    """
    try:
        warnings.simplefilter("ignore")  # the parent reports what matters
        import pypdfium2

        cap_memory(memory_mb)
        document = pypdfium2.PdfDocument(path)  # tries the empty (user) password by itself
        _pages(connection, document, max_pages)
    except BaseException as error:  # the parent turns every failure into a readable message
        with contextlib.suppress(OSError, MemoryError):  # else the parent sees the exit code
            _report(connection, error)
    finally:
        connection.close()
