"""Instructions go where a model family's chat template accepts them, for every task."""

from __future__ import annotations

from types import SimpleNamespace

from engine.text.prompt_style import instruction_messages


def _model(name: str, source: str = "") -> SimpleNamespace:
    return SimpleNamespace(name=name, manifest=SimpleNamespace(source=source))


def test_a_model_with_a_system_role_gets_the_instruction_as_system() -> None:
    assert instruction_messages(_model("smollm2-135m"), "Be brief.", "Text.") == [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Text."}]


def test_mistral_and_gemma_get_the_instruction_inside_the_user_turn() -> None:
    for model in (_model("mistral-7b-instruct"), _model("my-model", "google/gemma-2b-it")):
        assert instruction_messages(model, "Be brief.", "Text.") == [
            {"role": "user", "content": "Be brief.\n\nText."}]
