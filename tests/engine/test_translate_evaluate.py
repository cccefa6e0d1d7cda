"""Measured translation quality: evaluate_pair's chrF with fake translators, the built-in
sentences, the TSV pairs file's one-line errors, the remembered figures and the
``nightlamp translate-eval`` command's output and exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from translate_fakes import FakeTranslator

import commands.evaluate as evaluate_cli
from commands.main import main
from engine.errors import ConfigError, OperationCancelledError
from engine.translate.evaluate import (
    BUILTIN_PAIRS,
    EvalResult,
    builtin_pairs,
    evaluate_pair,
    parse_pairs,
    read_pairs,
    read_quality,
    write_quality,
)

PAIRS = [("The lamp is bright.", "Die Lampe ist hell."), ("The room is dark.",
                                                         "Das Zimmer ist dunkel.")]


def perfect(pairs: list[tuple[str, str]]) -> FakeTranslator:
    """A translator that answers every sentence with its reference."""
    references = dict(pairs)
    return FakeTranslator(answer=lambda segment, strict: references.get(segment, segment),
                          batch_size=3)


def test_a_perfect_translator_scores_one_and_an_empty_one_zero() -> None:
    pairs = builtin_pairs("en", "de")
    best = evaluate_pair(perfect(pairs), "en", "de", pairs)
    assert best.chrf == 1.0 and best.sentences == len(pairs) == 30
    assert evaluate_pair(FakeTranslator(answer=lambda s, strict: ""), "en", "de",
                         pairs).chrf == 0.0
    word_by_word = evaluate_pair(FakeTranslator(), "en", "de", PAIRS).chrf
    assert 0.0 < word_by_word < 1.0  # "Die Zimmer" is not quite "Das Zimmer"


def test_answers_are_cleaned_as_the_pipeline_cleans_them() -> None:
    chatty = FakeTranslator(answer=lambda s, strict: "Here is the translation: "
                            + dict(PAIRS)[s])
    assert evaluate_pair(chatty, "en", "de", PAIRS).chrf == 1.0


def test_progress_goes_forward_and_stop_stops() -> None:
    seen: list[tuple[int, int]] = []
    pairs = builtin_pairs("en", "fr")
    evaluate_pair(perfect(pairs), "en", "fr", pairs, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (30, 30) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    with pytest.raises(OperationCancelledError):
        evaluate_pair(perfect(pairs), "en", "fr", pairs, should_stop=lambda: True)


class OnlyEnglishToGerman(FakeTranslator):
    """A dedicated model that lists one pair."""

    source_languages = ("en",)

    def check_pair(self, source: str, target: str) -> None:
        if (source, target) != ("en", "de"):
            raise ConfigError(f"fake-mt cannot translate {source}->{target}")


def test_bad_requests_are_refused() -> None:
    with pytest.raises(ConfigError, match="fake-mt cannot translate en->fr"):
        evaluate_pair(OnlyEnglishToGerman(), "en", "fr", PAIRS)
    with pytest.raises(ConfigError, match="both"):
        evaluate_pair(FakeTranslator(), "en", "en", PAIRS)
    with pytest.raises(ConfigError, match="no sentences"):
        evaluate_pair(FakeTranslator(), "en", "de", [])
    with pytest.raises(ConfigError, match="not ja"):
        builtin_pairs("en", "ja")


@pytest.mark.parametrize(("source", "target"), BUILTIN_PAIRS)
def test_the_built_in_sentences_cover_every_pair(source: str, target: str) -> None:
    pairs = builtin_pairs(source, target)
    assert len(pairs) == 30
    assert all(text.strip() and reference.strip() and text != reference
               for text, reference in pairs)


@pytest.mark.parametrize(("text", "error"), [
    ("a\tb\nno tab here\n", "pairs line 2: expected 'source<TAB>reference', found no tab"),
    ("a\tb\tc\n", "pairs line 1: expected 'source<TAB>reference', found 2 tabs"),
    ("# comment\n\na\t \n", "pairs line 3: the reference is empty"),
    ("\t b\n", "pairs line 1: the source is empty"),
    ("# only a comment\n\n", "pairs: no 'source<TAB>reference' lines found"),
])
def test_pairs_file_errors_are_one_line(text: str, error: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_pairs(text)
    assert str(raised.value).splitlines()[0] == error
    assert "\n" not in str(raised.value)


def test_pairs_files_are_read_as_utf8(tmp_path: Path) -> None:
    good = tmp_path / "mine.tsv"
    good.write_text("\ufeff# mine\nThe lamp.\t灯。\n", encoding="utf-8")
    assert read_pairs(good) == [("The lamp.", "灯。")]
    latin = tmp_path / "latin.tsv"
    latin.write_bytes("Grüße\tgreetings\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        read_pairs(latin)
    with pytest.raises(ConfigError, match="cannot read"):
        read_pairs(tmp_path / "missing.tsv")


def test_figures_are_kept_merged_and_survive_a_damaged_file(tmp_path: Path) -> None:
    path = tmp_path / "model" / "quality.json"
    write_quality(path, {"en→de": EvalResult(0.52, 3.0, 30)})
    write_quality(path, {"en→zh": EvalResult(0.18, 4.0, 30)})
    kept = read_quality(path)
    assert kept["en→de"]["chrf"] == 0.52 and kept["en→zh"]["chrf"] == 0.18
    assert kept["en→de"]["data"] == "built-in" and "measured" in kept["en→de"]
    assert [p.name for p in path.parent.iterdir()] == ["quality.json"]  # no temporary left
    path.write_text("{not json", encoding="utf-8")
    assert read_quality(path) == {}
    assert read_quality(tmp_path / "none.json") == {}


# The command ----------------------------------------------------------------------------

@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The command with a fake translator (perfect on en->de) instead of a loaded model."""
    made: list[Any] = []

    def translator(model: Any) -> FakeTranslator:
        made.append(OnlyEnglishToGerman(answer=perfect(builtin_pairs("en", "de")).answer))
        return made[-1]

    monkeypatch.setattr(evaluate_cli, "load_model", lambda *args, **kwargs: object())
    monkeypatch.setattr(evaluate_cli, "make_translator", translator)
    return made


