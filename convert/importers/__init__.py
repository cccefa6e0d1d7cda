"""Importers: turn published checkpoints (GGUF files, Hugging Face folders) into model folders.

They use numpy and onnx only (no PyTorch), so the app can import and pull models by itself.
"""

from __future__ import annotations
