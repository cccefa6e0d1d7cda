"""Nightlamp's inference engine: model folders, ONNX Runtime sessions, generation and the CLI.

The engine never imports torch or PySide6 (a test enforces it), so the desktop app and the
packaged bundle run without them.
"""

from __future__ import annotations

import os

# ONNX Runtime 1.31 writes a telemetry device id and an event database under ~/.cache as soon
# as it is imported. Nothing of the user's leaves the machine, not even that: off before any
# engine module imports onnxruntime (the user can still set the variable otherwise).
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
