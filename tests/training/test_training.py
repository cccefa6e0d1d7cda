"""The training loop: loss goes down, exact resume, schedule, batching, gradient accumulation, DDP.

Runs use the tiny preset for a handful of steps on the shared corpus; exactness is asserted
bitwise where the computation is the same (resume) and with allclose where only the summation
order differs (gradient accumulation, two processes).
"""

from __future__ import annotations

import itertools
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from engine.errors import ConfigError
from training import checkpoint as ckpt
from training.presets import TrainConfig, model_preset, train_preset
from training.tokenizer_train import MIN_VOCAB_SIZE, SPECIAL_TOKENS, train_tokenizer
from training.trainer import learning_rate, train_lm

ARCHS = ["transformer", "lstm"]
QUICK = {"eval_every": 4, "eval_batches": 1}


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / ckpt.WEIGHTS_FILE))


def _assert_bitwise_equal(a: Path, b: Path) -> None:
    first, second = _weights(a), _weights(b)
    assert sorted(first) == sorted(second)
    different = [name for name in first if not torch.equal(first[name], second[name])]
    assert not different, f"tensors differ: {different}"


# Presets ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("preset", ["tiny", "small", "base"])
def test_model_presets_build_models(arch: str, preset: str) -> None:
    fields = model_preset(arch, preset)
    assert isinstance(fields, dict)
    fields["vocab_size"] = 300
    info = ckpt.CheckpointInfo(arch=arch, preset=preset, model=fields, train={})
    model = ckpt.build_model(arch, info.model_config())
    assert sum(p.numel() for p in model.parameters()) > 0
    # The preset table is not changed by callers changing their copy.
    assert "vocab_size" not in model_preset(arch, preset)


def test_train_preset_returns_a_copy() -> None:
    config = train_preset("tiny")
    config.steps = 1
    assert train_preset("tiny").steps == TrainConfig().steps