@pytest.fixture
def no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a model was loaded for a request that cannot succeed")

    monkeypatch.setattr(evaluate_cli, "load_model", refuse)


def test_the_command_prints_chrf_and_time(fake: list[Any],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["translate-eval", "--from", "en", "--to", "de"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("en→de: chrF 1.00 (30 sentences, ") and out.endswith(
        " s, built-in)\n")


def test_without_languages_it_measures_the_built_in_pairs_the_model_has(
        fake: list[Any], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["translate-eval", "-m", "x", "--json", "--json-progress"]) == 0
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert [(r["source"], r["target"], r["chrf"]) for r in data["results"]] == [
        ("en", "de", 1.0)]  # the fake lists en->de only
    progress = [json.loads(line) for line in err.splitlines()]
    assert progress[-1] == {"stage": "measuring en→de", "done": 30, "total": 30}


def test_own_pairs_are_measured(fake: list[Any], tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    mine = tmp_path / "mine.tsv"
    mine.write_text("The lamp is bright.\tDie Lampe ist hell.\n", encoding="utf-8")
    assert main(["translate-eval", "--from", "en", "--to", "de", "--pairs", str(mine),
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)["results"][0]
    assert result["sentences"] == 1 and result["chrf"] < 1.0  # not one of the built-in ones


@pytest.mark.parametrize(("arguments", "error"), [
    (["--from", "en"], "pass both --from and --to"),
    (["--pairs", "x.tsv"], "--pairs needs --from and --to"),
    (["--from", "en", "--to", "en"], "both English"),
    (["--from", "en", "--to", "ja"], "not ja"),
    (["--from", "e n", "--to", "de"], "--from"),
    (["--from", "en", "--to", "de", "--pairs", "BAD"], "line 1: expected"),
])
def test_bad_input_exits_2_with_one_line_before_loading(
        arguments: list[str], error: str, no_model: None, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text("no tab\n", encoding="utf-8")
    arguments = [str(bad) if a == "BAD" else a for a in arguments]
    assert main(["translate-eval", *arguments]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nightlamp: error: ") and error in err
    assert len(err.strip().splitlines()) == 1


def test_a_pair_the_model_lacks_exits_2(fake: list[Any],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["translate-eval", "--from", "fr", "--to", "en"]) == 2
    assert "cannot translate fr->en" in capsys.readouterr().err


def test_a_real_tiny_model_is_measured_end_to_end(tmp_path: Path, roomy_model_dir: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    mine = tmp_path / "mine.tsv"
    mine.write_text("The lamp is bright.\tDie Lampe ist hell.\nGood night.\tGute Nacht.\n",
                    encoding="utf-8")
    assert main(["translate-eval", "-m", str(roomy_model_dir), "--from", "en", "--to", "de",
                 "--pairs", str(mine), "--device", "cpu", "--threads", "1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["model"] == "tiny-transformer" and data["data"] == str(mine)
    result = data["results"][0]
    assert result["sentences"] == 2 and 0.0 <= result["chrf"] < 1.0  # random weights
