"""Imports and pulls run as a child ``nightlamp models ...`` process, watched with QProcess.

Why a process and not a thread: an import is minutes of CPU-heavy Python (dequantizing, building
graphs, a check pass) that would hold the GIL and stall the window, and a process can be killed
to cancel at once without leaving a half-written model (the importer writes into a hidden
temporary folder and renames it only when complete). QProcess delivers output on the GUI thread.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget


def nightlamp_command() -> list[str]:
    """How to run the ``nightlamp`` CLI from here: the bundle's console executable, or this
    Python. (On Windows and macOS the window runs as ``nightlamp-gui``, which has no standard
    streams to report progress on; its console sibling has. Qt starts a console program from a
    window without opening a console.)"""
    if getattr(sys, "frozen", False):
        executable = Path(sys.executable)
        console = executable.with_name("nightlamp" + executable.suffix)
        return [str(console if console.is_file() else executable)]
    return [sys.executable, "-m", "commands"]


class ModelJob(QObject):
    """One ``nightlamp models import|pull`` run with progress, result and cancel."""

    progress = Signal(str, int, int)  # stage, done, total
    finished = Signal(bool, str)  # succeeded, the last line the command printed (or why not)

    def __init__(self, arguments: list[str], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.arguments = [*arguments, "--json-progress"]
        self.process = QProcess(self)
        self.process.readyReadStandardError.connect(self._read_errors)
        self.process.finished.connect(self._on_finished)
        self.process.errorOccurred.connect(self._on_error)
        self._last_error = ""
        self._errors = b""  # stderr not yet split into lines
        self._cancelled = False
        self._done = False

    def start(self) -> None:
        program, *arguments = nightlamp_command()
        self.process.start(program, arguments + self.arguments)

    def running(self) -> bool:
        return self.process.state() != QProcess.ProcessState.NotRunning

    def cancel(self) -> None:
        if self.running():
            self._cancelled = True
            self.process.kill()

    def _read_errors(self) -> None:
        self._errors += bytes(self.process.readAllStandardError().data())
        *lines, self._errors = self._errors.split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", "replace").strip()
            if line.startswith("{"):
                try:
                    update = json.loads(line)
                    self.progress.emit(str(update["stage"]), int(update["done"]),
                                       int(update["total"]))
                    continue
                except (ValueError, KeyError, TypeError):
                    pass
            if line:
                self._last_error = line.removeprefix("nightlamp: error: ")

    def _on_finished(self, code: int, status: QProcess.ExitStatus) -> None:
        self._read_errors()
        self._errors += b"\n"
        self._read_errors()  # the last line, even without a newline
        output = bytes(self.process.readAllStandardOutput().data()).decode("utf-8", "replace")
        lines = [line for line in output.splitlines() if line.strip()]
        if self._cancelled:
            self._finish(False, self.tr("Cancelled."))
        elif code == 0 and status == QProcess.ExitStatus.NormalExit:
            self._finish(True, lines[-1] if lines else "")
        else:
            self._finish(False, self._last_error or self.tr("the command failed (exit code "
                                                            "{code})").format(code=code))

    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._finish(False, self.tr("could not start {program}").format(
                program=nightlamp_command()[0]))

    def _finish(self, ok: bool, message: str) -> None:
        if not self._done:  # a failed start reports once, not again from finished
            self._done = True
            self.finished.emit(ok, message)


class JobProgress(QWidget):
    """A status line, a progress bar and Cancel for one ModelJob at a time."""

    finished = Signal(bool, str)
    busy_changed = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.job: ModelJob | None = None
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.bar = QProgressBar()
        self.cancel_button = QPushButton(self.tr("Cancel"))
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.status, 1)
        layout.addWidget(self.bar)
        layout.addWidget(self.cancel_button)
        self.cancel_button.clicked.connect(self.cancel)
        self._show_running(False)

    def busy(self) -> bool:
        return self.job is not None

    def run(self, arguments: list[str], status: str) -> None:
        if self.job is not None:
            return
        self.job = ModelJob(arguments, self)
        self.job.progress.connect(self._on_progress)
        self.job.finished.connect(self._on_finished)
        self.bar.setRange(0, 0)  # busy until the first progress line
        self.status.setText(status)
        self._show_running(True)
        self.busy_changed.emit(True)
        self.job.start()

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()

    def _show_running(self, running: bool) -> None:
        self.bar.setVisible(running)
        self.cancel_button.setVisible(running)

    def _on_progress(self, stage: str, done: int, total: int) -> None:
        self.status.setText(stage.capitalize())
        if total > 0:
            self.bar.setRange(0, 1000)
            self.bar.setValue(int(1000 * done / total))

    def _on_finished(self, ok: bool, message: str) -> None:
        job, self.job = self.job, None
        if job is not None:
            job.deleteLater()
        self._show_running(False)
        self.status.setText(message if ok else self.tr("Failed: {message}").format(
            message=message))
        self.busy_changed.emit(False)
        self.finished.emit(ok, message)
