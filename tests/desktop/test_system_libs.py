"""The check of Qt's window plugin libraries before Qt loads, the package each library is in, and
their installation by ``make run`` (desktop/system_libs.py, desktop/system_packages.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from commands.main import main
from desktop import system_libs, system_packages
from desktop.system_libs import (
    Missing,
    MissingLibrariesError,
    check_before_qt,
    find_missing,
    missing_libraries,
    parse_ldd,
    plugin_file,
    qt_platforms,
)
from desktop.system_packages import debian_package, install, install_command, os_family

REPO = Path(__file__).resolve().parents[2]
LINUX_ONLY = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ldd is Linux's")
# `ldd .../PySide6/Qt/plugins/platforms/libqxcb.so` on a Debian 12 without libxcb-icccm4 and
# libxcb-keysyms1 (shortened): the two appear twice, once for the plugin, once for
# libQt6XcbQpa.so.6.
LDD_OUTPUT = """\
\tlinux-vdso.so.1 (0x00007f276f83c000)
\tlibQt6XcbQpa.so.6 => /venv/PySide6/Qt/lib/libQt6XcbQpa.so.6 (0x00007f276f76e000)
\tlibQt6Gui.so.6 => /venv/PySide6/Qt/lib/libQt6Gui.so.6 (0x00007f276ec00000)
\tlibGL.so.1 => /lib/x86_64-linux-gnu/libGL.so.1 (0x00007f276eb79000)
\tlibxkbcommon-x11.so.0 => /lib/x86_64-linux-gnu/libxkbcommon-x11.so.0 (0x00007f276f712000)
\tlibxcb-cursor.so.0 => /lib/x86_64-linux-gnu/libxcb-cursor.so.0 (0x00007f276eb72000)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-util.so.1 => /lib/x86_64-linux-gnu/libxcb-util.so.1 (0x00007f276eb6a000)
\tlibxcb-keysyms.so.1 => not found
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f276da1e000)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\t/lib64/ld-linux-x86-64.so.2 (0x00007f276f83e000)
"""
LIBRARIES = ("libxcb-icccm.so.4", "libxcb-keysyms.so.1")
MISSING = Missing("xcb", LIBRARIES)
LINE = ("Nightlamp's window needs system libraries that are missing: libxcb-icccm4 "
        "libxcb-keysyms1. Install them with: sudo apt-get install -y libxcb-icccm4 "
        "libxcb-keysyms1 (or run 'nightlamp chat' in the terminal)")
NO_SCREEN = ("DISPLAY", "WAYLAND_DISPLAY", "XDG_SESSION_TYPE", "QT_QPA_PLATFORM",
             "QT_QPA_PLATFORM_PLUGIN_PATH", "QT_PLUGIN_PATH")


def real_ldd(library: Path) -> tuple[str, ...]:
    """The "not found" names, read without the module's parser."""
    output = subprocess.run(["ldd", str(library)], capture_output=True, text=True,
                            check=True).stdout
    return tuple(dict.fromkeys(line.split()[0] for line in output.splitlines()
                               if line.strip().endswith("=> not found")))


def test_ldd_output_gives_each_missing_library_once() -> None:
    assert parse_ldd(LDD_OUTPUT) == LIBRARIES
    assert parse_ldd(LDD_OUTPUT.replace("not found", "/lib/x.so (0x1)")) == ()


def test_a_failing_ldd_says_nothing(tmp_path: Path) -> None:
    fake = tmp_path / "ldd"
    fake.write_text("#!/bin/sh\necho '\tnot a dynamic executable' >&2\nexit 1\n")
    fake.chmod(0o755)
    assert system_libs._ldd_missing(str(fake), tmp_path) is None
    fake.write_text(f"#!/bin/sh\ncat <<'END'\n{LDD_OUTPUT}END\n")
    assert system_libs._ldd_missing(str(fake), tmp_path) == LIBRARIES


