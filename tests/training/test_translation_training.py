"""Translation training: the tiny preset learns a toy task, exact resume, accumulation, DDP, CLI.

The toy corpus maps English number words to digits ("four one" -> "4 1"): learnable in a couple
of hundred tiny-preset steps on one CPU thread, with targets long enough for BLEU's 4-grams.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from commands.main import main
from engine.errors import ConfigError
from training import checkpoint as ckpt
from training.translation_trainer import train_translation

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
QUICK = {"eval_every": 3, "eval_sentences": 8, "eval_batches": 1}


def toy_pairs(count: int = 1000, seed: int = 0) -> str:
    rng = random.Random(seed)
    lines = []
    for _ in range(count):
        digits = [rng.randrange(10) for _ in range(rng.randint(2, 4))]
        lines.append(" ".join(WORDS[d] for d in digits) + "\t" + " ".join(map(str, digits)))
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pairs") / "numbers.tsv"
    path.write_text(toy_pairs(), encoding="utf-8")
    return path


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / ckpt.WEIGHTS_FILE))


def test_tiny_preset_learns_the_toy_task(pairs_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    started = time.perf_counter()
    info = train_translation(pairs_file, out, source_language="en", target_language="de",
                             steps=200, device="cpu", progress=False,
                             overrides={"eval_every": 100})
    elapsed = time.perf_counter() - started
    print(f"tiny preset, 200 steps on one thread: {elapsed:.1f} s; metrics {info.metrics}")
    assert [m["step"] for m in info.metrics] == [100, 200]
    first, last = info.metrics
    assert set(last) == {"step", "train_loss", "val_loss", "bleu", "chrf"}
    assert first["val_loss"] > last["val_loss"] + 0.5
    assert all(0 <= m["bleu"] <= 100 and 0 <= m["chrf"] <= 100 for m in info.metrics)
    assert last["chrf"] > first["chrf"] + 10  # it really translates better, not just lower loss
    assert last["bleu"] > first["bleu"]

    saved = ckpt.read_checkpoint_info(out)
    assert (saved.arch, saved.preset, saved.step) == ("seq2seq", "tiny", 200)
    assert saved.metrics == info.metrics
    assert (saved.data["source_language"], saved.data["target_language"]) == ("en", "de")
    assert (saved.data["pairs"], saved.data["held_out"]) == (1000, 50)
    config = saved.model_config()
    assert config.normalize_before and config.share_embeddings
    assert (config.pad_token_id, config.eos_token_id, config.decoder_start_token_id) == (0, 1, 0)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [ckpt.CONFIG_FILE, ckpt.WEIGHTS_FILE, ckpt.STATE_FILE, ckpt.TOKENIZER_FILE])
    tokenizer = ckpt.load_tokenizer(out)
    assert [tokenizer.id_to_token(i) for i in range(3)] == ["<pad>", "</s>", "<unk>"]
    weights = _weights(out)
    assert "model.shared.weight" in weights and "lm_head.weight" not in weights  # tied, once


def test_resume_continues_exactly(pairs_file: Path, tmp_path: Path) -> None:
    """6 steps straight == 3 steps, then --resume to 6 (dropout and data order included)."""
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    common = {"warmup_steps": 2, **QUICK}
    expected = train_translation(pairs_file, straight, steps=6, device="cpu", progress=False,
                                 overrides=dict(common))
    assert expected.train["dropout"] > 0
    train_translation(pairs_file, resumed, steps=3, device="cpu", progress=False,
                      overrides=dict(common))
    got = train_translation(pairs_file, resumed, steps=6, resume=True, device="cpu",
                            progress=False)
    assert got.step == 6 and got.metrics == expected.metrics
    assert got.tokens_seen == expected.tokens_seen
    first, second = _weights(straight), _weights(resumed)
    assert sorted(first) == sorted(second)
    assert not [name for name in first if not torch.equal(first[name], second[name])]


def test_gradient_accumulation_matches_one_big_batch(pairs_file: Path, tmp_path: Path) -> None:
    """The loss is normalized by the whole step's target tokens, so 2 micro-batches of 8
    pairs give the update of one batch of 16 (up to summation order)."""
    common = {"batch_size": 16, "eval_every": 100, "eval_sentences": 4, "eval_batches": 1,
              "dropout": 0.0}
    for name, accum in (("one", 1), ("two", 2)):
        train_translation(pairs_file, tmp_path / name, steps=3, device="cpu", progress=False,
                          overrides={**common, "grad_accum": accum})
    first, second = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    for name in first:
        torch.testing.assert_close(first[name], second[name], rtol=1e-4, atol=1e-5, msg=name)


def test_separate_vocabularies(pairs_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "separate"
    info = train_translation(pairs_file, out, steps=2, device="cpu", progress=False,
                             overrides={**QUICK, "separate_vocab": True})
    assert info.data["separate_vocab"] is True
    config = ckpt.read_checkpoint_info(out).model_config()
    assert not config.share_embeddings
    source = ckpt.load_tokenizer(out)
    target = ckpt.load_tokenizer(out, ckpt.TARGET_TOKENIZER_FILE)
    assert source.token_to_id("four") is not None and target.token_to_id("four") is None
    assert config.vocab_size == max(source.get_vocab_size(), target.get_vocab_size())
    weights = _weights(out)
    assert {"model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight",
            "lm_head.weight"} <= set(weights)
    assert "model.shared.weight" not in weights


def test_refusals(pairs_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    train_translation(pairs_file, out, source_language="en", target_language="de", steps=1,
                      device="cpu", progress=False, overrides=dict(QUICK))
    with pytest.raises(ConfigError, match="already holds a checkpoint; pass --resume"):
        train_translation(pairs_file, out, steps=2, device="cpu", progress=False)
    with pytest.raises(ConfigError, match="translates en -> de; resume with those languages"):
        train_translation(pairs_file, out, source_language="en", target_language="fr",
                          steps=2, resume=True, device="cpu", progress=False)
    with pytest.raises(ConfigError, match="--steps must be a positive integer"):
        train_translation(pairs_file, tmp_path / "new", steps=0)
    with pytest.raises(ConfigError, match="max_length 200 exceeds the tiny preset's 128"):
        train_translation(pairs_file, tmp_path / "long", steps=1, progress=False,
                          overrides={"max_length": 200})
    with pytest.raises(ConfigError, match="unknown training setting 'nope'"):
        train_translation(pairs_file, tmp_path / "bad", steps=1, overrides={"nope": 1})


def test_cli_trains_and_reports(pairs_file: Path, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str],
                                caplog: pytest.LogCaptureFixture) -> None:
    with_blanks = tmp_path / "blanks.tsv"
    with_blanks.write_text("\n\n" + pairs_file.read_text(encoding="utf-8"), encoding="utf-8")
    out = tmp_path / "ckpt"
    code = main(["train", "translation", "--pairs", str(with_blanks), "--src", "en", "--tgt",
                 "de", "--out", str(out), "--steps", "2", "--device", "cpu", "--no-progress",
                 "--batch-size", "8"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert f"corpus: {with_blanks}: 1000 pairs (50 held out); skipped 2 empty lines" in printed.out
    assert f"checkpoint: {out} (en -> de, step 2, held-out loss" in printed.out
    assert "BLEU" in printed.out and "chrF" in printed.out
    assert "2 empty lines or pairs skipped" in caplog.text  # the warning while it trains


@pytest.mark.parametrize(("content", "message"), [
    ("a\tb\tc\n", "bad.tsv:1: expected 2 tab-separated columns"),
    ("", "bad.tsv: the file is empty"),
])
def test_cli_bad_corpus_is_one_line_and_exit_2(tmp_path: Path, content: str, message: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text(content, encoding="utf-8")
    code = main(["train", "translation", "--pairs", str(bad), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_two_process_ddp_matches_one_process(pairs_file: Path, tmp_path: Path) -> None:
    """torchrun with 2 gloo processes, each on half of every batch (padded to its own length),
    == one process on the whole batch: the loss is normalized by the global token count."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    args = ["train", "translation", "--pairs", str(pairs_file), "--steps", "3", "--device",
            "cpu", "--no-progress", "--batch-size", "8", "--dropout", "0"]
    runs = {"ddp": [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                    "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
                    "-m", "commands"],
            "single": [sys.executable, "-m", "commands"]}
    for name, command in runs.items():
        result = subprocess.run([*command, *args, "--out", str(tmp_path / name)], env=env,
                                capture_output=True, text=True, timeout=300,
                                cwd=Path(__file__).parents[2])
        assert result.returncode == 0, result.stderr[-3000:]
    first, second = _weights(tmp_path / "ddp"), _weights(tmp_path / "single")
    assert sorted(first) == sorted(second)  # no "module." prefix from the DDP wrapper
    for name in first:
        torch.testing.assert_close(first[name], second[name], rtol=0, atol=1e-5, msg=name)
