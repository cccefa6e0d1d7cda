"""``nightlamp translate``: output to stdout, a file or JSON, and one-line errors with exit 2 for
user mistakes (checked before any model loads); one run with the real tiny model end to end."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import docx
import pytest
from translate_fakes import FakeTranslator

import commands.translate as translate_cli
from commands.main import main

JSON_KEYS = {"translation", "source", "target", "segments", "flagged", "glossary_misses",
             "seconds", "model", "output", "summary", "warning", "records"}
TEXT = "# The lamp\n\nThe lamp is bright. It is on the table.\n\n- first item\n- second item\n"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeTranslator:
    """The CLI with a fake translator instead of a loaded model."""
    translator = FakeTranslator()
    monkeypatch.setattr(translate_cli, "load_model", lambda *args, **kwargs: object())
    monkeypatch.setattr(translate_cli, "make_translator", lambda model, beam_size=1: translator)
    return translator


@pytest.fixture
def no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fails the test if a model is loaded: user errors must be found before that."""
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a model was loaded for a request that cannot succeed")

    monkeypatch.setattr(translate_cli, "load_model", refuse)


def test_txt_to_stdout_with_progress_on_stderr(tmp_path: Path, fake: FakeTranslator,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "lamp.txt"
    source.write_text(TEXT, "utf-8")
    assert main(["translate", str(source), "--to", "de"]) == 0
    out, err = capsys.readouterr()
    assert out == ("# Die Lampe\n\nDie Lampe ist hell. Es ist auf die Tisch.\n\n- erste Punkt\n"
                   "- zweite Punkt\n")
    assert "translating: done" in err
    assert "[en->de, 5 segments: 5 translated, 0 retried, 0 kept in English; mean confidence " \
        in err
    assert "warning" not in err


def test_a_model_unfit_for_the_pair_is_named_in_a_warning(
        tmp_path: Path, fake: FakeTranslator, capsys: pytest.CaptureFixture[str]) -> None:
    fake.answer = lambda segment, strict: ""  # nothing ever comes back
    source = tmp_path / "lamp.txt"
    source.write_text(TEXT, "utf-8")
    assert main(["translate", str(source), "--to", "de"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("# The lamp\n")  # the document, untouched, rather than nonsense
    assert "5 segments: 0 translated, 0 retried, 5 kept in English; mean confidence 0.00" in err
    assert ("nightlamp: warning: fake-mt translates English→German poorly: 5 of 5 segments kept "
            "in English, mean confidence 0.00; try another model") in err
    assert "segment 1: no translation came back, kept the original" in err


def test_json_output_and_stdin(monkeypatch: pytest.MonkeyPatch, fake: FakeTranslator,
                               capsys: pytest.CaptureFixture[str]) -> None:
    fake.answer = lambda segment, strict: "" if "table" in segment else \
        FakeTranslator().answer(segment, strict)
    monkeypatch.setattr("sys.stdin", io.StringIO(TEXT))
    assert main(["translate", "-", "--to", "de", "--from", "en", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == JSON_KEYS
    assert (result["source"], result["target"], result["segments"]) == ("en", "de", 5)
    assert result["model"] == "fake-mt" and result["output"] is None
    assert result["flagged"] == [{"segment": 3, "reason": "empty",
                                  "source": "It is on the table.",
                                  "translation": "It is on the table."}]
    assert result["translation"].startswith("# Die Lampe\n\nDie Lampe ist hell. It is on the "
                                            "table.\n\n")


def test_output_files_pick_the_format(tmp_path: Path, fake: FakeTranslator,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "lamp.md"
    source.write_text(TEXT, "utf-8")
    out = tmp_path / "out" / "lamp.de.txt"
    out.parent.mkdir()
    assert main(["translate", str(source), "--to", "de", "-o", str(out)]) == 0
    assert out.read_text("utf-8").startswith("# Die Lampe\n\n")
    assert capsys.readouterr().out == ""  # the translation went to the file
    document = docx.Document()
    document.add_paragraph("The lamp is ").add_run("bright").bold = True
    document.save(str(tmp_path / "lamp.docx"))
    assert main(["translate", str(tmp_path / "lamp.docx"), "--to", "de", "--from", "en",
                 "-o", str(tmp_path / "lamp.de.docx"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["translation"] == "Die Lampe ist hell"
    runs = docx.Document(str(tmp_path / "lamp.de.docx")).paragraphs[0].runs
    assert [(r.text, bool(r.bold)) for r in runs] == [("Die Lampe ist ", False), ("hell", True)]


@pytest.mark.parametrize(("args", "message"), [
    (["missing.txt", "--to", "de"], "missing.txt: file not found; check the path"),
    (["{txt}", "--to", "deutsch!"], "target language 'deutsch!' is not a language tag; give --to "
     "a BCP-47 tag such as en, de, pt-BR or zh-Hant"),
    (["{txt}", "--to", "de", "--from", "xx_YY"],
     "source language 'xx_YY' is not a language tag; give --from"),
    (["{docx}", "--to", "de"], "a translated Word document is a file: add -o NAME.docx"),
    (["{txt}", "--to", "de", "-o", "{txt}"], "is the input file; choose another name"),
    (["{txt}", "--to", "de", "-o", "out.pdf"], "-o out.pdf: PDF cannot be written"),
    (["{txt}", "--to", "de", "-o", "out.docx"], "a TXT input cannot be written as DOCX"),
    (["{txt}", "--to", "de", "--glossary", "{txt}"], "line 3: expected 'source term<TAB>"),
    (["notes.odt", "--to", "de"], "notes.odt: unsupported file type '.odt'"),
    (["{txt}", "--to", "de", "--beam", "0"], "--beam must be between 1 and 16 (got 0)"),
])
def test_user_errors_exit_2_with_one_line(tmp_path: Path, no_model: None, args: list[str],
                                          message: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "lamp.txt").write_text(TEXT, "utf-8")
    docx.Document().save(str(tmp_path / "lamp.docx"))
    paths = {"txt": str(tmp_path / "lamp.txt"), "docx": str(tmp_path / "lamp.docx")}
    argv = [a.format(**paths) if "{" in a else
            (str(tmp_path / a) if a.endswith((".txt", ".pdf", ".docx", ".odt")) else a)
            for a in args]
    assert main(["translate", *argv]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("nightlamp: error: ")
    assert message in err


def test_same_language_and_unsupported_pair_exit_2(tmp_path: Path, fake: FakeTranslator,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "lamp.txt"
    source.write_text("Die Lampe ist hell und sie steht auf dem Tisch.\n", "utf-8")
    assert main(["translate", str(source), "--to", "de"]) == 2
    assert "both German (de)" in capsys.readouterr().err
    assert fake.calls == []


def test_real_tiny_model_end_to_end(tmp_path: Path, roomy_model_dir: Path,
                                    transformer_model_dir: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "lamp.md"
    source.write_text(TEXT, "utf-8")
    common = ["--to", "de", "--from", "en", "--device", "cpu", "--threads", "1", "--json"]
    assert main(["translate", str(source), "-m", str(roomy_model_dir), *common]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["segments"] == 5 and result["model"] == "tiny-transformer"
    assert {flag["reason"] for flag in result["flagged"]} <= {"empty", "untranslated",
                                                               "placeholders"}
    # Whatever the tiny model wrote, the structure is the document's.
    assert result["translation"].count("\n\n") == TEXT.count("\n\n")
    assert result["translation"].startswith("# ")
    # Its own 64-token context has no room for a prompt: one line, exit 2.
    assert main(["translate", str(source), "-m", str(transformer_model_dir), *common]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "too small for a translation prompt" in err


@pytest.mark.slow
def test_real_tiny_translation_model_end_to_end(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """A random tiny Marian (en->de) imported as an encoder-decoder folder: load_model gives a
    seq2seq model, the CLI picks the dedicated translator, refuses other pairs in one line and
    keeps the document's structure whatever the random weights write."""
    pytest.importorskip("engine.seq2seq")
    tiny_marian = pytest.importorskip("tiny_marian")
    folder = tiny_marian.import_tiny_marian(tmp_path / "marian")[1]
    capsys.readouterr()  # the import's own progress output
    source = tmp_path / "lamp.md"
    source.write_text("# The lamp\n\nThe lamp lights the page at night. Is the night dark?\n\n"
                      "- a small model reads the book\n", "utf-8")
    common = ["-m", str(folder), "--device", "cpu", "--threads", "1"]
    assert main(["translate", str(source), "--to", "fr", *common]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "cannot translate en->fr; it translates en->de" in err
    assert main(["translate", str(source), "--to", "de", "--json", *common]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["source"], result["segments"]) == ("en", 4)
    assert result["translation"].startswith("# ")
    assert result["translation"].count("\n\n") == 2 and "\n- " in result["translation"]


def test_round_trip_reaches_the_translation(monkeypatch: pytest.MonkeyPatch, fake: FakeTranslator,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    asked: dict[str, Any] = {}
    real = translate_cli.translate_text

    def spy(*args: Any, **kwargs: Any) -> Any:
        asked.update(kwargs)
        return real(*args, **{**kwargs, "round_trip": False})  # the fake translates one way

    monkeypatch.setattr(translate_cli, "translate_text", spy)
    monkeypatch.setattr("sys.stdin", io.StringIO(TEXT))
    assert main(["translate", "-", "--to", "de", "--from", "en", "--round-trip"]) == 0
    assert asked["round_trip"] is True
