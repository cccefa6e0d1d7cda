"""The Summarize panel's outline: sections stream in while the summary runs, a click shows a
section's own text, the note says how the sentences fared, Save keeps the page references."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests_desktop_fakes import fake_model, no_trim, quick_generate

from desktop.main_window import MainWindow
from desktop.worker import InferenceWorker
from engine.summarize import Grounding, SectionSummary, SummaryResult

SECTIONS = [SectionSummary("1 Lamps", 1, (2, 2), "p. 2", "Lamps give light.",
                           Grounding(2, 1, 0), "1 Lamps\n\nLamps give light at night."),
            SectionSummary("2 Batteries", 1, (3, 4), "pp. 3\u20134", "Batteries store power.",
                           Grounding(1, 1, 1, ["Zorblax"]), "2 Batteries\n\nBatteries store.")]
FINAL = ("Lamps need batteries.\n\n## Sections\n\n- **1 Lamps** (p. 2): Lamps give light.\n"
         "- **2 Batteries** (pp. 3\u20134): Batteries store power.")


def sectioned_summarize(document: Any, model: Any, method: str, length: str, *,
                        should_stop: Any, progress: Any, on_text: Any,
                        on_section: Any = None) -> SummaryResult:
    """Announces two sections as a sectioned summary does, then returns the checked text."""
    for number, section in enumerate(SECTIONS):
        progress("sections", number, len(SECTIONS))
        on_section(section)
        on_text(f"- **{section.title}**: {section.summary}\n")
    return SummaryResult(FINAL, "sectioned", 2, 1.5, 40, "en", 30, Grounding(4, 2, 1),
                         list(SECTIONS))


def test_sections_fill_the_outline_and_a_click_shows_their_text(
        qtbot: Any, windows: list[MainWindow], tmp_path: Path) -> None:
    worker = InferenceWorker(load=fake_model, generate_fn=quick_generate, fit_context=no_trim,
                             summarize_fn=sectioned_summarize)
    window = MainWindow(worker=worker, model="fake")
    windows.append(window)
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.model_ready, timeout=10_000):
        pass
    panel = window.summarize
    announced: list[Any] = []
    worker.section_done.connect(lambda _request, section: announced.append(section))
    panel.source.setPlainText("A manual about lamps and batteries.")
    panel.method.setCurrentIndex(panel.method.findData("auto"))
    panel.run_button.click()
    qtbot.waitUntil(lambda: not panel.running, timeout=10_000)
    assert [s["title"] for s in announced] == ["1 Lamps", "2 Batteries"]
    assert [panel.outline.item(row).text() for row in range(panel.outline.count())] == [
        "1 Lamps \u00b7 p. 2", "2 Batteries \u00b7 pp. 3\u20134"]
    assert "1 rewritten, 1 replaced" in panel.outline.item(1).toolTip()
    assert not panel.outline_column.isHidden() and panel.section_view.isHidden()
    panel.outline.setCurrentRow(1)
    assert not panel.section_view.isHidden()
    assert panel.section_view.toPlainText() == ("2 Batteries (pp. 3\u20134)\n\n"
                                                "2 Batteries\n\nBatteries store.")
    assert panel.result_text() == FINAL  # the checked text replaced the streamed draft
    assert panel.notice.text() == ("model, section by section \u00b7 2 part(s) \u00b7 1.5 s "
                                   "\u00b7 4 sentences checked against the document: 2 "
                                   "rewritten, 1 replaced by its own sentences")
    saved = tmp_path / "summary.md"
    assert panel.save_result(saved)
    assert saved.read_text(encoding="utf-8") == FINAL
    panel.source.setPlainText("Another text.")
    panel.method.setCurrentIndex(panel.method.findData("extractive"))
    panel.run_button.click()  # a new run starts with an empty outline
    assert panel.outline.count() == 0 and panel.outline_column.isHidden()
    qtbot.waitUntil(lambda: not panel.running, timeout=10_000)
