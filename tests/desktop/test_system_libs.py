"""The check of Qt's window plugin libraries before Qt loads, and their installation."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from desktop import system_libs
from desktop.system_libs import (
    Missing,
    debian_package,
    install,
    install_command,
    missing_libraries,
    os_family,
    parse_ldd,
    platform_plugin,
)
from engine.cli.main import main

LDD_OUTPUT = """\
\tlinux-vdso.so.1 (0x00007ffd6f5e4000)
\tlibQt6XcbQpa.so.6 => /venv/PySide6/Qt/lib/libQt6XcbQpa.so.6 (0x00007f6b1c000000)
\tlibxcb-cursor.so.0 => /lib/x86_64-linux-gnu/libxcb-cursor.so.0 (0x00007f6b1bff0000)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\tlibxcb-icccm.so.4 => not found
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f6b1b800000)
"""
MISSING = Missing("xcb", ("libxcb-icccm.so.4", "libxcb-keysyms.so.1"))


def test_ldd_output_gives_each_missing_library_once() -> None:
    assert parse_ldd(LDD_OUTPUT) == ("libxcb-icccm.so.4", "libxcb-keysyms.so.1")
    assert parse_ldd("\tlibc.so.6 => /lib/libc.so.6 (0x1)\n") == ()


@pytest.mark.parametrize(("soname", "package"), [
    ("libxcb-icccm.so.4", "libxcb-icccm4"), ("libxcb-keysyms.so.1", "libxcb-keysyms1"),
    ("libxcb-cursor.so.0", "libxcb-cursor0"), ("libxkbcommon-x11.so.0", "libxkbcommon-x11-0"),
    ("libxcb-render-util.so.0", "libxcb-render-util0"), ("libEGL.so.1", "libegl1"),
    ("libdbus-1.so.3", "libdbus-1-3"), ("libfontconfig.so.1", "libfontconfig1")])
def test_sonames_map_to_debian_packages(soname: str, package: str) -> None:
    assert debian_package(soname) == package


def test_the_command_fits_the_distribution(tmp_path: Path) -> None:
    release = tmp_path / "os-release"
    release.write_text('NAME="Ubuntu"\nID=ubuntu\nID_LIKE=debian\n', encoding="utf-8")
    assert os_family(release) == "debian"
    release.write_text('ID="fedora"\n', encoding="utf-8")
    assert os_family(release) == "fedora"
    assert os_family(tmp_path / "none") == ""
    libraries = MISSING.libraries
    assert install_command(libraries, "debian") == \
        "sudo apt-get install -y libxcb-icccm4 libxcb-keysyms1"
    assert install_command(libraries, "fedora").startswith("sudo dnf install -y 'libxcb-icccm")
    assert "libxcb-keysyms.so.1" in install_command(libraries, "")


def test_the_platform_qt_will_use() -> None:
    assert platform_plugin({}) == "xcb"
    assert platform_plugin({"QT_QPA_PLATFORM": "offscreen"}) == "offscreen"
    assert platform_plugin({"QT_QPA_PLATFORM": "wayland;xcb"}) == "wayland"
    assert platform_plugin({"WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland"}) == \
        "wayland"


def test_root_on_debian_installs_others_get_the_command(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    ran: list[list[str]] = []
    answers = iter([100, 0, 0])  # the first install fails: no package lists yet

    def runner(command: Sequence[str]) -> int:
        ran.append(list(command))
        return next(answers)

    assert install(MISSING, "debian", True, runner) == 0
    assert ran == [["apt-get", "install", "-y", "--no-install-recommends", "libxcb-icccm4",
                    "libxcb-keysyms1"], ["apt-get", "update"], ran[0]]
    ran.clear()
    assert install(MISSING, "debian", False, runner) == 1
    assert ran == []
    assert "sudo apt-get install -y libxcb-icccm4 libxcb-keysyms1" in capsys.readouterr().err


def test_gui_says_one_line_and_exits_2_when_libraries_are_missing(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    monkeypatch.setattr(system_libs, "missing_libraries", lambda plugin: MISSING)
    monkeypatch.setattr(system_libs, "os_family", lambda: "debian")
    assert main(["gui"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "libxcb-icccm.so.4" in err and "sudo apt-get install -y libxcb-icccm4" in err


def test_the_real_probe_agrees_with_ldd() -> None:
    folder = system_libs.plugin_folder()
    assert folder is not None and (folder / "libqxcb.so").is_file()
    found = missing_libraries("xcb")
    env = {"LD_LIBRARY_PATH": str(folder.parent.parent / "lib")}
    ldd = subprocess.run(["ldd", str(folder / "libqxcb.so")], capture_output=True, text=True,
                         env=env, check=True).stdout
    expected = tuple(dict.fromkeys(line.split()[0] for line in ldd.splitlines()
                                   if "not found" in line))
    assert (found.libraries if found else ()) == expected
    assert missing_libraries("no-such-plugin") is None
