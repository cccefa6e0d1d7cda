"""Summarize and Translate panels: prompts, streaming into the result, stop, files, errors."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QMimeData, QUrl
from PySide6.QtGui import QGuiApplication
from tests_desktop_fakes import fake_worker, quick_generate, slow_generate
from translate_fakes import FakeTranslator

from desktop.main_window import MainWindow
from desktop.protocol import SummaryJob, TranslationJob
from desktop.task_panels import SummarizePanel, TranslatePanel
from desktop.tasks import summary_job
from engine.documents.minimal_pdf import make_pdf
from engine.summarize import SummaryResult


@pytest.fixture
def window(qtbot: Any, request: pytest.FixtureRequest) -> Iterator[MainWindow]:
    engine = slow_generate if getattr(request, "param", "") == "slow" else quick_generate
    made = MainWindow(worker=fake_worker(engine), model="fake")
    qtbot.addWidget(made)
    with qtbot.waitSignal(made.model_ready, timeout=10_000):
        pass
    yield made
    made.close()


def test_summarize_streams_then_shows_the_final_summary(qtbot: Any,
                                                        window: MainWindow) -> None:
    panel = window.summarize
    streamed: list[str] = []
    window.worker.token_generated.connect(lambda _request, text: streamed.append(text))
    panel.source.setPlainText("A long text about lamps.")
    panel.length.setCurrentIndex(panel.length.findData("short"))
    panel.method.setCurrentIndex(panel.method.findData("auto"))
    panel.run_button.click()
    assert panel.running
    qtbot.waitUntil(lambda: not panel.running, timeout=10_000)
    assert "".join(streamed) == "s0 s1 "  # tokens came while it ran
    assert panel.result_text() == "[auto/short] A long text about la"  # then the final text
    assert panel.notice.text().startswith("auto · 2 part(s)")
    assert panel.copy_button.isEnabled() and panel.save_button.isEnabled()
    panel.copy_button.click()
    assert QGuiApplication.clipboard().text() == panel.result_text()
    assert window.chat.messages == []  # the chat was not touched


def test_extractive_summaries_need_no_model(qtbot: Any, windows: list[MainWindow],
                                             tmp_path: Path) -> None:
    window = MainWindow(model=str(tmp_path / "no-such-model"), device="cpu")
    windows.append(window)
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.model_failed, timeout=10_000):
        pass
    panel = window.summarize
    panel.source.setPlainText("Night lamps give a soft light for the dark. Night lamps use "
                              "little power. A cat walked by on Tuesday. Night lamps help "
                              "people find their way at night. A soft night light helps "
                              "children sleep.")
    panel.method.setCurrentIndex(panel.method.findData("extractive"))
    panel.length.setCurrentIndex(panel.length.findData("short"))
    with qtbot.waitSignal(window.answer_finished, timeout=10_000) as finished:
        panel.run_button.click()
    assert finished.args == ["complete"]
    assert panel.result_text().startswith("Night lamps give a soft light")
    assert "cat" not in panel.result_text()
    assert panel.notice.text().startswith("key sentences")


def test_stop_ends_a_translation(qtbot: Any, window: MainWindow,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    slow = FakeTranslator(answer=lambda segment, strict: time.sleep(0.05) or segment.upper(),
                          batch_size=1)
    monkeypatch.setattr("desktop.tasks.make_translator", lambda model: slow)
    panel = window.translate
    panel.source.setPlainText("\n\n".join(f"The lamp {i} is bright." for i in range(200)))
    panel.target.setCurrentIndex(panel.target.findData("de"))
    panel.run_button.click()
    qtbot.waitUntil(lambda: len(slow.calls) > 2, timeout=5000)
    started = time.perf_counter()
    panel.stop_button.click()
    qtbot.waitUntil(lambda: not panel.running, timeout=2000)
    assert time.perf_counter() - started < 0.5
    assert panel.notice.text() == "Stopped."
    assert len(slow.calls) < 50


def test_the_default_summary_method_invents_nothing(qtbot: Any) -> None:
    """Until summaries are checked against their source, key sentences are the default."""
    panel = SummarizePanel()
    qtbot.addWidget(panel)
    assert panel.method.currentData() == "extractive"
    assert panel.request("text").method == "extractive"


def test_prompts_carry_the_options(qtbot: Any) -> None:
    summarize, translate = SummarizePanel(), TranslatePanel()
    qtbot.addWidget(summarize)
    qtbot.addWidget(translate)
    summarize.length.setCurrentIndex(0)
    summarize.method.setCurrentIndex(summarize.method.findData("extractive"))
    assert summarize.request("text") == SummaryJob(text="text", name="text",
                                                   method="extractive", length="short")
    translate.target.setCurrentIndex(translate.target.findData("fr"))
    assert translate.request("Hello") == TranslationJob(source="auto", target="fr",
                                                        text="Hello")
    translate.source_language.setCurrentIndex(translate.source_language.findData("de"))
    assert translate.request("Hallo").source == "de"


@pytest.fixture
def fake_mt(monkeypatch: pytest.MonkeyPatch) -> FakeTranslator:
    """The translation pipeline runs for real, with a word-by-word English-to-German model."""
    translator = FakeTranslator()
    monkeypatch.setattr("desktop.tasks.make_translator", lambda model: translator)
    return translator


def test_translation_keeps_the_structure_and_reports(qtbot: Any, window: MainWindow,
                                                     fake_mt: FakeTranslator) -> None:
    panel = window.translate
    seen: list[str] = []
    window.worker.progress.connect(lambda _request, stage, done, total: seen.append(stage))
    panel.source.setPlainText("# The lamp\n\nThe lamp is bright.\n\n- one\n- two\n\n"
                              "```\nthe code\n```")
    panel.target.setCurrentIndex(panel.target.findData("de"))
    panel.run_button.click()
    qtbot.waitUntil(lambda: not panel.running, timeout=10_000)
    assert panel.result_text() == ("# Die Lampe\n\nDie Lampe ist hell.\n\n- eins\n- zwei\n\n"
                                   "```\nthe code\n```")
    assert "translating" in seen
    assert "English → Deutsch (German)" in panel.notice.text()
    assert "segments" in panel.notice.text()
    assert panel.translated_file is None  # pasted text: nothing written


def test_a_translation_streams_paragraph_by_paragraph(qtbot: Any, window: MainWindow,
                                                      fake_mt: FakeTranslator) -> None:
    panel = window.translate
    streamed: list[str] = []
    progress: list[tuple[int, int]] = []
    window.worker.token_generated.connect(lambda _request, text: streamed.append(text))
    window.worker.progress.connect(
        lambda _request, stage, done, total: progress.append((done, total)))
    panel.source.setPlainText("\n\n".join(f"The lamp {i} is bright." for i in range(60)))
    panel.target.setCurrentIndex(panel.target.findData("de"))
    panel.run_button.click()
    qtbot.waitUntil(lambda: not panel.running, timeout=20_000)
    assert len(streamed) > 1  # pieces arrived while it ran, not one block at the end
    assert "".join(streamed) == panel.result_text()
    assert panel.result_text().startswith("Die Lampe 0 ist hell.")
    dones = [done for done, _ in progress]
    assert dones == sorted(dones)  # the bar never goes back


def test_an_opened_docx_is_translated_as_a_docx(qtbot: Any, window: MainWindow,
                                                fake_mt: FakeTranslator, tmp_path: Path) -> None:
    import docx

    source = tmp_path / "notes.docx"
    made = docx.Document()
    paragraph = made.add_paragraph("The ")
    paragraph.add_run("lamp").bold = True
    paragraph.add_run(" is bright.")
    made.save(str(source))
    panel = window.translate
    panel.load_file(source)
    qtbot.waitUntil(lambda: not panel.reading, timeout=20_000)
    panel.target.setCurrentIndex(panel.target.findData("de"))
    panel.run_button.click()
    qtbot.waitUntil(lambda: not panel.running, timeout=10_000)
    assert "Lampe" in panel.result_text()
    assert panel.translated_file is not None and panel.translated_file.suffix == ".docx"
    saved = tmp_path / "notes.de.docx"
    assert panel.save_translated_file(saved)
    runs = docx.Document(str(saved)).paragraphs[0].runs
    assert "".join(run.text for run in runs) == "Die Lampe ist hell."
    assert [run.text for run in runs if run.bold] == ["Lampe"]  # formatting kept
    panel.source.setPlainText(panel.source.toPlainText() + " Edited.")
    edited = panel.request("x")
    assert edited.text == "x" and edited.path is None  # edited: translated as text


def _read(qtbot: Any, panel: SummarizePanel, path: Path) -> None:
    panel.load_file(path)
    assert panel.reading and not panel.run_button.isEnabled()
    qtbot.waitUntil(lambda: not panel.reading, timeout=20_000)


def test_documents_open_off_the_gui_thread_with_clear_errors(qtbot: Any,
                                                              tmp_path: Path) -> None:
    panel = SummarizePanel()
    qtbot.addWidget(panel)
    good = tmp_path / "notes.md"
    good.write_text("# Notes\n\n夜灯", encoding="utf-8")
    _read(qtbot, panel, good)
    assert "夜灯" in panel.source.toPlainText() and "Notes" in panel.source.toPlainText()
    assert panel.notice.text().startswith("notes.md:")
    assert panel.run_button.isEnabled()
    binary = tmp_path / "photo.txt"
    binary.write_bytes(bytes(range(256)) * 8)
    _read(qtbot, panel, binary)
    assert panel.notice.text().startswith("photo.txt:")
    assert "夜灯" in panel.source.toPlainText()  # a failed read leaves the text alone
    broken = tmp_path / "report.pdf"
    broken.write_bytes(b"%PDF-1.7 this is not really a PDF")
    _read(qtbot, panel, broken)
    assert panel.notice.text().startswith("report.pdf:")
    unknown = tmp_path / "data.xyz"
    unknown.write_text("x", encoding="utf-8")
    _read(qtbot, panel, unknown)
    assert "data.xyz" in panel.notice.text()


def test_a_new_document_clears_the_last_summary(qtbot: Any, tmp_path: Path) -> None:
    panel = SummarizePanel()
    qtbot.addWidget(panel)
    panel.finish("complete", "", {"summary": "The old summary.", "method": "extractive"})
    assert panel.result_text() == "The old summary." and panel.copy_button.isEnabled()
    page = tmp_path / "new.md"
    page.write_text("# New\n\nAnother text.", encoding="utf-8")
    _read(qtbot, panel, page)
    assert panel.result_text() == "" and panel.result.toPlainText() == ""
    assert not panel.copy_button.isEnabled() and not panel.save_button.isEnabled()
    assert panel.notice.text().startswith("new.md:")


def test_a_dropped_document_is_read_not_pasted_as_a_path(qtbot: Any, tmp_path: Path) -> None:
    panel = SummarizePanel()
    qtbot.addWidget(panel)
    page = tmp_path / "page.html"
    page.write_text("<html><body><h1>Lamp</h1><script>alert(1)</script><p>Warm light.</p>"
                    "</body></html>", encoding="utf-8")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(page))])
    assert panel.source.canInsertFromMimeData(mime)
    panel.source.insertFromMimeData(mime)
    qtbot.waitUntil(lambda: not panel.reading, timeout=20_000)
    text = panel.source.toPlainText()
    assert "Warm light." in text and "Lamp" in text
    assert "alert" not in text and str(page) not in text


def test_files_save_with_clear_errors(qtbot: Any, tmp_path: Path) -> None:
    panel = SummarizePanel()
    qtbot.addWidget(panel)
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
    made.summarize.method.setCurrentIndex(made.summarize.method.findData("auto"))
    made.summarize.run_button.click()
    assert not made.summarize.running
    assert "not ready" in made.summarize.notice.text()
    made.close()


def _chat_answer_streaming(qtbot: Any, window: MainWindow) -> None:
    """Sends a chat message and waits until its (slow) answer has begun to arrive."""
    window.chat.input.setPlainText("hello")
    window.chat.send()
    qtbot.waitUntil(lambda: window.chat.messages[-1]["content"] != "", timeout=5000)


@pytest.mark.parametrize("window", ["slow"], indirect=True)
def test_a_task_started_during_a_chat_answer_cancels_the_answer(qtbot: Any,
                                                                window: MainWindow) -> None:
    _chat_answer_streaming(qtbot, window)
    window.summarize.source.setPlainText("A text about lamps.")
    window.summarize.run_button.click()
    assert window.chat.messages[-1]["status"] == "cancelled"
    assert not window.chat.generating
    qtbot.waitUntil(lambda: window.summarize.result_text() != "", timeout=5000)
    window.stop()


@pytest.mark.parametrize("window", ["slow"], indirect=True)
def test_switching_panels_leaves_a_running_answer_running(qtbot: Any,
                                                         window: MainWindow) -> None:
    """Looking at another panel is not a request: the chat answer goes on streaming."""
    _chat_answer_streaming(qtbot, window)
    for index in (1, 2, 3, 0):
        window.tabs.setCurrentIndex(index)
    before = len(window.chat.messages[-1]["content"])
    qtbot.waitUntil(lambda: len(window.chat.messages[-1]["content"]) > before + 10,
                    timeout=5000)
    assert window.chat.generating and window.chat.messages[-1]["status"] == "streaming"
    with qtbot.waitSignal(window.answer_finished, timeout=5000):
        window.stop()


def test_an_opened_document_is_summarized_from_its_file_with_its_pages(
        qtbot: Any, tmp_path: Path) -> None:
    panel = SummarizePanel()
    qtbot.addWidget(panel)
    pdf = tmp_path / "two.pdf"
    pdf.write_bytes(make_pdf(["The lamp lights the first page.", "The map waits on page two."]))
    _read(qtbot, panel, pdf)
    request = panel.request(panel.source.toPlainText())
    assert request.path == str(pdf)
    seen: list[Any] = []

    def spy(document: Any, *args: Any, **kwargs: Any) -> SummaryResult:
        seen.append(document)
        return SummaryResult("s", "extractive", 1, 0.0, None, "en")

    assert summary_job(request, None, lambda: False, lambda *a: None, lambda t: None,
                       summarize_fn=spy)[0] == "stop"
    assert [block.page for block in seen[0].blocks] == [1, 2]  # read again: pages kept
    panel.source.setPlainText(panel.source.toPlainText() + " Edited.")
    assert panel.request(panel.source.toPlainText()).path is None
