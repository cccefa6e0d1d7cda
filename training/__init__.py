"""Nightlamp's training package: PyTorch models, tokenizer training, the training loop, ONNX export.

Needs the ``train`` extra (torch, onnx, safetensors, tqdm); the app itself never imports it.
"""

from __future__ import annotations
