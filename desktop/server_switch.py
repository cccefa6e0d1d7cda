"""The app's *Server* switch: ``nightlamp serve`` as a child process, and the box that turns it on.

Why a process: the server runs its own copies of the models on threads of its own, and the app's
rule is that one worker thread owns every session in this process; a child also keeps the
server's HTTP stack out of the window's start-up and can be stopped at once. It listens on
loopback only (the command's default), so turning it on exposes nothing to the network.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QProcess, QTimer, Signal
from PySide6.QtWidgets import QCheckBox, QGroupBox, QHBoxLayout, QLabel, QSpinBox, QWidget

from desktop.model_jobs import nightlamp_command
from engine.server import DEFAULT_PORT

STOP_GRACE_MS = 5_000  # after SIGTERM, the server gets this long before it is killed
READY_PREFIX = "Serving at "  # the line `nightlamp serve` prints once it listens


class LocalServer(QObject):
    """One ``nightlamp serve`` child process.

    ``state_changed(state, detail)``: "starting"; "on" with the address; "off"; "failed" with
    the server's own one-line reason (a port in use, a broken model).
    """

    state_changed = Signal(str, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.url = ""
        self.state = "off"
        self._process: QProcess | None = None
        self._output = b""
        self._last_error = ""
        self._stopping = False

    def start(self, port: int = DEFAULT_PORT) -> None:
        if self._process is not None:
            return
        process = QProcess(self)
        process.readyReadStandardOutput.connect(self._read_output)
        process.readyReadStandardError.connect(self._read_errors)
        process.finished.connect(self._on_finished)
        process.errorOccurred.connect(self._on_error)
        self._process, self._output, self._last_error = process, b"", ""
        self._stopping = False
        self._set("starting", "")
        program, *arguments = nightlamp_command()
        process.start(program, [*arguments, "serve", "--port", str(port)])

    def stop(self, wait: bool = False) -> None:
        """Asks the server to stop (SIGTERM), killing it if it has not after STOP_GRACE_MS.

        ``wait``: block until it has ended (the window closing); else ``state_changed`` says
        "off" when it has, and the window goes on meanwhile.
        """
        process = self._process
        if process is None:
            return
        self._stopping = True
        process.terminate()
        if not wait:
            QTimer.singleShot(STOP_GRACE_MS, lambda: self._kill(process))
        elif not process.waitForFinished(STOP_GRACE_MS):
            self._kill(process)
            process.waitForFinished(1_000)

    def _kill(self, process: QProcess) -> None:
        if process is self._process and process.state() != QProcess.ProcessState.NotRunning:
            process.kill()

    def running(self) -> bool:
        return self._process is not None

    def _set(self, state: str, detail: str) -> None:
        self.state = state
        self.url = detail if state == "on" else ""
        self.state_changed.emit(state, detail)

    def _read_output(self) -> None:
        if self._process is None:
            return
        self._output += bytes(self._process.readAllStandardOutput().data())
        *lines, self._output = self._output.split(b"\n")
        for line in lines:
            text = line.decode("utf-8", "replace").strip()
            if text.startswith(READY_PREFIX) and self.state == "starting":
                self._set("on", text.split()[2])

    def _read_errors(self) -> None:
        if self._process is None:
            return
        lines = bytes(self._process.readAllStandardError().data()).decode(
            "utf-8", "replace").strip().splitlines()
        errors = [line for line in lines if line.startswith("nightlamp: error: ")]
        if errors:
            self._last_error = errors[-1].removeprefix("nightlamp: error: ")

    def _on_finished(self, code: int, _status: QProcess.ExitStatus) -> None:
        self._read_errors()
        if self._process is not None:
            self._process.deleteLater()
        self._process = None
        if self._stopping or code == 0:
            self._set("off", "")
        else:
            self._set("failed", self._last_error or self.tr("the server stopped (exit code "
                                                            "{code})").format(code=code))

    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._process = None
            self._set("failed", self.tr("could not start the nightlamp command"))


class ServerBox(QGroupBox):
    """The switch in the Models panel: on/off, the port, and what the server is doing."""

    def __init__(self, server: LocalServer, parent: QWidget | None = None) -> None:
        super().__init__(self.tr("Server"), parent)
        self.server = server
        self.switch = QCheckBox(self.tr("Serve the installed models to other programs on this "
                                        "computer (OpenAI-compatible API)"))
        self.port = QSpinBox()
        self.port.setRange(1024, 65535)
        self.port.setValue(DEFAULT_PORT)
        self.port.setPrefix(self.tr("port "))
        self.status = QLabel("")
        self.status.setWordWrap(True)
        row = QHBoxLayout(self)
        row.addWidget(self.switch)
        row.addWidget(self.port)
        row.addWidget(self.status, 1)
        self.switch.toggled.connect(self._toggled)
        server.state_changed.connect(self._show)

    def _toggled(self, on: bool) -> None:
        if on:
            self.server.start(self.port.value())
        else:
            self.server.stop()

    def _show(self, state: str, detail: str) -> None:
        self.port.setEnabled(state in ("off", "failed"))
        texts = {"starting": self.tr("Starting…"),
                 "on": self.tr("Listening at {url} (this computer only)").format(url=detail),
                 "off": "",
                 "failed": self.tr("Not running: {reason}").format(reason=detail)}
        self.status.setText(texts.get(state, ""))
        if state in ("off", "failed") and self.switch.isChecked():
            self.switch.blockSignals(True)  # reflect the stop without asking to stop again
            self.switch.setChecked(False)
            self.switch.blockSignals(False)
