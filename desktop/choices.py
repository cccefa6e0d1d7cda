"""The values the app's settings can take (no Qt here: the CLI reads them before Qt loads).

The device list is the engine's (``engine.device.DEVICES``); the UI languages are the app's own.
"""

from __future__ import annotations

from engine.device import DEVICES

__all__ = ["DEVICES", "LANGUAGES", "PANELS", "THEMES"]

THEMES = ("system", "light", "dark")
LANGUAGES = ("system", "en", "zh_CN")  # UI languages: translations of the app itself
PANELS = ("chat", "summarize", "translate")  # the panels that run a model
