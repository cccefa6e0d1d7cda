"""``nightlamp serve`` as users start it: a child process that prints its address, answers
the OpenAI client, and stops cleanly on SIGTERM; bad options exit 2 in one line."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import openai
import pytest

from commands.main import main
from engine.store import models_dir


def test_serve_prints_its_address_answers_and_stops_on_sigterm(
        roomy_model_dir: Path, tmp_path: Path) -> None:
    models_dir().mkdir(parents=True)
    shutil.copytree(roomy_model_dir, models_dir() / "tiny-transformer")
    child = subprocess.Popen(
        [sys.executable, "-m", "commands", "serve", "--port", "0", "-m", "tiny-transformer",
         "--device", "cpu", "--threads", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        assert child.stdout is not None
        line = child.stdout.readline()  # the first line, once it listens and the model loaded
        assert line.startswith("Serving at http://127.0.0.1:"), child.stderr.read() if \
            child.stderr else line
        url = line.split()[2]
        client = openai.OpenAI(base_url=url, api_key="x", max_retries=0, timeout=60)
        answer = client.completions.create(model="tiny-transformer", prompt="The lamp",
                                           max_tokens=5, temperature=0)
        assert answer.usage is not None and answer.usage.completion_tokens > 0
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=30) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


@pytest.mark.parametrize(("args", "message"), [
    (["--port", "70000"], "--port must be at most 65535"),
    (["--parallel", "0"], "--parallel must be >= 1"),
    (["--host", "0.0.0.0"], "--api-key"),
    (["-m", "not-installed"], "'not-installed' is not installed"),
])
def test_bad_options_exit_2_in_one_line(args: list[str], message: str,
                                        capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NIGHTLAMP_API_KEY", raising=False)
    assert main(["serve", "--port", "0", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
