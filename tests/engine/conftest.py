"""The tiny trained session models, loaded once per test module."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.model import Model, load_model


@pytest.fixture(scope="module")
def transformer(transformer_model_dir: Path) -> Model:
    return load_model(transformer_model_dir, device="cpu", threads=1)


@pytest.fixture(scope="module")
def lstm(lstm_model_dir: Path) -> Model:
    return load_model(lstm_model_dir, device="cpu", threads=1)
