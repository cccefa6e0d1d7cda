"""PDF: text per page, extracted by PDFium (pypdfium2) in a killable, memory-capped child process.

This module is the parent side and never imports pypdfium2. It checks the file's signature,
starts ``pdf_child.extract`` through the sandbox, repairs the pages' text (``cleanup.clean_pages``:
ligatures, running headers and footers, broken words), turns it into paragraph blocks with page
numbers (the child finds the paragraphs, ``pdf_paragraphs``), adds the bookmarks as headings
(``pdf_outline``), and turns the child's error messages and crashes into one readable line each.
"""

from __future__ import annotations

import logging
import signal
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

from engine.documents import pdf_child
from engine.documents.cleanup import clean_pages
from engine.documents.limits import ReadGuard, ReadLimits
from engine.documents.model import Block
from engine.documents.pdf_outline import apply_outline
from engine.documents.sandbox import child_messages
from engine.documents.text import check_chars, normalise, sniff, split_paragraphs
from engine.errors import DocumentError

log = logging.getLogger(__name__)

HEADER_WINDOW = 1024  # PDF readers accept junk before "%PDF-" within the first kilobyte


def _check_signature(path: Path, guard: ReadGuard) -> None:
    """Refuses a file that is not a PDF before a child process is started for it."""
    try:
        with path.open("rb") as file:
            head = file.read(HEADER_WINDOW)
    except OSError as error:
        raise guard.fail(f"cannot be read ({error.strerror})") from None
    if b"%PDF-" not in head:
        hint = sniff(head)
        raise guard.fail(f"not a PDF file ({hint})" if hint else
                         "not a PDF file (no %PDF header); check that it is really a PDF")


def _child_error(guard: ReadGuard, limits: ReadLimits, message: dict[str, Any]) -> DocumentError:
    kind, detail = message.get("kind"), message.get("detail") or "no details"
    if kind == "encrypted":
        return guard.fail("the PDF is encrypted; remove the password and try again")
    if kind == "encryption_unsupported":
        return guard.fail("the PDF uses an encryption scheme the reader does not support; save "
                          "an unprotected copy and try again")
    if kind == "memory":
        return _memory_error(guard, limits)
    return guard.fail(f"the PDF is damaged and cannot be read ({detail}); open it in a PDF "
                      "viewer and save a new copy")


def _memory_error(guard: ReadGuard, limits: ReadLimits) -> DocumentError:
    return guard.fail(f"refused: reading it needs more than {limits.memory_mb} MB of memory "
                      "(the limit), which looks like a decompression bomb or a damaged file")


def _crash_error(guard: ReadGuard, limits: ReadLimits, code: int | None) -> DocumentError:
    """The child ended without a word: out of memory under its cap, killed by the OS, a crash."""
    if code == -signal.SIGABRT and sys.platform != "win32":
        # PDFium aborts when an allocation fails, and under the address-space cap that is
        # how a decompression bomb ends (it never returns an error for it).
        return _memory_error(guard, limits)
    if code is not None and code < 0:
        try:
            how = f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            how = f"was killed by signal {-code}"
    else:
        how = f"stopped with exit code {code}"
    return guard.fail(f"the PDF reader {how} before it finished; the file may be damaged or "
                      "need too much memory")


def read_pdf(path: Path, guard: ReadGuard, limits: ReadLimits) -> tuple[list[Block], int]:
    """A PDF's text as paragraph blocks that carry their page numbers.

    Args:
        path: the PDF file.
        guard: deadline and cancellation, polled while the child works.
        limits: max_pages, memory_mb and max_chars apply here.

    Returns:
        (blocks, page count).

    Raises:
        DocumentError: not a PDF, encrypted, damaged, too many pages, no text, over a limit,
            timed out; OperationCancelledError when cancelled. The child is gone in every case.
    """
    _check_signature(path, guard)
    texts: list[tuple[int, str]] = []
    pages = 0
    chars = 0
    done: dict[str, Any] | None = None
    outline: list[Any] = []
    # A JSON-escaped character takes at most 6 bytes; no single page exceeds max_chars.
    messages = child_messages(pdf_child.extract, (str(path), limits.memory_mb, limits.max_pages),
                              guard, max_message_bytes=6 * limits.max_chars + 4096)
    with closing(messages):
        for message in messages:
            kind = message["type"]
            if kind == "error":
                raise _child_error(guard, limits, message)
            if kind == "pages":
                pages = int(message["count"])
                if pages > limits.max_pages:
                    raise guard.fail(f"too many pages ({pages:,}, limit {limits.max_pages:,}); "
                                     "split the PDF and read the parts one at a time")
            elif kind == "outline":
                outline = list(message["entries"])
            elif kind == "page":
                text = normalise(message["text"])
                chars += len(text)
                check_chars(chars, guard, limits)
                texts.append((int(message["number"]), text))
            elif kind == "done":
                done = message
            elif kind == "exit" and done is None:
                raise _crash_error(guard, limits, message["code"])
    if pages == 0:
        raise guard.fail("the PDF has no pages")
    # Running headers and words broken across lines are only recognisable on all pages at once.
    cleaned = clean_pages([text for _, text in texts], guard.check)
    blocks = [Block("paragraph", paragraph, page=number)
              for (number, _), text in zip(texts, cleaned, strict=True)
              for paragraph in split_paragraphs(text)]
    if not blocks:
        if done is not None and done.get("skipped"):
            raise guard.fail("the PDF is damaged: no page could be read; open it in a PDF "
                             "viewer and save a new copy")
        raise guard.fail("no text found (a scanned PDF needs OCR first)")
    return apply_outline(blocks, outline), pages
