"""The decoder runner's fast path: one preallocated cache buffer bound through I/O binding, grown
when a conversation outgrows it, rewound to the prefix a new prompt shares with the cache, and
a chat's next turn paying only for its new tokens. Each is checked against a fresh full run on
the tiny trained session models."""

from __future__ import annotations

import gc
import json
import shutil
import weakref
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from runner_spy import count_forwards

import engine.runner as runner_module
from engine.errors import ConfigError
from engine.generation import GenerationConfig, Generator, generate, prompt_ids
from engine.model import Model, load_model
from engine.runner import DecoderRunner
from engine.sampling import SamplingSettings

GREEDY = SamplingSettings(temperature=0, repetition_penalty=1.0)
TEXT = "The lamp lights the map. A small model writes a long story. The reader lights the poem."


def _ids(model: Model, count: int, offset: int = 0) -> list[int]:
    vocab = model.manifest.vocab_size
    return [(7 * i + 3 + offset) % (vocab - 4) + 4 for i in range(count)]


def _stepwise(runner: DecoderRunner, ids: Sequence[int], first: int) -> np.ndarray:
    """Logits after each position: a prefill of `first` tokens, then one token at a time."""
    rows = [runner.forward(ids[:first], all_logits=True)]
    rows += [runner.forward([token])[None] for token in ids[first:]]
    return np.concatenate(rows)


def test_our_exports_share_one_cache_buffer(transformer: Model) -> None:
    assert transformer.manifest.kv_cache is not None
    assert transformer.manifest.kv_cache.shared_buffer
    runner = DecoderRunner(transformer.session, transformer.manifest)
    runner.forward(_ids(transformer, 5))
    buffers = runner._buffers
    assert buffers is not None
    first = buffers.buffers["past_key_values.0.key"]
    runner.forward([9])
    # The same buffer again: the step wrote into it in place, nothing was reallocated.
    assert buffers.buffers["past_key_values.0.key"] is first
    assert runner.past_length == 6


