"""Fitting a conversation into a model's context: the oldest turns go first, the system prompt
and the newest message always stay. Nothing is deleted; only the prompt leaves turns out.

The one policy for every chat front end (``nightlamp chat``, the desktop's Chat panel): keep
:func:`answer_reserve` tokens free for the answer, then :func:`fit_to_context`.
"""

from __future__ import annotations

from engine.generation import prompt_ids
from engine.model import Model

# Tokens kept free for the answer at most, when old turns are left out of a long prompt.
ANSWER_RESERVE = 256
# A chat answer's default length limit, in tokens (`nightlamp chat --max-tokens`, the Chat panel).
CHAT_MAX_TOKENS = 512


def answer_reserve(context_length: int, max_new_tokens: int,
                   context_limit: int | None = None) -> int:
    """How many tokens of ``context_length`` the prompt leaves free for the answer.

    The answer's own limit, but at most :data:`ANSWER_RESERVE` and a quarter of the context (a
    small context must still hold the newest turns). A ``context_limit`` below the model's
    context (the user's choice; None or 0 = the model's) adds the difference, so the prompt
    fits the smaller context.
    """
    reserve = min(max_new_tokens, ANSWER_RESERVE, context_length // 4)
    if context_limit:
        reserve += max(0, context_length - min(context_limit, context_length))
    return reserve


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
