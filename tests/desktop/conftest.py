"""Fixtures shared by the desktop tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from desktop.main_window import MainWindow


@pytest.fixture
def windows() -> Iterator[list[MainWindow]]:
    """Windows a test opens; each is closed (stopping its worker thread) afterwards."""
    opened: list[MainWindow] = []
    yield opened
    for window in opened:
        window.close()
