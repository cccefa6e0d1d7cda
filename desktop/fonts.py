"""Fonts: makes Chinese render even on a machine with no CJK font installed.

The bundled Nightlamp Sans SC (a GB2312 subset of Noto Sans CJK SC, resources/fonts) is added as a
fallback family behind the platform's UI font: Latin text keeps the native look, and characters
the UI font lacks come from the bundled font before Qt's own fallback (which, with no CJK font on
the system, draws boxes).

The UI font is often a generic alias ("Sans Serif") that Qt resolves only when nothing better is
listed: put behind it, the bundled font would win for everything it covers, Latin letters and
curly quotes included ("Don’ t" in wide CJK punctuation). So the alias is resolved to the real
family first, and that family leads the list.
"""

from __future__ import annotations

import logging

from PySide6.QtGui import QFont, QFontDatabase, QFontInfo, QFontMetrics
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
    resolved = QFontInfo(font).family()  # before the bundled font is listed: the system's pick
    leading = [resolved] if resolved and resolved not in families else []
    font.setFamilies(list(dict.fromkeys([*leading, *font.families(), *families])))
    app.setFont(font)
    return list(families)


# Scripts of the languages the pickers offer whose letters a plain Latin font lacks.
_WRITING_SYSTEMS = {
    "ar": QFontDatabase.WritingSystem.Arabic, "el": QFontDatabase.WritingSystem.Greek,
    "he": QFontDatabase.WritingSystem.Hebrew, "hi": QFontDatabase.WritingSystem.Devanagari,
    "ja": QFontDatabase.WritingSystem.Japanese, "ko": QFontDatabase.WritingSystem.Korean,
    "ru": QFontDatabase.WritingSystem.Cyrillic, "th": QFontDatabase.WritingSystem.Thai,
    "uk": QFontDatabase.WritingSystem.Cyrillic,
    "zh": QFontDatabase.WritingSystem.SimplifiedChinese,
}


def can_draw(text: str, language: str) -> bool:
    """True when an installed font has every letter of ``text``, a name in ``language``'s own
    script (else Qt draws boxes: Korean, Hindi or Thai on a system without those fonts).

    Only fonts that declare the language's script are asked, so this stays cheap on a desktop
    with hundreds of fonts; a language written in Latin letters always can.
    """
    system = _WRITING_SYSTEMS.get(language.split("-")[0])
    if system is None:
        return True
    needed = [ord(c) for c in text if not c.isspace()]
    return any(all(QFontMetrics(QFont(family)).inFontUcs4(code) for code in needed)
               for family in QFontDatabase.families(system))
