"""Fonts: makes Chinese render even on a machine with no CJK font installed.

The bundled Nightlamp Sans SC (a GB2312 subset of Noto Sans CJK SC, resources/fonts) is added as a
fallback family behind the platform's UI font: Latin text keeps the native look, and characters
the UI font lacks come from the bundled font before Qt's own fallback (which, with no CJK font on
the system, draws boxes).
"""

from __future__ import annotations

import logging

from PySide6.QtGui import QFont, QFontDatabase
from PySide6.QtWidgets import QApplication

from desktop.resources import resources_dir

log = logging.getLogger(__name__)
CJK_FONT_FILE = "NightlampSansSC-Regular.otf"


def install_fonts(app: QApplication) -> list[str]:
    """Registers the bundled fonts and puts them in the app font's fallback list.

    Returns the registered families (empty when the font file is missing: Chinese then depends on
    the system's fonts, which is logged rather than fatal).
    """
    path = resources_dir() / "fonts" / CJK_FONT_FILE
    font_id = QFontDatabase.addApplicationFont(str(path)) if path.is_file() else -1
    if font_id < 0:
        log.warning("bundled CJK font %s could not be loaded; Chinese needs a system font", path)
        return []
    families = QFontDatabase.applicationFontFamilies(font_id)
    font = QFont(app.font())
    font.setFamilies([*font.families(), *families])
    app.setFont(font)
    return list(families)
