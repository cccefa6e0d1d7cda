"""Real translated sentences for the detection benchmarks: the system's gettext catalogs.

Every Debian install carries thousands of human-translated UI messages per language under
/usr/share/locale; they are short, varied and written by native speakers, which is what the
language and encoding detectors meet in users' files.
"""

from __future__ import annotations

import gettext
from collections.abc import Iterator
from pathlib import Path

LOCALES = Path("/usr/share/locale")
SKIPPED_DOMAINS = ("iso_", "xkeyboard-config")  # lists of names, not messages


def catalog_pairs(locale: str) -> Iterator[tuple[str, str]]:
    """(message id, translation) of every readable catalog of ``locale``, both non-empty
    strings (plural and metadata entries are left out)."""
    for path in sorted((LOCALES / locale / "LC_MESSAGES").glob("*.mo")):
        if path.stem.startswith(SKIPPED_DOMAINS):
            continue
        try:
            with path.open("rb") as file:
                catalog = gettext.GNUTranslations(file)._catalog  # type: ignore[attr-defined]
        except (OSError, UnicodeDecodeError, ValueError, KeyError):
            continue
        for msgid, msgstr in catalog.items():
            if isinstance(msgid, str) and msgid and isinstance(msgstr, str):
                yield msgid, msgstr
