"""``nightlamp chat``: the terminal conversation, its commands and context trimming."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from commands.main import main
from engine.conversation import fit_to_context
from engine.generation import prompt_ids
from engine.model import load_model


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
