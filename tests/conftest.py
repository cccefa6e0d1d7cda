"""Shared fixtures: a small corpus and tiny Transformer/LSTM models trained on it in seconds.

Models are trained once per test session and exported to model folders that tests only read.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# ONNX Runtime (1.31 on Linux) writes a telemetry device id and an event database under
# ~/.cache/Microsoft/DeveloperTools when it is imported, unless this is set first: a test run
# writes nothing outside the checkout and the temporary folders.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

_SUBJECTS = ["the lamp", "a small model", "the night", "my computer", "the assistant",
             "a quiet room", "the reader", "an old book"]
_VERBS = ["lights", "reads", "summarizes", "translates", "remembers", "answers", "writes"]
_OBJECTS = ["the page", "a long story", "every question", "the dark hallway", "our notes",
            "the poem", "a letter", "the map"]
_CHINESE = ["夜灯照亮了房间。", "小模型读了一本书。", "助手回答每一个问题。", "你好，世界！🌙"]


def make_corpus_text(lines: int = 320, seed: int = 0) -> str:
    """Deterministic English sentences with some Chinese and emoji lines mixed in."""
    rng = random.Random(seed)
    out = []
    for index in range(lines):
        if index % 8 == 7:
            out.append(rng.choice(_CHINESE))
        else:
            out.append(f"{rng.choice(_SUBJECTS).capitalize()} {rng.choice(_VERBS)} "
                       f"{rng.choice(_OBJECTS)}.")
    return "\n".join(out) + "\n"


@pytest.fixture(scope="session", autouse=True)
def _single_threaded_torch() -> Iterator[None]:
    """PyTorch on one thread: the tiny models do thousands of small products, and with one
    OpenMP thread per core any other busy process (or ONNX Runtime's spinning pool in the same
    process) makes each parallel region wait for a descheduled thread (1 s became 100 s)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets an empty model store, so nothing reads or writes the user's."""
    home = tmp_path / "nightlamp-home"
    monkeypatch.setenv("NIGHTLAMP_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def corpus_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text(make_corpus_text(), encoding="utf-8")
    return path


TINY_OVERRIDES = {"eval_every": 40, "eval_batches": 2}


def _train(arch: str, corpus: Path, out: Path, steps: int) -> Path:
    from training.trainer import train_lm

    train_lm(arch, [corpus], out, steps=steps, device="cpu", overrides=dict(TINY_OVERRIDES),
             progress=False)
    return out


@pytest.fixture(scope="session")
def transformer_checkpoint(tmp_path_factory: pytest.TempPathFactory, corpus_file: Path) -> Path:
    return _train("transformer", corpus_file, tmp_path_factory.mktemp("ckpt") / "transformer", 80)


@pytest.fixture(scope="session")
def lstm_checkpoint(tmp_path_factory: pytest.TempPathFactory, corpus_file: Path) -> Path:
    return _train("lstm", corpus_file, tmp_path_factory.mktemp("ckpt") / "lstm", 80)


@pytest.fixture(scope="session")
def transformer_model_dir(tmp_path_factory: pytest.TempPathFactory,
                          transformer_checkpoint: Path) -> Path:
    from training.export import export_checkpoint

    out = tmp_path_factory.mktemp("models") / "tiny-transformer"
    return export_checkpoint(transformer_checkpoint, out).folder


@pytest.fixture(scope="session")
def lstm_model_dir(tmp_path_factory: pytest.TempPathFactory, lstm_checkpoint: Path) -> Path:
    from training.export import export_checkpoint

    out = tmp_path_factory.mktemp("models") / "tiny-lstm"
    return export_checkpoint(lstm_checkpoint, out).folder


@pytest.fixture(scope="session")
def roomy_model_dir(transformer_checkpoint: Path,
                    tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny transformer exported with room for summary and translation prompts: its
    checkpoint's config is set to 1,024 tokens before export (RoPE runs past the training
    length; only the plumbing is under test, not the prose)."""
    from training.export import export_checkpoint

    scratch = tmp_path_factory.mktemp("roomy-model")
    checkpoint = scratch / "checkpoint"
    shutil.copytree(transformer_checkpoint, checkpoint)
    config = json.loads((checkpoint / "config.json").read_text(encoding="utf-8"))
    config["model"]["context_length"] = 1024
    (checkpoint / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return export_checkpoint(checkpoint, scratch / "tiny-transformer").folder


@pytest.fixture(scope="session")
def tiny_chat_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama chat model (ChatML template, 1,024 positions) imported at int8 as
    `models import` does: it chats, summarizes and translates, badly and fast."""
    from tiny_hf import save_tiny_hf

    from convert.importers.hf_model import read_hf_model
    from convert.importers.imported import write_model_folder

    scratch = tmp_path_factory.mktemp("tiny-chat")
    save_tiny_hf(scratch / "hf", "llama", True, context=1024)
    return write_model_folder(read_hf_model(scratch / "hf", "int8"), scratch / "tiny-chat",
                              "int8")


@pytest.fixture
def minilm(tmp_path: Path) -> Path:
    """A tiny random encoder installed as the catalog's embedding model (``models pull minilm``)."""
    from tests.tiny_bert import install_tiny_minilm

    return install_tiny_minilm(tmp_path)
