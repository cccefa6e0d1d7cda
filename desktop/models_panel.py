"""The Models panel: installed models, import and pull (with progress), remove, and which model
and device each panel uses.

Listing reads small manifest files, so it runs here; imports and pulls run in a child process
(desktop.model_jobs), and removal goes through the main window, which first has the worker close
the model's sessions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.model_jobs import JobProgress
from engine.model_list import list_models
from engine.store import DEFAULT_MODEL_NAME, set_default_model

PRECISIONS = ("int4", "int8", "fp16", "fp32")
NAME_ROLE = Qt.ItemDataRole.UserRole


class ModelsPanel(QWidget):
    panel_model_changed = Signal(str, str)  # panel ("chat" ...), model name ("" = default)
    device_changed = Signal(str)  # auto / cpu / cuda
    models_changed = Signal()  # something was installed, removed or made the default
    remove_requested = Signal(str)  # a model name, confirmed by the user

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[dict[str, Any]] = []
        self.table = QTableWidget(0, 6)
        self.table.setHorizontalHeaderLabels([
            self.tr("Name"), self.tr("Size"), self.tr("Precision"), self.tr("Context"),
            self.tr("Tasks"), self.tr("Location")])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(5, QHeaderView.ResizeMode.Stretch)
        self.import_file_button = QPushButton(self.tr("Import GGUF file…"))
        self.import_folder_button = QPushButton(self.tr("Import Hugging Face folder…"))
        self.precision = QComboBox()
        for precision in PRECISIONS:
            self.precision.addItem(precision, precision)
        self.precision.setToolTip(self.tr("int4: smallest and fastest on a CPU; fp16: for GPUs; "
                                          "fp32: reference"))
        self.pull_button = QPushButton(self.tr("Download default model"))
        self.default_button = QPushButton(self.tr("Make default"))
        self.remove_button = QPushButton(self.tr("Remove…"))
        self.jobs = JobProgress()

        self.choices: dict[str, QComboBox] = {}
        usage = QGroupBox(self.tr("Use"))
        form = QFormLayout(usage)
        for panel, label in (("chat", self.tr("Chat")), ("summarize", self.tr("Summarize")),
                             ("translate", self.tr("Translate"))):
            combo = QComboBox()
            combo.currentIndexChanged.connect(
                lambda _index, p=panel, c=combo: self._choice_made(p, c))
            self.choices[panel] = combo
            form.addRow(label, combo)
        self.device = QComboBox()
        for key, label in (("auto", self.tr("Auto (GPU when usable)")), ("cpu", self.tr("CPU")),
                           ("cuda", self.tr("GPU (CUDA)"))):
            self.device.addItem(label, key)
        self.device.currentIndexChanged.connect(self._device_chosen)
        self.device_in_use = QLabel("")
        form.addRow(self.tr("Device"), self.device)
        form.addRow(self.tr("In use"), self.device_in_use)

        buttons = QHBoxLayout()
        for widget in (self.import_file_button, self.import_folder_button,
                       QLabel(self.tr("as")), self.precision, self.pull_button):
            buttons.addWidget(widget)
        buttons.addStretch(1)
        buttons.addWidget(self.default_button)
        buttons.addWidget(self.remove_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.jobs)
        layout.addWidget(usage)

        self._filling = False
        self.import_file_button.clicked.connect(self._choose_file)
        self.import_folder_button.clicked.connect(self._choose_folder)
        self.pull_button.clicked.connect(
            lambda: self.jobs.run(["models", "pull"], self.tr("Downloading…")))
        self.default_button.clicked.connect(self._make_default)
        self.remove_button.clicked.connect(self._confirm_remove)
        self.jobs.busy_changed.connect(lambda _busy: self._update_buttons())
        self.jobs.finished.connect(self._on_job_finished)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.refresh()

    # The list ---------------------------------------------------------------------------

    def refresh(self, panel_models: dict[str, str] | None = None,
                device: str | None = None) -> None:
        """Re-reads the store; optionally sets each panel's chosen model and the device."""
        self.rows = list_models()
        self.table.setRowCount(len(self.rows))
        for index, row in enumerate(self.rows):
            name = row["name"] + (self.tr(" (default)") if row.get("default") else "") \
                + (self.tr(" (built in)") if row.get("bundled") else "")
            if "error" in row:
                cells = [name, "", "", "", self.tr("broken: {error}").format(error=row["error"]),
                         row["path"]]
            else:
                cells = [name, f"{row['size_mb']:.0f} MB", row["precision"],
                         f"{row['context']:,}", self.task_names(row["tasks"]), row["path"]]
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(NAME_ROLE, row["name"])
                item.setToolTip(text)
                self.table.setItem(index, column, item)
        self.table.resizeColumnsToContents()
        self._filling = True
        usable = [row["name"] for row in self.rows if "error" not in row]
        for panel, combo in self.choices.items():
            chosen = (panel_models or {}).get(panel, combo.currentData() or "")
            combo.clear()
            combo.addItem(self.tr("Default model"), "")
            for name in usable:
                combo.addItem(name, name)
            if chosen and chosen not in usable:  # e.g. a folder given with -m: keep showing it
                combo.addItem(chosen, chosen)
            combo.setCurrentIndex(max(0, combo.findData(chosen)))
        if device is not None:
            self.device.setCurrentIndex(max(0, self.device.findData(device)))
        self._filling = False
        self._update_buttons()

    def task_names(self, tasks: list[str]) -> str:
        """The manifest's task keys in the UI's words ("chat, summarize" in English)."""
        names = {"chat": self.tr("chat"), "complete": self.tr("complete"),
                 "summarize": self.tr("summarize"), "translate": self.tr("translate")}
        return self.tr(", ").join(names.get(task, task) for task in tasks)

    def selected_name(self) -> str | None:
        items = self.table.selectedItems()
        return str(items[0].data(NAME_ROLE)) if items else None

    def _update_buttons(self) -> None:
        busy = self.jobs.busy()
        name = self.selected_name()
        selected = name is not None
        # A model the app bundle ships is read-only: it goes away with the app, not before.
        built_in = any(row["name"] == name and row.get("bundled") for row in self.rows)
        self.default_button.setEnabled(selected and not busy)
        self.remove_button.setEnabled(selected and not busy and not built_in)
        for button in (self.import_file_button, self.import_folder_button, self.pull_button):
            button.setEnabled(not busy)
        self.pull_button.setVisible(DEFAULT_MODEL_NAME not in
                                    [row["name"] for row in self.rows])

    def _choice_made(self, panel: str, combo: QComboBox) -> None:
        if not self._filling:
            self.panel_model_changed.emit(panel, combo.currentData() or "")

    def _device_chosen(self, _index: int) -> None:
        if not self._filling:
            self.device_changed.emit(self.device.currentData())

    def set_device_in_use(self, text: str) -> None:
        self.device_in_use.setText(text)

    def _make_default(self) -> None:
        name = self.selected_name()
        if name:
            set_default_model(name)
            self.refresh()
            self.models_changed.emit()

    def _confirm_remove(self) -> None:
        name = self.selected_name()
        if name is None:
            return
        answer = QMessageBox.question(self, self.tr("Remove model"), self.tr(
            "Delete the model {name} from this computer?").format(name=name))
        if answer == QMessageBox.StandardButton.Yes:
            self.remove_requested.emit(name)

    # Import and pull --------------------------------------------------------------------

    def _choose_file(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, self.tr("Import a GGUF file"), "",
                                              self.tr("GGUF models (*.gguf)"))
        if name:
            self.start_import(Path(name))

    def _choose_folder(self) -> None:
        name = QFileDialog.getExistingDirectory(self, self.tr("Import a Hugging Face folder"))
        if name:
            self.start_import(Path(name))

    def start_import(self, path: Path) -> None:
        self.jobs.run(["models", "import", str(path), "--precision",
                       self.precision.currentData()],
                      self.tr("Importing {name}…").format(name=path.name))

    def _on_job_finished(self, ok: bool, _message: str) -> None:
        self.refresh()
        if ok:
            self.models_changed.emit()
