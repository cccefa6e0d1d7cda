"""Where the app's bundled files are: fonts, UI translations and icons under ``resources/``.

From a source checkout that is the repository's ``resources/`` folder; in a PyInstaller bundle it
is the same folder unpacked next to the executable (``sys._MEIPASS``).
"""

from __future__ import annotations

import sys
from pathlib import Path


def resources_dir() -> Path:
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        return Path(bundle) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"
