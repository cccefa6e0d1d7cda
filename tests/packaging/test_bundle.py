"""The app bundle, built for real from a clean copy of the checkout and run with a clean
environment: no virtual environment on PATH, HOME an empty folder, no display.

Slow (PyInstaller takes about a minute here) but run in CI: it is the only test that proves the
bundle starts on a machine without the project's Python.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from test_packaged_behaviour import pyproject_version

ROOT = Path(__file__).resolve().parents[2]
APP_ID = "io.github.nightlamp.Nightlamp"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="builds the Linux bundle"),
]


def _clean_checkout(into: Path) -> Path:
    """The files a fresh clone would have (tracked, plus new files not ignored: uncommitted work
    is tested too), nothing built. It is built with the tests' own Python and packages, which
    `make test` installs from pyproject.toml on a fresh machine as `make package` does."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():  # a file deleted but not yet committed is listed too
            target = into / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
            target.chmod(source.stat().st_mode)
    return into


def _build_module(checkout: Path):  # -> the build script as a module, for its checks
    spec = importlib.util.spec_from_file_location(
        "bundle_build", checkout / "resources" / "packaging" / "build.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, tiny_chat_model_dir: Path
          ) -> tuple[Path, Path, str]:
    """(checkout, dist folder, build output): the bundle with the tiny chat model inside."""
    scratch = tmp_path_factory.mktemp("bundle")
    checkout = _clean_checkout(scratch / "checkout")
    dist = scratch / "dist"
    finished = subprocess.run(
        [sys.executable, str(checkout / "resources" / "packaging" / "build.py"),
         "--with-model", str(tiny_chat_model_dir), "--dist", str(dist),
         "--work", str(scratch / "work")],
        cwd=checkout, capture_output=True, text=True, timeout=900, check=False)
    output = finished.stdout + finished.stderr
    assert finished.returncode == 0, output[-4000:]
    return checkout, dist, output


def _clean_env(home: Path) -> dict[str, str]:
    """What a user's fresh session would have: system PATH only, an empty HOME."""
    home.mkdir(exist_ok=True)
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
            "QT_QPA_PLATFORM": "offscreen", "TMPDIR": os.environ.get("TMPDIR", "/tmp")}


def _run(bundle: Path, *arguments: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(bundle / "nightlamp"), *arguments], cwd=home,
                          env=_clean_env(home), capture_output=True, text=True, timeout=300,
                          check=False)


def test_the_bundle_passes_its_self_test_with_a_clean_environment(
        built: tuple[Path, Path, str], tmp_path: Path) -> None:
    _, dist, _ = built
    result = _run(dist / "nightlamp", "--self-test", home=tmp_path / "home")
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "self-test (bundle," in result.stdout
    for step in ("load", "generate", "summarize", "translate", "downloads"):
        assert re.search(rf"^  ok    {step}\b", result.stdout, re.MULTILINE), result.stdout
    assert "(bundled)" in result.stdout
    # The bundled model was used where it is: nothing was copied into the user's store.
    assert not (tmp_path / "home" / ".local" / "share" / "nightlamp" / "models").exists()


def test_the_bundle_reports_the_version_and_takes_a_screenshot(
        built: tuple[Path, Path, str], tmp_path: Path) -> None:
    _, dist, _ = built
    bundle = dist / "nightlamp"
    version = _run(bundle, "--version", home=tmp_path / "home")
    assert version.stdout.strip() == f"nightlamp {pyproject_version()}"
    picture = tmp_path / "shot.png"
    shot = _run(bundle, "gui", "--screenshot", str(picture), "--prompt", "Hello",
                home=tmp_path / "home")
    assert shot.returncode == 0, shot.stdout + shot.stderr[-3000:]
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert picture.stat().st_size > 10_000  # a drawn window, not an empty image


