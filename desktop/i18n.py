"""The UI language: English (the source strings) or Simplified Chinese from Qt .qm files.

"system" picks Chinese when the system locale is Chinese, else English. Qt's own translations
(standard buttons, file dialogs) are loaded with ours so dialogs don't mix languages. Switching
language applies at the next start: Qt widgets keep the strings they were built with.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QLibraryInfo, QLocale, QTranslator
from PySide6.QtWidgets import QApplication

from desktop.resources import resources_dir

log = logging.getLogger(__name__)
# Languages the UI is translated into, by QLocale name (English is the source text).
TRANSLATED = ("zh_CN",)


def resolve_language(choice: str, system_locale: str | None = None) -> str:
    """Turns "system" into a language we have ("en" or "zh_CN")."""
    if choice != "system":
        return choice if choice in TRANSLATED else "en"
    name = system_locale or QLocale.system().name()
    # zh_TW / zh_HK readers get Simplified Chinese too: closer to them than English.
    return "zh_CN" if name.startswith("zh") else "en"


def install_translators(app: QApplication, choice: str) -> str:
    """Installs the translators for the chosen language; returns the language now in use."""
    language = resolve_language(choice)
    for translator in app.findChildren(QTranslator):  # a second call replaces, not stacks
        app.removeTranslator(translator)
        translator.deleteLater()
    if language == "en":
        return language
    ours = QTranslator(app)
    if not ours.load(str(resources_dir() / "translations" / f"nightlamp_{language}.qm")):
        log.warning("no UI translation for %s; using English", language)
        return "en"
    app.installTranslator(ours)
    # qtbase_*.qm holds the standard buttons and dialogs. Not the qt_*.qm catalogue: it only
    # lists other modules' files, and fails to load when one of them is not installed (PySide6
    # Essentials has no Multimedia), which left OK / Cancel in English.
    qt_own = QTranslator(app)
    folder = QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath)
    if qt_own.load(f"qtbase_{language}", folder) or qt_own.load(f"qt_{language}", folder):
        app.installTranslator(qt_own)
    else:
        log.warning("no Qt translation for %s in %s; standard buttons stay English",
                    language, folder)
    QLocale.setDefault(QLocale(language))
    return language
