"""Fitting a conversation into a model's context: the oldest turns go first, the system prompt
and the newest message always stay. Nothing is deleted; only the prompt leaves turns out."""

from __future__ import annotations

from engine.generation import prompt_ids
from engine.model import Model


def fit_to_context(model: Model, messages: list[dict[str, str]], reserve: int,
                   ) -> tuple[list[dict[str, str]], int]:
    """Drops the oldest turns (never the system prompt or the last message) until the prompt
    leaves ``reserve`` tokens for the answer; returns the messages and how many were dropped."""
    system = [m for m in messages[:1] if m["role"] == "system"]
    turns = messages[len(system):]
    dropped = 0
    while len(turns) > 1:
        if len(prompt_ids(model, system + turns)) + reserve < model.manifest.context_length:
            break
        turns = turns[1:]
        dropped += 1
    return system + turns, dropped