@pytest.mark.parametrize(("soname", "package"), [
    ("libxcb-icccm.so.4", "libxcb-icccm4"), ("libxcb-keysyms.so.1", "libxcb-keysyms1"),
    ("libxcb-cursor.so.0", "libxcb-cursor0"), ("libxkbcommon-x11.so.0", "libxkbcommon-x11-0"),
    ("libxcb-render-util.so.0", "libxcb-render-util0"), ("libEGL.so.1", "libegl1"),
    ("libX11-xcb.so.1", "libx11-xcb1"), ("libdbus-1.so.3", "libdbus-1-3"),
    ("libwayland-cursor.so.0", "libwayland-cursor0"), ("libpng16.so.16", "libpng16-16"),
    ("libgssapi_krb5.so.2", "libgssapi-krb5-2"), ("libglib-2.0.so.0", "libglib2.0-0"),
    ("libz.so.1", "zlib1g"), ("libharfbuzz.so.0", "libharfbuzz0b")])
def test_sonames_map_to_debian_packages(soname: str, package: str) -> None:
    assert debian_package(soname) == package


@pytest.mark.parametrize(("release", "family"), [
    ('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n', "debian"),
    ('NAME="Ubuntu"\nID=ubuntu\nID_LIKE=debian\n', "debian"),
    ('ID=linuxmint\nID_LIKE="ubuntu debian"\n', "debian"),
    ('ID="fedora"\n', "fedora"), ('ID="rocky"\nID_LIKE="rhel centos fedora"\n', "fedora"),
    ('ID="opensuse-tumbleweed"\nID_LIKE="opensuse suse"\n', "suse"),
    ("ID=manjaro\nID_LIKE=arch\n", "arch"), ("ID=alpine\n", "")])
def test_the_distribution_comes_from_os_release(tmp_path: Path, release: str,
                                                family: str) -> None:
    path = tmp_path / "os-release"
    path.write_text(release, encoding="utf-8")
    assert os_family(path) == family


def test_the_command_fits_the_distribution_and_the_user() -> None:
    assert os_family(Path("/no/such/os-release")) == ""
    assert install_command(LIBRARIES, "debian", False) == \
        "sudo apt-get install -y libxcb-icccm4 libxcb-keysyms1"
    assert install_command(LIBRARIES, "debian", True) == \
        "apt-get install -y libxcb-icccm4 libxcb-keysyms1"
    assert install_command(LIBRARIES, "fedora", False) == \
        "sudo dnf install -y xcb-util-wm xcb-util-keysyms"
    assert install_command(LIBRARIES, "arch", True) == \
        "pacman -S --needed xcb-util-wm xcb-util-keysyms"
    # Not in the table: Fedora and openSUSE install by the library's own name.
    assert install_command(["libfoo.so.3"], "fedora", False) == \
        "sudo dnf install -y 'libfoo.so.3()(64bit)'"
    assert install_command(LIBRARIES, "suse", False) == \
        "sudo zypper install -y 'libxcb-icccm.so.4()(64bit)' 'libxcb-keysyms.so.1()(64bit)'"
    assert install_command(["libfoo.so.3"], "arch", False) is None
    assert install_command(LIBRARIES, "", False) is None
    # GLib's libraries are one package: installed once.
    assert install_command(["libglib-2.0.so.0", "libgthread-2.0.so.0"], "debian", True) == \
        "apt-get install -y libglib2.0-0"


def test_the_line_names_packages_and_the_command() -> None:
    assert system_libs.explain(MISSING, "debian", False) == LINE
    unknown = system_libs.explain(MISSING, "", False)
    assert "missing: libxcb-icccm.so.4 libxcb-keysyms.so.1. Install the packages" in unknown
    assert "\n" not in unknown


