"""Nightlamp's inference engine: model folders, ONNX Runtime sessions, generation and the CLI.

The engine never imports torch or PySide6 (a test enforces it), so the desktop app and the
packaged bundle run without them.
"""

from __future__ import annotations
