"""Starts the desktop app: the QApplication, the main window, and the headless screenshot mode."""

from __future__ import annotations

import gc
import sys
from pathlib import Path

from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtWidgets import QApplication

from desktop.main_window import MainWindow

SCREENSHOT_TIMEOUT_MS = 180_000


def application() -> QApplication:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Nightlamp")
    app.setOrganizationName("nightlamp")
    return app  # type: ignore[return-value]


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


def screenshot(window: MainWindow, path: Path, prompt: str | None) -> int:
    """Waits for the model, optionally answers one prompt, saves a PNG of the window."""
    if window.model_info is None:
        _wait_for([window.model_ready, window.model_failed], SCREENSHOT_TIMEOUT_MS)
    if prompt and window.model_info is not None:
        window.chat.input.setPlainText(prompt)
        window.chat.send()
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


def run(model: str | None = None, device: str = "auto", screenshot_path: Path | None = None,
        prompt: str | None = None) -> int:
    app = application()
    window = MainWindow(model=model, device=device)
    window.show()
    if screenshot_path is not None:
        code = screenshot(window, screenshot_path, prompt)
    else:
        code = app.exec()
    window.close()
    # Tear Qt objects down now, in order, rather than in the interpreter's final collection.
    window.deleteLater()
    app.processEvents()
    gc.collect()
    return code