@pytest.mark.parametrize(("environ", "platforms"), [
    ({}, ("xcb",)), ({"DISPLAY": ":0"}, ("xcb",)),
    ({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"}, ("wayland", "xcb")),
    ({"XDG_SESSION_TYPE": "wayland", "DISPLAY": ":0"}, ("wayland", "xcb")),
    ({"QT_QPA_PLATFORM": "offscreen", "DISPLAY": ":0"}, ("offscreen",)),
    ({"QT_QPA_PLATFORM": "wayland;xcb"}, ("wayland", "xcb")),
    ({"QT_QPA_PLATFORM": "xcb:nograb", "WAYLAND_DISPLAY": "wayland-0"}, ("xcb",))])
def test_the_platforms_qt_tries(environ: dict[str, str], platforms: tuple[str, ...]) -> None:
    assert qt_platforms(environ) == platforms


def make_plugins(folder: Path, *names: str) -> Path:
    folder.mkdir(parents=True)
    for name in names:
        (folder / name).write_bytes(b"\x7fELF")
    return folder


def test_the_plugin_is_found_inside_the_app_bundle(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # PyInstaller's one-folder layout: dist/nightlamp/_internal/PySide6/Qt/plugins/platforms/.
    internal = tmp_path / "nightlamp" / "_internal"
    platforms = make_plugins(internal / "PySide6" / "Qt" / "plugins" / "platforms",
                             "libqxcb.so", "libqwayland-egl.so")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(internal), raising=False)
    monkeypatch.setattr(system_libs.importlib.util, "find_spec",  # not the checkout's PySide6
                        lambda name: pytest.fail("a bundle has no PySide6 folder to import"))
    assert plugin_file("xcb", {}) == platforms / "libqxcb.so"
    assert plugin_file("wayland", {}) == platforms / "libqwayland-egl.so"  # Qt before 6.8
    assert plugin_file("wayland-egl", {}) == platforms / "libqwayland-egl.so"
    assert plugin_file("eglfs", {}) is None
    # Without _MEIPASS the bundle is the folder next to the executable.
    monkeypatch.delattr(sys, "_MEIPASS")
    monkeypatch.setattr(sys, "executable", str(tmp_path / "nightlamp" / "nightlamp"))
    assert plugin_file("xcb", {}) == platforms / "libqxcb.so"


def test_qt_environment_variables_come_first(tmp_path: Path) -> None:
    chosen = make_plugins(tmp_path / "chosen", "libqxcb.so")
    extra = make_plugins(tmp_path / "extra" / "platforms", "libqvnc.so")
    environ = {"QT_QPA_PLATFORM_PLUGIN_PATH": str(chosen),
               "QT_PLUGIN_PATH": str(tmp_path / "extra")}
    assert plugin_file("xcb", environ) == chosen / "libqxcb.so"
    assert plugin_file("vnc", environ) == extra / "libqvnc.so"
    assert plugin_file("offscreen", environ).parent.name == "platforms"  # PySide6's own


def fake_probe(monkeypatch: pytest.MonkeyPatch, answers: dict[str, tuple[str, ...] | None]) -> None:
    """Plugins that exist (the keys) and what each lacks."""
    monkeypatch.setattr(system_libs, "plugin_file",
                        lambda name, environ=None: Path(name) if name in answers else None)
    monkeypatch.setattr(system_libs, "missing_libraries",
                        lambda name, environ=None: answers.get(name))
    monkeypatch.setattr(sys, "platform", "linux")


def test_a_plugin_qt_can_fall_back_to_is_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    session = {"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0"}
    fake_probe(monkeypatch, {"wayland": (), "xcb": LIBRARIES})
    assert find_missing(session) is None
    fake_probe(monkeypatch, {"wayland": ("libwayland-cursor.so.0",), "xcb": ()})
    assert find_missing(session) is None
    fake_probe(monkeypatch, {"wayland": ("libwayland-cursor.so.0",), "xcb": LIBRARIES})
    assert find_missing(session) == Missing("wayland", ("libwayland-cursor.so.0",))
    fake_probe(monkeypatch, {"xcb": LIBRARIES})  # no Wayland plugin: Qt goes on to xcb
    assert find_missing(session) == MISSING
    fake_probe(monkeypatch, {"xcb": None})  # no way to tell: Qt speaks for itself
    assert find_missing(session) is None


def test_forced_x11_moves_to_wayland_when_only_wayland_works(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    environ = {"QT_QPA_PLATFORM": "xcb", "WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0"}
    fake_probe(monkeypatch, {"wayland": (), "xcb": LIBRARIES})
    check_before_qt(environ)
    assert environ["QT_QPA_PLATFORM"] == "wayland"
    assert capsys.readouterr().err == ("nightlamp: note: Qt's X11 plugin lacks libxcb-icccm.so.4, "
                                       "libxcb-keysyms.so.1; opening the window on Wayland "
                                       "instead\n")
    environ = {"QT_QPA_PLATFORM": "xcb", "WAYLAND_DISPLAY": "wayland-0"}
    fake_probe(monkeypatch, {"wayland": ("libwayland-cursor.so.0",), "xcb": LIBRARIES})
    with pytest.raises(MissingLibrariesError, match="libxcb-keysyms"):
        check_before_qt(environ)
    assert environ["QT_QPA_PLATFORM"] == "xcb"


def install_world(monkeypatch: pytest.MonkeyPatch, tools: Sequence[str] = ("apt-get",)
                  ) -> list[list[str]]:
    monkeypatch.setattr(system_packages.shutil, "which",
                        lambda name: f"/usr/bin/{name}" if name in tools else None)
    ran: list[list[str]] = []
    return ran


def test_root_on_debian_installs_with_apt_get(monkeypatch: pytest.MonkeyPatch) -> None:
    ran = install_world(monkeypatch)
    answers = iter([100, 0, 0])  # the first install fails: a fresh image has no package lists

    def runner(command: Sequence[str]) -> int:
        ran.append(list(command))
        return next(answers)

    assert install(LIBRARIES, "debian", True, runner) is True
    apt = ["apt-get", "install", "-y", "--no-install-recommends", "libxcb-icccm4",
           "libxcb-keysyms1"]
    assert ran == [apt, ["apt-get", "update"], apt]
    ran.clear()
    assert install(LIBRARIES, "debian", True, lambda c: ran.append(list(c)) or 1) is False
    assert ran == [apt, ["apt-get", "update"]]  # the update failed: no second try


@pytest.mark.parametrize(("family", "root", "tools"), [
    ("debian", False, ("apt-get",)), ("debian", True, ()), ("fedora", True, ("dnf",)),
    ("", True, ("apt-get",))])
def test_others_install_nothing(monkeypatch: pytest.MonkeyPatch, family: str, root: bool,
                                tools: Sequence[str]) -> None:
    ran = install_world(monkeypatch, tools)
    assert install(LIBRARIES, family, root, lambda c: ran.append(list(c)) or 0) is False
    assert ran == []


def make_run_world(monkeypatch: pytest.MonkeyPatch, root: bool,
                   found: list[Missing | None]) -> list[list[str]]:
    """``make run``'s set-up step on a Debian with a display; ``found`` is what each probe says."""
    for name in NO_SCREEN:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr(sys, "platform", "linux")
    answers = iter(found)
    monkeypatch.setattr(system_libs, "find_missing", lambda environ=None: next(answers))
    monkeypatch.setattr(system_packages, "os_family", lambda: "debian")
    monkeypatch.setattr(system_packages, "is_root", lambda: root)
    ran = install_world(monkeypatch)
    monkeypatch.setattr(system_packages, "run_quietly", lambda c: ran.append(list(c)) or 0)
    return ran


def test_make_run_installs_as_root(monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    ran = make_run_world(monkeypatch, True, [MISSING, None])
    assert system_libs.main(["--install"]) == 0
    assert ran == [["apt-get", "install", "-y", "--no-install-recommends", "libxcb-icccm4",
                    "libxcb-keysyms1"]]
    assert capsys.readouterr().err == ("nightlamp: installing the system libraries Qt's window "
                                       "needs: libxcb-icccm4 libxcb-keysyms1\n")


def test_make_run_prints_the_command_for_a_user(monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    ran = make_run_world(monkeypatch, False, [MISSING])
    assert system_libs.main(["--install"]) == 0  # make goes on; `nightlamp gui` says it again
    assert ran == []
    assert capsys.readouterr().err == f"nightlamp: {LINE}\n"


def test_make_run_is_silent_when_nothing_is_missing_or_no_window_opens(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    ran = make_run_world(monkeypatch, True, [None])
    assert system_libs.main(["--install"]) == 0
    monkeypatch.delenv("DISPLAY")  # no screen: the probe must not even run
    monkeypatch.setattr(system_libs, "find_missing", lambda environ=None: pytest.fail("probed"))
    assert system_libs.main(["--install"]) == 0
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert system_libs.main(["--install"]) == 0
    assert ran == []
    assert capsys.readouterr().err == ""


def test_gui_says_one_line_and_exits_2_when_libraries_are_missing(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import desktop.app

    make_run_world(monkeypatch, False, [MISSING])
    # Were the check to let it through, Qt must not try the (fake) display: fail cleanly instead.
    monkeypatch.setattr(desktop.app, "run", lambda *args: 0)
    assert main(["gui"]) == 2
    assert capsys.readouterr().err == f"nightlamp: error: {LINE}\n"


@LINUX_ONLY
def test_gui_exits_2_before_qt_loads_a_plugin_that_cannot_load(tmp_path: Path) -> None:
    # A copy of the real plugin away from Qt's libraries: its RUNPATH ($ORIGIN/../../lib) finds
    # nothing, so loading it would abort the process exactly as a missing libxcb-icccm4 does.
    real = plugin_file("xcb")
    assert real is not None
    platforms = make_plugins(tmp_path / "platforms")
    shutil.copy(real, platforms / real.name)
    env = {key: value for key, value in os.environ.items() if key not in NO_SCREEN}
    env.update(DISPLAY=":987", QT_QPA_PLATFORM_PLUGIN_PATH=str(platforms))
    result = subprocess.run([sys.executable, "-m", "commands", "gui"], capture_output=True,
                            text=True, env=env, cwd=REPO, timeout=120, check=False)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("nightlamp: error: Nightlamp's window needs system "
                                    "libraries that are missing: ")
    assert result.stderr.rstrip().endswith("(or run 'nightlamp chat' in the terminal)")


def test_the_probe_imports_no_qt() -> None:
    code = ("import sys, commands.gui, desktop.system_libs as s; s.find_missing(); "
            "print(sorted(m for m in sys.modules if m.startswith('PySide6')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=REPO, timeout=60, check=True)
    assert result.stdout.strip() == "[]"


@LINUX_ONLY
def test_the_real_probe_agrees_with_ldd() -> None:
    assert plugin_file("wayland-egl") == plugin_file("wayland")
    for platform in ("xcb", "wayland", "offscreen"):
        library = plugin_file(platform)
        assert library is not None, platform
        assert missing_libraries(platform) == real_ldd(library), platform
    assert missing_libraries("no-such-plugin") is None


@LINUX_ONLY
def test_without_ldd_the_loader_names_a_missing_library() -> None:
    # In a child: loading the plugin into the test process would keep it loaded.
    code = ("import shutil; shutil.which = lambda name: None\n"
            "from desktop.system_libs import missing_libraries; print(missing_libraries('xcb'))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=REPO, timeout=60, check=True)
    expected = real_ldd(plugin_file("xcb"))  # type: ignore[arg-type]
    found = eval(result.stdout)  # a printed tuple of str
    assert bool(found) == bool(expected)
    assert set(found) <= set(expected)
