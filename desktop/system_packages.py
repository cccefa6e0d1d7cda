"""Which distribution package ships a shared library, the command that installs it, and running it.

Debian and Ubuntu name a library's package after its soname (``libxcb-icccm.so.4`` is in
``libxcb-icccm4``), so a rule and a few exceptions cover what Qt's platform plugins link to.
Fedora and Arch split X11's utility libraries by upstream project (``xcb-util-wm``), so they get a
table; on Fedora and openSUSE a soname the table lacks is still installable through the package
manager's automatic ``libfoo.so.1()(64bit)`` provides. Nothing here runs a command except
``install``, through a runner the caller passes in (tests pass a fake one).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

Runner = Callable[[Sequence[str]], int]

OS_RELEASE = Path("/etc/os-release")
# os-release IDs (a system's own ID or one in its ID_LIKE) -> the family whose packages it uses.
_FAMILIES = {"debian": "debian", "ubuntu": "debian", "fedora": "fedora", "rhel": "fedora",
             "centos": "fedora", "suse": "suse", "opensuse": "suse", "arch": "arch"}
_INSTALLERS = {"debian": "apt-get install -y", "fedora": "dnf install -y",
               "suse": "zypper install -y", "arch": "pacman -S --needed"}

# Debian packages that don't follow the soname rule (GLib ships five libraries in one package).
_DEBIAN_EXCEPTIONS = {
    "libglib-2.0": "libglib2.0-0", "libgobject-2.0": "libglib2.0-0",
    "libgthread-2.0": "libglib2.0-0", "libgmodule-2.0": "libglib2.0-0",
    "libgio-2.0": "libglib2.0-0", "libz": "zlib1g", "libgcc_s": "libgcc-s1",
    "libharfbuzz": "libharfbuzz0b", "libbrotlidec": "libbrotli1", "libbrotlicommon": "libbrotli1",
}
# Library name (the soname before ".so") -> Fedora package, Arch package. Any other libxcb-*
# library is in the libxcb package on both.
_SPLIT_PACKAGES = {
    "libxcb-icccm": ("xcb-util-wm", "xcb-util-wm"),
    "libxcb-ewmh": ("xcb-util-wm", "xcb-util-wm"),
    "libxcb-keysyms": ("xcb-util-keysyms", "xcb-util-keysyms"),
    "libxcb-image": ("xcb-util-image", "xcb-util-image"),
    "libxcb-render-util": ("xcb-util-renderutil", "xcb-util-renderutil"),
    "libxcb-cursor": ("xcb-util-cursor", "xcb-util-cursor"),
    "libxcb-util": ("xcb-util", "xcb-util"),
    "libxkbcommon": ("libxkbcommon", "libxkbcommon"),
    "libxkbcommon-x11": ("libxkbcommon-x11", "libxkbcommon-x11"),
    "libX11-xcb": ("libX11-xcb", "libx11"),
    "libX11": ("libX11", "libx11"),
    "libEGL": ("libglvnd-egl", "libglvnd"),
    "libGL": ("libglvnd-glx", "libglvnd"),
    "libGLX": ("libglvnd-glx", "libglvnd"),
    "libOpenGL": ("libglvnd-opengl", "libglvnd"),
    "libfontconfig": ("fontconfig", "fontconfig"),
    "libfreetype": ("freetype", "freetype2"),
    "libwayland-client": ("libwayland-client", "wayland"),
    "libwayland-cursor": ("libwayland-cursor", "wayland"),
    "libwayland-egl": ("libwayland-egl", "wayland"),
    "libdbus-1": ("dbus-libs", "dbus"),
    "libglib-2.0": ("glib2", "glib2"),
    "libgthread-2.0": ("glib2", "glib2"),
}


def os_family(os_release: Path = OS_RELEASE) -> str:
    """The package family of this system (debian, fedora, suse, arch), "" when unknown."""
    try:
        text = os_release.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    ids: list[str] = []
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "ID":
            ids.insert(0, value.strip().strip("\"'").lower())  # its own ID wins over ID_LIKE
        elif key.strip() == "ID_LIKE":
            ids += value.strip().strip("\"'").lower().split()
    return next((_FAMILIES[name] for name in ids if name in _FAMILIES), "")


def _library_name(soname: str) -> tuple[str, str]:
    """("libxcb-icccm", "4") from "libxcb-icccm.so.4": the name and the major version."""
    name, _, version = soname.partition(".so")
    return name, version.lstrip(".").split(".")[0]


def debian_package(soname: str) -> str:
    """The Debian/Ubuntu package that ships ``soname``: libxcb-icccm.so.4 -> libxcb-icccm4,
    libxkbcommon-x11.so.0 -> libxkbcommon-x11-0 (a dash when the name ends in a digit),
    libEGL.so.1 -> libegl1."""
    name, version = _library_name(soname)
    if name in _DEBIAN_EXCEPTIONS:
        return _DEBIAN_EXCEPTIONS[name]
    name = name.lower().replace("_", "-")
    return f"{name}-{version}" if name[-1:].isdigit() else f"{name}{version}"


def _rpm_provides(soname: str) -> str:
    # What dnf and zypper accept for "the package with this library", on 64-bit systems.
    return f"{soname}()(64bit)" if sys.maxsize > 2**32 else soname


def packages(sonames: Sequence[str], family: str) -> list[str] | None:
    """The packages (or package-manager provides) to install for ``sonames``, each once; None
    when the family is unknown or (Arch) a library is not in the table."""
    found: list[str] = []
    for soname in sonames:
        name, _ = _library_name(soname)
        split = _SPLIT_PACKAGES.get(name)
        if split is None and name.startswith("libxcb"):
            split = ("libxcb", "libxcb")
        if family == "debian":
            package: str | None = debian_package(soname)
        elif family == "fedora":
            package = split[0] if split else _rpm_provides(soname)
        elif family == "suse":  # it names packages like Debian does; provides work everywhere
            package = _rpm_provides(soname)
        elif family == "arch":
            package = split[1] if split else None
        else:
            package = None
        if package is None:
            return None
        found.append(package)
    return list(dict.fromkeys(found))


def shown_names(sonames: Sequence[str], family: str) -> list[str]:
    """What the user is told is missing: package names where known, else the sonames."""
    names = packages(sonames, family) or list(sonames)
    return [name.partition("()")[0] for name in names]


def install_command(sonames: Sequence[str], family: str, is_root: bool) -> str | None:
    """The command, as the user would type it, that installs ``sonames``; None when unknown."""
    names = packages(sonames, family)
    if not names:
        return None
    command = f"{_INSTALLERS[family]} {' '.join(shlex.quote(name) for name in names)}"
    return command if is_root else f"sudo {command}"


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def run_quietly(command: Sequence[str]) -> int:
    """The real runner: apt-get without questions; its output goes to the terminal."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        return subprocess.run(list(command), env=env, check=False).returncode
    except OSError:
        return 127


def install(sonames: Sequence[str], family: str, root: bool, run: Runner | None = None) -> bool:
    """Installs the packages for ``sonames`` with apt-get when that is allowed (root on
    Debian/Ubuntu with apt-get); returns whether it did. Anything else is left to the caller,
    which prints the command."""
    names = packages(sonames, family)
    if not names or family != "debian" or not root or shutil.which("apt-get") is None:
        return False
    run = run or run_quietly
    print(f"nightlamp: installing the system libraries Qt's window needs: {' '.join(names)}",
          file=sys.stderr)
    command = ["apt-get", "install", "-y", "--no-install-recommends", *names]
    if run(command) == 0:
        return True
    # A fresh container has no package lists yet ("Unable to locate package"): fetch them once.
    return run(["apt-get", "update"]) == 0 and run(command) == 0
