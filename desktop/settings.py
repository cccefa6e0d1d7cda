"""The app's persistent settings (QSettings in an INI file next to the history).

Kept in ``NIGHTLAMP_HOME/settings.ini`` rather than the platform's registry or plist, so all of a
user's Nightlamp data lives in one folder (and tests, which point NIGHTLAMP_HOME elsewhere, never
touch the real ones). Values read back are checked: a hand-edited or old file falls back to the
defaults instead of breaking start-up.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

from desktop.choices import DEVICES, LANGUAGES, THEMES
from engine.store import home


class AppSettings:
    """Typed access to the few values the app keeps between runs."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or home() / "settings.ini"
        self._store = QSettings(str(self.path), QSettings.Format.IniFormat)

    def _choice(self, key: str, allowed: tuple[str, ...]) -> str:
        value = self._store.value(key, allowed[0])
        return value if isinstance(value, str) and value in allowed else allowed[0]

    @property
    def theme(self) -> str:
        return self._choice("appearance/theme", THEMES)

    @theme.setter
    def theme(self, value: str) -> None:
        self._store.setValue("appearance/theme", value)

    @property
    def language(self) -> str:
        return self._choice("appearance/language", LANGUAGES)

    @language.setter
    def language(self, value: str) -> None:
        self._store.setValue("appearance/language", value)

    @property
    def device(self) -> str:
        return self._choice("models/device", DEVICES)

    @device.setter
    def device(self, value: str) -> None:
        self._store.setValue("models/device", value)

    def panel_model(self, panel: str) -> str:
        """The model chosen for a panel; "" means the default model."""
        value = self._store.value(f"models/{panel}", "")
        return value if isinstance(value, str) else ""

    def set_panel_model(self, panel: str, name: str) -> None:
        self._store.setValue(f"models/{panel}", name)

    def server(self) -> tuple[bool, int]:
        """Whether the local server was on when the app last closed, and its port."""
        on = self._store.value("server/enabled", False)
        port = self._store.value("server/port", 0)
        port = int(port) if isinstance(port, (int, str)) and str(port).isdigit() else 0
        return on in (True, "true"), port if 1024 <= port <= 65535 else 0

    def set_server(self, enabled: bool, port: int) -> None:
        self._store.setValue("server/enabled", enabled)
        self._store.setValue("server/port", port)

    def window_state(self) -> tuple[QByteArray | None, QByteArray | None, int]:
        """Geometry, dock/toolbar state and the open tab of the last session."""
        geometry = self._store.value("window/geometry")
        state = self._store.value("window/state")
        tab = self._store.value("window/tab", 0)
        return (geometry if isinstance(geometry, QByteArray) else None,
                state if isinstance(state, QByteArray) else None,
                int(tab) if isinstance(tab, (int, str)) and str(tab).isdigit() else 0)

    def save_window_state(self, geometry: QByteArray, state: QByteArray, tab: int) -> None:
        self._store.setValue("window/geometry", geometry)
        self._store.setValue("window/state", state)
        self._store.setValue("window/tab", tab)

    def sync(self) -> None:
        self._store.sync()
