"""Summarize and Translate panels: text in, streamed text out, through the chat model's prompts.

Both share one layout (input, options, Run / Stop / Copy / Save, output). They build chat messages
for an instruct model; dedicated summarizers and translation models plug in later behind the same
``run_requested`` signal. Only .txt / .md files open here (capped at 5 MB, read at once); PDF and
DOCX come with the document readers, which parse off the GUI thread.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from desktop.files import save_text

TEXT_SUFFIXES = (".txt", ".md", ".markdown")
MAX_TEXT_FILE = 5 * 1024 * 1024
LENGTHS = {"short": "in two or three sentences", "medium": "in one paragraph",
           "long": "section by section, with a heading for each section"}
LANGUAGES = ["English", "Simplified Chinese", "French", "German", "Spanish", "Italian",
             "Portuguese", "Japanese", "Korean", "Russian"]


class TaskPanel(QWidget):
    """Input text, a row of options, and a streamed result."""

    run_requested = Signal(list)  # chat messages to answer
    stop_requested = Signal()

    def __init__(self, run_label: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.running = False
        self.source = QPlainTextEdit()
        self.options = QHBoxLayout()
        self.open_button = QPushButton(self.tr("Open file…"))
        self.run_button = QPushButton(run_label)
        self.stop_button = QPushButton(self.tr("Stop"))
        self.copy_button = QPushButton(self.tr("Copy"))
        self.save_button = QPushButton(self.tr("Save…"))
        self.result = QTextBrowser()
        self.notice = QLabel()
        self.notice.setWordWrap(True)
        self.options.addWidget(self.open_button)
        self.options.addStretch(1)
        actions = QHBoxLayout()
        actions.addWidget(self.notice, 1)
        for button in (self.copy_button, self.save_button, self.stop_button, self.run_button):
            actions.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.source, 2)
        layout.addLayout(self.options)
        layout.addWidget(self.result, 3)
        layout.addLayout(actions)
        self._text = ""
        self.open_button.clicked.connect(self._choose_file)
        self.run_button.clicked.connect(self.run)
        self.stop_button.clicked.connect(self.stop_requested)
        self.copy_button.clicked.connect(
            lambda: QGuiApplication.clipboard().setText(self._text))
        self.save_button.clicked.connect(self._choose_save)
        self.set_running(False)

    # Subclasses say what to ask.
    def messages(self, text: str) -> list[dict[str, str]]:
        raise NotImplementedError

    def run(self) -> None:
        text = self.source.toPlainText().strip()
        if not text or self.running:
            return
        self._text = ""
        self.result.clear()
        self.notice.clear()
        self.set_running(True)
        self.run_requested.emit(self.messages(text))

    def append_token(self, text: str) -> None:
        self._text += text
        self.result.setPlainText(self._text)

    def finish(self, status: str, message: str = "") -> None:
        self.set_running(False)
        if status == "cancelled":
            self.notice.setText(self.tr("Stopped."))
        elif status == "failed":
            self.notice.setText(message)
        if self._text:
            self.result.setMarkdown(self._text)

    def set_running(self, running: bool) -> None:
        self.running = running
        self.run_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        self.copy_button.setEnabled(not running and bool(self._text))
        self.save_button.setEnabled(not running and bool(self._text))

    def result_text(self) -> str:
        return self._text

    def load_file(self, path: Path) -> bool:
        """Puts a text file's content in the input; False (with a message) if it can't."""
        if path.suffix.lower() not in TEXT_SUFFIXES:
            self.notice.setText(self.tr("{name}: only .txt and .md files can be opened here for "
                                        "now").format(name=path.name))
            return False
        try:
            if path.stat().st_size > MAX_TEXT_FILE:
                raise ValueError(self.tr("larger than 5 MB"))
            self.source.setPlainText(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as error:
            self.notice.setText(self.tr("{name}: cannot be read ({error})")
                                .format(name=path.name, error=error))
            return False
        self.notice.clear()
        return True

    def save_result(self, path: Path) -> bool:
        problem = save_text(path, self._text)
        if problem:
            self.notice.setText(problem)
        return problem is None

    def _choose_file(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, self.tr("Open a text file"), "",
                                              self.tr("Text (*.txt *.md *.markdown)"))
        if name:
            self.load_file(Path(name))

    def _choose_save(self) -> None:
        name, _ = QFileDialog.getSaveFileName(self, self.tr("Save the result"), "result.md")
        if name:
            self.save_result(Path(name))


class SummarizePanel(TaskPanel):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(self.tr("Summarize"), parent)
        self.source.setPlaceholderText(self.tr("Paste text or open a .txt / .md file…"))
        self.length = QComboBox()
        for key in LENGTHS:
            self.length.addItem(self.tr(key.capitalize()), key)
        self.length.setCurrentIndex(1)
        self.options.insertWidget(1, QLabel(self.tr("Length:")))
        self.options.insertWidget(2, self.length)

    def messages(self, text: str) -> list[dict[str, str]]:
        how = LENGTHS[self.length.currentData()]
        return [{"role": "system", "content": "You write faithful, concise summaries in the "
                 "language of the text."},
                {"role": "user", "content": f"Summarize the following text {how}.\n\n{text}"}]


class TranslatePanel(TaskPanel):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(self.tr("Translate"), parent)
        self.source.setPlaceholderText(self.tr("Text to translate…"))
        self.target = QComboBox()
        self.target.addItems(LANGUAGES)
        self.options.insertWidget(1, QLabel(self.tr("Into:")))
        self.options.insertWidget(2, self.target)

    def messages(self, text: str) -> list[dict[str, str]]:
        target = self.target.currentText()
        return [{"role": "system", "content": "You are a translator. Reply with the translation "
                 "only, keeping the formatting."},
                {"role": "user", "content": f"Translate into {target}:\n\n{text}"}]
