"""Prompt-lookup speculation: guess the next tokens from the text so far, check them in one pass.

Summaries, rewrites, translations between the same script and code edits copy long runs of their
input. When the last few generated tokens occurred earlier (in the prompt or the output), the
tokens that followed them then are a cheap guess of what follows now. The guess (the *draft*) is
run through the model together with the token just chosen, in one forward pass, which costs little
more than a pass of one token on a small model (the weights are read once); each drafted token
the model would have chosen itself is accepted without a pass of its own, and the first one it
would not have chosen ends the draft (its cache entries are dropped).

Exactness: a token checked inside a pass of several tokens gets logits computed in another order
than in a pass of one, so where the model has a near-tie the two can pick different tokens. On
the tiny fp32 test models the text is identical; the default model (int8) diverged at token 45
of a 120-token greedy poem. So it is off by default (``GenerationConfig.speculate``) until the
checking pass and the one-token step agree bit for bit (benchmarks/RESULTS.md, issue 19).

``SpeculationGate`` keeps it on only while it pays: it times plain steps and checking passes and
compares tokens per second both ways.
"""

from __future__ import annotations

from collections.abc import Sequence

MAX_NGRAM = 3  # the longest suffix looked up (longer matches predict better, shorter ones more)
MIN_NGRAM = 1
DRAFT_TOKENS = 6  # tokens guessed per pass
_EMA = 0.2  # weight of the newest measurement in the running averages
RETRY_AFTER = 64  # plain steps before speculation that did not pay is tried again


class PromptLookup:
    """Proposes drafts from earlier occurrences of the last few tokens (an n-gram index kept up
    to date as tokens arrive, so a proposal costs O(1), not a scan of the history)."""

    def __init__(self, tokens: Sequence[int] = ()) -> None:
        self.tokens: list[int] = []
        self._last: dict[tuple[int, ...], int] = {}  # n-gram -> end index of its latest use
        self.extend(tokens)

    def extend(self, tokens: Sequence[int]) -> None:
        for token in tokens:
            self.tokens.append(token)
            end = len(self.tokens)
            for n in range(MIN_NGRAM, MAX_NGRAM + 1):
                if end > n:  # index the n-gram ending just before this token: it predicts it
                    self._last[tuple(self.tokens[end - 1 - n:end - 1])] = end - 1

    def propose(self, limit: int = DRAFT_TOKENS) -> list[int]:
        """Up to ``limit`` tokens that followed the latest earlier use of the longest suffix."""
        tokens = self.tokens
        for n in range(MAX_NGRAM, MIN_NGRAM - 1, -1):
            if len(tokens) <= n:
                continue
            start = self._last.get(tuple(tokens[-n:]))
            if start is not None and start < len(tokens) - 1:
                return tokens[start:start + limit]
        return []


class SpeculationGate:
    """Whether a checking pass is worth it now, from measured speeds (tokens per second)."""

    def __init__(self) -> None:
        self.plain_s: float | None = None  # running average of a one-token pass
        self.check_rate: float | None = None  # tokens per second of checking passes
        self.proposed = 0
        self.accepted = 0
        self._pause = 0

    @property
    def acceptance(self) -> float:
        return self.accepted / self.proposed if self.proposed else 0.0

    def allow(self) -> bool:
        if self.plain_s is None:  # a plain step first: what a checking pass must beat
            return False
        if self._pause > 0:
            self._pause -= 1
            return False
        if self.check_rate is None:
            return True
        return self.check_rate >= 1.0 / self.plain_s

    def plain(self, seconds: float) -> None:
        self.plain_s = seconds if self.plain_s is None else \
            (1 - _EMA) * self.plain_s + _EMA * seconds

    def checked(self, drafted: int, accepted: int, seconds: float) -> None:
        """A checking pass of ``drafted`` guesses took ``seconds`` and gave ``accepted`` + 1
        tokens (the accepted guesses and the model's own token after them)."""
        self.proposed += drafted
        self.accepted += accepted
        rate = (accepted + 1) / max(seconds, 1e-9)
        self.check_rate = rate if self.check_rate is None else \
            (1 - _EMA) * self.check_rate + _EMA * rate
        if self.plain_s is not None and self.check_rate < 1.0 / self.plain_s:
            self._pause = RETRY_AFTER
            self.check_rate = None  # measured afresh when tried again