def test_tiny_trains_on_one_cpu_thread_and_gives_the_threads_back(
        corpus_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A tiny model's operations are too small to split: one thread per core only waits on
    other processes (the tiny preset took 66 s next to a busy process instead of seconds)."""
    from training import trainer, translation_trainer

    assert train_preset("tiny").threads == 1 and train_preset("small").threads == 0
    assert translation_trainer.train_preset("tiny").threads == 1
    seen: list[int] = []

    def spy(step: int, config: TrainConfig) -> float:
        seen.append(torch.get_num_threads())
        return learning_rate(step, config)

    monkeypatch.setattr(trainer, "learning_rate", spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        train_lm("transformer", [corpus_file], tmp_path / "run", steps=3, device="cpu",
                 overrides=dict(QUICK), progress=False)
        assert seen and set(seen) == {1}  # every step (once per parameter group)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


# Tokenizer -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer(corpus_file: Path):
    return train_tokenizer([corpus_file.read_text(encoding="utf-8")], 400)


def test_tokenizer_special_tokens_are_ids_0_to_3(tokenizer) -> None:
    assert [tokenizer.id_to_token(i) for i in range(4)] == list(SPECIAL_TOKENS)
    assert tokenizer.get_vocab_size() <= 400
    encoded = tokenizer.encode("<|im_start|>user\nhi<|im_end|><|endoftext|>",
                               add_special_tokens=False).ids
    assert encoded[0] == 1
    assert encoded[-2:] == [2, 0]


@pytest.mark.parametrize(
    "text",
    ["夜灯照亮了房间。", "你好，世界！🌙", "日本語のテキスト ✨ naïve café 👩‍💻",
     "The lamp reads the poem.", "  spaces\tand\nnew lines  ", "Ω≈ç√∫ 🇫🇷"],
)
def test_tokenizer_round_trips_any_text(tokenizer, text: str) -> None:
    ids = tokenizer.encode(text, add_special_tokens=False).ids
    assert all(0 <= i < tokenizer.get_vocab_size() for i in ids)
    assert tokenizer.decode(ids) == text


def test_tokenizer_rejects_a_vocab_smaller_than_the_byte_alphabet() -> None:
    assert MIN_VOCAB_SIZE == 260
    with pytest.raises(ValueError, match="at least 260"):
        train_tokenizer(["some text"], 259)


# Learning rate ---------------------------------------------------------------------------------

SCHEDULE = TrainConfig(steps=111, lr=1e-3, warmup_steps=10, min_lr_ratio=0.1)


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (0, 1e-4),  # warm-up starts at lr / warmup_steps, not 0 (step 0 would be wasted)
        (4, 5e-4),
        (9, 1e-3),  # peak at the end of warm-up
        (10, 1e-3),  # cosine starts at the peak
        (60, 1e-4 + 0.5 * 9e-4),  # cosine midpoint: half-way between peak and floor
        (110, 1e-4),  # the last step trained (steps - 1) is at the floor
        (500, 1e-4),  # and it stays there (a resumed run with more steps than planned)
    ],
)
def test_learning_rate_schedule(step: int, expected: float) -> None:
    assert learning_rate(step, SCHEDULE) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_learning_rate_decays_monotonically_after_warmup() -> None:
    rates = [learning_rate(step, SCHEDULE) for step in range(SCHEDULE.steps)]
    assert all(a < b for a, b in itertools.pairwise(rates[:10]))
    assert all(a >= b for a, b in itertools.pairwise(rates[9:]))
    assert min(rates) == pytest.approx(SCHEDULE.lr * SCHEDULE.min_lr_ratio)


# Training runs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHS)
def test_loss_goes_down(arch: str, corpus_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    info = train_lm(arch, [corpus_file], out, steps=30, device="cpu", progress=False,
                    overrides={"eval_every": 10, "eval_batches": 1})
    assert [m["step"] for m in info.metrics] == [10, 20, 30]
    first, last = info.metrics[0], info.metrics[-1]
    assert first["train_loss"] > last["train_loss"]
    assert first["val_loss"] > last["val_loss"]
    assert all(math.isfinite(m["val_loss"]) and m["val_loss"] > 0 for m in info.metrics)
    assert last["val_perplexity"] == pytest.approx(math.exp(last["val_loss"]), rel=1e-3)
    # A uniform guess costs ln(V) nats per token; 30 steps must already beat it clearly.
    assert last["val_loss"] < math.log(info.model["vocab_size"]) - 1

    saved = ckpt.read_checkpoint_info(out)
    assert (saved.arch, saved.preset, saved.step) == (arch, "tiny", 30)
    assert saved.metrics == info.metrics
    assert saved.tokens_seen == 30 * 8 * 64
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [ckpt.CONFIG_FILE, ckpt.WEIGHTS_FILE, ckpt.STATE_FILE, ckpt.TOKENIZER_FILE])
    assert not list(out.parent.glob(".run.*"))  # no temporary folders left beside it


@pytest.mark.parametrize("arch", ARCHS)
def test_resume_continues_exactly(arch: str, corpus_file: Path, tmp_path: Path) -> None:
    """8 steps straight == 4 steps, then --resume to 8 (same folder, another process's view)."""
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    expected = train_lm(arch, [corpus_file], straight, steps=8, device="cpu", progress=False,
                        overrides=dict(QUICK))
    half = train_lm(arch, [corpus_file], resumed, steps=4, device="cpu", progress=False,
                    overrides=dict(QUICK))
    assert half.step == 4
    got = train_lm(arch, [corpus_file], resumed, steps=8, resume=True, device="cpu",
                   progress=False)
    assert got.step == expected.step == 8
    assert got.metrics == expected.metrics
    assert got.tokens_seen == expected.tokens_seen
    _assert_bitwise_equal(straight, resumed)


def test_resume_after_an_interruption_continues_exactly(corpus_file: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A run killed after its step-4 checkpoint, resumed, equals the uninterrupted run, with a
    short warm-up so the learning-rate schedule (cosine over all steps) matters."""
    overrides = {**QUICK, "warmup_steps": 2}
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train_lm("transformer", [corpus_file], straight, steps=10, device="cpu", progress=False,
             overrides=dict(overrides))

    original = ckpt.save_checkpoint

    def save_then_crash(folder: Path, info: ckpt.CheckpointInfo, *args: object) -> None:
        original(folder, info, *args)
        if info.step == 4:
            raise KeyboardInterrupt  # as if Ctrl+C right after the checkpoint

    monkeypatch.setattr(ckpt, "save_checkpoint", save_then_crash)
    with pytest.raises(KeyboardInterrupt):
        train_lm("transformer", [corpus_file], resumed, steps=10, device="cpu", progress=False,
                 overrides=dict(overrides))
    monkeypatch.setattr(ckpt, "save_checkpoint", original)
    assert ckpt.read_checkpoint_info(resumed).step == 4
    info = train_lm("transformer", [corpus_file], resumed, resume=True, device="cpu",
                    progress=False)
    assert info.step == 10
    assert info.metrics == ckpt.read_checkpoint_info(straight).metrics
    _assert_bitwise_equal(straight, resumed)


def test_progress_bar_goes_to_stderr(corpus_file: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    train_lm("lstm", [corpus_file], tmp_path / "shown", steps=3, device="cpu", progress=True,
             overrides={"eval_every": 3, "eval_batches": 1})
    shown = capsys.readouterr()
    assert "%" in shown.err and "step" in shown.err
    assert "3/3" in shown.err
    train_lm("lstm", [corpus_file], tmp_path / "hidden", steps=3, device="cpu", progress=False,
             overrides={"eval_every": 3, "eval_batches": 1})
    hidden = capsys.readouterr()
    assert "%" not in hidden.err
    assert "3/3" not in hidden.err


@pytest.mark.parametrize(("batch_size", "grad_accum"), [(6, 4), (8, 3), (5, 2)])
def test_batch_size_must_split_into_micro_batches(corpus_file: Path, tmp_path: Path,
                                                  batch_size: int, grad_accum: int) -> None:
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match=f"batch size {batch_size} does not split into "
                                          f"{grad_accum} micro-batches"):
        train_lm("transformer", [corpus_file], out, steps=2, device="cpu", progress=False,
                 overrides={"batch_size": batch_size, "grad_accum": grad_accum})
    assert not out.exists()
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("arch", ARCHS)
def test_gradient_accumulation_matches_one_big_batch(arch: str, corpus_file: Path,
                                                     tmp_path: Path) -> None:
    """Batch 8 in one pass == batch 8 as 2 micro-batches of 4 (same global batch, same data)."""
    common = {"batch_size": 8, "eval_every": 100, "eval_batches": 1, "warmup_steps": 2}
    one = train_lm(arch, [corpus_file], tmp_path / "one", steps=4, device="cpu", progress=False,
                   overrides={**common, "grad_accum": 1})
    two = train_lm(arch, [corpus_file], tmp_path / "two", steps=4, device="cpu", progress=False,
                   overrides={**common, "grad_accum": 2})
    first, second = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    for name in first:
        torch.testing.assert_close(first[name], second[name], rtol=1e-4, atol=1e-5, msg=name)
    assert one.metrics[-1]["train_loss"] == pytest.approx(two.metrics[-1]["train_loss"],
                                                          abs=1e-4)
    assert one.tokens_seen == two.tokens_seen


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300,
                            cwd=Path(__file__).parents[2])
    assert result.returncode == 0, (
        f"{' '.join(command)} exited {result.returncode}\n--- stdout\n{result.stdout}\n"
        f"--- stderr\n{result.stderr}"
    )
    return result


@pytest.mark.slow
@pytest.mark.parametrize("extra", [[], ["--grad-accum", "2"]], ids=["one-micro-batch", "accum-2"])
def test_two_process_ddp_matches_one_process(extra: list[str], corpus_file: Path,
                                             tmp_path: Path) -> None:
    """torchrun with 2 gloo processes, each on half of every global batch, == one process on
    the whole batch (with accumulation, DDP skips the all-reduce until the last micro-batch)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    train_args = ["train", "lm", "--arch", "transformer", "--corpus", str(corpus_file),
                  "--steps", "6", "--device", "cpu", "--no-progress", *extra]
    _run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
          "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
          "-m", "commands", *train_args, "--out", str(tmp_path / "ddp")], env)
    _run([sys.executable, "-m", "commands", *train_args, "--out", str(tmp_path / "single")],
         env)
    ddp, single = ckpt.read_checkpoint_info(tmp_path / "ddp"), \
        ckpt.read_checkpoint_info(tmp_path / "single")
    assert ddp.step == single.step == 6
    assert ddp.tokens_seen == single.tokens_seen
    first, second = _weights(tmp_path / "ddp"), _weights(tmp_path / "single")
    assert sorted(first) == sorted(second)  # no "module." prefix from the DDP wrapper
    for name in first:
        torch.testing.assert_close(first[name], second[name], rtol=0, atol=1e-5, msg=name)
    assert ddp.metrics[-1]["val_loss"] == pytest.approx(single.metrics[-1]["val_loss"], abs=1e-4)
