"""The Server switch: it starts a real ``nightlamp serve`` child that the OpenAI client can use,
shows the address in the status bar, says why when the port is taken, comes back on at the next
start, and never outlives the window."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path
from typing import Any

import openai
import pytest

from desktop.main_window import MainWindow
from desktop.settings import AppSettings
from engine.store import models_dir, set_default_model

START_MS = 60_000  # the child imports the engine and loads the model first


@pytest.fixture
def installed(roomy_model_dir: Path) -> str:
    shutil.copytree(roomy_model_dir, models_dir() / "tiny")
    set_default_model("tiny")
    return "tiny"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _window(qtbot: Any, windows: list[MainWindow]) -> MainWindow:
    window = MainWindow(device="cpu")
    windows.append(window)
    qtbot.addWidget(window)
    return window


def test_the_switch_serves_the_models_and_turns_off(qtbot: Any, windows: list[MainWindow],
                                                    installed: str) -> None:
    window = _window(qtbot, windows)
    box, server = window.models.server_box, window.models.server
    box.port.setValue(_free_port())
    with qtbot.waitSignal(server.state_changed, timeout=START_MS,
                          check_params_cb=lambda state, _detail: state == "on"):
        box.switch.setChecked(True)
    assert server.url == f"http://127.0.0.1:{box.port.value()}/v1"
    assert server.url in window.server_label.text() and server.url in box.status.text()
    assert not box.port.isEnabled()  # the port cannot change under a running server
    client = openai.OpenAI(base_url=server.url, api_key="x", max_retries=0, timeout=60)
    assert [m.id for m in client.models.list()] == [installed]
    answer = client.completions.create(model=installed, prompt="The lamp", max_tokens=4,
                                       temperature=0)
    assert answer.usage is not None and answer.usage.completion_tokens > 0
    with qtbot.waitSignal(server.state_changed, timeout=START_MS):
        box.switch.setChecked(False)
    assert server.state == "off" and not server.running()
    assert window.server_label.text() == ""
    with pytest.raises(openai.APIConnectionError):
        client.models.list()


def test_a_taken_port_is_explained_and_the_switch_goes_off(qtbot: Any,
                                                           windows: list[MainWindow],
                                                           installed: str) -> None:
    window = _window(qtbot, windows)
    box, server = window.models.server_box, window.models.server
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        box.port.setValue(taken.getsockname()[1])
        with qtbot.waitSignal(server.state_changed, timeout=START_MS,
                              check_params_cb=lambda state, _detail: state == "failed"):
            box.switch.setChecked(True)
    assert "cannot listen" in box.status.text() and "--port" in box.status.text()
    assert not box.switch.isChecked() and box.port.isEnabled()


def test_it_comes_back_on_and_closing_the_window_stops_it(qtbot: Any,
                                                          windows: list[MainWindow],
                                                          installed: str) -> None:
    port = _free_port()
    AppSettings().set_server(True, port)
    window = _window(qtbot, windows)
    server = window.models.server
    assert window.models.server_box.switch.isChecked()
    qtbot.waitUntil(lambda: server.state == "on", timeout=START_MS)
    assert server.url == f"http://127.0.0.1:{port}/v1"
    window.close()
    assert not server.running()
    assert AppSettings().server() == (True, port)  # on again next time, as the user left it
