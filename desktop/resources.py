"""Where the app's bundled files are: fonts, UI translations and icons under ``resources/``.

From a source checkout that is the repository's ``resources/`` folder; in a PyInstaller bundle it
is the same folder unpacked next to the executable (``sys._MEIPASS``).
"""

from __future__ import annotations

from pathlib import Path

from engine.store import bundle_dir


def resources_dir() -> Path:
    bundle = bundle_dir()
    if bundle is not None:
        return bundle / "resources"
    return Path(__file__).resolve().parent.parent / "resources"
