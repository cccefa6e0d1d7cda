"""``nightlamp generate``: JSON and streaming output, chat, stdin prompts, value checks, and one
run of the installed executable."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from commands.main import main
from engine.generation import GenerationConfig, generate, prompt_ids
from engine.model import Model, load_model
from engine.sampling import SamplingSettings

REPO = Path(__file__).resolve().parents[2]
# The CLI's --temperature 0 keeps the default repetition penalty, and so does this.
CLI_GREEDY = SamplingSettings(temperature=0)
JSON_KEYS = {"text", "finish_reason", "prompt_tokens", "completion_tokens", "ttft_s",
             "tokens_per_s", "device", "model"}


@pytest.fixture(scope="module")
def model(transformer_model_dir: Path) -> Model:
    return load_model(transformer_model_dir, device="cpu", threads=1)


def engine_text(model: Model, prompt: str | list[dict[str, str]], max_new_tokens: int) -> str:
    config = GenerationConfig(max_new_tokens=max_new_tokens, sampling=CLI_GREEDY)
    return "".join(chunk.text for chunk in generate(model, prompt, config))


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    code = main(["generate", *args, "--json", "--device", "cpu", "--threads", "1"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert err == ""
    assert out.endswith("\n") and out.count("\n") == 1  # one JSON line
    return json.loads(out)


def test_json_output(model: Model, capsys: pytest.CaptureFixture[str]) -> None:
    result = run_json(capsys, "-m", str(model.folder), "The lamp", "--temperature", "0",
                      "--max-tokens", "16")

    assert set(result) == JSON_KEYS
    assert result["text"] == engine_text(model, "The lamp", 16)
    assert result["finish_reason"] == "length"
    assert result["prompt_tokens"] == len(prompt_ids(model, "The lamp"))
    assert result["completion_tokens"] == 16
    assert isinstance(result["ttft_s"], float) and result["ttft_s"] >= 0
    assert isinstance(result["tokens_per_s"], float) and result["tokens_per_s"] > 0
    assert result["device"] == "cpu"
    assert result["model"] == "tiny-transformer"


def test_json_is_utf8_not_escaped(model: Model, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["generate", "-m", str(model.folder), "你好", "--temperature", "0",
                 "--max-tokens", "4", "--json", "--device", "cpu"])
    out, _ = capsys.readouterr()
    assert code == 0
    text = json.loads(out)["text"]
    assert text == engine_text(model, "你好", 4)
    assert any(ord(ch) > 0x7F for ch in text)
    assert json.dumps(text, ensure_ascii=False) in out  # characters, not \\u escapes
    assert "\\u" not in out


def test_streaming_prints_text_then_a_stats_line(model: Model,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["generate", "-m", str(model.folder), "The lamp", "--temperature", "0",
                 "--max-tokens", "12", "--device", "cpu"])
    out, err = capsys.readouterr()

    assert code == 0
    assert out == engine_text(model, "The lamp", 12) + "\n"
    assert re.fullmatch(r"\[12 tokens, \d+\.\d tok/s, first token \d+\.\d\ds, cpu, length\]\n",
                        err), err


def test_stop_option_cuts_the_text(model: Model, capsys: pytest.CaptureFixture[str]) -> None:
    full = engine_text(model, "The lamp", 20)
    stop = full[full.index("\n"):full.index("\n") + 4]
    result = run_json(capsys, "-m", str(model.folder), "The lamp", "--temperature", "0",
                      "--max-tokens", "20", "--stop", "no such text", "--stop", stop)
    assert result["text"] == full[:full.index(stop)]
    assert result["finish_reason"] == "stop"


def test_chat_sends_messages_through_the_template(model: Model,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]
    result = run_json(capsys, "-m", str(model.folder), "Hello", "--chat", "--system",
                      "Be brief.", "--temperature", "0", "--max-tokens", "8")

    assert result["prompt_tokens"] == len(prompt_ids(model, messages))
    assert result["text"] == engine_text(model, messages, 8)

    plain = run_json(capsys, "-m", str(model.folder), "Hello", "--chat", "--temperature", "0",
                     "--max-tokens", "8")
    assert plain["prompt_tokens"] == len(prompt_ids(model, [messages[1]]))


def test_system_without_chat_is_refused(model: Model, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "-m", str(model.folder), "Hi", "--system", "x"]) == 2
    assert capsys.readouterr().err == "nightlamp: error: --system needs --chat\n"


def test_dash_reads_the_prompt_from_stdin(model: Model, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("The lamp"))
    result = run_json(capsys, "-m", str(model.folder), "-", "--temperature", "0",
                      "--max-tokens", "10")
    assert result["text"] == engine_text(model, "The lamp", 10)
    assert result["prompt_tokens"] == len(prompt_ids(model, "The lamp"))


def test_seed_makes_sampling_reproducible(model: Model,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    args = ("-m", str(model.folder), "The", "--temperature", "1.2", "--seed", "9",
            "--max-tokens", "16")
    first = run_json(capsys, *args)["text"]
    assert run_json(capsys, *args)["text"] == first
    config = GenerationConfig(max_new_tokens=16,
                              sampling=SamplingSettings(temperature=1.2, seed=9))
    assert first == "".join(c.text for c in generate(model, "The", config))


BAD_VALUES = [
    (["--temperature", "-1"], "temperature must be >= 0 (got -1.0)"),
    (["--temperature", "nan"], "temperature must be a finite number (got nan)"),
    (["--top-p", "1.5"], "top_p must be in (0, 1] (got 1.5)"),
    (["--top-p", "0"], "top_p must be in (0, 1] (got 0.0)"),
    (["--top-k", "-1"], "top_k must be an integer >= 0 (got -1)"),
    (["--min-p", "1.0"], "min_p must be in [0, 1) (got 1.0)"),
    (["--min-p", "-0.1"], "min_p must be in [0, 1) (got -0.1)"),
    (["--repetition-penalty", "0"], "repetition_penalty must be > 0 (got 0.0)"),
    (["--max-tokens", "0"], "max_new_tokens must be a positive integer (got 0)"),
    (["--max-tokens", "-5"], "max_new_tokens must be a positive integer (got -5)"),
    (["--seed", "-1"], "seed must be a non-negative integer or None (got -1)"),
    (["--threads", "0"], "--threads must be >= 1 (got 0)"),
]


@pytest.mark.parametrize(("args", "message"), BAD_VALUES, ids=[" ".join(a) for a, _ in BAD_VALUES])
def test_bad_values_exit_2_naming_the_value(args: list[str], message: str, model: Model,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["generate", "-m", str(model.folder), "The lamp", *args])
    out, err = capsys.readouterr()

    assert code == 2
    assert out == ""
    assert err.startswith(f"nightlamp: error: {message}")
    assert err.count("\n") == 1
    assert "Traceback" not in err


@pytest.mark.parametrize("args", [["--max-tokens", "ten"], ["--temperature", "warm"]])
def test_unparsable_numbers_are_usage_errors(args: list[str],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["generate", "The lamp", *args])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "invalid" in err and args[1] in err
    assert "Traceback" not in err


def test_no_subcommand_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert "generate" in capsys.readouterr().out


def nightlamp_command() -> list[str]:
    script = Path(sys.executable).with_name("nightlamp")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "commands"]


def test_installed_executable_end_to_end(model: Model) -> None:
    result = subprocess.run(
        [*nightlamp_command(), "generate", "-m", str(model.folder), "The lamp",
         "--temperature", "0", "--max-tokens", "10", "--json"],
        capture_output=True, text=True, timeout=120, check=False, cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    output = json.loads(result.stdout)
    assert output["text"] == engine_text(model, "The lamp", 10)
    assert output["completion_tokens"] == 10


def test_executable_user_error_is_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "commands", "generate", "-m", str(tmp_path / "missing"), "hi"],
        capture_output=True, text=True, timeout=120, check=False, cwd=REPO,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("nightlamp: error: model ")
    assert result.stderr.count("\n") == 1
