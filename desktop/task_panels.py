"""Summarize and Translate panels: text or a document in, streamed text out.

Both share one layout (input, options, Run / Stop / Copy / Save, progress, output) and say what
they want through ``run_requested``: Summarize asks for the engine's summarizer (extractive,
abstractive map-reduce, or auto), Translate for the engine's translation pipeline (a dedicated
translation model or any instruct model, with the text's structure kept).
Documents (txt, md, html, pdf, docx) are opened or dropped onto the input and read by the engine's
readers on another thread (desktop.document_loader).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from PySide6.QtCore import QLocale, QMimeData, Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from desktop.document_loader import DOCUMENT_SUFFIXES, DocumentLoader
from desktop.files import save_copy, save_text
from desktop.fonts import can_draw
from desktop.protocol import SummaryJob, TranslationJob
from desktop.translate_trust import MarkedTextBrowser, TrustReport
from engine.language import LANGUAGES, language_name
from engine.summarize import DEFAULT_METHOD
from engine.translate import SECOND_PASS_STAGES

# The languages offered first (BCP-47); a dedicated model refuses pairs it wasn't trained for.
LANGUAGE_TAGS = LANGUAGES  # the languages the engine detects and prompts for, in picker order


def dropped_file(mime: QMimeData) -> Path | None:
    """The first local file in a drag, if there is one."""
    for url in mime.urls():
        if url.isLocalFile():
            return Path(url.toLocalFile())
    return None


def language_label(tag: str) -> str:
    """A language's name in its own language with the English name beside it ("Deutsch
    (German)", "中文 (Chinese)"), so anyone finds theirs; the English name alone where Qt has
    no native name or no installed font can draw it (boxes help nobody)."""
    english = language_name(tag)
    if tag == "en":
        return "English"  # Qt's native name is "American English"
    native = QLocale(tag).nativeLanguageName() if tag not in ("und", "auto") else ""
    native = native[:1].upper() + native[1:]
    if not native or native.casefold() == english.casefold() or not can_draw(native, tag):
        return english
    return f"{native} ({english})"


class DocumentInput(QPlainTextEdit):
    """The input box: typed or pasted text, and documents dropped on it (read, not inserted
    as a file path)."""

    file_dropped = Signal(Path)

    def canInsertFromMimeData(self, source: QMimeData) -> bool:  # noqa: N802 (Qt's name)
        return dropped_file(source) is not None or super().canInsertFromMimeData(source)

    def insertFromMimeData(self, source: QMimeData) -> None:  # noqa: N802 (Qt's name)
        path = dropped_file(source)
        if path is None:
            super().insertFromMimeData(source)
        else:
            self.file_dropped.emit(path)


class TaskPanel(QWidget):
    """Input text, a row of options, and a streamed result."""

    run_requested = Signal(object)  # the job to run: a SummaryJob or a TranslationJob
    stop_requested = Signal()

    def __init__(self, run_label: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.running = False
        self.reading = False
        self.source = DocumentInput()
        self.options = QHBoxLayout()
        self.open_button = QPushButton(self.tr("Open document…"))
        self.run_button = QPushButton(run_label)
        self.stop_button = QPushButton(self.tr("Stop"))
        self.copy_button = QPushButton(self.tr("Copy"))
        self.save_button = QPushButton(self.tr("Save…"))
        self.result = MarkedTextBrowser()  # a translation's marked segments have tooltips
        self.result.setOpenLinks(False)  # nothing leaves the machine, not even a click
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.notice = QLabel()
        self.notice.setWordWrap(True)
        self.options.addWidget(self.open_button)
        self.options.addStretch(1)
        actions = QHBoxLayout()
        actions.addWidget(self.notice, 1)
        actions.addWidget(self.progress)
        for button in (self.copy_button, self.save_button, self.stop_button, self.run_button):
            actions.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.source, 2)
        layout.addLayout(self.options)
        layout.addWidget(self.result, 3)
        self.below_result = QVBoxLayout()  # what a panel shows about its result (Translate)
        layout.addLayout(self.below_result)
        layout.addLayout(actions)
        self._text = ""
        self.document: Path | None = None  # the file the input came from, while unedited
        self.document_text = ""
        self.loader = DocumentLoader(self)
        self.loader.loaded.connect(self._on_document)
        self.loader.failed.connect(self._on_document_failed)
        self.source.file_dropped.connect(self.load_file)
        self.open_button.clicked.connect(self._choose_file)
        self.run_button.clicked.connect(self.run)
        self.stop_button.clicked.connect(self.stop_requested)
        self.copy_button.clicked.connect(
            lambda: QGuiApplication.clipboard().setText(self._text))
        self.save_button.clicked.connect(self._choose_save)
        self.set_running(False)

    # Subclasses say what to ask.
    def request(self, text: str) -> SummaryJob | TranslationJob:
        raise NotImplementedError

    def clear_result(self) -> None:
        """Empties the result, its notice and what Copy / Save would take."""
        self._text = ""
        self.result.clear()
        self.notice.clear()
        self.set_running(self.running)

    def run(self) -> None:
        text = self.source.toPlainText().strip()
        if not text or self.running or self.reading:
            return
        self.clear_result()
        self.set_running(True)
        self.run_requested.emit(self.request(text))

    def append_token(self, text: str) -> None:
        self._text += text
        self.result.setPlainText(self._text)

    def show_progress(self, stage: str, done: int, total: int) -> None:
        """How far a long text is: parts summarized or translated, checked again, combining."""
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        if stage.startswith("combining"):
            self.progress.setFormat(self.tr("Combining the parts"))
        elif stage == "sections":
            self.progress.setFormat(self.tr("Section {done} of {total}").format(
                done=min(done + 1, total), total=total))
        elif stage == "checking":
            self.progress.setFormat(self.tr("Checking against the document"))
        elif stage in SECOND_PASS_STAGES:
            self.progress.setFormat(self.tr("Checking again: {done} of {total}").format(
                done=min(done + 1, total), total=total))
        else:
            self.progress.setFormat(self.tr("Part {done} of {total}").format(
                done=min(done + 1, total), total=total))
        self.progress.setVisible(self.running and (total > 1 or stage.startswith("combining")
                                                   or stage == "checking"))

    def finish(self, status: str, message: str = "", stats: dict[str, Any] | None = None,
               ) -> None:
        self.set_running(False)
        self.progress.setVisible(False)
        if stats and stats.get("summary") is not None and status != "cancelled":
            self._text = stats["summary"]  # the summarizer's final text (extractive: all of it)
            self.notice.setText(self.describe(stats))
        if status == "cancelled":
            self.notice.setText(self.tr("Stopped."))
        elif status == "failed":
            self.notice.setText(message)
        self.set_running(False)
        if self._text:
            self.result.setMarkdown(self._text)

    def describe(self, stats: dict[str, Any]) -> str:
        """One line about how a result was made."""
        return ""

    def set_running(self, running: bool) -> None:
        self.running = running
        self.run_button.setEnabled(not running and not self.reading)
        self.stop_button.setEnabled(running)
        self.copy_button.setEnabled(not running and bool(self._text))
        self.save_button.setEnabled(not running and bool(self._text))
        self.open_button.setEnabled(not running)

    def result_text(self) -> str:
        return self._text

    def unedited_document(self) -> Path | None:
        """The opened file, if the input still holds exactly what was read from it."""
        if self.document is not None and self.source.toPlainText() == self.document_text:
            return self.document
        return None

    # Documents ---------------------------------------------------------------------------

    def load_file(self, path: Path) -> None:
        """Reads a document into the input in the background (``notice`` says how it went)."""
        if self.running:
            return
        self.reading = True
        self.set_running(False)
        self.notice.setText(self.tr("Reading {name}…").format(name=path.name))
        self.loader.load(path)

    def _on_document(self, _request: int, path: str, text: str, pages: int) -> None:
        self.reading = False
        self.document, self.document_text = Path(path), text
        name = self.document.name
        self.source.setPlainText(text)
        self.clear_result()  # the last result belonged to the text this replaces
        if pages:
            self.notice.setText(self.tr("{name}: {pages} pages, {count} characters").format(
                name=name, pages=pages, count=len(text)))
        else:
            self.notice.setText(self.tr("{name}: {count} characters").format(
                name=name, count=len(text)))
        self.set_running(False)

    def _on_document_failed(self, _request: int, message: str) -> None:
        self.reading = False
        self.notice.setText(message)
        self.set_running(False)

    def save_result(self, path: Path) -> bool:
        problem = save_text(path, self._text)
        if problem:
            self.notice.setText(problem)
        return problem is None

    def _choose_file(self) -> None:
        patterns = " ".join(f"*{suffix}" for suffix in DOCUMENT_SUFFIXES)
        name, _ = QFileDialog.getOpenFileName(self, self.tr("Open a document"), "",
                                              self.tr("Documents ({patterns})").format(
                                                  patterns=patterns))
        if name:
            self.load_file(Path(name))

    def _choose_save(self) -> None:
        name, _ = QFileDialog.getSaveFileName(self, self.tr("Save the result"), "result.md")
        if name:
            self.save_result(Path(name))

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt's name)
        if dropped_file(event.mimeData()) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt's name)
        path = dropped_file(event.mimeData())
        if path is not None:
            event.acceptProposedAction()
            self.load_file(path)


class SummarizePanel(TaskPanel):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(self.tr("Summarize"), parent)
        self.setAcceptDrops(True)
        self.source.setPlaceholderText(self.tr(
            "Paste text, or open or drop a document (txt, md, html, pdf, docx)…"))
        self.length = QComboBox()
        for key, label in (("short", self.tr("Short")), ("medium", self.tr("Medium")),
                           ("long", self.tr("Long, by section"))):
            self.length.addItem(label, key)
        self.length.setCurrentIndex(1)
        self.method = QComboBox()
        for key, label in (("extractive", self.tr("Key sentences (no model)")),
                           ("auto", self.tr("Model writes it")),
                           ("abstractive", self.tr("Model, every part"))):
            self.method.addItem(label, key)
        self.method.setCurrentIndex(self.method.findData(DEFAULT_METHOD))
        self.method.setToolTip(self.tr(
            "Key sentences: the text's own most central sentences, instantly, without a model; "
            "nothing is invented. Model writes it: the model summarizes the text section by "
            "section (a long section through its key sentences), and every sentence it writes "
            "is checked against the document: one naming something the document does not have "
            "is rewritten or replaced by the document's own sentence. Model, every part: the "
            "same, reading every part of each section (slower)."))
        self.options.insertWidget(1, QLabel(self.tr("Length:")))
        self.options.insertWidget(2, self.length)
        self.options.insertWidget(3, QLabel(self.tr("Method:")))
        self.options.insertWidget(4, self.method)
        # The outline fills in as sections are summarized; a click shows the section's text.
        self.sections: list[dict[str, Any]] = []
        self.outline = QListWidget()
        self.outline.setAccessibleName(self.tr("Sections"))
        self.section_view = QPlainTextEdit()
        self.section_view.setReadOnly(True)
        self.section_view.setAccessibleName(self.tr("Section text"))
        column = QSplitter(Qt.Orientation.Vertical)
        column.addWidget(self.outline)
        column.addWidget(self.section_view)
        self.outline_column = column
        column.setVisible(False)
        self.section_view.setVisible(False)
        beside = QSplitter(Qt.Orientation.Horizontal)
        layout = self.layout()
        assert isinstance(layout, QVBoxLayout)
        at = layout.indexOf(self.result)
        layout.removeWidget(self.result)
        beside.addWidget(column)
        beside.addWidget(self.result)
        beside.setStretchFactor(1, 2)
        layout.insertWidget(at, beside, 3)
        self.outline.currentRowChanged.connect(self.show_section)

    def request(self, text: str) -> SummaryJob:
        document = self.unedited_document()
        # An opened, unedited document is read again on the worker from its file, so the summary
        # keeps its structure (headings, pages); the text alone would be parsed as plain text.
        return SummaryJob(text=text, name=document.name if document else "text",
                          method=self.method.currentData(), length=self.length.currentData(),
                          path=str(document) if document is not None else None)

    def clear_result(self) -> None:
        super().clear_result()
        self.sections = []
        self.outline.clear()
        self.section_view.clear()
        self.outline_column.setVisible(False)
        self.section_view.setVisible(False)

    def add_section(self, section: dict[str, Any]) -> None:
        """One section's checked summary, added to the outline as it is done."""
        self.sections.append(section)
        where = f" · {section['where']}" if section.get("where") else ""
        item = QListWidgetItem(f"{section['title']}{where}")
        grounding = section.get("grounding") or {}
        item.setToolTip("\n\n".join(filter(None, [
            section.get("summary", ""), self.grounding_note(grounding)])))
        self.outline.addItem(item)
        self.outline_column.setVisible(True)

    def show_section(self, row: int) -> None:
        """The clicked section's own text (its pages, in a PDF) beside the summary."""
        if not 0 <= row < len(self.sections):
            return
        section = self.sections[row]
        where = f" ({section['where']})" if section.get("where") else ""
        self.section_view.setPlainText(f"{section['title']}{where}\n\n{section.get('text', '')}")
        self.section_view.setVisible(True)

    def grounding_note(self, grounding: dict[str, Any]) -> str:
        """How the model's sentences fared against the document, in a few words."""
        if not grounding or not grounding.get("checked"):
            return ""
        return self.tr("{checked} sentences checked against the document: {regenerated} "
                       "rewritten, {replaced} replaced by its own sentences").format(
            checked=grounding["checked"], regenerated=grounding.get("regenerated", 0),
            replaced=grounding.get("replaced", 0))

    def describe(self, stats: dict[str, Any]) -> str:
        methods = {"extractive": self.tr("key sentences"), "abstractive": self.tr("model"),
                   "sectioned": self.tr("model, section by section")}
        line = self.tr("{method} · {parts} part(s) · {seconds:.1f} s").format(
            method=methods.get(stats.get("method", ""), stats.get("method", "")),
            parts=stats.get("chunks", 1), seconds=stats.get("seconds", 0.0))
        note = self.grounding_note(stats.get("grounding") or {})
        return f"{line} · {note}" if note else line


