"""Starts the desktop app: the QApplication, the main window, and the headless screenshot mode."""

from __future__ import annotations

import gc
import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QEventLoop, QLoggingCategory, QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from desktop.fonts import install_fonts
from desktop.i18n import install_translators
from desktop.main_window import MainWindow
from desktop.resources import resources_dir
from desktop.settings import AppSettings
from desktop.theme import apply_theme

SCREENSHOT_TIMEOUT_MS = 180_000
APP_ID = "io.github.nightlamp.Nightlamp"  # as resources/packaging/linux/*.desktop


def app_icon() -> QIcon:
    """The lamp icon at every rendered size (PNGs: no SVG plugin needed)."""
    icon = QIcon()
    for png in sorted((resources_dir() / "icons" / "hicolor").glob("*/apps/nightlamp.png")):
        icon.addFile(str(png))
    return icon


def application(settings: AppSettings, language: str | None = None,
                theme: str | None = None) -> QApplication:
    """The QApplication with our fonts, theme and UI language (``language`` / ``theme``
    override the saved choices for this run)."""
    # Qt warns at every start about each font that lacks OpenType tables for a script it will
    # never shape with it: noise, not a problem (QT_LOGGING_RULES still turns it back on).
    QLoggingCategory.setFilterRules("qt.text.font.db.warning=false")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationName("Nightlamp")
    app.setOrganizationName("nightlamp")
    # Wayland matches windows to the menu entry by this id (X11 by the application name).
    app.setDesktopFileName(APP_ID)
    app.setWindowIcon(app_icon())
    install_fonts(app)
    apply_theme(app, theme or settings.theme)
    install_translators(app, language or settings.language)
    return app


def _wait_for(signals: list, timeout_ms: int) -> bool:
    """Runs the event loop until one of the signals fires; False on time-out."""
    loop = QEventLoop()
    fired: list[object] = []

    def on_signal(*args: object) -> None:
        fired.append(args)
        loop.quit()

    for signal in signals:
        signal.connect(on_signal)
    QTimer.singleShot(timeout_ms, loop.quit)
    loop.exec()
    for signal in signals:
        signal.disconnect(on_signal)
    return bool(fired)


PANELS = ("chat", "summarize", "translate", "models")


def screenshot(window: MainWindow, path: Path, prompt: str | None, panel: str = "chat") -> int:
    """Waits for the model, optionally runs one prompt in the panel, saves a PNG of the window."""
    if window.pages.currentWidget() is window.tabs:
        window.tabs.setCurrentIndex(PANELS.index(panel))
    if window.model_info is None and window.pages.currentWidget() is window.tabs:
        _wait_for([window.model_ready, window.model_failed], SCREENSHOT_TIMEOUT_MS)
    if prompt and window.model_info is not None and panel != "models":
        if panel == "chat":
            window.chat.input.setPlainText(prompt)
            window.chat.send()
        else:
            task = window.summarize if panel == "summarize" else window.translate
            task.source.setPlainText(prompt)
            task.run()
        _wait_for([window.answer_finished], SCREENSHOT_TIMEOUT_MS)
    QApplication.processEvents()
    window.chat.refresh()
    QApplication.processEvents()
    path.parent.mkdir(parents=True, exist_ok=True)
    if not window.grab().save(str(path)):
        print(f"nightlamp: error: could not write {path}", file=sys.stderr)
        return 2
    print(f"screenshot: {path}")
    return 0


def run(model: str | None = None, device: str | None = None,
        screenshot_path: Path | None = None, prompt: str | None = None, panel: str = "chat",
        language: str | None = None, theme: str | None = None) -> int:
    settings = AppSettings()
    app = application(settings, language, theme)
    # A screenshot that asks a question talks in a throw-away conversation: the user's own chats
    # neither leak into its answer nor gain a test message.
    scratch = (tempfile.TemporaryDirectory(prefix="nightlamp-screenshot-")
               if screenshot_path is not None and prompt else None)
    history = Path(scratch.name) / "history.sqlite3" if scratch is not None else None
    window = MainWindow(model=model, device=device, settings=settings, history_path=history)
    window.show()
    if screenshot_path is not None:
        window.remember_layout = False  # the picture's size and panel are not the user's choice
        window.resize(1040, 720)  # the same picture whatever size the window was left at
        code = screenshot(window, screenshot_path, prompt, panel)
    else:
        code = app.exec()
    window.close()
    # Tear Qt objects down now, in order, rather than in the interpreter's final collection.
    window.deleteLater()
    app.processEvents()
    gc.collect()
    if scratch is not None:
        scratch.cleanup()
    return code
