"""Saving text the user asked for, with a readable message instead of an exception."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QCoreApplication


def save_text(path: Path, text: str) -> str | None:
    """Writes UTF-8 text; returns None, or a one-line message saying why it could not."""
    return _saved(path, lambda: path.write_text(text, encoding="utf-8"))


def save_copy(source: Path, path: Path) -> str | None:
    """Copies a finished file (e.g. a translated .docx) to ``path``; None or why it could not."""
    return _saved(path, lambda: shutil.copyfile(source, path))


def _saved(path: Path, write: Callable[[], object]) -> str | None:
    try:
        write()
    except OSError as error:
        return QCoreApplication.translate("files", "{name}: cannot be saved ({error})").format(
            name=path.name, error=error.strerror)
    return None
