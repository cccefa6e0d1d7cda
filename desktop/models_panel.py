"""The Models panel: installed models, import and pull (with progress), remove, measured
translation quality, and which model and device each panel uses.

Listing reads small manifest files (and each model's small quality.json), so it runs here;
imports, pulls and quality measurements run in a child process (desktop.model_jobs,
desktop.model_quality), and removal goes through the main window, which first has the worker
close the model's sessions.
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
from desktop.model_quality import load_figures, measure_arguments, parse_results, save_figures
from desktop.server_switch import LocalServer, ServerBox
from engine.model_list import list_models
from engine.store import DEFAULT_MODEL_NAME, set_default_model
from engine.translate.evaluate import BUILTIN_PAIRS, pair_key

PRECISIONS = ("int4", "int8", "fp16", "fp32")
QUALITY, LOCATION = 5, 6  # columns
NAME_ROLE = Qt.ItemDataRole.UserRole


class ModelsPanel(QWidget):
    panel_model_changed = Signal(str, str)  # panel ("chat" ...), model name ("" = default)
    device_changed = Signal(str)  # auto / cpu / cuda
    models_changed = Signal()  # something was installed, removed or made the default
    remove_requested = Signal(str)  # a model name, confirmed by the user

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[dict[str, Any]] = []
        self.table = QTableWidget(0, 7)
        self.table.setHorizontalHeaderLabels([
            self.tr("Name"), self.tr("Size"), self.tr("Precision"), self.tr("Context"),
            self.tr("Tasks"), self.tr("Translation quality"), self.tr("Location")])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(LOCATION,
                                                           QHeaderView.ResizeMode.Stretch)
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
        self.measure_button = QPushButton(self.tr("Measure translation quality"))
        self.measure_button.setToolTip(self.tr(
            "Translate a few dozen built-in sentences (English with German, French and Chinese, "
            "both ways) and compare them with reference translations (chrF: 0, nothing alike, "
            "to 1, identical). Takes a few minutes."))
        self._measuring: str | None = None  # the model being measured
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
        buttons.addWidget(self.measure_button)
        buttons.addWidget(self.default_button)
        buttons.addWidget(self.remove_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.jobs)
        layout.addWidget(usage)
        self.server = LocalServer(self)
        self.server_box = ServerBox(self.server)
        layout.addWidget(self.server_box)

        self._filling = False
        self.import_file_button.clicked.connect(self._choose_file)
        self.import_folder_button.clicked.connect(self._choose_folder)
        self.pull_button.clicked.connect(
            lambda: self.jobs.run(["models", "pull"], self.tr("Downloading…")))
        self.default_button.clicked.connect(self._make_default)
        self.remove_button.clicked.connect(self._confirm_remove)
        self.measure_button.clicked.connect(self.measure_selected)
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
                         "", row["path"]]
            else:
                cells = [name, f"{row['size_mb']:.0f} MB", row["precision"],
                         f"{row['context']:,}", self.task_names(row["tasks"]),
                         self.quality_text(load_figures(row)), row["path"]]
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(NAME_ROLE, row["name"])
                item.setToolTip(text)
                if column == QUALITY and text:
                    item.setToolTip(self.tr(
                        "{figures}\nchrF against built-in reference translations: 0, nothing "
                        "alike, to 1, identical. Higher is better; compare models on the same "
                        "pair.").format(figures=text))
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

    def quality_text(self, figures: dict[str, dict[str, Any]]) -> str:
        """The measured figures, one per pair: "en→de 0.52 chrF · en→zh 0.18"."""
        order = [pair_key(source, target) for source, target in BUILTIN_PAIRS]
        shown = [f"{key} {figure['chrf']:.2f}" for key, figure in sorted(
            figures.items(), key=lambda item: (order.index(item[0]) if item[0] in order
                                               else len(order), item[0]))]
        if not shown:
            return ""
        shown[0] += self.tr(" chrF")
        return self.tr(" · ").join(shown)

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
        broken = any(row["name"] == name and "error" in row for row in self.rows)
        self.measure_button.setEnabled(selected and not busy and not broken)
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

    def _on_job_finished(self, ok: bool, message: str) -> None:
        measured, self._measuring = self._measuring, None
        if measured is not None:
            if ok:
                self._keep_figures(measured, message)
            self.refresh()
            return
        self.refresh()
        if ok:
            self.models_changed.emit()

    # Translation quality ----------------------------------------------------------------

    def measure_selected(self) -> None:
        """Measures the selected model on every built-in pair it translates (a child process
        with progress and Cancel; see desktop.model_quality)."""
        name = self.selected_name()
        if name is None or self.jobs.busy():
            return
        self._measuring = name
        self.jobs.run(measure_arguments(name, self.device.currentData()),
                      self.tr("Measuring the translation quality of {name}…").format(name=name))

    def _keep_figures(self, name: str, line: str) -> None:
        row = next((row for row in self.rows if row["name"] == name), None)
        try:
            figures = parse_results(line)
        except (ValueError, KeyError, TypeError):
            self.jobs.status.setText(self.tr("Failed: the measurement gave no result."))
            return
        shown = self.quality_text({key: result.to_json() for key, result in figures.items()})
        try:
            if row is None:
                raise OSError("the model is no longer listed")
            save_figures(row, figures)
        except OSError as error:
            self.jobs.status.setText(self.tr("{name}: {figures} (not kept: {error})").format(
                name=name, figures=shown, error=error))
            return
        self.jobs.status.setText(self.tr("Translation quality of {name}: {figures}").format(
            name=name, figures=shown))
