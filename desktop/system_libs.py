"""The system libraries Qt's window plugin needs: found missing before Qt loads, and installed.

PySide6 ships Qt but not every X11 library its ``xcb`` platform plugin links to. Where one is
missing (``libxcb-icccm4`` and ``libxcb-keysyms1`` on a bare Debian), Qt aborts the process while
creating the application, with a hint about another library. So before any Qt GUI module is
imported, ``nightlamp gui`` asks ``ldd`` which of the plugin's libraries cannot be found, and says
in one line what to install; ``make run`` (``python -m desktop.system_libs --install``) installs
them itself when it runs as root on a system with apt-get.

This module imports no Qt module that loads a plugin: finding the plugin's file is enough.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.errors import ConfigError

Runner = Callable[[Sequence[str]], int]
_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found", re.MULTILINE)
# Debian names a library's package after its soname ("libfoo.so.1" -> "libfoo1", a dash before
# the number when the name ends in a digit); these don't follow the rule.
_DEBIAN_EXCEPTIONS = {"libGL.so.1": "libgl1", "libEGL.so.1": "libegl1",
                      "libOpenGL.so.0": "libopengl0", "libGLX.so.0": "libglx0",
                      "libxkbcommon.so.0": "libxkbcommon0"}


@dataclass(frozen=True)
class Missing:
    """The platform plugin Qt will use and the shared libraries it lacks."""

    plugin: str  # "xcb", "wayland", ...
    libraries: tuple[str, ...]  # sonames, e.g. "libxcb-icccm.so.4"


def platform_plugin(environ: dict[str, str] | os._Environ[str] = os.environ) -> str:
    """The platform Qt will pick: QT_QPA_PLATFORM's first choice, else Wayland in a Wayland
    session, else X11 (xcb)."""
    chosen = environ.get("QT_QPA_PLATFORM", "").split(";")[0].split(":")[0].strip()
    if chosen:
        return chosen
    if environ.get("WAYLAND_DISPLAY") and environ.get("XDG_SESSION_TYPE") == "wayland":
        return "wayland"
    return "xcb"


def plugin_folder() -> Path | None:
    """Qt's ``platforms`` plugin folder inside PySide6 (from a checkout or an app bundle)."""
    roots = []
    spec = importlib.util.find_spec("PySide6")
    if spec is not None and spec.submodule_search_locations:
        roots += [Path(p) for p in spec.submodule_search_locations]
    bundle = getattr(sys, "_MEIPASS", None)  # PyInstaller keeps PySide6's layout under it
    if bundle:
        roots.append(Path(bundle) / "PySide6")
    for root in roots:
        folder = root / "Qt" / "plugins" / "platforms"
        if folder.is_dir():
            return folder
    return None


def parse_ldd(output: str) -> tuple[str, ...]:
    """The sonames ``ldd`` reports as "not found", each once, in order."""
    return tuple(dict.fromkeys(_NOT_FOUND.findall(output)))


