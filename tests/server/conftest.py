"""A server on a free loopback port per test, over the tiny trained Transformer (a ChatML
chat model of 1,024 positions that writes varied text) and the tiny LSTM (it cannot batch)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from server_helpers import CHAT_MODEL, LSTM_MODEL, StartServer

from engine.server.registry import ModelRegistry
from engine.server.runner import RunningServer
from engine.store import models_dir


@pytest.fixture
def installed(roomy_model_dir: Path, lstm_model_dir: Path) -> Path:
    """The tiny models in this test's store, under the names requests use."""
    store = models_dir()
    store.mkdir(parents=True, exist_ok=True)
    shutil.copytree(roomy_model_dir, store / CHAT_MODEL)
    shutil.copytree(lstm_model_dir, store / LSTM_MODEL)
    return store


@pytest.fixture
def start_server(installed: Path) -> Iterator[StartServer]:
    """Starts servers on port 0 (a free port); every one is stopped after the test."""
    started: list[RunningServer] = []

    def start(**options: object) -> RunningServer:
        slots = options.pop("slots", 4)
        server = RunningServer(ModelRegistry(device="cpu", threads=1, slots=slots),  # type: ignore[arg-type]
                               port=0, **options)  # type: ignore[arg-type]
        started.append(server.start())
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def server(start_server: StartServer) -> RunningServer:
    return start_server()


@pytest.fixture
def client(server: RunningServer) -> openai.OpenAI:
    # No retries: a test must see the first answer, and a wrong one must not be retried away.
    return openai.OpenAI(base_url=server.url, api_key="unused", max_retries=0, timeout=60)