def test_the_bundle_serves_its_model_over_the_openai_api(built: tuple[Path, Path, str],
                                                         tmp_path: Path) -> None:
    """What the app's Server switch runs: the bundle's own `nightlamp serve` (aiohttp inside)."""
    import openai

    _, dist, _ = built
    home = tmp_path / "home"
    environment = _clean_env(home)  # makes the folder
    child = subprocess.Popen([str(dist / "nightlamp" / "nightlamp"), "serve", "--port", "0"],
                             cwd=home, env=environment,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.startswith("Serving at "), (child.stderr.read() if child.stderr else "")
        client = openai.OpenAI(base_url=line.split()[2], api_key="x", max_retries=0,
                               timeout=60)
        names = [model.id for model in client.models.list()]
        assert names
        answer = client.chat.completions.create(
            model=names[0], messages=[{"role": "user", "content": "Hello"}], max_tokens=4)
        assert answer.usage is not None and answer.usage.completion_tokens > 0
        child.terminate()
        assert child.wait(timeout=30) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_the_bundle_has_no_torch_no_tests_and_no_gpu_provider(
        built: tuple[Path, Path, str]) -> None:
    checkout, dist, output = built
    bundle = dist / "nightlamp"
    build = _build_module(checkout)
    assert build.forbidden_contents(bundle) == []
    # The check reads the executable's module archive (where pure-Python packages live) ...
    from PyInstaller.archive.readers import pkg_archive_contents

    modules = set(pkg_archive_contents(str(bundle / "nightlamp")))
    assert {"engine.self_test", "convert.importers.service", "desktop.app"} <= modules
    assert not {name for name in modules if name.split(".")[0] in ("torch", "pytest", "tests")}
    # ... and the files: a stray test folder is caught.
    stray = bundle / "_internal" / "tests"
    stray.mkdir()
    try:
        assert build.forbidden_contents(bundle) == ["_internal/tests"]
    finally:
        stray.rmdir()
    names = [path.name for path in bundle.rglob("*")]
    assert not [name for name in names if "providers_cuda" in name]
    assert any(name.startswith("onnxruntime_pybind11_state") for name in names)
    assert "cacert.pem" in names  # certifi's bundle, for HTTPS where the system has none
    # The size is reported, and the CPU bundle stays lean.
    size = re.search(r"^bundle: .* \((\d+) MB\)$", output, re.MULTILINE)
    assert size and int(size.group(1)) < 400, output[-2000:]


def test_the_linux_archive_has_the_desktop_integration(built: tuple[Path, Path, str]) -> None:
    _, dist, _ = built
    archives = list(dist.glob(f"nightlamp-{pyproject_version()}-linux-*.tar.gz"))
    assert len(archives) == 1
    with tarfile.open(archives[0]) as tar:
        members = set(tar.getnames())
    for name in ("nightlamp/nightlamp", "nightlamp/install.sh",
                 f"nightlamp/share/applications/{APP_ID}.desktop",
                 f"nightlamp/share/metainfo/{APP_ID}.metainfo.xml",
                 "nightlamp/share/icons/hicolor/scalable/apps/nightlamp.svg",
                 "nightlamp/share/icons/hicolor/256x256/apps/nightlamp.png"):
        assert name in members, name


def test_install_script_installs_for_the_user_and_uninstalls(
        built: tuple[Path, Path, str], tmp_path: Path) -> None:
    _, dist, _ = built
    home = tmp_path / "home"
    env = _clean_env(home)
    subprocess.run(["sh", str(dist / "nightlamp" / "install.sh")], env=env, check=True,
                   capture_output=True, timeout=120)
    entry = home / ".local" / "share" / "applications" / f"{APP_ID}.desktop"
    launcher = home / ".local" / "bin" / "nightlamp"
    assert f'Exec="{home}/.local/opt/nightlamp/nightlamp" gui' in entry.read_text("utf-8")
    installed = subprocess.run([str(launcher), "--version"], env=env, capture_output=True,
                               text=True, timeout=60, check=False)
    assert installed.stdout.strip() == f"nightlamp {pyproject_version()}"
    subprocess.run(["sh", str(home / ".local" / "opt" / "nightlamp" / "install.sh"),
                    "--uninstall"], env=env, check=True, capture_output=True, timeout=60)
    assert not entry.exists() and not launcher.exists()
    assert not (home / ".local" / "opt" / "nightlamp").exists()
