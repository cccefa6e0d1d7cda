"""Summarize and Translate panels: prompts, streaming into the result, stop, files, errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtGui import QGuiApplication
from tests_desktop_fakes import fake_worker, quick_generate, slow_generate

from desktop.main_window import MainWindow
from desktop.task_panels import SummarizePanel, TranslatePanel


@pytest.fixture
def window(qtbot: Any, request: pytest.FixtureRequest) -> Iterator[MainWindow]:
    engine = slow_generate if getattr(request, "param", "") == "slow" else quick_generate
    made = MainWindow(worker=fake_worker(engine), model="fake")
    qtbot.addWidget(made)
    with qtbot.waitSignal(made.model_ready, timeout=10_000):
        pass
    yield made
    made.close()


def test_summarize_streams_into_the_result(qtbot: Any, window: MainWindow) -> None:
    panel = window.summarize
    panel.source.setPlainText("A long text about lamps.")
    panel.run_button.click()
    assert panel.running
    qtbot.waitUntil(lambda: not panel.running, timeout=10_000)
    assert panel.result_text() == "w0 w1 w2 w3 w4 "
    assert panel.copy_button.isEnabled() and panel.save_button.isEnabled()
    panel.copy_button.click()
    assert QGuiApplication.clipboard().text() == "w0 w1 w2 w3 w4 "
    assert window.chat.messages == []  # the chat was not touched


@pytest.mark.parametrize("window", ["slow"], indirect=True)
def test_stop_ends_a_translation(qtbot: Any, window: MainWindow) -> None:
    panel = window.translate
    panel.source.setPlainText("Bonjour")
    panel.run_button.click()
    qtbot.waitUntil(lambda: panel.result_text() != "", timeout=5000)
    panel.stop_button.click()
    qtbot.waitUntil(lambda: not panel.running, timeout=2000)
    assert panel.notice.text() == "Stopped."


def test_prompts_carry_the_options(qtbot: Any) -> None:
    summarize, translate = SummarizePanel(), TranslatePanel()
    qtbot.addWidget(summarize)
    qtbot.addWidget(translate)
    summarize.length.setCurrentIndex(0)
    assert "two or three sentences" in summarize.messages("text")[-1]["content"]
    translate.target.setCurrentText("French")
    assert translate.messages("Hello")[-1]["content"].startswith("Translate into French")


def test_files_open_and_save_with_clear_errors(qtbot: Any, tmp_path: Path) -> None:
    panel = SummarizePanel()
    qtbot.addWidget(panel)
    good = tmp_path / "notes.md"
    good.write_text("# Notes\n夜灯", encoding="utf-8")
    assert panel.load_file(good) and panel.source.toPlainText() == "# Notes\n夜灯"
    bad = tmp_path / "latin.txt"
    bad.write_bytes(b"caf\xe9")
    assert not panel.load_file(bad)
    assert panel.notice.text().startswith("latin.txt: cannot be read")
    assert not panel.load_file(tmp_path / "report.pdf")
    assert "only .txt and .md" in panel.notice.text()
    panel.append_token("result")
    assert panel.save_result(tmp_path / "out.md")
    assert (tmp_path / "out.md").read_text(encoding="utf-8") == "result"
    assert not panel.save_result(tmp_path / "missing" / "out.md")
    assert "cannot be saved" in panel.notice.text()


def test_running_without_a_model_says_so(qtbot: Any, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    made = MainWindow(model=str(tmp_path / "empty"), device="cpu")
    qtbot.addWidget(made)
    with qtbot.waitSignal(made.model_failed, timeout=10_000):
        pass
    made.summarize.source.setPlainText("text")
    made.summarize.run_button.click()
    assert not made.summarize.running
    assert "not ready" in made.summarize.notice.text()
    made.close()


@pytest.mark.parametrize("window", ["slow"], indirect=True)
def test_a_task_started_during_a_chat_answer_cancels_the_answer(qtbot: Any,
                                                                window: MainWindow) -> None:
    window.chat.input.setPlainText("hello")
    window.chat.send()
    qtbot.waitUntil(lambda: window.chat.messages[-1]["content"] != "", timeout=5000)
    window.translate.source.setPlainText("Bonjour")
    window.translate.run_button.click()
    assert window.chat.messages[-1]["status"] == "cancelled"
    assert not window.chat.generating
    qtbot.waitUntil(lambda: window.translate.result_text() != "", timeout=5000)
    window.stop()