def missing_libraries(plugin: str, folder: Path | None = None,
                      ldd: str | None = None) -> Missing | None:
    """The libraries the platform plugin lacks; None when it has all of them or cannot be
    checked (no ldd, no plugin file: Qt then says for itself what is wrong)."""
    folder = folder or plugin_folder()
    ldd = ldd or shutil.which("ldd")
    if folder is None or ldd is None:
        return None
    files = sorted(folder.glob(f"libq{plugin}*.so"))
    if not files:
        return None
    env = dict(os.environ)
    qt_libs = folder.parent.parent / "lib"  # Qt's own libraries, as the plugin finds them
    env["LD_LIBRARY_PATH"] = os.pathsep.join(
        p for p in (str(qt_libs), env.get("LD_LIBRARY_PATH", "")) if p)
    try:
        result = subprocess.run([ldd, str(files[0])], capture_output=True, text=True, env=env,
                                timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    libraries = parse_ldd(result.stdout)
    return Missing(plugin, libraries) if libraries else None


def debian_package(soname: str) -> str:
    """The Debian/Ubuntu package that ships ``soname`` (libxcb-icccm.so.4 -> libxcb-icccm4)."""
    if soname in _DEBIAN_EXCEPTIONS:
        return _DEBIAN_EXCEPTIONS[soname]
    name, _, version = soname.partition(".so.")
    version = version.split(".")[0]
    name = name.lower().replace("_", "-")
    return f"{name}-{version}" if name[-1:].isdigit() else f"{name}{version}"


def os_family(os_release: Path = Path("/etc/os-release")) -> str:
    """debian, fedora, arch or "" (unknown), from /etc/os-release's ID and ID_LIKE."""
    try:
        text = os_release.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    ids: list[str] = []
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key in ("ID", "ID_LIKE"):
            ids += value.strip().strip('"').split()
    for family, members in (("debian", {"debian", "ubuntu"}), ("fedora", {"fedora", "rhel"}),
                            ("arch", {"arch"})):
        if members & set(ids):
            return family
    return ""


def install_command(libraries: Sequence[str], family: str) -> str:
    """The command that installs ``libraries`` on this kind of system (as a user types it)."""
    if family == "debian":
        return "sudo apt-get install -y " + " ".join(debian_package(s) for s in libraries)
    if family == "fedora":  # dnf resolves a library name to the package that provides it
        return "sudo dnf install -y " + " ".join(f"'{s}()(64bit)'" for s in libraries)
    if family == "arch":
        return "sudo pacman -S $(pacman -Fq " + " ".join(libraries) + ")"
    return "install the packages that provide " + ", ".join(libraries)


def explain(missing: Missing, family: str | None = None) -> str:
    """One line: what is missing and exactly how to install it."""
    family = os_family() if family is None else family
    return (f"Nightlamp's window needs system libraries that are missing for Qt's "
            f"{missing.plugin} plugin: {', '.join(missing.libraries)}; install them with: "
            f"{install_command(missing.libraries, family)} (or chat in the terminal: "
            "nightlamp chat)")


def check_before_qt(environ: dict[str, str] | os._Environ[str] = os.environ) -> None:
    """Called by ``nightlamp gui`` before Qt loads: falls back to Wayland when X11's libraries
    are missing and a Wayland session can be used, else raises ConfigError with the one line.
    """
    plugin = platform_plugin(environ)
    if plugin in ("offscreen", "minimal") or not sys.platform.startswith("linux"):
        return
    missing = missing_libraries(plugin)
    if missing is None:
        return
    if plugin == "xcb" and environ.get("WAYLAND_DISPLAY") and \
            missing_libraries("wayland") is None and plugin_has("wayland"):
        print(f"nightlamp: X11 libraries missing ({', '.join(missing.libraries)}); "
              "using Wayland", file=sys.stderr)
        environ["QT_QPA_PLATFORM"] = "wayland"
        return
    raise ConfigError(explain(missing))


def plugin_has(plugin: str) -> bool:
    folder = plugin_folder()
    return folder is not None and any(folder.glob(f"libq{plugin}*.so"))


def install(missing: Missing, family: str, is_root: bool, run: Runner) -> int:
    """Installs the missing libraries with apt-get when allowed (root on Debian/Ubuntu);
    otherwise prints the command to run. Returns 0 when they are installed, else 1."""
    packages = [debian_package(s) for s in missing.libraries]
    if family != "debian" or not is_root or shutil.which("apt-get") is None:
        print(f"nightlamp: {explain(missing, family)}", file=sys.stderr)
        return 1
    print(f"nightlamp: installing system libraries for Qt: {' '.join(packages)}",
          file=sys.stderr)
    command = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    if run(command) != 0:  # an image without package lists yet: fetch them once, then retry
        run(["apt-get", "update"])
        if run(command) != 0:
            print(f"nightlamp: could not install {' '.join(packages)}", file=sys.stderr)
            return 1
    return 0


def _run(command: Sequence[str]) -> int:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(list(command), env=env, check=False).returncode


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m desktop.system_libs [--install]``: reports (and installs) what Qt lacks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--install", action="store_true",
                        help="install missing libraries with apt-get when running as root")
    args = parser.parse_args(argv)
    if not sys.platform.startswith("linux") or not any(
            os.environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")):
        return 0  # no screen: nothing will open a window (the app says so itself)
    missing = missing_libraries(platform_plugin())
    if missing is None:
        return 0
    if not args.install:
        print(f"nightlamp: {explain(missing)}", file=sys.stderr)
        return 1
    install(missing, os_family(), os.geteuid() == 0, _run)
    return 0  # `make run` goes on: `nightlamp gui` says the one line if something is left


if __name__ == "__main__":
    sys.exit(main())
