"""Builds Nightlamp's one-folder app bundle with PyInstaller (``make package`` runs this).

    python resources/packaging/build.py [--with-model [NAME|FOLDER]] [--with-cuda] [--dist DIR]

Writes ``DIST/nightlamp/`` (the bundle: run ``DIST/nightlamp/nightlamp``), checks that nothing
of the training or test stack got in, reports the size and, on Linux, adds the desktop entry,
icons, AppStream metadata and an installer script, and packs ``nightlamp-VERSION-linux-ARCH
.tar.gz``. On macOS PyInstaller also makes ``DIST/Nightlamp.app`` (see macos/make_dmg.sh); on
Windows see windows/nightlamp.iss. Exit status 2 with one line for a bad request.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "resources" / "packaging"
APP_ID = "io.github.nightlamp.Nightlamp"
# What must never be in the bundle: the training stack, the test tools and the project's tests
# (files and folders by name; modules inside the executable's archive by dotted name).
FORBIDDEN_FILE = re.compile(r"^(torch\w*|_?pytest\w*|transformers|safetensors|tests|test_\w+\.py)"
                            r"([-.].*)?$", re.IGNORECASE)
FORBIDDEN_MODULE = re.compile(
    r"^(torch\w*|_?pytest\w*|transformers|safetensors|tests|training)(\.|$)")


class BuildError(Exception):
    """A request that can't be built; printed as one line."""


def _version() -> str:
    try:
        return metadata.version("nightlamp")
    except metadata.PackageNotFoundError:
        raise BuildError("nightlamp is not installed in this Python; run 'make package' (or "
                         "pip install -e . first)") from None


def _nightlamp(*arguments: str) -> None:
    """Runs the installed ``nightlamp`` command of this Python (the source install)."""
    command = [sys.executable, "-m", "commands", *arguments]
    if subprocess.run(command, cwd=ROOT, check=False).returncode != 0:
        raise BuildError(f"'nightlamp {' '.join(arguments)}' failed (see above)")


def _model_folder(spec: str) -> Path:
    """The folder to ship: a folder path, or a store name ("" and the default model's name: the
    default model, pulled once)."""
    from engine.store import DEFAULT_MODEL_NAME, installed_models, model_folder

    spec = spec or DEFAULT_MODEL_NAME
    path = Path(spec).expanduser()
    if path.is_dir():
        folder = path
    elif spec == DEFAULT_MODEL_NAME and spec not in installed_models():
        _nightlamp("models", "pull")
        folder = model_folder(spec)
    elif spec in installed_models():
        folder = model_folder(spec)
    else:
        raise BuildError(f"--with-model {spec}: no such folder and no installed model of that "
                         f"name (installed: {', '.join(installed_models()) or 'none'})")
    if not (folder / "nightlamp.json").is_file():
        raise BuildError(f"--with-model {folder}: not a model folder (no nightlamp.json)")
    return folder.resolve()


def _run_pyinstaller(dist: Path, work: Path, model: Path | None, cuda: bool) -> None:
    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        raise BuildError("PyInstaller is not installed here; run 'make package' (it installs "
                         "the package extra) or pip install -e '.[package]'") from None
    env = {**os.environ, "NIGHTLAMP_BUNDLE_CUDA": "1" if cuda else "0"}
    env.pop("NIGHTLAMP_BUNDLE_MODEL", None)
    if model is not None:
        env["NIGHTLAMP_BUNDLE_MODEL"] = str(model)
    command = [sys.executable, "-m", "PyInstaller", str(PACKAGING / "nightlamp.spec"),
               "--noconfirm", "--clean", "--log-level", "WARN",
               "--distpath", str(dist), "--workpath", str(work)]
    if subprocess.run(command, cwd=ROOT, env=env, check=False).returncode != 0:
        raise BuildError("PyInstaller failed (see above)")


def forbidden_contents(bundle: Path) -> list[str]:
    """What the bundle holds of the training or test stack (should be nothing): files on disk,
    and Python modules inside the executable's archive, where pure-Python packages live."""
    from PyInstaller.archive.readers import pkg_archive_contents

    found = [str(path.relative_to(bundle)) for path in bundle.rglob("*")
             if any(FORBIDDEN_FILE.match(part) for part in path.relative_to(bundle).parts)]
    return found + [f"module {name}" for name in pkg_archive_contents(str(_executable(bundle)))
                    if FORBIDDEN_MODULE.match(name)]


def _executable(bundle: Path) -> Path:
    return bundle / ("nightlamp.exe" if sys.platform == "win32" else "nightlamp")


