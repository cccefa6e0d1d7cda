"""The busy-CPU policy: a narrow second session opened only when the CPU is shared, chosen per
step by measured time, on the same cache, so the output never changes."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import numpy as np
import pytest

import engine.thread_policy as policy
from engine.model import Model, load_model
from engine.runner import DecoderRunner
from engine.thread_policy import NARROW, WIDE, SessionChooser


def _steps(chooser: SessionChooser, count: int, wide_s: float, narrow_s: float,
           wide_share: float = 1.95) -> list[int]:
    """Feeds ``count`` one-token steps whose time depends on the session picked (wide steps use
    ``wide_share`` cores of CPU time); returns the sessions used."""
    used = []
    for _ in range(count):
        index = chooser.pick(1)
        seconds = wide_s if index == WIDE else narrow_s
        chooser.record(index, 1, seconds, (wide_share if index == WIDE else 1.0) * seconds)
        used.append(index)
    return used


def _on_a_shared_cpu() -> SessionChooser:
    """A chooser that saw a shared CPU, opened NARROW and moved to it."""
    chooser = SessionChooser(wide_threads=2)
    _steps(chooser, policy.CPU_WINDOW, 0.030, 0.015, wide_share=1.3)
    assert chooser.wants_narrow
    chooser.narrow_ready()
    _steps(chooser, policy.PROBE_STEPS, 0.030, 0.015, wide_share=1.3)
    assert chooser.current == NARROW and chooser.switches == 1
    return chooser


def test_a_quiet_cpu_never_asks_for_the_narrow_session() -> None:
    chooser = SessionChooser(wide_threads=2)
    assert set(_steps(chooser, 500, 0.011, 0.016)) == {WIDE}
    assert not chooser.wants_narrow


def test_a_shared_cpu_asks_for_it_within_one_window() -> None:
    chooser = SessionChooser(wide_threads=2)
    _steps(chooser, policy.CPU_WINDOW - 1, 0.03, 0.016, wide_share=1.3)
    assert not chooser.wants_narrow
    _steps(chooser, 1, 0.03, 0.016, wide_share=1.3)
    assert chooser.wants_narrow


def test_while_the_cpu_stays_shared_wide_is_retried_ever_less_often() -> None:
    chooser = _on_a_shared_cpu()
    used = _steps(chooser, 3000, wide_s=0.030, narrow_s=0.015, wide_share=1.3)
    assert chooser.current == NARROW and chooser.switches == 1
    # A clearly slower try ends after one measured step (the first only wakes the pool).
    tries = [i for i in range(1, len(used)) if used[i] == WIDE and used[i - 1] == NARROW]
    gaps = np.diff(tries)
    assert len(tries) >= 4 and all(b >= a for a, b in itertools.pairwise(gaps))
    assert gaps[0] < gaps[-1] <= policy.MAX_PROBE_INTERVAL + policy.PROBE_STEPS
    assert used[tries[1]:tries[1] + 3] == [WIDE, WIDE, NARROW]
    assert used.count(WIDE) < 0.01 * len(used)


def test_a_rested_pool_that_looks_fast_on_a_shared_cpu_is_not_taken_back() -> None:
    """Right after resting, the wide pool gets the CPU first and its steps look quick; its CPU
    share still says the cores are shared."""
    chooser = _on_a_shared_cpu()
    _steps(chooser, 3000, wide_s=0.012, narrow_s=0.015, wide_share=1.3)
    assert chooser.current == NARROW


def test_when_the_other_program_stops_the_wide_session_comes_back() -> None:
    chooser = _on_a_shared_cpu()
    _steps(chooser, 500, wide_s=0.030, narrow_s=0.015, wide_share=1.3)
    used = _steps(chooser, 2 * policy.MAX_PROBE_INTERVAL, wide_s=0.010, narrow_s=0.015)
    assert chooser.current == WIDE and used[-1] == WIDE


def test_where_narrow_is_slower_even_on_a_shared_cpu_wide_stays() -> None:
    chooser = SessionChooser(wide_threads=8)
    _steps(chooser, policy.CPU_WINDOW, 0.010, 0.030, wide_share=5.0)
    chooser.narrow_ready()
    used = _steps(chooser, 3000, wide_s=0.010, narrow_s=0.030, wide_share=5.0)
    assert chooser.current == WIDE and chooser.switches == 0
    assert used.count(NARROW) < 0.02 * len(used)  # asked ever less often


def test_prompts_are_neither_timed_nor_probed() -> None:
    chooser = SessionChooser(wide_threads=2)
    chooser.narrow_ready()
    assert chooser.pick(64) == WIDE  # a prompt runs on the current choice even while trying
    chooser.record(NARROW, 64, 5.0, 0.1)
    assert chooser.current == WIDE and not chooser.wants_narrow


def _greedy(runner: DecoderRunner, prompt: list[int], count: int) -> list[int]:
    runner.reset()
    token = int(np.argmax(runner.forward(prompt)))
    out = [token]
    for _ in range(count - 1):
        token = int(np.argmax(runner.forward([token])))
        out.append(token)
    return out


@pytest.mark.parametrize("fixture", ["transformer_model_dir", "lstm_model_dir"])
def test_steps_alternating_between_the_sessions_give_the_same_tokens(
        fixture: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    folder: Path = request.getfixturevalue(fixture)
    model = load_model(folder, device="cpu")
    assert isinstance(model, Model) and model.narrow_factory is not None
    single = DecoderRunner(model.session, model.manifest)
    vocab = model.manifest.vocab_size
    prompt = [(5 * i + 3) % (vocab - 4) + 4 for i in range(9)]
    expected = _greedy(single, prompt, 24)

    runner = model.decoder_runner()
    assert runner.chooser is not None
    runner.chooser.wants_narrow = True  # as if the CPU were shared
    runner.forward(prompt[:1])
    deadline = time.monotonic() + 60
    while len(runner.sessions) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
        runner.forward([prompt[0]])  # each pass adopts the session once it is open
    assert len(runner.sessions) == 2
    # Every other step on the other session: the shared cache must carry across exactly.
    flips = iter(range(10_000))
    monkeypatch.setattr(runner.chooser, "pick", lambda tokens: next(flips) % 2)
    assert _greedy(runner, prompt, 24) == expected


def test_an_explicit_thread_count_keeps_one_session(transformer_model_dir: Path) -> None:
    model = load_model(transformer_model_dir, device="cpu", threads=1)
    assert isinstance(model, Model) and model.narrow_factory is None
    assert model.decoder_runner().chooser is None


def test_no_room_for_the_copy_leaves_the_model_on_its_one_session(
        transformer_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("engine.model.room_for_second_session", lambda path: False)
    model = load_model(transformer_model_dir, device="cpu")
    assert isinstance(model, Model)
    runner = model.decoder_runner()
    assert runner.chooser is not None
    runner.chooser.wants_narrow = True
    deadline = time.monotonic() + 30
    while runner._narrow_factory is not None or runner._narrow is not None:
        runner.forward([5])
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert len(runner.sessions) == 1 and not runner.chooser.has_narrow
