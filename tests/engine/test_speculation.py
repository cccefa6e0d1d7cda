"""Prompt-lookup speculation: the same greedy text as without it, fewer forward passes when the
output copies its input, and off where it does not pay."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from runner_spy import count_forwards

from engine.generation import GenerationConfig, Generator
from engine.model import Model, load_model
from engine.sampling import SamplingSettings
from engine.speculation import PromptLookup, SpeculationGate

GREEDY = SamplingSettings(temperature=0.0, repetition_penalty=1.0)


def test_lookup_proposes_what_followed_the_latest_use_of_the_longest_suffix() -> None:
    lookup = PromptLookup([1, 2, 3, 4, 5, 9, 2, 3, 7, 8])
    lookup.extend([2, 3])
    assert lookup.propose(3) == [7, 8, 2]  # "2 3" last seen before "7 8"
    lookup.extend([4])
    assert lookup.propose(2) == [5, 9]  # "2 3 4" beats the shorter "3 4" / "4"
    assert PromptLookup([1, 2, 3]).propose() == []  # nothing seen twice
    assert PromptLookup([]).propose() == []


def test_the_gate_turns_speculation_off_when_checks_do_not_pay() -> None:
    gate = SpeculationGate()
    assert not gate.allow()  # a plain step is measured first
    gate.plain(0.010)
    assert gate.allow()
    gate.checked(6, 5, 0.012)  # 6 tokens in 12 ms beat 1 in 10 ms
    assert gate.allow() and gate.acceptance == 5 / 6
    gate.checked(6, 0, 0.015)  # one bad guess does not end it
    assert gate.allow()
    for _ in range(20):  # nothing accepted, again and again: 1 token in 15 ms
        if gate.allow():
            gate.checked(6, 0, 0.015)
    assert not any(gate.allow() for _ in range(10))


def _generate(model: Model, prompt: list[int], count: int, speculate: bool) -> Generator:
    generator = Generator(model, GenerationConfig(max_new_tokens=count, sampling=GREEDY,
                                                  speculate=speculate))
    generator.append_tokens(prompt)
    while not generator.is_done():
        generator.generate_next_token()
    return generator


@pytest.fixture
def model(transformer: Model) -> Model:
    transformer._runner = None  # a fresh cache for each test
    return transformer


def test_speculative_greedy_text_equals_plain_greedy(model: Model) -> None:
    vocab = model.manifest.vocab_size
    repeating = [(i % 7) * 3 + 5 for i in range(20)]  # a prompt full of repeats to copy
    varied = [(13 * i + 7) % (vocab - 4) + 4 for i in range(12)]
    for prompt in (repeating, varied, repeating[:10] + varied):  # the context is 64
        plain = _generate(model, prompt, 30, speculate=False).generated
        model._runner = None  # a fresh cache: nothing carried over between the two
        fast = _generate(model, prompt, 30, speculate=True)
        assert fast.generated == plain
        model._runner = None


def test_copying_output_takes_fewer_passes(model: Model,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # The tiny model, greedy on a repeating prompt, falls into a loop: each loop is a copy.
    prompt = [(i % 5) * 4 + 6 for i in range(20)]
    calls = count_forwards(monkeypatch)
    plain = _generate(model, prompt, 40, speculate=False).generated
    plain_passes = len(calls)
    calls.clear()
    model._runner = None
    fast = _generate(model, prompt, 40, speculate=True)
    assert fast.generated == plain
    if fast.gate.accepted:  # guesses were right: they saved passes
        assert len(calls) < plain_passes
    assert fast.gate.proposed > 0


def test_sampling_and_recurrent_models_never_speculate(model: Model,
                                                       lstm_model_dir: Path) -> None:
    sampled = Generator(model, GenerationConfig(sampling=replace(GREEDY, temperature=0.8)))
    assert not sampled._speculate
    lstm = load_model(lstm_model_dir, device="cpu")
    assert not Generator(lstm, GenerationConfig(sampling=GREEDY))._speculate