class TranslatePanel(TaskPanel):
    """Text or a document through the engine's translation pipeline: the structure (paragraphs,
    lists, code, HTML tags, DOCX formatting) is kept; an opened file is translated as a file, so
    Save writes the same format (a .docx stays a .docx)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(self.tr("Translate"), parent)
        self.setAcceptDrops(True)
        self.source.setPlaceholderText(self.tr(
            "Text to translate, or open or drop a document…"))
        self.source_language = QComboBox()
        self.source_language.addItem(self.tr("Detect language"), "auto")
        self.target = QComboBox()
        for tag in LANGUAGE_TAGS:
            self.source_language.addItem(language_label(tag), tag)
            self.target.addItem(language_label(tag), tag)
        self.options.insertWidget(1, QLabel(self.tr("From:")))
        self.options.insertWidget(2, self.source_language)
        self.options.insertWidget(3, QLabel(self.tr("Into:")))
        self.options.insertWidget(4, self.target)
        self.round_trip = QCheckBox(self.tr("Check by translating back"))
        self.round_trip.setToolTip(self.tr(
            "Translate every segment back and compare it with the original: a better "
            "confidence figure for each segment, but it takes twice as long."))
        self.options.insertWidget(5, self.round_trip)
        self.trust = TrustReport()
        self.below_result.addWidget(self.trust)
        # Translated files wait here until saved; removed with the panel, or at exit.
        self._scratch = tempfile.TemporaryDirectory(prefix="nightlamp-translations-")
        self._outputs = Path(self._scratch.name)
        self.translated_file: Path | None = None

    def clear_result(self) -> None:
        self.translated_file = None
        self.trust.clear()
        super().clear_result()

    def request(self, text: str) -> TranslationJob:
        self.translated_file = None
        source, target = self.source_language.currentData(), self.target.currentData()
        round_trip = self.round_trip.isChecked()
        document = self.unedited_document()
        if document is None:
            return TranslationJob(target=target, source=source, text=text,
                                  round_trip=round_trip)
        suffix = ".md" if document.suffix.lower() == ".pdf" else document.suffix.lower()
        return TranslationJob(target=target, source=source, path=str(document),
                              output=str(self._outputs / f"{document.stem}.{target}{suffix}"),
                              round_trip=round_trip)

    def finish(self, status: str, message: str = "", stats: dict[str, Any] | None = None,
               ) -> None:
        if stats and stats.get("translation") is not None and status != "cancelled":
            self._text = stats["translation"]
            output = stats.get("output")
            self.translated_file = Path(output) if output else None
            self.notice.setText(self.describe(stats))
        super().finish(status, message, None)
        if stats and stats.get("translation") is not None and status != "cancelled":
            # After the final text is shown: marks go on the rendered view (see translate_trust)
            self.trust.show_report(stats, self.result, language_label)

    def describe(self, stats: dict[str, Any]) -> str:
        line = self.tr("{source} → {target} · {segments} segments · {seconds:.1f} s").format(
            source=language_label(stats.get("source", "?")),
            target=language_label(stats.get("target", "?")),
            segments=stats.get("segments", 0), seconds=stats.get("seconds", 0.0))
        flagged = stats.get("flagged", 0)
        if flagged:
            line += self.tr(" · {count} kept untranslated or to check").format(count=flagged)
        return line

    def _choose_save(self) -> None:
        if self.translated_file is None or not self.translated_file.is_file():
            super()._choose_save()
            return
        name, _ = QFileDialog.getSaveFileName(self, self.tr("Save the translation"),
                                              self.translated_file.name)
        if name:
            self.save_translated_file(Path(name))

    def save_translated_file(self, path: Path) -> bool:
        """Copies the translated document (same format as the opened one) to ``path``."""
        assert self.translated_file is not None
        problem = save_copy(self.translated_file, path)
        if problem:
            self.notice.setText(problem)
        return problem is None
