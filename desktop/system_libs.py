"""Finds the system libraries Qt's window plugin lacks, before any Qt GUI module is loaded.

PySide6 ships Qt but not every system library its platform plugins link to. When one is missing
(``libxcb-icccm4`` and ``libxcb-keysyms1`` on a bare Debian), Qt aborts the whole process
(SIGABRT, exit 134) while creating the application, with a hint about another library. So
``nightlamp gui`` first works out which plugin Qt will load, asks ``ldd`` which of its libraries
cannot be found, and says in one line what to install (exit 2); ``make run`` runs
``python -m desktop.system_libs --install``, which installs them (desktop/system_packages.py).

Loading the plugin is what aborts, so this module never imports PySide6: finding the plugin's file
is enough. It works the same in the PyInstaller bundle, where PySide6 lives under ``_internal``.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from desktop import system_packages
from engine.errors import EngineError

logger = logging.getLogger(__name__)

# Plugins that draw into memory: they need no display server and no X11 or Wayland library.
HEADLESS = frozenset({"offscreen", "minimal"})
# Qt 6.12 serves "wayland", "wayland-egl" and "wayland-brcm" from libqwayland.so; earlier
# versions had libqwayland-egl.so and libqwayland-generic.so.
_WAYLAND_FILES = ("libqwayland.so", "libqwayland-egl.so", "libqwayland-generic.so")
_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found", re.MULTILINE)
_DLOPEN_MISSING = re.compile(r"([^\s:/]+\.so[\w.]*): cannot open shared object file")


class MissingLibrariesError(EngineError):
    """Qt's window plugin cannot load: system libraries are missing (the message says which)."""


@dataclass(frozen=True)
class Missing:
    """A platform plugin Qt would load and the shared libraries it lacks."""

    plugin: str  # "xcb", "wayland", ...
    libraries: tuple[str, ...]  # sonames, e.g. "libxcb-icccm.so.4"



def has_display() -> bool:
    """Whether a window can be shown: always off Linux, else when X11 or Wayland is there."""
    if not sys.platform.startswith("linux"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))

def qt_platforms(environ: Mapping[str, str] = os.environ) -> tuple[str, ...]:
    """The platform plugins Qt tries, in order (Qt 6's QGuiApplication: QT_QPA_PLATFORM, a
    ';'-separated list, when set; else Wayland in a Wayland session, then X11 when DISPLAY is
    set, then its built-in default, xcb)."""
    forced = environ.get("QT_QPA_PLATFORM", "").strip()
    if forced:
        names = forced.split(";")
    else:
        names = []
        if environ.get("WAYLAND_DISPLAY") or environ.get("XDG_SESSION_TYPE") == "wayland":
            names.append("wayland")
        names.append("xcb")
    # "xcb:option=value" passes options to the plugin; the plugin is the part before ':'.
    return tuple(dict.fromkeys(name.split(":")[0].strip() for name in names if name.strip()))


def plugin_folders(environ: Mapping[str, str] = os.environ) -> list[Path]:
    """Where Qt looks for platform plugins, in its order: QT_QPA_PLATFORM_PLUGIN_PATH, each
    QT_PLUGIN_PATH entry, then PySide6's own folder (inside the app bundle when frozen)."""
    folders = [Path(p) for p in environ.get("QT_QPA_PLATFORM_PLUGIN_PATH", "").split(os.pathsep)
               if p]
    folders += [Path(p) / "platforms" for p in environ.get("QT_PLUGIN_PATH", "").split(os.pathsep)
                if p]
    if getattr(sys, "frozen", False):
        # A PyInstaller bundle keeps the wheel's layout under _internal (sys._MEIPASS); its
        # PySide6 package is not a folder on disk that importlib could point to.
        bundle = Path(getattr(sys, "_MEIPASS", Path(sys.executable).parent / "_internal"))
        packages = [bundle / "PySide6"]
    else:
        spec = importlib.util.find_spec("PySide6")  # finds the package without importing it
        locations = spec.submodule_search_locations if spec else None
        packages = [Path(p) for p in locations or ()]
    folders += [package / "Qt" / "plugins" / "platforms" for package in packages]
    return folders


def plugin_file(platform: str, environ: Mapping[str, str] = os.environ) -> Path | None:
    """The file Qt loads for ``platform`` ("xcb" -> .../platforms/libqxcb.so), or None."""
    names: tuple[str, ...] = (f"libq{platform}.so",)
    if platform.startswith("wayland"):
        names = tuple(dict.fromkeys((*names, *_WAYLAND_FILES)))
    for folder in plugin_folders(environ):
        for name in names:
            if (folder / name).is_file():
                return folder / name
    return None


def parse_ldd(output: str) -> tuple[str, ...]:
    """The sonames ``ldd`` reports as "not found", each once, in order."""
    return tuple(dict.fromkeys(_NOT_FOUND.findall(output)))


