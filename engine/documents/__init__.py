"""Safe readers for untrusted documents: text, Markdown, HTML, PDF and DOCX into one Document.

``read_document`` picks the reader by suffix, checks the content really is that format, and keeps
every read inside ``ReadLimits`` (size, pages, time, memory, zip expansion, no XML entities).
Everything that can go wrong ends as one ``DocumentError`` line naming the file, never a hang or
a traceback. It blocks, so the desktop app calls it on a worker thread; ``should_stop`` lets that
thread cancel it. Nothing heavy is imported until a format needs it (PDFium only ever runs in a
child process).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from engine.documents.limits import ReadGuard, ReadLimits, format_size
from engine.documents.model import Block, Document
from engine.errors import DocumentError, OperationCancelledError

__all__ = ["SUFFIXES", "Block", "Document", "DocumentError",
           "ReadLimits", "read_document", "read_text"]

log = logging.getLogger(__name__)

SUFFIXES = {
    ".txt": "txt", ".text": "txt",
    ".md": "markdown", ".markdown": "markdown",
    ".html": "html", ".htm": "html",
    ".pdf": "pdf",
    ".docx": "docx",
}


def read_bytes(path: Path, guard: ReadGuard, limits: ReadLimits) -> bytes:
    """The whole file, never more than the size limit (it may grow after the first check)."""
    try:
        with path.open("rb") as file:
            data = file.read(limits.max_file_bytes + 1)
    except OSError as error:
        raise guard.fail(f"cannot be read ({error.strerror})") from None
    if len(data) > limits.max_file_bytes:
        raise guard.fail(f"too large (limit {format_size(limits.max_file_bytes)})")
    return data


def _read(path: Path, kind: str, guard: ReadGuard, limits: ReadLimits) -> Document:
    name = path.name
    if kind == "pdf":
        from engine.documents.pdf import read_pdf

        blocks, pages = read_pdf(path, guard, limits)
        return Document(name, kind, blocks, pages=pages)
    if kind == "docx":
        from engine.documents.docx import read_docx

        return Document(name, kind, read_docx(path, guard, limits))
    data = read_bytes(path, guard, limits)
    if kind == "html":
        from engine.documents.html import declared_encoding, read_html
        from engine.documents.text import choose_encoding

        blocks = read_html(data, guard, limits)  # it decodes as choose_encoding says
        return Document(name, kind, blocks,
                        encoding=choose_encoding(data, declared_encoding(data))[0])
    from engine.documents.text import decode_text, text_blocks

    text, encoding = decode_text(data, guard, limits)
    if kind == "markdown":
        from engine.documents.markdown import read_markdown

        return Document(name, kind, read_markdown(text, guard), encoding=encoding)
    return Document(name, kind, text_blocks(text, guard), encoding=encoding)


def read_document(path: Path, limits: ReadLimits | None = None,
                  should_stop: Callable[[], bool] | None = None) -> Document:
    """Reads a document file into blocks, within limits.

    Args:
        path: a .txt/.text, .md/.markdown, .html/.htm, .pdf or .docx file.
        limits: what the read may cost; the defaults suit ordinary documents.
        should_stop: polled during the read (at least every 50 ms for PDF); returning True
            cancels it with OperationCancelledError.

    Returns:
        The document; it has at least one block.

    Raises:
        DocumentError: one line naming the file, what is wrong and what to do: unknown suffix,
            missing or empty file, wrong content for the suffix, damaged, encrypted, no text,
            over a limit, timed out. OperationCancelledError when cancelled.
    """
    limits = limits or ReadLimits()
    path = Path(path)
    guard = ReadGuard(path.name, limits.timeout_s, should_stop)
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        supported = " ".join(sorted(SUFFIXES))
        raise guard.fail(f"unsupported file type '{path.suffix or '(none)'}'; "
                         f"supported: {supported}")
    check_file(path, guard, limits)
    guard.check()
    try:
        document = _read(path, kind, guard, limits)
    except (DocumentError, OperationCancelledError):
        raise
    except MemoryError:
        raise guard.fail("not enough memory to read it; close other programs or split the "
                         "document") from None
    except Exception as error:  # a parser bug must not become a traceback in the app
        log.exception("unexpected error reading %s", path)
        detail = " ".join(str(error).split())[:200]
        raise guard.fail(f"cannot be read ({type(error).__name__}: {detail}); the file may be "
                         "damaged") from None
    if not document.blocks:
        raise guard.fail("no text found in the document")
    return document


def read_text(text: str, name: str = "pasted text") -> Document:
    """Pasted text as a document: paragraphs split on blank lines, ``# Heading`` lines as headings.

    Raises:
        DocumentError: the text is empty or only whitespace, or longer than the default
            ``ReadLimits.max_chars``.
    """
    from engine.documents.text import check_chars, pasted_blocks

    check_chars(len(text), ReadGuard(name, ReadLimits().timeout_s), ReadLimits())
    blocks = pasted_blocks(text)
    if not blocks:
        raise DocumentError(f"{name}: no text to read; paste some text first")
    return Document(name, "text", blocks)


def check_file(path: Path, guard: ReadGuard, limits: ReadLimits) -> None:
    """Refuses a missing, empty, oversized file or a folder before any reading.

    Raises:
        DocumentError: one line naming the file.
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise guard.fail("file not found; check the path") from None
    except OSError as error:
        raise guard.fail(f"cannot be read ({error.strerror})") from None
    if path.is_dir():
        raise guard.fail("is a folder, not a file")
    if size == 0:
        raise guard.fail("the file is empty")
    if size > limits.max_file_bytes:
        raise guard.fail(f"too large ({format_size(size)}, limit "
                         f"{format_size(limits.max_file_bytes)})")
