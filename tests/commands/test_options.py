"""Options several subcommands share are declared once, in commands/options.py."""

from __future__ import annotations

import argparse
from pathlib import Path

from commands.main import build_parser
from commands.options import MODEL_HELP

COMMANDS = Path(__file__).resolve().parents[2] / "commands"


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_model_option_is_declared_only_by_the_helper() -> None:
    declaring = sorted(path.name for path in COMMANDS.glob("*.py")
                       if '"--model"' in path.read_text(encoding="utf-8"))
    assert declaring == ["options.py"]


def test_every_command_with_a_model_takes_m_and_defaults_to_none() -> None:
    with_model = []
    for name, sub in _subcommands().items():
        options = {o: a for a in sub._actions for o in a.option_strings}
        if "--model" in options:
            assert options["-m"] is options["--model"] and options["--model"].default is None
            with_model.append(name)
    assert {"bench", "chat", "translate-eval", "generate", "gui", "summarize", "translate"} <= set(
        with_model)
    assert build_parser().parse_args(["chat", "-m", "tiny"]).model == "tiny"
    assert MODEL_HELP.startswith("model folder or name")


def test_device_choices_are_the_engines_everywhere() -> None:
    from desktop import choices
    from engine.device import DEVICES

    assert choices.DEVICES is DEVICES
    for name in ("chat", "generate", "gui", "summarize", "translate", "bench"):
        device = next(a for a in _subcommands()[name]._actions if "--device" in a.option_strings)
        assert tuple(device.choices or ()) == DEVICES, name
