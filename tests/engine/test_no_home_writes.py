"""Loading the engine writes nothing to the user's home (ONNX Runtime's telemetry files)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_importing_the_engine_leaves_home_untouched(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    env["HOME"] = str(home)
    subprocess.run([sys.executable, "-c", "import engine.model, engine.device; "
                    "engine.device.providers_for('auto')"], env=env, check=True, timeout=120)
    assert list(home.rglob("*")) == []
