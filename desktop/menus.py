"""The menu bar: theme and language choices, and the About box.

Theme changes apply at once (and follow the system when "System" is picked); a language change
is saved and applies at the next start, which the user is told.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import metadata

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QApplication, QMainWindow, QMessageBox

from desktop.settings import AppSettings
from desktop.theme import apply_theme
from engine.store import home


def app_version() -> str:
    try:
        return metadata.version("nightlamp")
    except metadata.PackageNotFoundError:  # running from a checkout that was never installed
        return "unknown"


def _choice_menu(window: QMainWindow, title: str, choices: list[tuple[str, str]],
                 current: str, on_choice: Callable[[str], None]) -> QActionGroup:
    menu = window.menuBar().addMenu(title)
    group = QActionGroup(window)
    group.setExclusive(True)
    for key, label in choices:
        action = QAction(label, window, checkable=True)
        action.setData(key)
        action.setChecked(key == current)
        group.addAction(action)
        menu.addAction(action)
    group.triggered.connect(lambda action: on_choice(action.data()))
    return group


class Menus(QObject):
    """Builds the window's menus and applies what is chosen in them."""

    def __init__(self, window: QMainWindow, settings: AppSettings) -> None:
        super().__init__(window)
        self.window = window
        self.settings = settings
        follow = self.tr("Follow the system")
        self.theme_group = _choice_menu(
            window, self.tr("&Theme"),
            [("system", follow), ("light", self.tr("Light")), ("dark", self.tr("Dark"))],
            settings.theme, self.set_theme)
        # Language names are written in their own language, so anyone can find theirs.
        self.language_group = _choice_menu(
            window, self.tr("&Language"),
            [("system", follow), ("en", "English"), ("zh_CN", "简体中文")],
            settings.language, self.set_language)
        help_menu = window.menuBar().addMenu(self.tr("&Help"))
        about = help_menu.addAction(self.tr("About Nightlamp"))
        about.triggered.connect(self.show_about)
        app = QApplication.instance()
        if isinstance(app, QApplication):
            app.styleHints().colorSchemeChanged.connect(self._system_scheme_changed)

    def set_theme(self, key: str) -> None:
        self.settings.theme = key
        app = QApplication.instance()
        if isinstance(app, QApplication):
            apply_theme(app, key)

    def _system_scheme_changed(self, _scheme: object) -> None:
        if self.settings.theme == "system":
            self.set_theme("system")

    def set_language(self, key: str) -> None:
        changed = key != self.settings.language
        self.settings.language = key
        if changed:
            QMessageBox.information(self.window, self.tr("Language"), self.tr(
                "The new language is used from the next start of Nightlamp."))

    def about_text(self) -> str:
        return self.tr(
            "<h3>Nightlamp {version}</h3><p>An offline assistant: chat, summarize and translate "
            "with language models that run on this computer. Nothing you type leaves it.</p>"
            "<p>Your models, chats and settings are in {folder}</p>"
            "<p>Licensed under the Apache License 2.0.</p>").format(
                version=app_version(), folder=home())

    def show_about(self) -> None:
        QMessageBox.about(self.window, self.tr("About Nightlamp"), self.about_text())
