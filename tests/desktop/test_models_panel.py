"""The Models panel and first-run page: listing, import with progress in a child process,
errors, remove, per-panel models and the device choice."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from tests_desktop_fakes import fake_worker, quick_generate
from tiny_hf import save_tiny_hf

from desktop.main_window import MainWindow
from desktop.model_jobs import ModelJob
from desktop.models_panel import ModelsPanel
from desktop.settings import AppSettings
from engine.store import default_model_name, models_dir, set_default_model


@pytest.fixture
def installed(transformer_model_dir: Path) -> Path:
    """The tiny test model installed in the (test's own) model store as "tiny"."""
    target = models_dir() / "tiny"
    shutil.copytree(transformer_model_dir, target)
    set_default_model("tiny")
    return target


def test_the_list_shows_installed_models(qtbot: Any, installed: Path) -> None:
    (models_dir() / "broken").mkdir()
    panel = ModelsPanel()
    qtbot.addWidget(panel)
    names = [panel.table.item(row, 0).text() for row in range(panel.table.rowCount())]
    assert names == ["broken", "tiny (default)"]
    assert "broken" in panel.table.item(0, 4).text()  # says why instead of hiding it
    assert panel.table.item(1, 2).text() == "fp32"
    assert panel.table.item(1, 6).text() == str(installed)  # after the quality column
    chat_choices = [panel.choices["chat"].itemData(i)
                    for i in range(panel.choices["chat"].count())]
    assert chat_choices == ["", "tiny"]  # the default, then the usable models
    assert panel.pull_button.isVisible() or not panel.isVisible()


def test_a_job_reports_progress_and_its_last_line(qtbot: Any, tmp_path: Path) -> None:
    source = tmp_path / "hf"
    save_tiny_hf(source)
    job = ModelJob(["models", "import", str(source), "--name", "imported", "--no-check"])
    stages: list[str] = []
    job.progress.connect(lambda stage, done, total: stages.append(stage))
    with qtbot.waitSignal(job.finished, timeout=120_000) as result:
        job.start()
    ok, message = result.args
    assert ok, message
    assert message.startswith("installed:") and (models_dir() / "imported").is_dir()
    assert default_model_name() == "imported"  # the first model becomes the default
    assert stages  # progress came through as it happened


def test_a_bad_import_says_why_in_the_panel(qtbot: Any, tmp_path: Path) -> None:
    panel = ModelsPanel()
    qtbot.addWidget(panel)
    bad = tmp_path / "weights.gguf"
    bad.write_bytes(b"not a gguf file at all")
    with qtbot.waitSignal(panel.jobs.finished, timeout=60_000) as result:
        panel.start_import(bad)
        assert not panel.import_file_button.isEnabled()  # one job at a time
    assert result.args[0] is False
    assert "weights.gguf" in panel.jobs.status.text()
    assert panel.import_file_button.isEnabled()
    assert panel.table.rowCount() == 0


def test_a_job_can_be_cancelled(qtbot: Any) -> None:
    job = ModelJob([])
    with qtbot.waitSignal(job.finished, timeout=30_000) as result:
        # A stand-in for a long import: the job's own process, running something slow.
        job.process.start(sys.executable, ["-c", "import time; time.sleep(60)"])
        qtbot.waitUntil(job.running, timeout=10_000)
        job.cancel()
    assert result.args == [False, "Cancelled."]


def test_first_run_offers_the_default_model_then_opens_the_app(qtbot: Any, tmp_path: Path,
                                                               windows: list[MainWindow],
                                                               transformer_model_dir: Path,
                                                               ) -> None:
    window = MainWindow(device="cpu")
    windows.append(window)
    qtbot.addWidget(window)
    assert window.pages.currentWidget() is window.welcome
    assert window.model_info is None
    # The real button pulls from PyPI; a local import stands in for the download here.
    source = tmp_path / "hf"
    save_tiny_hf(source)
    with qtbot.waitSignal(window.model_ready, timeout=120_000):
        window.welcome.pull(["models", "import", str(source), "--name",
                             "smollm2-135m-instruct", "--no-check", "--precision", "fp32"])
    assert window.pages.currentWidget() is window.tabs
    assert "ready" in window.model_label.text()


def test_each_panel_uses_its_own_model(qtbot: Any, windows: list[MainWindow],
                                       installed: Path, transformer_model_dir: Path) -> None:
    shutil.copytree(transformer_model_dir, models_dir() / "other")
    window = MainWindow(device="cpu")
    windows.append(window)
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.model_ready, timeout=30_000):
        pass
    assert window.model_info is not None and window.model_info.folder == str(installed)
    combo = window.models.choices["translate"]
    combo.setCurrentIndex(combo.findData("other"))
    assert AppSettings().panel_model("translate") == "other"  # remembered
    with qtbot.waitSignal(window.model_ready, timeout=30_000):
        pass  # picking a model loads it
    window.chat.input.setPlainText("hello")
    with qtbot.waitSignal(window.model_ready, timeout=30_000):
        window.chat.send()  # the chat switches back to its own model
    assert window.model_info.folder == str(installed)
    with qtbot.waitSignal(window.answer_finished, timeout=30_000):
        pass
    window.translate.source.setPlainText("The lamp")
    with qtbot.waitSignal(window.answer_finished, timeout=30_000):
        window.translate.run_button.click()
    assert window.model_info.folder == str(models_dir() / "other")


