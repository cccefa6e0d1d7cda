"""Reads documents for the Summarize and Translate panels off the GUI thread.

Parsing a PDF or DOCX takes from milliseconds to seconds (PDFs are parsed in a child process by
the engine, with size, time and memory limits), so each read runs on a short-lived Python thread
and reports back through queued signals; only the newest read of a panel is shown, and starting
another cancels the previous one.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

from PySide6.QtCore import QObject, Signal, SignalInstance

from engine.documents import read_document
from engine.errors import DocumentError, OperationCancelledError

# What the panels offer in their Open dialog; the engine decides what it can really read.
DOCUMENT_SUFFIXES = (".txt", ".text", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx")


class DocumentLoader(QObject):
    """``load(path)`` -> ``loaded(request, path, text, pages)`` or ``failed(request, message)``."""

    loaded = Signal(int, str, str, int)  # request, file path, plain text, pages (0 = none)
    failed = Signal(int, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._request = 0
        self._cancel = threading.Event()

    def load(self, path: Path) -> int:
        self._cancel.set()  # the older read, if any, stops at its next check
        self._cancel = threading.Event()
        self._request += 1
        threading.Thread(target=self._read, args=(self._request, path, self._cancel),
                         name="nightlamp-document", daemon=True).start()
        return self._request

    def cancel(self) -> None:
        self._cancel.set()

    def _read(self, request: int, path: Path, cancel: threading.Event) -> None:
        # Signals emitted here reach the panel queued: this object lives on the GUI thread.
        try:
            document = read_document(path, should_stop=cancel.is_set)
        except OperationCancelledError:
            return  # a newer document (or the user) took over; nothing to say
        except DocumentError as error:
            if not cancel.is_set():
                self._emit(self.failed, request, error.for_app())
            return
        except Exception as error:  # a reader bug must still end as a message, not silence
            self._emit(self.failed, request, f"{path.name}: could not be read ({error})")
            return
        if not cancel.is_set() and request == self._request:
            self._emit(self.loaded, request, str(path), document.text(), document.pages or 0)

    @staticmethod
    def _emit(signal: SignalInstance, *values: object) -> None:
        # RuntimeError: the panel was closed while the file was read; nobody is waiting.
        with contextlib.suppress(RuntimeError):
            signal.emit(*values)
