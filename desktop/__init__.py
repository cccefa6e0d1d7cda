"""Nightlamp's PySide6 desktop app (Chat, Summarize, Translate). Talks to the engine only."""

from __future__ import annotations
