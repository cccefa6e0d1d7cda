"""Memory estimate before loading: the arithmetic, the refusal and its suggested context."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from commands.main import main
from engine.errors import ConfigError
from engine.formats import read_model_folder
from engine.memory import GIB, OVERHEAD_BYTES, cache_bytes_per_token, check_fits, estimate
from engine.model import load_model


def test_cache_bytes_per_token_counts_keys_and_values(transformer_model_dir: Path) -> None:
    manifest = read_model_folder(transformer_model_dir)
    cache = manifest.kv_cache
    assert cache is not None
    assert cache_bytes_per_token(manifest) == 2 * cache.num_layers * cache.num_kv_heads \
        * cache.head_dim * 4


def test_lstm_state_does_not_grow_with_context(lstm_model_dir: Path) -> None:
    manifest = read_model_folder(lstm_model_dir)
    assert cache_bytes_per_token(manifest) == 0
    assert estimate(lstm_model_dir, manifest, 10_000).cache == 0


def test_estimate_adds_weight_files_cache_and_overhead(transformer_model_dir: Path) -> None:
    manifest = read_model_folder(transformer_model_dir)
    result = estimate(transformer_model_dir, manifest, 1000)
    assert result.weights == (transformer_model_dir / "model.onnx").stat().st_size
    assert result.cache == cache_bytes_per_token(manifest) * 1000
    assert result.total == result.weights + result.cache + OVERHEAD_BYTES


def test_refusal_names_sizes_and_offers_a_context_that_fits(transformer_model_dir: Path) -> None:
    manifest = read_model_folder(transformer_model_dir)
    per_token = cache_bytes_per_token(manifest)
    weights = estimate(transformer_model_dir, manifest, 0).weights
    available = weights + OVERHEAD_BYTES + per_token * 3000  # room for 3000 tokens of cache
    with pytest.raises(ConfigError) as caught:
        check_fits(transformer_model_dir, manifest, 100_000, available=available)
    message = str(caught.value)
    assert "100000 tokens" in message and "GiB" in message
    assert "--context 2816" in message  # 3000 rounded down to a multiple of 256
    assert check_fits(transformer_model_dir, manifest, 2816, available=available).total \
        <= available


def test_no_context_fits_suggests_a_smaller_model(transformer_model_dir: Path) -> None:
    manifest = read_model_folder(transformer_model_dir)
    with pytest.raises(ConfigError, match="smaller or more quantized model"):
        check_fits(transformer_model_dir, manifest, 64, available=1024)


def test_load_model_caps_the_context(transformer_model_dir: Path) -> None:
    model = load_model(transformer_model_dir, device="cpu", context_length=16)
    assert model.manifest.context_length == 16
    bigger = load_model(transformer_model_dir, device="cpu", context_length=10**6)
    assert bigger.manifest.context_length == read_model_folder(transformer_model_dir) \
        .context_length


def test_cli_refuses_a_model_that_does_not_fit(transformer_model_dir: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "model"
    shutil.copytree(transformer_model_dir, folder)
    monkeypatch.setattr("engine.memory.available_memory", lambda: int(0.01 * GIB))
    code = main(["generate", "-m", str(folder), "Hello", "--max-tokens", "2"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("nightlamp: error: ") and "available" in err
    assert err.count("\n") == 1
