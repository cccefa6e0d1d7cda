"""Batched decoding: several sequences per step give exactly the tokens each would get alone,
sequences leaving the batch (or joining it) do not disturb the others."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.batch import BatchDecoder, BatchRequest, decode_batch
from engine.errors import ConfigError, OperationCancelledError
from engine.model import Model, load_model
from engine.runner import DecoderRunner
from engine.sampling import SamplingSettings


def _alone(model: Model, prompt: list[int], count: int) -> list[int]:
    """Greedy tokens of one sequence on the plain runner, stop tokens included as the end."""
    runner = DecoderRunner(model.session, model.manifest)
    logits = runner.forward(prompt)
    out: list[int] = []
    while len(out) < count:
        token = int(np.argmax(logits))
        if token in model.stop_token_ids:
            break
        out.append(token)
        if len(out) < count:
            logits = runner.forward([token])
    return out


def _prompts(model: Model, lengths: list[int]) -> list[list[int]]:
    vocab = model.manifest.vocab_size
    return [[(7 * i + 11 * n + 3) % (vocab - 4) + 4 for i in range(length)]
            for n, length in enumerate(lengths)]


@pytest.fixture
def model(transformer: Model) -> Model:
    transformer._runner = None  # a fresh cache for each test
    return transformer


def test_batched_greedy_equals_each_sequence_alone(model: Model) -> None:
    prompts = _prompts(model, [3, 9, 1, 14, 6])
    lengths = [12, 5, 20, 1, 9]  # ragged prompts and lengths: rows leave at different steps
    results = decode_batch(model, [BatchRequest(p, n) for p, n in zip(prompts, lengths,
                                                                      strict=True)], slots=4)
    for prompt, count, result in zip(prompts, lengths, results, strict=True):
        assert result.token_ids == _alone(model, prompt, count)
        assert result.finish_reason == ("length" if len(result.token_ids) == count else "stop")


def test_fewer_slots_than_prompts_fill_freed_slots_with_the_same_result(model: Model) -> None:
    prompts = _prompts(model, [5, 2, 8, 4, 7, 3, 6])
    requests = [BatchRequest(p, 4 + 3 * (n % 3)) for n, p in enumerate(prompts)]
    one_slot = decode_batch(model, requests, slots=1)
    three = decode_batch(model, requests, slots=3)
    assert [r.token_ids for r in three] == [r.token_ids for r in one_slot]
    assert all(r.token_ids for r in three)


def test_a_sequence_leaving_mid_batch_does_not_disturb_the_others(model: Model) -> None:
    decoder = BatchDecoder(model, slots=3, capacity=40)
    prompts = _prompts(model, [4, 6, 5])
    firsts = {slot: int(np.argmax(decoder.prefill(slot, p))) for slot, p in enumerate(prompts)}
    got: dict[int, list[int]] = {slot: [token] for slot, token in firsts.items()}
    for step in range(10):
        feeding = {slot: tokens[-1] for slot, tokens in got.items()
                   if not (slot == 1 and step >= 3)}  # slot 1 leaves after three steps
        if step == 3:
            decoder.free(1)
        for slot, logits in decoder.step(feeding).items():
            got[slot].append(int(np.argmax(logits)))
    assert got[0] == _alone(model, prompts[0], 11)
    assert got[2] == _alone(model, prompts[2], 11)
    assert got[1] == _alone(model, prompts[1], 4)


def test_sampled_sequences_follow_their_own_seeds(model: Model) -> None:
    prompt = _prompts(model, [5])[0]
    settings = SamplingSettings(temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, seed=7)
    together = decode_batch(model, [BatchRequest(prompt, 10, settings)] * 3, slots=3)
    alone = decode_batch(model, [BatchRequest(prompt, 10, settings)], slots=1)
    assert [r.token_ids for r in together] == [alone[0].token_ids] * 3


def test_refusals_and_cancel(model: Model, lstm_model_dir: Path) -> None:
    lstm = load_model(lstm_model_dir, device="cpu")
    assert isinstance(lstm, Model)
    with pytest.raises(ConfigError, match="cannot decode in batches"):
        decode_batch(lstm, [BatchRequest([5, 6], 3)])
    too_long = [5] * model.manifest.context_length
    with pytest.raises(ConfigError, match="does not fit"):
        decode_batch(model, [BatchRequest(too_long, 3)])
    with pytest.raises(OperationCancelledError):
        decode_batch(model, [BatchRequest([5, 6], 30)], should_stop=lambda: True)
    assert decode_batch(model, []) == []
    with pytest.raises(ConfigError, match="max_new_tokens must be a positive integer"):
        BatchRequest([5, 6], 0)


def test_translated_segments_decoded_together_are_those_decoded_alone(
        tiny_chat_model_dir: Path) -> None:
    from engine.translate.translators import InstructTranslator

    chat = load_model(tiny_chat_model_dir, device="cpu", threads=1)
    assert isinstance(chat, Model)
    translator = InstructTranslator(chat)
    assert translator.batch_size > 1  # our graphs decode in batches
    segments = ["The lamp is bright.", "A small model writes a long story.", "Night falls.",
                "The reader lights the poem and the map."]
    together = translator.translate_with(segments, "en", "de")
    translator.batch_size = 1
    alone = translator.translate_with(segments, "en", "de")
    assert together == alone and len(together) == 4 and all(together)


def test_slots_shrink_to_what_free_memory_holds(model: Model,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Each slot holds a whole cache: with little free memory fewer slots run (at least one),
    and the tokens stay the same."""
    from engine import batch
    from engine.memory import cache_bytes_per_token

    per_slot = cache_bytes_per_token(model.manifest) * 40
    monkeypatch.setattr(batch, "available_memory", lambda: 5 * per_slot)
    assert batch.fitting_slots(model, 8, 40) == 2  # half the free memory: 2.5 slots
    monkeypatch.setattr(batch, "available_memory", lambda: per_slot // 10)
    assert batch.fitting_slots(model, 8, 40) == 1
    made: list[int] = []
    real = batch.BatchDecoder.__init__

    def recording(self: BatchDecoder, model: Model, slots: int, capacity: int) -> None:
        made.append(slots)
        real(self, model, slots, capacity)

    monkeypatch.setattr(batch.BatchDecoder, "__init__", recording)
    prompts = _prompts(model, [4, 7, 3])
    requests = [BatchRequest(p, 8) for p in prompts]
    assert [r.token_ids for r in decode_batch(model, requests)] == \
        [_alone(model, p, 8) for p in prompts]
    assert made == [1]
