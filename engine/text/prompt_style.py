"""How a model family wants its instructions, written once for every task that prompts a model
(summaries, translation)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PromptStyle:
    """What a family's chat template accepts."""

    system_role: bool = True  # False: the chat template refuses a system message


# Mistral's and Gemma's chat templates raise on a system message: instructions go in the user turn.
STYLES = {"mistral": PromptStyle(system_role=False), "gemma": PromptStyle(system_role=False)}


def prompt_style(model: Any) -> PromptStyle:
    """The style of a loaded model, known from its name or the checkpoint it came from."""
    described = f"{model.name} {model.manifest.source}".lower()
    return next((style for family, style in STYLES.items() if family in described),
                PromptStyle())


def instruction_messages(model: Any, system: str, user: str) -> list[dict[str, str]]:
    """A system instruction and a user turn, or both in the user turn where the model's
    template has no system role."""
    if prompt_style(model).system_role:
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]
    return [{"role": "user", "content": f"{system}\n\n{user}"}]
