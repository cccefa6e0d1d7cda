"""The Translate panel says how far to trust a translation: marked segments with their reasons,
the summary line, a plain notice for a model unfit for the pair, and the round-trip option."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtGui import QTextCharFormat, QTextDocument
from tests_desktop_fakes import fake_worker, quick_generate
from translate_fakes import FakeTranslator, damaging, to_german

from desktop.main_window import MainWindow
from desktop.models_panel import QUALITY, ModelsPanel
from desktop.tasks import translation_stats
from desktop.translate_trust import KEPT_BACKGROUND, LOW_BACKGROUND, mark_segments
from engine.store import models_dir
from engine.translate import translate_text
from engine.translate.evaluate import read_quality

TEXT = "The room is dark.\n\nThe lamp is bright and warm.\n\nThe table is small."


@pytest.fixture
def window(qtbot: Any) -> Iterator[MainWindow]:
    made = MainWindow(worker=fake_worker(quick_generate), model="fake")
    qtbot.addWidget(made)
    with qtbot.waitSignal(made.model_ready, timeout=10_000):
        pass
    yield made
    made.close()


def _use(monkeypatch: pytest.MonkeyPatch, translator: FakeTranslator) -> FakeTranslator:
    monkeypatch.setattr("desktop.tasks.make_translator", lambda model: translator)
    return translator


def _translate(qtbot: Any, window: MainWindow, text: str = TEXT) -> None:
    panel = window.translate
    panel.source.setPlainText(text)
    panel.target.setCurrentIndex(panel.target.findData("de"))
    panel.run_button.click()
    qtbot.waitUntil(lambda: not panel.running, timeout=10_000)


def _format_of(document: QTextDocument, text: str) -> QTextCharFormat:
    """The character format in the middle of ``text``'s first occurrence in ``document``."""
    cursor = document.find(text)
    assert not cursor.isNull(), f"{text!r} is not in the result"
    cursor.setPosition((cursor.selectionStart() + cursor.selectionEnd()) // 2)
    return cursor.charFormat()


def test_a_segment_kept_in_the_source_is_marked_with_why(
        qtbot: Any, window: MainWindow, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _use(monkeypatch, FakeTranslator(answer=damaging("wrong script")))
    _translate(qtbot, window)
    panel = window.translate
    document = panel.result.document()
    kept = _format_of(document, "The lamp is bright and warm.")
    assert kept.background().color() == KEPT_BACKGROUND
    assert kept.toolTip() == ("Kept in English: the answer was not in the target script.")
    fine = _format_of(document, "Die Zimmer ist dunkel.")
    assert fine.background().color() != KEPT_BACKGROUND and not fine.toolTip()
    assert panel.trust.summary.text() == ("3 segments: 2 translated, 0 retried, 1 kept in "
                                          "English; mean confidence 0.57")
    assert not panel.trust.summary.isHidden() and not panel.trust.legend.isHidden()
    assert panel.trust.unfit_notice.isHidden()  # one bad segment in three: still fit
    assert all(call["target"] == "de" for call in fake.calls)  # no round trip unless asked


def test_a_model_unfit_for_the_pair_is_said_plainly(
        qtbot: Any, window: MainWindow, monkeypatch: pytest.MonkeyPatch) -> None:
    _use(monkeypatch, FakeTranslator(answer=lambda segment, strict: ""))
    _translate(qtbot, window)
    notice = window.translate.trust.unfit_notice
    assert not notice.isHidden()
    assert notice.text().startswith("fake-mt is not fit for translating English into "
                                    "Deutsch (German): 3 of 3 segments had to be kept")
    assert "another model" in notice.text()
    window.translate.clear_result()
    assert notice.isHidden() and notice.text() == ""


def test_the_round_trip_option_reaches_the_engine_and_marks_doubtful_segments(
        qtbot: Any, window: MainWindow, monkeypatch: pytest.MonkeyPatch) -> None:
    def back(segment: str, strict: bool) -> str:  # the way back garbles the lamp sentence
        return "Nothing like it at all." if "Lampe" in segment else segment.replace(
            "Die Zimmer ist dunkel.", "The room is dark.").replace(
            "Die Tisch ist klein.", "The table is small.")

    fake = _use(monkeypatch, FakeTranslator(back=back))
    panel = window.translate
    assert not panel.round_trip.isChecked()  # off by default: twice the time
    assert panel.request("x").round_trip is False
    panel.round_trip.setChecked(True)
    assert panel.request("x").round_trip is True
    _translate(qtbot, window)
    assert [call["target"] for call in fake.calls].count("en") >= 1  # translated back
    doubtful = _format_of(panel.result.document(), "Die Lampe ist hell und warm.")
    assert doubtful.background().color() == LOW_BACKGROUND
    assert doubtful.toolTip().startswith("Low confidence (0.")
    sound = _format_of(panel.result.document(), "Die Zimmer ist dunkel.")
    assert not sound.toolTip()
    assert panel.trust.summary.text().endswith("· checked by translating back")


def test_marks_are_found_in_order_and_through_rendered_markdown(qtbot: Any) -> None:
    document = QTextDocument()
    document.setMarkdown("Die Lampe.\n\nDie Lampe.\n\nEin **fetter** Tisch.")
    marks = [{"index": 3, "text": "Ein **fetter** Tisch.", "status": "kept_source"},
             {"index": 2, "text": "Die Lampe.", "status": "translated"},
             {"index": 1, "text": "Die Lampe.", "status": "translated"},
             {"index": 4, "text": "Not in the text.", "status": "kept_source"}]
    assert mark_segments(document, marks, lambda mark: f"#{mark['index']}") == 3
    first = document.find("Die Lampe.")
    second = document.find("Die Lampe.", first.selectionEnd())
    assert first.charFormat().toolTip() == "#1"  # in document order: each after the last
    assert second.charFormat().toolTip() == "#2"
    bold = document.find("Tisch")
    assert bold.charFormat().toolTip() == "#3"


def test_the_panel_gets_only_what_it_shows() -> None:
    result = translate_text(TEXT, FakeTranslator(answer=damaging("wrong script")), "de", "en")
    stats = translation_stats(result)
    assert "records" not in stats
    assert [mark["text"] for mark in stats["marks"]] == ["The lamp is bright and warm."]
    assert stats["counts"]["kept_source"] == 1 and stats["unfit"] is False
    assert to_german("The room is dark.") in stats["translation"]


MEASUREMENT = ('{"model": "tiny", "data": "built-in", "results": ['
               '{"source": "en", "target": "zh", "chrf": 0.18, "seconds": 4.0, "sentences": 30},'
               ' {"source": "en", "target": "de", "chrf": 0.5249, "seconds": 3.0, '
               '"sentences": 30}]}')


def test_measuring_a_model_shows_and_keeps_its_figures(
        qtbot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        transformer_model_dir: Path) -> None:
    folder = models_dir() / "tiny"
    shutil.copytree(transformer_model_dir, folder)
    # A stand-in for `nightlamp translate-eval`: a progress line, then its JSON result.
    script = tmp_path / "translate_eval.py"
    script.write_text(
        "import json, sys\n"
        f"open({str(tmp_path / 'argv.json')!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
        "print(json.dumps({'stage': 'measuring en→de', 'done': 15, 'total': 60}), "
        "file=sys.stderr, flush=True)\n"
        f"print({MEASUREMENT!r})\n", encoding="utf-8")
    monkeypatch.setattr("desktop.model_jobs.nightlamp_command",
                        lambda: [sys.executable, str(script)])
    panel = ModelsPanel()
    qtbot.addWidget(panel)
    assert not panel.measure_button.isEnabled()  # nothing selected yet
    assert panel.table.item(0, QUALITY).text() == ""  # not measured
    panel.table.selectRow(0)
    assert panel.measure_button.isEnabled()
    with qtbot.waitSignal(panel.jobs.finished, timeout=30_000):
        panel.measure_button.click()
        assert not panel.measure_button.isEnabled()  # one job at a time
    assert json.loads((tmp_path / "argv.json").read_text()) == [
        "translate-eval", "-m", "tiny", "--device", "auto", "--json", "--json-progress"]
    shown = "en→de 0.52 chrF · en→zh 0.18"
    assert panel.jobs.status.text() == f"Translation quality of tiny: {shown}"
    assert panel.table.item(0, QUALITY).text() == shown
    assert read_quality(folder / "quality.json")["en→de"]["chrf"] == 0.5249
    again = ModelsPanel()  # remembered: a new panel (the next start) shows them too
    qtbot.addWidget(again)
    assert again.table.item(0, QUALITY).text() == shown