def test_growing_buffer_gives_the_same_logits(transformer: Model,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    ids = _ids(transformer, 40)
    whole = DecoderRunner(transformer.session, transformer.manifest).forward(ids, all_logits=True)
    monkeypatch.setattr(runner_module, "_CAPACITY_STEP", 4)
    capacities: list[int] = []
    grow = runner_module._SharedCache._grow

    def recording(self: runner_module._SharedCache, needed: int, valid: int) -> None:
        grow(self, needed, valid)
        capacities.append(self.capacity)

    monkeypatch.setattr(runner_module._SharedCache, "_grow", recording)
    runner = DecoderRunner(transformer.session, transformer.manifest)
    stepwise = _stepwise(runner, ids, 3)
    assert capacities == [4, 8, 16, 32, 64]  # doubling, capped at the context (64)
    np.testing.assert_allclose(stepwise, whole, rtol=1e-4, atol=1e-4)


def test_feeding_the_cache_back_equals_the_shared_buffer(transformer_model_dir: Path,
                                                        tmp_path: Path) -> None:
    """The same graph run the other way (arrays fed back each step, as for foreign folders)."""
    folder = tmp_path / "fed"
    shutil.copytree(transformer_model_dir, folder)
    manifest = json.loads((folder / "nightlamp.json").read_text(encoding="utf-8"))
    manifest["kv_cache"]["shared_buffer"] = False
    (folder / "nightlamp.json").write_text(json.dumps(manifest), encoding="utf-8")
    fed = load_model(folder, device="cpu", threads=1)
    shared = load_model(transformer_model_dir, device="cpu", threads=1)
    ids = _ids(fed, 20)
    fed_runner = DecoderRunner(fed.session, fed.manifest)
    assert fed_runner._buffers is None
    np.testing.assert_allclose(
        _stepwise(fed_runner, ids, 6),
        _stepwise(DecoderRunner(shared.session, shared.manifest), ids, 6), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["transformer", "lstm"])
def test_keep_prefix_rewinds_to_the_shared_part(kind: str, request: pytest.FixtureRequest) -> None:
    model: Model = request.getfixturevalue(kind)
    first, second = _ids(model, 12), _ids(model, 12)[:7] + _ids(model, 5, offset=1)
    runner = DecoderRunner(model.session, model.manifest)
    runner.forward(first)
    kept = runner.keep_prefix(second)
    fresh = DecoderRunner(model.session, model.manifest).forward(second)
    if kind == "transformer":
        assert kept == 7 and runner.tokens == second[:7]
    else:  # a recurrent state can't be rewound: it starts over
        assert kept == 0 and runner.tokens == []
    np.testing.assert_allclose(runner.forward(second[kept:]), fresh, rtol=1e-4, atol=1e-4)
    # The same prompt again keeps all but its last token, whose logits are what comes next
    # (a recurrent state has already read that token: it starts over again).
    kept = runner.keep_prefix(second)
    assert kept == (len(second) - 1 if kind == "transformer" else 0)
    np.testing.assert_allclose(runner.forward(second[kept:]), fresh, rtol=1e-4, atol=1e-4)


def test_second_chat_turn_runs_only_its_new_tokens(transformer_model_dir: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    model = load_model(transformer_model_dir, device="cpu", threads=1)
    config = GenerationConfig(max_new_tokens=6, sampling=GREEDY)
    turn = [{"role": "user", "content": "The lamp lights the map."}]
    answer = "".join(c.text for c in generate(model, turn, config))
    follow_up = [*turn, {"role": "assistant", "content": answer},
                 {"role": "user", "content": "A small model writes."}]
    fed = count_forwards(monkeypatch)
    chunks = list(generate(model, follow_up, config))
    stats = chunks[-1].stats
    assert stats is not None
    full = prompt_ids(model, follow_up)
    assert stats.cached_prompt_tokens >= len(prompt_ids(model, turn))
    assert fed[0] == len(full) - stats.cached_prompt_tokens  # the prefill: new tokens only
    # The same answer as a model that starts from nothing.
    fresh = load_model(transformer_model_dir, device="cpu", threads=1)
    expected = list(generate(fresh, follow_up, config))
    assert "".join(c.text for c in chunks) == "".join(c.text for c in expected)
    assert expected[-1].stats is not None and expected[-1].stats.cached_prompt_tokens == 0


def test_a_newer_generation_takes_the_cache(transformer: Model) -> None:
    config = GenerationConfig(max_new_tokens=4, sampling=GREEDY)
    older = Generator(transformer, config)
    older.append_tokens(prompt_ids(transformer, TEXT))
    newer = Generator(transformer, config)
    newer.append_tokens(prompt_ids(transformer, "The reader"))
    with pytest.raises(ConfigError, match="one generation per model"):
        older.generate_next_token()
    assert newer.generate_next_token() is not None


def test_cuda_buffers_are_asked_for_on_a_cuda_runner(transformer: Model,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The CUDA branch places the cache on the device; here (no GPU) the device is recorded and
    the buffer made on the CPU, so the rest of the path runs and must give the same logits."""
    devices: list[str] = []
    make = ort.OrtValue.ortvalue_from_numpy

    def recording(array: np.ndarray, device: str = "cpu", index: int = 0) -> ort.OrtValue:
        devices.append(device)
        return make(array)

    ids = _ids(transformer, 9)
    expected = DecoderRunner(transformer.session, transformer.manifest).forward(ids)
    monkeypatch.setattr(ort.OrtValue, "ortvalue_from_numpy", staticmethod(recording))
    runner = DecoderRunner(transformer.session, transformer.manifest, device="cuda")
    np.testing.assert_allclose(runner.forward(ids), expected, rtol=1e-5, atol=1e-5)
    cache = transformer.manifest.kv_cache
    assert cache is not None
    assert devices.count("cuda") == 2 * cache.num_layers  # every past/present buffer


def test_a_dropped_model_is_freed_without_the_cycle_collector(transformer_model_dir: Path) -> None:
    # A model that generated holds a session and cache buffers of hundreds of MB in real use;
    # a reference cycle would keep them until Python's cycle collector happened to run.
    gc.collect()
    gc.disable()
    try:
        model = load_model(transformer_model_dir, device="cpu")
        text = "".join(chunk.text for chunk in generate(
            model, TEXT, GenerationConfig(max_new_tokens=4, sampling=GREEDY)))
        assert text
        dropped = weakref.ref(model)
        runner = weakref.ref(model.decoder_runner())
        del model
        assert dropped() is None and runner() is None
    finally:
        gc.enable()
