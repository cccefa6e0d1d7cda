"""The values the app's settings can take (no Qt here: the CLI reads them before Qt loads)."""

from __future__ import annotations

THEMES = ("system", "light", "dark")
LANGUAGES = ("system", "en", "zh_CN")
DEVICES = ("auto", "cpu", "cuda")
PANELS = ("chat", "summarize", "translate")  # the panels that run a model
