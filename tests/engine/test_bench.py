"""``nightlamp bench``: its figures, the greedy tokens it times, and its refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from commands.main import main
from engine.benchmark import bench_prompt
from engine.model import load_model
from engine.runner import DecoderRunner

KEYS = {"load_s", "ttft_s", "prefill_tok_s", "decode_tok_s", "decode_tok_s_min",
        "decode_tok_s_max", "peak_rss_mb", "device", "model"}


def test_bench_json_has_every_figure_and_times_real_greedy_tokens(
        transformer_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "-m", str(transformer_model_dir), "--prompt-tokens", "9",
                 "--new-tokens", "6", "--runs", "2", "--threads", "1", "--json",
                 "--show-ids"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) >= KEYS
    assert result["device"] == "cpu" and result["model"] == "tiny-transformer"
    assert (result["prompt_tokens"], result["new_tokens"], result["runs"]) == (9, 6, 2)
    assert 0 < result["decode_tok_s_min"] <= result["decode_tok_s"] <= result["decode_tok_s_max"]
    assert result["ttft_s"] > 0 and result["load_s"] > 0 and result["peak_rss_mb"] > 10
    assert result["prefill_tok_s"] == pytest.approx(9 / result["ttft_s"], rel=0.01)
    # The timed tokens are the model's greedy continuation, stop tokens included.
    model = load_model(transformer_model_dir, device="cpu", threads=1)
    runner = DecoderRunner(model.session, model.manifest)
    token = int(np.argmax(runner.forward(bench_prompt(model, 9))))
    expected = [token]
    for _ in range(5):
        token = int(np.argmax(runner.forward([token])))
        expected.append(token)
    assert result["token_ids"] == expected


def test_bench_prints_a_readable_summary(transformer_model_dir: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "-m", str(transformer_model_dir), "--prompt-tokens", "4",
                 "--new-tokens", "3", "--runs", "1"]) == 0
    out = capsys.readouterr().out
    assert "tiny-transformer" in out and "first token" in out and "decode" in out
    assert "tokens/s" in out and "peak memory" in out


@pytest.mark.parametrize(("arguments", "message"), [
    (["--runs", "0"], "runs must be at least 1 (got 0); pass --runs 1 or more"),
    (["--new-tokens", "0"], "new tokens must be at least 1 (got 0); pass --new-tokens 1"),
    (["--prompt-tokens", "60", "--new-tokens", "10"], "exceed"),
    (["--prompt-tokens", "0"], "at least 1 token long (got 0); pass --prompt-tokens 1"),
    (["--prompt-file", "missing.txt"], "missing.txt: cannot read"),
    (["--threads", "0"], "--threads must be >= 1"),
])
def test_bench_refuses_bad_arguments_with_one_line(transformer_model_dir: Path,
                                                   capsys: pytest.CaptureFixture[str],
                                                   arguments: list[str], message: str) -> None:
    assert main(["bench", "-m", str(transformer_model_dir), *arguments]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_bench_reads_the_prompt_from_a_file(transformer_model_dir: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    text = tmp_path / "prompt.txt"
    text.write_text("A small model writes a long story. ", encoding="utf-8")
    assert main(["bench", "-m", str(transformer_model_dir), "--prompt-file", str(text),
                 "--prompt-tokens", "12", "--new-tokens", "2", "--runs", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["prompt_tokens"] == 12
