"""Tests for engine.sampling: each processor against hand-computed values, samplers, settings."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from engine.errors import ConfigError, InferenceError
from engine.sampling import (
    GreedySampler,
    MinP,
    MultinomialSampler,
    RepetitionPenalty,
    SamplingChain,
    SamplingSettings,
    Temperature,
    TopK,
    TopP,
    build_chain,
)

NEG_INF = -np.inf


def f32(values: list[float]) -> np.ndarray:
    return np.array(values, dtype=np.float32)


def logits_for(probs: list[float]) -> np.ndarray:
    """Logits whose softmax is exactly ``probs`` (log-probabilities)."""
    return np.log(np.array(probs, dtype=np.float64)).astype(np.float32)


def kept(logits: np.ndarray) -> list[int]:
    return [int(i) for i in np.flatnonzero(np.isfinite(logits))]


# --- processors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("t", "logits", "expected"),
    [
        (1.0, [2.0, -4.0, 0.0], [2.0, -4.0, 0.0]),
        (2.0, [2.0, -4.0, 0.0], [1.0, -2.0, 0.0]),
        (0.5, [2.0, -4.0, 0.0], [4.0, -8.0, 0.0]),
        (4.0, [8.0, NEG_INF, 1.0], [2.0, NEG_INF, 0.25]),
    ],
)
def test_temperature_scales_logits(t: float, logits: list[float], expected: list[float]) -> None:
    np.testing.assert_allclose(Temperature(t)(f32(logits), []), f32(expected))


@pytest.mark.parametrize(
    ("k", "logits", "expected_kept"),
    [
        (2, [1.0, 3.0, 2.0, 0.0], [1, 2]),
        (1, [1.0, 3.0, 2.0, 0.0], [1]),
        (3, [1.0, 3.0, 2.0, 0.0], [0, 1, 2]),
        (4, [1.0, 3.0, 2.0, 0.0], [0, 1, 2, 3]),
        (10, [1.0, 3.0, 2.0, 0.0], [0, 1, 2, 3]),
        (1, [1.0, 1.0, 0.0], [0, 1]),  # ties with the k-th value are all kept
        (2, [-5.0, NEG_INF, -1.0, -3.0], [2, 3]),
    ],
)
def test_top_k_keeps_the_largest(k: int, logits: list[float], expected_kept: list[int]) -> None:
    out = TopK(k)(f32(logits), [])
    assert kept(out) == expected_kept
    # Kept logits are unchanged, not just marked.
    np.testing.assert_array_equal(out[expected_kept], f32(logits)[expected_kept])


@pytest.mark.parametrize(
    ("p", "probs", "expected_kept"),
    [
        (0.4, [0.5, 0.3, 0.15, 0.05], [0]),
        (0.6, [0.5, 0.3, 0.15, 0.05], [0, 1]),
        (0.9, [0.5, 0.3, 0.15, 0.05], [0, 1, 2]),
        (0.96, [0.5, 0.3, 0.15, 0.05], [0, 1, 2, 3]),
        (1.0, [0.5, 0.3, 0.15, 0.05], [0, 1, 2, 3]),
        # Same distribution shuffled: the order of ids must not matter.
        (0.6, [0.15, 0.5, 0.05, 0.3], [1, 3]),
        (0.9, [0.15, 0.5, 0.05, 0.3], [0, 1, 3]),
        # A tiny p still keeps the most likely token.
        (1e-9, [0.25, 0.75], [1]),
        # Equal probabilities at the cut: lowest id first.
        (0.5, [0.25, 0.25, 0.25, 0.25], [0, 1]),
    ],
)
def test_top_p_keeps_the_nucleus(p: float, probs: list[float], expected_kept: list[int]) -> None:
    assert kept(TopP(p)(logits_for(probs), [])) == expected_kept


def test_top_p_ignores_tokens_already_removed() -> None:
    logits = f32([2.0, NEG_INF, 1.0, NEG_INF])
    assert kept(TopP(0.5)(logits, [])) == [0]


@pytest.mark.parametrize(
    ("p", "probs", "expected_kept"),
    [
        (0.0, [0.5, 0.3, 0.15, 0.05], [0, 1, 2, 3]),
        (0.05, [0.5, 0.3, 0.15, 0.05], [0, 1, 2, 3]),  # threshold 0.025
        (0.2, [0.5, 0.3, 0.15, 0.05], [0, 1, 2]),  # threshold 0.1
        (0.5, [0.5, 0.3, 0.15, 0.05], [0, 1]),  # threshold 0.25
        (0.7, [0.5, 0.3, 0.15, 0.05], [0]),  # threshold 0.35
        (0.5, [0.05, 0.3, 0.5, 0.15], [1, 2]),
    ],
)
def test_min_p_keeps_tokens_near_the_top(
    p: float, probs: list[float], expected_kept: list[int]
) -> None:
    assert kept(MinP(p)(logits_for(probs), [])) == expected_kept


@pytest.mark.parametrize(
    ("penalty", "window", "history", "expected"),
    [
        # Positive logits are divided, negative ones multiplied: both get less likely.
        (2.0, None, [0, 1], [1.0, -4.0, 1.0, -1.0]),
        (2.0, None, [0, 0, 3], [1.0, -2.0, 1.0, -2.0]),
        (2.0, None, [], [2.0, -2.0, 1.0, -1.0]),
        (2.0, 1, [0, 1, 2], [2.0, -2.0, 0.5, -1.0]),
        (2.0, 2, [0, 1, 2], [2.0, -4.0, 0.5, -1.0]),
        (1.0, None, [0, 1, 2, 3], [2.0, -2.0, 1.0, -1.0]),
        (0.5, None, [0, 1], [4.0, -1.0, 1.0, -1.0]),  # below 1 encourages repeats
    ],
)
def test_repetition_penalty(
    penalty: float, window: int | None, history: list[int], expected: list[float]
) -> None:
    out = RepetitionPenalty(penalty, window=window)(f32([2.0, -2.0, 1.0, -1.0]), history)
    np.testing.assert_allclose(out, f32(expected))


def test_repetition_penalty_leaves_zero_logits_at_zero() -> None:
    out = RepetitionPenalty(1.5)(f32([0.0, 1.5]), [0, 1])
    np.testing.assert_allclose(out, f32([0.0, 1.0]))


def test_repetition_penalty_accepts_a_numpy_history() -> None:
    out = RepetitionPenalty(2.0)(f32([2.0, 4.0]), np.array([1], dtype=np.int64))  # type: ignore[arg-type]
    np.testing.assert_allclose(out, f32([2.0, 2.0]))


def test_repetition_penalty_rejects_ids_outside_the_vocabulary() -> None:
    with pytest.raises(InferenceError, match="token id 7"):
        RepetitionPenalty(1.1)(f32([1.0, 2.0]), [0, 7])


@pytest.mark.parametrize(
    "processor",
    [Temperature(0.5), TopK(2), TopP(0.5), MinP(0.3), RepetitionPenalty(1.3)],
    ids=repr,
)
def test_processors_return_a_new_float32_array(processor: object) -> None:
    logits = f32([1.0, 3.0, -2.0, 0.5])
    before = logits.copy()
    out = processor(logits, [1, 2])  # type: ignore[operator]
    assert out is not logits
    assert out.dtype == np.float32
    np.testing.assert_array_equal(logits, before)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Temperature(0),
        lambda: Temperature(-1.0),
        lambda: Temperature(math.inf),
        lambda: TopK(0),
        lambda: TopK(2.5),  # type: ignore[arg-type]
        lambda: TopP(0),
        lambda: TopP(1.01),
        lambda: MinP(1.0),
        lambda: MinP(-0.1),
        lambda: RepetitionPenalty(0),
        lambda: RepetitionPenalty(1.1, window=0),
        lambda: MultinomialSampler(-1),
    ],
)
def test_processor_constructors_validate(make: object) -> None:
    with pytest.raises(ConfigError):
        make()  # type: ignore[operator]


# --- samplers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("logits", "expected"),
    [
        ([1.0, 3.0, 2.0], 1),
        ([1.0, 3.0, 3.0, 0.0], 1),  # tie -> lowest id
        ([5.0, 5.0], 0),
        ([NEG_INF, -1.0, NEG_INF], 1),
    ],
)
def test_greedy_picks_argmax_lowest_id_on_ties(logits: list[float], expected: int) -> None:
    assert GreedySampler()(f32(logits)) == expected


def draws(seed: int | None, logits: np.ndarray, n: int) -> list[int]:
    sampler = MultinomialSampler(seed)
    return [sampler(logits) for _ in range(n)]


def test_multinomial_same_seed_same_tokens() -> None:
    logits = np.zeros(50, dtype=np.float32)
    assert draws(1234, logits, 200) == draws(1234, logits, 200)


def test_multinomial_different_seeds_differ() -> None:
    logits = np.zeros(50, dtype=np.float32)
    assert draws(1, logits, 200) != draws(2, logits, 200)


@pytest.mark.parametrize(
    "logits",
    [[NEG_INF, 5.0, NEG_INF], [0.0, 200.0, 0.0], [NEG_INF, 0.0, NEG_INF, NEG_INF]],
)
def test_multinomial_concentrated_distribution_always_picks_it(logits: list[float]) -> None:
    assert set(draws(7, f32(logits), 500)) == {1}


def test_multinomial_follows_the_distribution() -> None:
    picks = np.array(draws(0, logits_for([0.2, 0.8]), 20_000))
    assert abs(picks.mean() - 0.8) < 0.02


# --- chain and settings -----------------------------------------------------------------------


def test_default_settings() -> None:
    s = SamplingSettings()
    assert (s.temperature, s.top_k, s.top_p, s.min_p, s.repetition_penalty, s.seed) == (
        0.7,
        40,
        0.95,
        0.05,
        1.0,
        None,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.temperature = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("temperature", -1.0),
        ("temperature", -0.01),
        ("temperature", math.nan),
        ("temperature", math.inf),
        ("temperature", "hot"),
        ("top_k", -1),
        ("top_k", 2.5),
        ("top_k", True),
        ("top_p", 0),
        ("top_p", 0.0),
        ("top_p", 1.5),
        ("top_p", -0.5),
        ("min_p", 1.0),
        ("min_p", -0.1),
        ("min_p", 1.5),
        ("repetition_penalty", 0),
        ("repetition_penalty", -1.0),
        ("repetition_penalty", math.inf),
        ("seed", -1),
        ("seed", 1.5),
        ("seed", "42"),
    ],
)
def test_bad_settings_name_field_and_value(field: str, value: object) -> None:
    with pytest.raises(ConfigError) as caught:
        SamplingSettings(**{field: value})  # type: ignore[arg-type]
    message = str(caught.value)
    assert message.startswith(field)
    assert f"(got {value!r})" in message
    assert "\n" not in message


def test_temperature_error_says_how_to_get_greedy() -> None:
    with pytest.raises(ConfigError, match=r"temperature must be >= 0 \(got -1.0\); use 0 for"):
        SamplingSettings(temperature=-1.0)


@pytest.mark.parametrize(
    "settings",
    [
        SamplingSettings(temperature=0, top_k=0, top_p=1.0, min_p=0, repetition_penalty=1.0),
        SamplingSettings(temperature=1.0, top_k=1, top_p=1e-6, min_p=0.99, seed=0),
    ],
)
def test_edge_values_are_accepted(settings: SamplingSettings) -> None:
    assert build_chain(settings).sample(f32([0.0, 1.0]), []) == 1


def test_build_chain_order() -> None:
    chain = build_chain(SamplingSettings(seed=3, repetition_penalty=1.1))
    assert chain.processors == (
        RepetitionPenalty(1.1),
        Temperature(0.7),
        TopK(40),
        TopP(0.95),
        MinP(0.05),
    )
    assert isinstance(chain.sampler, MultinomialSampler)
    assert chain.sampler.seed == 3


def test_build_chain_leaves_out_disabled_processors() -> None:
    chain = build_chain(
        SamplingSettings(temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, repetition_penalty=1.0)
    )
    assert chain.processors == ()
    assert isinstance(chain.sampler, MultinomialSampler)


def test_temperature_zero_is_greedy_after_repetition_penalty() -> None:
    chain = build_chain(SamplingSettings(temperature=0, repetition_penalty=1.1))
    assert chain.processors == (RepetitionPenalty(1.1),)
    assert isinstance(chain.sampler, GreedySampler)
    logits = f32([3.0, 2.9, 0.0])
    assert chain.sample(logits, []) == 0
    # 3.0 / 1.1 = 2.73 < 2.9: the penalty changes the greedy pick.
    assert chain.sample(logits, [0]) == 1


def test_greedy_chain_is_deterministic_across_calls() -> None:
    chain = build_chain(SamplingSettings(temperature=0, repetition_penalty=1.0))
    rng = np.random.default_rng(0)
    for _ in range(20):
        logits = rng.standard_normal(100).astype(np.float32)
        assert chain.sample(logits, []) == int(np.argmax(logits))


def test_seeded_chain_is_reproducible() -> None:
    rng = np.random.default_rng(5)
    steps = [rng.standard_normal(300).astype(np.float32) for _ in range(50)]

    def run() -> list[int]:
        chain = build_chain(SamplingSettings(temperature=1.2, seed=99))
        history: list[int] = []
        for logits in steps:
            history.append(chain.sample(logits, history))
        return history

    assert run() == run()


def test_chain_only_samples_tokens_the_processors_keep() -> None:
    chain = SamplingChain([TopK(2)], MultinomialSampler(0))
    logits = f32([1.0, 3.0, 2.0, 0.0])
    assert {chain.sample(logits, []) for _ in range(200)} == {1, 2}


@pytest.mark.parametrize(
    ("logits", "match"),
    [
        ([NEG_INF, NEG_INF], "every logit is -inf"),
        ([1.0, math.nan], "NaN"),
        ([math.nan, math.nan], "NaN"),
        ([1.0, math.inf], r"\+inf"),
        ([], "1-D"),
    ],
)
@pytest.mark.parametrize("temperature", [0.0, 0.7])
def test_unusable_logits_raise_inference_error(
    logits: list[float], match: str, temperature: float
) -> None:
    chain = build_chain(SamplingSettings(temperature=temperature))
    with pytest.raises(InferenceError, match=match):
        chain.sample(f32(logits), [])


def test_two_dimensional_logits_raise_inference_error() -> None:
    with pytest.raises(InferenceError, match="1-D"):
        build_chain(SamplingSettings()).sample(np.zeros((2, 3), dtype=np.float32), [])


@pytest.mark.parametrize("sampler", [GreedySampler(), MultinomialSampler(0)], ids=repr)
def test_samplers_refuse_all_minus_inf(sampler: object) -> None:
    with pytest.raises(InferenceError):
        sampler(f32([NEG_INF, NEG_INF]))  # type: ignore[operator]


@pytest.mark.parametrize("seed", range(12))
def test_chain_after_top_k_runs_on_the_kept_tokens_with_the_same_result(seed: int) -> None:
    """The chain hands only the k kept logits to the processors after TopK; every draw must
    equal applying each processor to the whole vocabulary, ties at the k-th value included."""
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal(5000) * 2).astype(np.float32)
    logits[rng.integers(0, 5000, 30)] = logits.max()  # ties at the top
    settings = SamplingSettings(temperature=0.8, top_k=40, top_p=0.9, min_p=0.05,
                                repetition_penalty=1.2, seed=seed)
    history = rng.integers(0, 5000, 200).tolist()
    fast, slow = build_chain(settings), build_chain(settings)
    assert any(isinstance(p, TopK) for p in fast.processors)
    for _ in range(20):
        whole = logits
        for processor in slow.processors:
            whole = processor(whole, history)
        assert fast.sample(logits, history) == slow.sampler(whole)
