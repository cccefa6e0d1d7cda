"""Device choice: providers for cpu/cuda/auto, a quiet CUDA probe, and what a session really uses.

The machine may or may not have a usable NVIDIA GPU, so tests that touch real hardware assert
whichever branch ``cuda_usable()`` reports; the branch logic itself is tested with the probe
replaced."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from commands.main import main
from engine import device
from engine.device import CPU, CUDA, DEVICES, cuda_usable, providers_for
from engine.errors import ConfigError, DeviceError, EngineError
from engine.model import load_model

REPO = Path(__file__).resolve().parents[2]


def test_cpu_means_the_cpu_provider_only() -> None:
    assert providers_for("cpu") == ["CPUExecutionProvider"]
    assert DEVICES == ("auto", "cpu", "cuda")


@pytest.mark.parametrize("name", ["gpu", "CUDA", "Cpu", "", "cuda:0", "tpu"])
def test_unknown_device_is_a_device_error_naming_it(name: str) -> None:
    with pytest.raises(DeviceError) as caught:
        providers_for(name)
    assert f"unknown device {name!r}" in str(caught.value)
    assert "auto, cpu, cuda" in str(caught.value)
    assert isinstance(caught.value, ConfigError) and isinstance(caught.value, EngineError)


def test_cuda_follows_the_probe_on_this_machine() -> None:
    if cuda_usable():
        assert providers_for("cuda") == [CUDA, CPU]
        assert providers_for("auto") == [CUDA, CPU]
    else:
        with pytest.raises(DeviceError, match="no usable NVIDIA GPU"):
            providers_for("cuda")
        assert providers_for("auto") == [CPU]


@pytest.mark.parametrize(("usable", "requested", "expected"), [
    (True, "cuda", [CUDA, CPU]),
    (True, "auto", [CUDA, CPU]),
    (True, "cpu", [CPU]),
    (False, "auto", [CPU]),
    (False, "cpu", [CPU]),
])
def test_provider_choice_given_the_probe(usable: bool, requested: str, expected: list[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device, "cuda_usable", lambda: usable)
    assert providers_for(requested) == expected


def test_cuda_without_a_gpu_says_how_to_fix_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device, "cuda_usable", lambda: False)
    with pytest.raises(DeviceError) as caught:
        providers_for("cuda")
    message = str(caught.value)
    assert "device 'cuda' was asked for but no usable NVIDIA GPU was found" in message
    assert "--device cpu" in message
    assert "\n" not in message


def test_probe_without_the_cuda_provider_is_false(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device.ort, "get_available_providers", lambda: [CPU])
    cuda_usable.cache_clear()
    try:
        assert cuda_usable() is False
    finally:
        cuda_usable.cache_clear()


def test_probe_that_raises_is_false_and_restores_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    severities: list[int] = []

    def broken_session(*args: object, **kwargs: object) -> None:
        raise RuntimeError("libcudnn.so.9: cannot open shared object file")

    monkeypatch.setattr(device.ort, "get_available_providers", lambda: [CUDA, CPU])
    monkeypatch.setattr(device.ort, "InferenceSession", broken_session)
    monkeypatch.setattr(device.ort, "set_default_logger_severity", severities.append)
    cuda_usable.cache_clear()
    try:
        assert cuda_usable() is False
    finally:
        cuda_usable.cache_clear()
    assert severities == [4, 2]  # silenced for the probe, then back to warnings


PROBE = """
import json, sys
from engine.device import cuda_usable
cuda_usable.cache_clear()
print(json.dumps(cuda_usable()))
"""


def test_cuda_probe_prints_nothing() -> None:
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                            cwd=REPO, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) is cuda_usable()  # same answer in a fresh process
    assert "Failed to load" not in result.stderr
    assert "CUDAExecutionProvider" not in result.stderr
    assert result.stderr == ""


def test_auto_reports_what_the_session_runs_on(transformer_model_dir: Path) -> None:
    model = load_model(transformer_model_dir, device="auto", threads=1)
    expected = "cuda" if cuda_usable() else "cpu"
    assert model.device == expected
    assert (CUDA in model.session.get_providers()) is (expected == "cuda")


def test_cpu_session_uses_only_the_cpu(transformer_model_dir: Path) -> None:
    model = load_model(transformer_model_dir, device="cpu", threads=1)
    assert model.device == "cpu"
    assert model.session.get_providers() == [CPU]


def test_load_on_cuda_follows_the_probe(transformer_model_dir: Path) -> None:
    if cuda_usable():
        assert load_model(transformer_model_dir, device="cuda").device == "cuda"
    else:
        with pytest.raises(DeviceError, match="no usable NVIDIA GPU"):
            load_model(transformer_model_dir, device="cuda")


def test_cli_device_cuda(transformer_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["generate", "-m", str(transformer_model_dir), "The lamp", "--max-tokens", "3",
                 "--device", "cuda", "--json"])
    out, err = capsys.readouterr()
    if cuda_usable():
        assert code == 0, err
        assert json.loads(out)["device"] == "cuda"
    else:
        assert code == 2
        assert out == ""
        assert err.count("\n") == 1
        assert err.startswith("nightlamp: error: device 'cuda' was asked for but no usable "
                              "NVIDIA GPU was found")
        assert "Traceback" not in err


def test_cli_rejects_an_unknown_device(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:  # argparse choices: its own usage error, status 2
        main(["generate", "--device", "gpu", "hi"])
    assert caught.value.code == 2
    assert "invalid choice: 'gpu'" in capsys.readouterr().err
