"""Settings, window state, themes, the bundled CJK font and the Chinese UI."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtGui import QFont, QFontDatabase, QFontMetrics, QPalette, QTextLayout
from PySide6.QtWidgets import QApplication, QDialogButtonBox
from tests_desktop_fakes import fake_worker, quick_generate

from desktop.fonts import install_fonts
from desktop.i18n import install_translators, resolve_language
from desktop.main_window import MainWindow
from desktop.resources import resources_dir
from desktop.settings import AppSettings
from desktop.theme import apply_theme

TRANSLATIONS = resources_dir() / "translations"


@pytest.fixture
def app(qapp: QApplication) -> Iterator[QApplication]:
    """The test QApplication, put back to English and the light theme afterwards."""
    yield qapp
    install_translators(qapp, "en")
    apply_theme(qapp, "light")


def _window(qtbot: Any) -> MainWindow:
    window = MainWindow(worker=fake_worker(quick_generate), model="fake")
    qtbot.addWidget(window)
    return window


def test_settings_round_trip_and_bad_values_fall_back(tmp_path: Path) -> None:
    settings = AppSettings(tmp_path / "settings.ini")
    settings.theme, settings.language, settings.device = "dark", "zh_CN", "cpu"
    settings.set_panel_model("translate", "opus")
    settings.sync()
    again = AppSettings(tmp_path / "settings.ini")
    assert (again.theme, again.language, again.device) == ("dark", "zh_CN", "cpu")
    assert again.panel_model("translate") == "opus" and again.panel_model("chat") == ""
    (tmp_path / "settings.ini").write_text(
        "[appearance]\ntheme=purple\nlanguage=42\n[window]\ntab=lots\n", encoding="utf-8")
    odd = AppSettings(tmp_path / "settings.ini")
    assert (odd.theme, odd.language, odd.window_state()[2]) == ("system", "system", 0)


def test_window_size_and_panel_are_restored(qtbot: Any) -> None:
    window = _window(qtbot)
    window.resize(700, 520)  # the offscreen screen is 800 x 600
    window.tabs.setCurrentIndex(2)
    window.close()
    again = _window(qtbot)
    assert (again.width(), again.height()) == (700, 520)
    assert again.tabs.currentIndex() == 2
    again.close()


def test_dark_and_light_themes(app: QApplication) -> None:
    assert apply_theme(app, "dark")
    dark_window = app.palette().color(QPalette.ColorRole.Window)
    assert dark_window.lightness() < 60
    assert not apply_theme(app, "light")
    assert app.palette().color(QPalette.ColorRole.Window).lightness() > 180
    assert app.style().name().lower() == "fusion"


def test_the_theme_menu_switches_and_remembers(qtbot: Any, app: QApplication) -> None:
    window = _window(qtbot)
    dark = next(a for a in window.menus.theme_group.actions() if a.data() == "dark")
    dark.trigger()
    assert app.palette().color(QPalette.ColorRole.Window).lightness() < 60
    assert AppSettings().theme == "dark"
    window.close()


def test_the_bundled_font_draws_chinese(app: QApplication) -> None:
    families = install_fonts(app)
    assert families == ["Nightlamp Sans SC"]
    assert "Nightlamp Sans SC" in QFontDatabase.families()
    assert families[0] in app.font().families()  # a fallback behind the UI font
    metrics = QFontMetrics(QFont("Nightlamp Sans SC"))
    assert all(metrics.inFontUcs4(ord(c)) for c in "夜灯聊天摘要翻译，。")


def _families_drawing(text: str, font: QFont) -> list[tuple[str, str]]:
    """(family, characters) of each run Qt draws ``text`` with in ``font``."""
    layout = QTextLayout(text, font)
    layout.beginLayout()
    layout.createLine()
    layout.endLayout()
    runs = []
    for run in layout.glyphRuns(0, len(text), QTextLayout.GlyphRunRetrievalFlag.RetrieveAll):
        indexes = run.stringIndexes()
        runs.append((run.rawFont().familyName(), "".join(text[i] for i in indexes)))
    return runs


def test_latin_text_and_curly_quotes_keep_the_ui_font(app: QApplication) -> None:
    """The bundled CJK font only fills in: it must not draw English (wide "Don’ t")."""
    install_fonts(app)
    runs = _families_drawing("Don’t “quote” it… 中文", app.font())
    latin = {family for family, chars in runs if any(c in chars for c in "D’“”…")}
    assert len(latin) == 1 and "Nightlamp Sans SC" not in latin, runs
    chinese = {family for family, chars in runs if "中" in chars}
    assert chinese and chinese != latin


def test_language_names_never_show_as_boxes(app: QApplication) -> None:
    """Each picker entry is drawable by an installed font; English is beside the native name."""
    from desktop.task_panels import LANGUAGE_TAGS, language_label

    install_fonts(app)
    families = QFontDatabase.families()
    metrics = [QFontMetrics(QFont(family)) for family in families]
    for tag in LANGUAGE_TAGS:
        label = language_label(tag)
        for char in set(label) - set(" ()"):
            assert any(m.inFontUcs4(ord(char)) for m in metrics), (tag, label, char)
    assert language_label("de") == "Deutsch (German)"
    assert language_label("ru") == "Русский (Russian)"  # DejaVu has Cyrillic


def test_a_language_without_a_font_shows_its_english_name(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from desktop import task_panels

    monkeypatch.setattr(task_panels, "can_draw", lambda text, language: language != "ko")
    assert task_panels.language_label("ko") == "Korean"
    assert task_panels.language_label("de") == "Deutsch (German)"


def test_language_follows_the_system_locale() -> None:
    assert resolve_language("system", "zh_CN") == "zh_CN"
    assert resolve_language("system", "zh_TW") == "zh_CN"
    assert resolve_language("system", "fr_FR") == "en"
    assert resolve_language("en", "zh_CN") == "en"
    assert resolve_language("klingon") == "en"


def test_the_chinese_ui_loads(qtbot: Any, app: QApplication) -> None:
    assert install_translators(app, "zh_CN") == "zh_CN"
    window = _window(qtbot)
    tabs = [window.tabs.tabText(i) for i in range(window.tabs.count())]
    assert tabs == ["聊天", "摘要", "翻译", "模型"]
    assert window.chat.send_button.text() == "发送"
    assert window.summarize.run_button.text() == "摘要"  # a string from a base class
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                               | QDialogButtonBox.StandardButton.Cancel)
    assert [b.text() for b in buttons.buttons()] == ["确定", "取消"]  # Qt's own strings too
    assert window.models.task_names(["chat", "summarize", "translate"]) == "聊天、摘要、翻译"
    window.close()
    assert install_translators(app, "en") == "en"
    english = _window(qtbot)
    assert english.tabs.tabText(0) == "Chat"
    english.close()


def test_every_ui_string_is_translated(tmp_path: Path) -> None:
    """Fails when UI text changed without `make translations` and a Chinese translation."""
    desktop = Path(__file__).resolve().parents[2] / "desktop"
    bin_dir = Path(sys.executable).parent
    ts = tmp_path / "check.ts"
    shutil.copy(TRANSLATIONS / "nightlamp_zh_CN.ts", ts)
    subprocess.run([str(bin_dir / "pyside6-lupdate"), *map(str, sorted(desktop.glob("*.py"))),
                    "-ts", str(ts), "-no-obsolete"], check=True, capture_output=True)
    text = ts.read_text(encoding="utf-8")
    assert text.count("<message>") > 100
    untranslated = [line for line in text.splitlines() if 'type="unfinished"' in line]
    assert untranslated == []
    qm = tmp_path / "check.qm"
    subprocess.run([str(bin_dir / "pyside6-lrelease"), str(ts), "-qm", str(qm)], check=True,
                   capture_output=True)
    assert qm.read_bytes() == (TRANSLATIONS / "nightlamp_zh_CN.qm").read_bytes()


def test_about_box_shows_the_version_from_pyproject(app: QApplication, qtbot: Any) -> None:
    import re

    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text("utf-8")
    version = re.search(r'^version = "([^"]+)"', pyproject, re.MULTILINE)
    assert version
    window = _window(qtbot)
    assert f"<h3>Nightlamp {version.group(1)}</h3>" in window.menus.about_text()


def test_the_app_has_its_icon_and_desktop_entry_id(app: QApplication) -> None:
    from desktop.app import APP_ID, app_icon, application

    application(AppSettings())
    assert app.desktopFileName() == APP_ID
    sizes = {(size.width(), size.height()) for size in app_icon().availableSizes()}
    assert {(16, 16), (48, 48), (256, 256)} <= sizes
    assert not app.windowIcon().isNull()
    entry = resources_dir() / "packaging" / "linux" / f"{APP_ID}.desktop"
    assert "Icon=nightlamp" in entry.read_text("utf-8")
