"""Saving text the user asked for, with a readable message instead of an exception."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QCoreApplication


def save_text(path: Path, text: str) -> str | None:
    """Writes UTF-8 text; returns None, or a one-line message saying why it could not."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as error:
        return QCoreApplication.translate("files", "{name}: cannot be saved ({error})").format(
            name=path.name, error=error.strerror)
    return None
