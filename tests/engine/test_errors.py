"""Errors say what to do in the words of where the user is: options on the command line, the
app's own controls in the desktop."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from engine.device import providers_for
from engine.errors import ConfigError, DeviceError, EngineError
from engine.summarize import summarize


def test_the_cli_text_has_the_option_and_the_app_text_does_not() -> None:
    error = ConfigError("no language", hint="pass --from LANG", app_hint="choose the source")
    assert str(error) == "no language; pass --from LANG"
    assert error.for_app() == "no language; choose the source"
    plain = EngineError("bad file x.txt")
    assert str(plain) == plain.for_app() == "bad file x.txt"
    assert ConfigError("m", hint="use --x").for_app() == "m"  # no app words: the message alone


def test_engine_errors_reaching_the_app_name_no_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError) as summary:
        summarize("Some text. More text here.", None, "abstractive")
    monkeypatch.setattr("engine.device.cuda_usable", lambda: False)
    with pytest.raises(DeviceError) as device:
        providers_for("cuda")
    for error in (summary.value, device.value):
        assert "--" in str(error)  # the command line names its option
        assert "--" not in error.for_app() and error.for_app() != error.message


def test_translation_errors_speak_the_apps_words_in_the_app() -> None:
    from translate_fakes import FakeTranslator

    from engine.translate import translate_text

    with pytest.raises(ConfigError) as same:
        translate_text("The lamp is bright tonight.", FakeTranslator(), "en", "en")
    assert "--to" in str(same.value)
    assert "--" not in same.value.for_app() and "target language" in same.value.for_app()


def _raised(call: Callable[[], object]) -> EngineError:
    with pytest.raises(EngineError) as caught:
        call()
    return caught.value


def test_language_output_and_evaluation_errors_keep_flags_in_the_hint(tmp_path: Path) -> None:
    """The message says what is wrong in plain words; only the command-line hint names an
    option, so the app (which shows ``for_app``) never tells a user to pass a flag."""
    from engine.atomic import atomic_folder
    from engine.translate.evaluate import builtin_pairs
    from engine.translate.languages import check_known, check_tag

    def existing_output() -> None:
        (tmp_path / "out").mkdir()
        with atomic_folder(tmp_path / "out"):
            pass

    cases = [
        (lambda: check_tag("deutsch!", "target"), "--to", "target language 'deutsch!'"),
        (lambda: check_tag("xx_YY", "source", allow_auto=True), "--from", "source language"),
        (lambda: check_known("qq", "target"), "--to", "target language 'qq'"),
        (existing_output, "--out", "already exists"),
        (lambda: builtin_pairs("en", "tlh"), "--pairs", "not tlh"),
    ]
    for call, option, words in cases:
        error = _raised(call)
        assert option in str(error) and option not in error.message
        assert words in error.for_app() and "--" not in error.for_app()