def _ldd_missing(ldd: str, library: Path) -> tuple[str, ...] | None:
    # ldd lists the whole tree (libqxcb.so -> libQt6XcbQpa.so.6 -> libxcb-icccm.so.4), with this
    # process's LD_LIBRARY_PATH: the same search Qt's dlopen will do.
    try:
        result = subprocess.run([ldd, str(library)], capture_output=True, text=True, timeout=30,
                                check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    missing = parse_ldd(result.stdout)
    if result.returncode != 0 and not missing:
        return None  # "not a dynamic executable" or a broken ldd: nothing to go on
    return missing


def _dlopen_missing(library: Path) -> tuple[str, ...] | None:
    """Without ldd: load the plugin (it only links libraries; creating a QGuiApplication is
    what can abort). The loader names the first library it cannot find, so one at a time."""
    import ctypes  # only here: most systems have ldd

    try:
        ctypes.CDLL(str(library), mode=os.RTLD_NOW | os.RTLD_LOCAL)
    except OSError as error:
        match = _DLOPEN_MISSING.search(str(error))
        return (match.group(1),) if match and match.group(1) != library.name else None
    return ()


def missing_libraries(platform: str, environ: Mapping[str, str] = os.environ
                      ) -> tuple[str, ...] | None:
    """The libraries ``platform``'s plugin lacks: () when it has them all, None when there is no
    such plugin or no way to tell (Qt then says for itself what is wrong)."""
    library = plugin_file(platform, environ)
    if library is None:
        return None
    ldd = shutil.which("ldd")
    missing = _ldd_missing(ldd, library) if ldd else _dlopen_missing(library)
    if missing:
        logger.info("Qt's %s plugin (%s) lacks %s", platform, library, ", ".join(missing))
    return missing


def find_missing(environ: Mapping[str, str] = os.environ) -> Missing | None:
    """What stops Qt from loading any platform plugin it would try, or None when one of them
    loads (or there is nothing to check: not Linux, no plugin found, no way to tell)."""
    if not sys.platform.startswith("linux"):
        return None
    first: Missing | None = None
    for platform in qt_platforms(environ):
        if plugin_file(platform, environ) is None:
            continue  # Qt skips a plugin it doesn't have and tries the next
        libraries = missing_libraries(platform, environ)
        if not libraries:
            return None
        first = first or Missing(platform, libraries)
    return first


def wayland_instead(missing: Missing, environ: Mapping[str, str] = os.environ) -> bool:
    """Whether a Wayland session can take the window when QT_QPA_PLATFORM forced X11 (Qt itself
    tries Wayland first in a Wayland session)."""
    return (missing.plugin == "xcb" and bool(environ.get("WAYLAND_DISPLAY"))
            and "wayland" not in qt_platforms(environ)
            and missing_libraries("wayland", environ) == ())


def explain(missing: Missing, family: str | None = None, root: bool | None = None) -> str:
    """One line: what is missing and the exact command that installs it on this system."""
    family = system_packages.os_family() if family is None else family
    root = system_packages.is_root() if root is None else root
    names = " ".join(system_packages.shown_names(missing.libraries, family))
    command = system_packages.install_command(missing.libraries, family, root)
    how = (f"Install them with: {command}" if command else
           "Install the packages that provide them")
    return (f"Nightlamp's window needs system libraries that are missing: {names}. {how} "
            "(or run 'nightlamp chat' in the terminal)")


def check_before_qt(environ: MutableMapping[str, str] = os.environ) -> None:
    """Called by ``nightlamp gui`` before Qt loads. Switches to Wayland (with a note) when X11
    was forced but lacks libraries and Wayland works.

    Raises:
        MissingLibrariesError: no plugin Qt would try can load; the message says what to install.
    """
    missing = find_missing(environ)
    if missing is None:
        return
    if wayland_instead(missing, environ):
        print(f"nightlamp: note: Qt's X11 plugin lacks {', '.join(missing.libraries)}; "
              "opening the window on Wayland instead", file=sys.stderr)
        environ["QT_QPA_PLATFORM"] = "wayland"
        return
    raise MissingLibrariesError(explain(missing))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m desktop.system_libs [--install]`` (``make run``'s set-up step): silent when
    nothing is missing; else installs (root with apt-get) or prints the one line."""
    parser = argparse.ArgumentParser(prog="python -m desktop.system_libs",
                                     description="Check (and install) the system libraries "
                                                 "Qt's window plugin needs.")
    parser.add_argument("--install", action="store_true",
                        help="install them with apt-get when running as root; otherwise print "
                             "the command and exit 0 (so `make run` goes on)")
    args = parser.parse_args(argv)
    environ = os.environ
    if not (environ.get("QT_QPA_PLATFORM") or has_display()) or \
            set(qt_platforms(environ)) <= HEADLESS:
        return 0  # no window will open here: nothing to check (and nothing to install)
    missing = find_missing(environ)
    if missing is None or wayland_instead(missing, environ):
        return 0
    family, root = system_packages.os_family(), system_packages.is_root()
    if args.install and system_packages.install(missing.libraries, family, root):
        missing = find_missing(environ)  # a package named wrongly leaves the library missing
        if missing is None:
            return 0
    print(f"nightlamp: {explain(missing, family, root)}", file=sys.stderr)
    return 0 if args.install else 1


if __name__ == "__main__":
    sys.exit(main())
