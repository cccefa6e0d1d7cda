"""Two short Markdown notes and one file that cannot be read: the document collection the docs
command and the app's Documents tests index."""

from __future__ import annotations

from pathlib import Path


def write_notes(folder: Path, unreadable: str, content: bytes) -> Path:
    """lamp.md and river.md (one fact each) and ``unreadable`` holding ``content``."""
    folder.mkdir(parents=True)
    (folder / "lamp.md").write_text("# Lamp\n\nThe lamp has a copper wire and a glass bulb.\n",
                                    encoding="utf-8")
    (folder / "river.md").write_text("# River\n\nThe river runs past the village road.\n",
                                     encoding="utf-8")
    (folder / unreadable).write_bytes(content)
    return folder
