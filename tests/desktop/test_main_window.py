"""The main window with a real tiny model (or a slow fake engine where timing matters)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QElapsedTimer, QTimer
from tests_desktop_fakes import fake_worker, slow_generate

from desktop.chat_settings import ChatSettings
from desktop.main_window import MainWindow


def _ready(qtbot: Any, window: MainWindow) -> None:
    if window.model_info is None:
        with qtbot.waitSignal(window.model_ready, timeout=30_000):
            pass


def test_chat_answers_with_the_model_and_shows_speed(qtbot: Any, windows: list[MainWindow],
                                                     transformer_model_dir: Path) -> None:
    window = MainWindow(model=str(transformer_model_dir), device="cpu")
    windows.append(window)
    qtbot.addWidget(window)
    window.show()
    _ready(qtbot, window)
    assert "tiny-transformer" in window.model_label.text()
    assert "ready" in window.model_label.text()
    window.chat.input.setPlainText("The lamp")
    with qtbot.waitSignal(window.answer_finished, timeout=30_000):
        window.chat.send()
    qtbot.waitUntil(lambda: not window.chat.generating, timeout=5000)
    roles = [m["role"] for m in window.chat.messages]
    assert roles == ["user", "assistant"]
    assert window.chat.messages[1]["status"] == "complete"
    assert window.chat.last_answer()
    assert "tok/s" in window.speed_label.text()
    assert window.chat.send_button.isEnabled() and not window.chat.stop_button.isEnabled()


def _answering(qtbot: Any, windows: list[MainWindow]) -> MainWindow:
    """A window whose (slow, fake) model is in the middle of an answer."""
    window = MainWindow(worker=fake_worker(slow_generate), model="fake")
    windows.append(window)
    qtbot.addWidget(window)
    _ready(qtbot, window)
    window.chat.input.setPlainText("hello")
    window.chat.send()
    qtbot.waitUntil(lambda: window.chat.messages[-1]["content"] != "", timeout=5000)
    return window


def test_stop_marks_the_answer_stopped(qtbot: Any, windows: list[MainWindow]) -> None:
    window = _answering(qtbot, windows)
    with qtbot.waitSignal(window.answer_finished, timeout=2000):
        window.chat.stop_button.click()
    qtbot.waitUntil(lambda: not window.chat.generating, timeout=2000)
    assert window.chat.messages[-1]["status"] == "cancelled"
    assert "(stopped)" in window.chat.markdown()


def test_switching_model_mid_answer_cancels_it_and_drops_stale_tokens(
        qtbot: Any, windows: list[MainWindow]) -> None:
    window = _answering(qtbot, windows)
    with qtbot.waitSignal(window.model_ready, timeout=5000):
        window.load_model("another")
    text_after_switch = window.chat.messages[-1]["content"]
    qtbot.wait(200)  # any late tokens of the old request must be ignored
    assert window.chat.messages[-1]["content"] == text_after_switch
    assert window.model_info is not None


def test_a_bad_model_shows_an_error_and_the_app_keeps_working(qtbot: Any, tmp_path: Path,
                                                              windows: list[MainWindow],
                                                              transformer_model_dir: Path,
                                                              ) -> None:
    (tmp_path / "empty").mkdir()
    window = MainWindow(model=str(tmp_path / "empty"), device="cpu")
    windows.append(window)
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.model_failed, timeout=30_000):
        pass
    assert "not a model folder" in window.model_label.text()
    window.chat.input.setPlainText("hello")
    window.chat.send()
    assert window.chat.messages[-1]["status"] == "failed"
    assert "not ready" in window.chat.notice.text()
    window.load_model(str(transformer_model_dir), "cpu")
    _ready(qtbot, window)
    assert "ready" in window.model_label.text()


@pytest.mark.parametrize("panel", ["chat", "summarize"])
def test_headless_screenshot(tmp_path: Path, transformer_model_dir: Path, panel: str) -> None:
    """The picture's question goes to a throw-away conversation: the user's history and
    window layout stay exactly as they were."""
    from desktop.history import HistoryStore
    from engine.store import home

    history = home() / "history.sqlite3"
    store = HistoryStore.open(history)
    mine = store.create_conversation("My own chat").id
    store.add_message(mine, "user", "my secret plan")
    store.close()
    settings = home() / "settings.ini"
    settings.write_text("[window]\ntab=3\n", encoding="utf-8")
    png = tmp_path / "shot.png"
    result = subprocess.run(
        [sys.executable, "-m", "commands", "gui", "-m", str(transformer_model_dir),
         "--device", "cpu", "--screenshot", str(png), "--prompt", "The lamp", "--panel", panel],
        capture_output=True, text=True, timeout=240,
        env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PySide6.QtGui import QImage

    image = QImage(str(png))
    assert image.width() >= 800 and image.height() >= 600
    store = HistoryStore.open(history)
    try:
        assert [c.title for c in store.list_conversations()] == ["My own chat"]
        assert [m.content for m in store.messages(mine)] == ["my secret plan"]
    finally:
        store.close()
    assert settings.read_text(encoding="utf-8") == "[window]\ntab=3\n"


def test_gui_without_a_display_says_what_to_do(monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from commands.main import main

    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    assert main(["gui"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nightlamp: error: no display found") and "nightlamp chat" in err


@pytest.mark.parametrize(("tty", "display", "opens"), [(True, ":0", True), (False, ":0", False),
                                                       (True, None, False)])
def test_plain_nightlamp_opens_the_app_only_from_a_desktop_terminal(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tty: bool,
        display: str | None, opens: bool) -> None:
    _check_plain_nightlamp(monkeypatch, capsys, tty, display, opens)


@pytest.mark.parametrize(("tty", "display", "opens"), [(False, ":0", True), (True, ":0", True),
                                                       (False, None, False)])
def test_the_packaged_app_also_opens_from_a_launcher(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tty: bool,
        display: str | None, opens: bool) -> None:
    """Started by a file manager or menu (no terminal at either end) the bundle opens the app."""
    monkeypatch.setattr("sys.frozen", True, raising=False)
    _check_plain_nightlamp(monkeypatch, capsys, tty, display, opens)


def _check_plain_nightlamp(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                           tty: bool, display: str | None, opens: bool) -> None:
    import commands.gui
    from commands.main import main

    calls: list[object] = []
    monkeypatch.setattr(commands.gui, "run", lambda args: calls.append(args) or 0)
    monkeypatch.setattr("sys.platform", "linux")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    if display is None:
        monkeypatch.delenv("DISPLAY", raising=False)
    else:
        monkeypatch.setenv("DISPLAY", display)
    monkeypatch.setattr("sys.stdin.isatty", lambda: tty, raising=False)
    monkeypatch.setattr("sys.stdout.isatty", lambda: tty, raising=False)
    assert main([]) == 0
    assert bool(calls) is opens
    assert ("usage: nightlamp" in capsys.readouterr().out) is not opens


def test_the_window_stays_responsive_while_a_real_model_answers(
        qtbot: Any, windows: list[MainWindow], transformer_model_dir: Path) -> None:
    window = MainWindow(model=str(transformer_model_dir), device="cpu")
    windows.append(window)
    qtbot.addWidget(window)
    window.show()
    _ready(qtbot, window)
    window.chat.set_settings(ChatSettings(temperature=1.0, max_tokens=40))  # context is 64
    gaps: list[int] = []
    clock = QElapsedTimer()
    heartbeat = QTimer()
    heartbeat.setInterval(10)
    heartbeat.timeout.connect(lambda: gaps.append(clock.restart()))
    window.chat.input.setPlainText("the lamp")
    clock.start()
    heartbeat.start()
    with qtbot.waitSignal(window.answer_finished, timeout=60_000):
        window.chat.send()
    answers = 1
    # A tiny model answers fast (and a regenerated answer reuses the prompt's cache): answer
    # again until the heartbeat has run long enough to mean something.
    while (len(gaps) <= 30 or answers < 5) and answers < 500:
        with qtbot.waitSignal(window.answer_finished, timeout=60_000):
            window.chat.regenerate()
        answers += 1
    heartbeat.stop()
    answer = window.chat.messages[-1]
    assert answer["status"] == "complete" and answer["content"], window.chat.notice.text()
    assert len(gaps) > 20
    assert max(gaps[1:]) < 100  # ms: the event loop never waited on the model
