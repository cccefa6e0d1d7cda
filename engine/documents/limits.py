"""Limits for reading untrusted documents, and the guard that enforces time and cancellation.

Documents come from anywhere (mail attachments, downloads), so every reader works inside these
limits and turns any breach into a one-line DocumentError instead of a hang, a crash or a swap
storm. The readers that run in this process (text, Markdown, HTML, DOCX) check the guard between
chunks; the PDF reader runs in a child process that the guard's owner kills.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, fields

from engine.errors import ConfigError, DocumentError, OperationCancelledError

MB = 1024 * 1024


@dataclass(frozen=True)
class ReadLimits:
    """What a document may cost to read. The defaults suit a desktop machine and real documents.

    Attributes:
        max_file_bytes: largest file accepted at all, checked before any parsing.
        max_pages: most PDF pages; checked before any page is extracted.
        timeout_s: wall-clock seconds for the whole read (the PDF child is killed after it).
        memory_mb: address space the PDF child may add to what it maps at start-up (POSIX only;
            on Windows only the timeout applies). Stops decompression bombs: PDFium has no
            limit of its own, so a 2 GB bomb stream is stopped here (0.4 s at 256 MB, 1.0 s at
            1 GB). Real manuals of 400 pages need under 30 MB.
        max_chars: most characters of extracted text; beyond this a summary is not meaningful.
        max_zip_entries: most entries in a DOCX archive (real ones have tens to a few hundred).
        max_total_uncompressed: most bytes all DOCX entries may expand to together.
        max_entry_uncompressed: most bytes one DOCX entry may expand to.
        max_compression_ratio: highest uncompressed/compressed ratio of a large DOCX entry; XML
            compresses about 10-30x, a zip bomb about 1000x.
    """

    max_file_bytes: int = 100 * MB
    max_pages: int = 5000  # the longest real manuals (R's reference: 2,415 pages) fit
    timeout_s: float = 120.0
    memory_mb: int = 256
    max_chars: int = 20_000_000
    max_zip_entries: int = 5000
    max_total_uncompressed: int = 200 * MB
    max_entry_uncompressed: int = 100 * MB
    max_compression_ratio: float = 100.0

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(f"ReadLimits.{item.name} must be a positive number, "
                                  f"got {value!r}; leave it out to use the default")


def format_size(size: float) -> str:
    """Bytes as a short human-readable size: ``3.2 GB``, ``200 MB``, ``512 bytes``."""
    for unit, scale in (("GB", 1024**3), ("MB", MB), ("KB", 1024)):
        if size >= scale:
            value = size / scale
            return f"{value:.1f} {unit}" if value < 10 and value != int(value) else \
                f"{value:.0f} {unit}"
    return f"{int(size)} bytes"


class ReadGuard:
    """Tracks one read's deadline and cancellation; ``check()`` raises when either is hit.

    Args:
        name: the document name used in messages.
        timeout_s: seconds from now until the read times out.
        should_stop: polled by ``check()``; returning True cancels the read.
    """

    def __init__(self, name: str, timeout_s: float,
                 should_stop: Callable[[], bool] | None = None) -> None:
        self.name = name
        self.timeout_s = timeout_s
        self.deadline = time.monotonic() + timeout_s
        self._should_stop = should_stop

    def remaining(self) -> float:
        """Seconds left before the deadline (negative once it has passed)."""
        return self.deadline - time.monotonic()

    def check(self) -> None:
        """Raises OperationCancelledError if the caller asked to stop, DocumentError if out of
        time."""
        if self._should_stop is not None and self._should_stop():
            raise OperationCancelledError(f"{self.name}: reading was cancelled")
        if self.remaining() < 0:
            raise self.timeout_error()

    def timeout_error(self) -> DocumentError:
        """The error for a read that ran out of time."""
        return DocumentError(f"{self.name}: timed out after {self.timeout_s:g} s; the document "
                             f"is too large or too complex (split it, or raise the time limit)")

    def fail(self, problem: str) -> DocumentError:
        """A DocumentError for this document: ``"<name>: <problem>"``."""
        return DocumentError(f"{self.name}: {problem}")