def _smoke_test(bundle: Path, version: str) -> None:
    """The bundle starts and knows its version (the self-test needs a model; this does not)."""
    result = subprocess.run([str(_executable(bundle)), "--version"], capture_output=True,
                            text=True, timeout=120, check=False)
    if result.stdout.strip() != f"nightlamp {version}":
        raise BuildError(f"the bundle does not start: {(result.stdout + result.stderr)[-500:]}")


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _report(bundle: Path) -> None:
    internal = bundle / "_internal"
    # Links (PyInstaller points some libraries at their package's copy) are not counted twice.
    parts = sorted(((_size(p) if p.is_dir() else p.stat().st_size, p.name)
                    for p in internal.iterdir() if not p.is_symlink()), reverse=True)
    print(f"bundle: {bundle} ({_size(bundle) / 1e6:.0f} MB)")
    print("largest parts: " + ", ".join(f"{name} {size / 1e6:.0f} MB"
                                        for size, name in parts[:8]))


def _add_linux_files(bundle: Path) -> None:
    """Desktop entry, icons and AppStream metadata under share/, and the per-user installer."""
    share = bundle / "share"
    icons = ROOT / "resources" / "icons"
    shutil.copytree(icons / "hicolor", share / "icons" / "hicolor", dirs_exist_ok=True)
    scalable = share / "icons" / "hicolor" / "scalable" / "apps"
    scalable.mkdir(parents=True, exist_ok=True)
    shutil.copy2(icons / "nightlamp.svg", scalable / "nightlamp.svg")
    for folder, suffix in (("applications", ".desktop"), ("metainfo", ".metainfo.xml")):
        (share / folder).mkdir(parents=True, exist_ok=True)
        shutil.copy2(PACKAGING / "linux" / f"{APP_ID}{suffix}", share / folder)
    shutil.copy2(PACKAGING / "linux" / "install.sh", bundle / "install.sh")


def _tarball(bundle: Path, version: str) -> Path:
    machine = platform.machine().lower() or "unknown"
    archive = bundle.parent / f"nightlamp-{version}-linux-{machine}.tar.gz"

    def owned_by_root(member: tarfile.TarInfo) -> tarfile.TarInfo:
        # Unpacked by root into /opt, files must not stay writable by the builder's user id.
        member.uid = member.gid = 0
        member.uname = member.gname = "root"
        return member

    with tarfile.open(archive, "w:gz", compresslevel=6) as tar:  # zlib's default level
        tar.add(bundle, arcname="nightlamp", filter=owned_by_root)
    return archive


def build(args: argparse.Namespace) -> Path:
    version = _version()
    model = _model_folder(args.with_model) if args.with_model is not None else None
    dist = args.dist.resolve()
    bundle = dist / "nightlamp"
    print(f"building nightlamp {version} into {bundle}"
          + (f" with the model {model.name}" if model else "")
          + (" with the CUDA provider" if args.with_cuda else ""), flush=True)
    _run_pyinstaller(dist, args.work.resolve(), model, args.with_cuda)
    stray = forbidden_contents(bundle)
    if stray:
        raise BuildError(f"the bundle contains what it must not: {', '.join(stray[:5])}")
    _smoke_test(bundle, version)
    _report(bundle)
    if sys.platform.startswith("linux"):
        _add_linux_files(bundle)
        if not args.no_archive:
            archive = _tarball(bundle, version)
            print(f"archive: {archive} ({archive.stat().st_size / 1e6:.0f} MB)")
    print(f"try it: {_executable(bundle)} --self-test")
    if sys.platform == "win32":
        script = Path("resources", "packaging", "windows", "nightlamp.iss")
        print(f"installer: iscc /DAppVersion={version} {script}")
    return bundle


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build Nightlamp's app bundle.")
    parser.add_argument("--with-model", nargs="?", const="", default=None,
                        metavar="NAME|FOLDER",
                        help="ship a model inside the bundle (default: the default model, "
                             "pulled once if missing)")
    parser.add_argument("--with-cuda", action="store_true",
                        help="keep ONNX Runtime's CUDA provider (+285 MB; the machine still "
                             "needs CUDA and cuDNN)")
    parser.add_argument("--dist", type=Path, default=ROOT / "dist")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "pyinstaller")
    parser.add_argument("--no-archive", action="store_true", help="skip the .tar.gz")
    args = parser.parse_args(argv)
    try:
        build(args)
    except BuildError as error:
        print(f"build: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))  # engine.store, for --with-model names
    sys.exit(main())
