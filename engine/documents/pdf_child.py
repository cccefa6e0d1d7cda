"""The PDF reader's child-process side: pypdf runs here, under a memory cap, page by page.

Only ``engine.documents.pdf`` starts this (through the sandbox); nothing else should import it,
because it is the one place pypdf is imported. Messages sent to the parent, in order:

- ``{"type": "pages", "count": n}`` once the file is open (and decrypted if it can be);
- ``{"type": "page", "number": i, "text": "..."}`` per page, 1-based, unless ``n`` is over the
  page limit (then nothing more is extracted);
- ``{"type": "done", "skipped": k}`` with the number of damaged pages that were skipped;
- or ``{"type": "error", "kind": ..., "detail": ...}`` at any point, after which the child exits.
  Kinds: encrypted, encryption_unsupported, limit, memory, empty, corrupt.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from multiprocessing.connection import Connection
from typing import Any

from engine.documents.sandbox import cap_memory, send

_DETAIL_CHARS = 200  # enough to recognise an error, short enough for a one-line message


def _kind(error: BaseException) -> str:
    """The error kind for the parent, by class name so any pypdf >= 4 version maps alike."""
    names = {cls.__name__ for cls in type(error).__mro__}
    if isinstance(error, MemoryError):
        return "memory"
    if names & {"FileNotDecryptedError", "WrongPasswordError"}:
        return "encrypted"
    if "DependencyError" in names:  # AES without a crypto library installed
        return "encryption_unsupported"
    if "LimitReachedError" in names:
        return "limit"
    if "EmptyFileError" in names:
        return "empty"
    return "corrupt"


def _report(connection: Connection, error: BaseException) -> None:
    detail = " ".join(str(error).split())[:_DETAIL_CHARS]
    send(connection, {"type": "error", "kind": _kind(error), "detail": detail})


def _pages(connection: Connection, reader: Any, max_pages: int) -> None:
    """Sends the page count, then each page's text; a damaged page is skipped, not fatal."""
    import pypdf

    if reader.is_encrypted and reader.decrypt("") == pypdf.PasswordType.NOT_DECRYPTED:
        send(connection, {"type": "error", "kind": "encrypted", "detail": ""})
        return
    count = len(reader.pages)
    send(connection, {"type": "pages", "count": count})
    if count > max_pages:
        return
    skipped = 0
    for number, page in enumerate(reader.pages, start=1):
        try:
            text = page.extract_text() or ""
        except Exception as error:
            if _kind(error) in ("memory", "limit", "encrypted", "encryption_unsupported"):
                raise  # the document as a whole is the problem, not this page
            skipped += 1
            continue
        # Broken /ToUnicode maps can yield lone surrogates, which UTF-8 (and JSON) cannot carry.
        text = text.encode("utf-8", errors="replace").decode("utf-8")
        send(connection, {"type": "page", "number": number, "text": text})
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
        # pypdf logs and warns about every repairable flaw; the parent reports what matters.
        logging.getLogger("pypdf").setLevel(logging.CRITICAL)
        warnings.simplefilter("ignore")
        import pypdf

        cap_memory(memory_mb)
        reader = pypdf.PdfReader(path)  # tries the empty password by itself
        _pages(connection, reader, max_pages)
    except BaseException as error:  # the parent turns every failure into a readable message
        with contextlib.suppress(OSError, MemoryError):  # else the parent sees the exit code
            _report(connection, error)
    finally:
        connection.close()
