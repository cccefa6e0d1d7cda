"""``nightlamp docs``: add, update, list, ask (with and without a model), remove, and the
errors a user meets first."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from notes_corpus import write_notes

from commands.main import main


def _docs(tmp_path: Path) -> Path:
    return write_notes(tmp_path / "notes", "empty.pdf", b"")


def test_add_update_list_ask_remove(tmp_path: Path, minilm: Path, tiny_chat_model_dir: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    folder = _docs(tmp_path)
    assert main(["docs", "add", "notes", str(folder)]) == 0
    out, err = capsys.readouterr()
    assert "notes: 2 added, 0 updated, 0 unchanged, 0 removed, 1 skipped" in out
    assert "skipped" in err and "empty.pdf" in err
    assert main(["docs", "update", "notes"]) == 0
    assert "0 added, 0 updated, 3 unchanged" in capsys.readouterr().out
    assert main(["docs", "list"]) == 0
    assert "notes: 2 files, 2 passages, 1 skipped" in capsys.readouterr().out
    assert main(["docs", "list", "notes"]) == 0
    assert re.search(r"empty\.pdf: skipped: .+", capsys.readouterr().out)

    assert main(["docs", "ask", "notes", "copper wire lamp", "--search-only", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["passages"][0]["where"] == "lamp.md, Lamp"
    assert "copper wire" in found["passages"][0]["text"]

    assert main(["docs", "ask", "notes", "copper wire lamp", "-m", str(tiny_chat_model_dir),
                 "--max-tokens", "12", "--json", "--mode", "keyword"]) == 0
    answer = json.loads(capsys.readouterr().out)
    given = len(answer["sources"])
    assert all(1 <= n <= given for n in answer["cited"])
    for number in re.findall(r"\[(\d+)\]", answer["answer"]):
        assert 1 <= int(number) <= given

    assert main(["docs", "remove", "notes"]) == 0
    assert "untouched" in capsys.readouterr().out and (folder / "lamp.md").exists()


def test_first_errors_are_one_line_and_exit_2(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    folder = _docs(tmp_path)
    assert main(["docs", "add", "notes", str(folder)]) == 2
    assert "nightlamp models pull minilm" in capsys.readouterr().err
    assert main(["docs", "add", "notes", str(tmp_path / "missing")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert main(["docs", "ask", "nothing", "a question"]) == 2
    assert "no collection named 'nothing'" in capsys.readouterr().err
    assert main(["docs", "add", "bad/name", str(folder)]) == 2
    assert "not usable" in capsys.readouterr().err
