"""``nightlamp chat``: the terminal conversation, its commands and context trimming."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from commands.main import build_parser, main
from engine.conversation import CHAT_MAX_TOKENS, answer_reserve, fit_to_context
from engine.generation import TextChunk, prompt_ids
from engine.model import load_model
from engine.sampling import SamplingSettings


def _chat(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], lines: str,
          *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(lines))
    code = main(["chat", "--temperature", "0", "--max-tokens", "6", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_two_turns_then_exit(transformer_model_dir: Path, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _chat(monkeypatch, capsys, "The lamp\nThe night\n/exit\n",
                           "-m", str(transformer_model_dir))
    assert code == 0
    name = "tiny-transformer"
    assert out.count(f"{name}> ") == 2  # one answer per message
    assert "on cpu" in err


def test_end_of_input_leaves_cleanly(transformer_model_dir: Path,
                                     monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _chat(monkeypatch, capsys, "The lamp\n", "-m", str(transformer_model_dir))
    assert code == 0 and out.count("> ") >= 2


def test_reset_clears_the_conversation(transformer_model_dir: Path,
                                       monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _chat(monkeypatch, capsys, "The lamp\n/reset\n/exit\n",
                         "-m", str(transformer_model_dir))
    assert code == 0 and "conversation cleared" in err


def test_oldest_turns_are_dropped_to_fit_and_the_system_prompt_kept(
        transformer_model_dir: Path) -> None:
    model = load_model(transformer_model_dir, device="cpu")
    messages = [{"role": "system", "content": "Be brief."}]
    for index in range(6):
        messages.append({"role": "user", "content": f"The reader writes page {index}."})
        messages.append({"role": "assistant", "content": "The lamp lights the page."})
    messages.append({"role": "user", "content": "The night?"})
    fitted, dropped = fit_to_context(model, messages, reserve=8)
    assert dropped > 0
    assert fitted[0] == messages[0]
    assert fitted[-1] == messages[-1]
    assert fitted[1:] == messages[1 + dropped:]
    assert len(prompt_ids(model, fitted)) + 8 < model.manifest.context_length
    # With plenty of room nothing is dropped.
    assert fit_to_context(model, messages[:3], reserve=1) == (messages[:3], 0)


def test_long_conversation_tells_the_user(transformer_model_dir: Path,
                                          monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    lines = "".join(f"The reader writes a long letter number {i} about the map.\n"
                    for i in range(8)) + "/exit\n"
    code, _, err = _chat(monkeypatch, capsys, lines, "-m", str(transformer_model_dir))
    assert code == 0
    assert "no longer fit the context" in err


def test_bad_max_tokens_is_a_one_line_error(transformer_model_dir: Path,
                                            monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code = main(["chat", "-m", str(transformer_model_dir), "--max-tokens", "0"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("nightlamp: error: --max-tokens") and "Traceback" not in err


def test_the_prompt_is_fitted_by_the_engines_one_policy(
        transformer_model_dir: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI trims exactly what the Chat panel's worker trims: engine.conversation's policy."""
    prompts: list[list[dict[str, str]]] = []

    def record(model: object, prompt: list[dict[str, str]], *args: object,
               ) -> Iterator[TextChunk]:
        prompts.append(list(prompt))
        yield TextChunk("The lamp.", "stop")

    monkeypatch.setattr("commands.chat.generate", record)
    lines = "".join(f"The reader writes page {i}.\n" for i in range(8)) + "/exit\n"
    code, _, err = _chat(monkeypatch, capsys, lines, "-m", str(transformer_model_dir),
                         "--system", "Be brief.")
    assert code == 0 and "no longer fit the context" in err
    model = load_model(transformer_model_dir, device="cpu")
    messages = [{"role": "system", "content": "Be brief."}]
    for i in range(8):
        messages.append({"role": "user", "content": f"The reader writes page {i}."})
        reserve = answer_reserve(model.manifest.context_length, 6)  # _chat: --max-tokens 6
        assert prompts[i] == fit_to_context(model, messages, reserve)[0]
        messages.append({"role": "assistant", "content": "The lamp."})


def test_answer_reserve_caps_and_counts_a_smaller_chosen_context() -> None:
    assert answer_reserve(2048, 512) == 256  # at most ANSWER_RESERVE
    assert answer_reserve(2048, 40) == 40  # the answer's own limit
    assert answer_reserve(256, 512) == 64  # a quarter of a small context
    assert answer_reserve(2048, 40, 1024) == 40 + 1024  # the user chose half the context
    assert answer_reserve(2048, 40, 0) == answer_reserve(2048, 40, 4096) == 40


def test_chat_defaults_are_the_engines() -> None:
    args = build_parser().parse_args(["chat"])
    assert args.temperature == SamplingSettings().temperature
    assert args.max_tokens == CHAT_MAX_TOKENS