def test_remove_closes_the_model_then_deletes_its_folder(qtbot: Any, windows: list[MainWindow],
                                                         installed: Path) -> None:
    window = MainWindow(device="cpu")
    windows.append(window)
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.model_ready, timeout=30_000):
        pass
    with qtbot.waitSignal(window.worker.released, timeout=10_000):
        window.remove_model("tiny")
    qtbot.waitUntil(lambda: not installed.exists(), timeout=5000)
    assert window.model_info is None and window.model_label.text() == "No model"
    assert window.pages.currentWidget() is window.welcome  # nothing left: back to first run


def test_removing_a_linked_model_removes_only_the_link(qtbot: Any, windows: list[MainWindow],
                                                      tmp_path: Path) -> None:
    """The app removes through engine.store.remove_model, like `nightlamp models remove`."""
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "nightlamp.json").write_text("{}", encoding="utf-8")
    models_dir().mkdir(parents=True)
    (models_dir() / "linked").symlink_to(target, target_is_directory=True)
    window = MainWindow(worker=fake_worker(quick_generate), model="fake")
    windows.append(window)
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.worker.released, timeout=10_000):
        window.remove_model("linked")
    qtbot.waitUntil(lambda: not (models_dir() / "linked").is_symlink(), timeout=5000)
    assert (target / "nightlamp.json").is_file()
    assert window.models.jobs.status.text() == "Removed linked."


def test_changing_the_device_reloads_and_is_remembered(qtbot: Any,
                                                       windows: list[MainWindow]) -> None:
    window = MainWindow(worker=fake_worker(quick_generate), model="fake")
    windows.append(window)
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.model_ready, timeout=10_000):
        pass
    index = window.models.device.findData("cpu")
    with qtbot.waitSignal(window.model_ready, timeout=10_000):
        window.models.device.setCurrentIndex(index)
    assert window.device == "cpu" and AppSettings().device == "cpu"
    assert "CPU" in window.models.device_in_use.text()


def test_a_model_the_app_bundle_ships_is_listed_built_in_and_cannot_be_removed(
        qtbot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        transformer_model_dir: Path) -> None:
    shutil.copytree(transformer_model_dir, tmp_path / "bundle" / "models" / "shipped")
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path / "bundle"), raising=False)
    panel = ModelsPanel()
    qtbot.addWidget(panel)
    assert panel.table.item(0, 0).text() == "shipped (default) (built in)"
    panel.table.selectRow(0)
    assert panel.selected_name() == "shipped"
    assert panel.default_button.isEnabled() and not panel.remove_button.isEnabled()


def test_the_bundled_window_runs_jobs_through_its_console_executable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from desktop.model_jobs import nightlamp_command

    window_exe = tmp_path / "nightlamp-gui"
    window_exe.touch()
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(window_exe))
    assert nightlamp_command() == [str(window_exe)]  # Linux: no console sibling, itself
    (tmp_path / "nightlamp").touch()
    assert nightlamp_command() == [str(tmp_path / "nightlamp")]
