"""Turn one step's logits into the next token id: a chain of logits processors and a sampler.

Every generated token goes through a :class:`SamplingChain`: repetition penalty, temperature,
top-k, top-p and min-p (each a small callable that returns a new array), then a greedy or seeded
multinomial sampler. :class:`SamplingSettings` is the user-facing bundle of values; it validates
them and says how to fix a bad one, and :func:`build_chain` turns it into a chain.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from engine.errors import ConfigError, InferenceError

__all__ = [
    "GreedySampler",
    "LogitsProcessor",
    "MinP",
    "MultinomialSampler",
    "RepetitionPenalty",
    "Sampler",
    "SamplingChain",
    "SamplingSettings",
    "Temperature",
    "TopK",
    "TopP",
    "build_chain",
]

Logits = npt.NDArray[np.float32]


class LogitsProcessor(Protocol):
    """Anything that rewrites one step's logits; it returns a new array and never mutates."""

    def __call__(self, logits: Logits, history: Sequence[int]) -> Logits: ...


class Sampler(Protocol):
    """Anything that picks one token id from (already processed) logits."""

    def __call__(self, logits: Logits) -> int: ...


def _is_number(value: object) -> bool:
    # bool is an int subclass, but `temperature=True` is a mistake, not a number.
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


# --- value rules, written once for the processors and SamplingSettings ------------------------


def _refuse(field: str, value: object, rule: str, fix: str) -> None:
    raise ConfigError(f"{field} must be {rule} (got {value!r}); {fix}")


def check_temperature(t: float, field: str = "temperature", *, zero_ok: bool = True) -> None:
    """A finite temperature, >= 0 (0 = greedy) or, for the processor itself, > 0."""
    if not _is_number(t) or not math.isfinite(t):
        _refuse(field, t, "a finite number", "use e.g. 0.7, or 0 for greedy")
    if t < 0 or (t == 0 and not zero_ok):
        _refuse(field, t, ">= 0" if zero_ok else "> 0", "use 0 for greedy decoding")


def check_top_k(k: int, field: str = "top_k", *, minimum: int = 0) -> None:
    if not _is_int(k) or k < minimum:
        _refuse(field, k, f"an integer >= {minimum}", "use 0 to disable top-k")


def check_top_p(p: float, field: str = "top_p") -> None:
    if not _is_number(p) or not 0 < p <= 1:
        _refuse(field, p, "in (0, 1]", "use 1.0 to disable top-p")


def check_min_p(p: float, field: str = "min_p") -> None:
    if not _is_number(p) or not 0 <= p < 1:
        _refuse(field, p, "in [0, 1)", "use 0 to disable min-p")


def check_penalty(penalty: float, field: str = "repetition_penalty") -> None:
    if not _is_number(penalty) or not math.isfinite(penalty) or penalty <= 0:
        _refuse(field, penalty, "> 0", "use 1.0 to disable it")


def check_seed(seed: int | None) -> None:
    if seed is not None and (not _is_int(seed) or seed < 0):
        _refuse("seed", seed, "a non-negative integer or None", "use None for a random seed")


def _softmax(logits: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
    """Probabilities in float64; subtracting the max keeps exp() from overflowing."""
    x = logits.astype(np.float64)
    e = np.exp(x - x.max())
    return e / e.sum()


def _check_logits(logits: Logits) -> None:
    """Raise InferenceError for logits no sampler can use (wrong shape, NaN, +inf, all -inf)."""
    if logits.ndim != 1 or logits.size == 0:
        raise InferenceError(
            f"logits must be a non-empty 1-D array (got shape {logits.shape}); "
            "the model's output does not match the engine, check the model folder"
        )
    if np.isnan(logits).any():
        raise InferenceError(
            f"logits contain NaN ({int(np.isnan(logits).sum())} of {logits.size}); the model "
            "produced invalid output, try float32 precision or another device"
        )
    if np.isposinf(logits).any():
        raise InferenceError(
            "logits contain +inf; the model produced invalid output, "
            "try float32 precision or another device"
        )
    if not np.isfinite(logits).any():
        raise InferenceError(
            "every logit is -inf, so no token can be sampled; "
            "the sampling settings or the model output rule out every token"
        )


# --- processors -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Temperature:
    """Divide logits by ``t``: below 1 sharpens the distribution, above 1 flattens it.

    Attributes:
        t: The temperature, a finite number > 0 (0 means greedy and is handled by build_chain).
    """

    t: float

    def __post_init__(self) -> None:
        check_temperature(self.t, "Temperature.t", zero_ok=False)

    def __call__(self, logits: Logits, history: Sequence[int]) -> Logits:
        return (logits / np.float32(self.t)).astype(logits.dtype, copy=False)


@dataclass(frozen=True)
class TopK:
    """Keep the ``k`` largest logits and set the rest to -inf.

    Ties with the k-th largest value are all kept, so the result never depends on token order.

    Attributes:
        k: How many tokens to keep, an integer >= 1.
    """

    k: int

    def __post_init__(self) -> None:
        check_top_k(self.k, "TopK.k", minimum=1)

    def __call__(self, logits: Logits, history: Sequence[int]) -> Logits:
        if self.k >= logits.size:
            return logits.copy()
        kept = self.candidates(logits)
        out = np.full_like(logits, -np.inf)
        out[kept] = logits[kept]
        return out

    def candidates(self, logits: Logits) -> npt.NDArray[np.intp]:
        """Ids of the kept tokens, in id order."""
        # np.partition is O(vocab); a full sort would be O(vocab log vocab) for every token.
        threshold = np.partition(logits, logits.size - self.k)[logits.size - self.k]
        return np.flatnonzero(logits >= threshold)


@dataclass(frozen=True)
class TopP:
    """Nucleus sampling: keep the fewest most-likely tokens whose probabilities sum to >= ``p``.

    At least one token (the most likely) is always kept. Equal probabilities at the cut are
    ordered by token id, lowest first, so the result is deterministic.

    Attributes:
        p: The probability mass to keep, in (0, 1].
    """

    p: float

    def __post_init__(self) -> None:
        check_top_p(self.p, "TopP.p")

    def __call__(self, logits: Logits, history: Sequence[int]) -> Logits:
        # Only finite logits can carry probability; after TopK that is a handful, so sorting
        # just those keeps this cheap even for 150k-token vocabularies.
        candidates = np.flatnonzero(np.isfinite(logits))
        if self.p >= 1 or candidates.size <= 1:
            return logits.copy()
        probs = _softmax(logits[candidates])
        order = np.argsort(-probs, kind="stable")
        cumulative = np.cumsum(probs[order])
        # First position where the running total reaches p; that token is included.
        keep = int(np.searchsorted(cumulative, self.p, side="left")) + 1
        kept = candidates[order[: min(keep, candidates.size)]]
        out = np.full_like(logits, -np.inf)
        out[kept] = logits[kept]
        return out


@dataclass(frozen=True)
class MinP:
    """Keep tokens whose probability is at least ``p`` times the most likely token's.

    Attributes:
        p: The relative threshold, in [0, 1); 0 keeps everything.
    """

    p: float

    def __post_init__(self) -> None:
        check_min_p(self.p, "MinP.p")

    def __call__(self, logits: Logits, history: Sequence[int]) -> Logits:
        if self.p <= 0:
            return logits.copy()
        # prob_i >= p * prob_max  <=>  logit_i >= logit_max + log(p); no softmax needed.
        x = logits.astype(np.float64)
        threshold = x.max() + math.log(self.p)
        return np.where(x >= threshold, logits, np.float32(-np.inf)).astype(logits.dtype)


@dataclass(frozen=True)
class RepetitionPenalty:
    """CTRL-style penalty for tokens already in the history.

    A seen token's positive logit is divided by ``penalty`` and its negative logit multiplied
    by it, so a penalty above 1 always makes the token less likely (dividing a negative logit
    would make it more likely).

    Attributes:
        penalty: The factor, > 0; 1 does nothing and values below 1 encourage repetition.
        window: Only look at the last ``window`` tokens of the history; None means all of it.
    """

    penalty: float
    window: int | None = None

    def __post_init__(self) -> None:
        check_penalty(self.penalty, "RepetitionPenalty.penalty")
        if self.window is not None and (not _is_int(self.window) or self.window < 1):
            raise ConfigError(f"RepetitionPenalty needs window >= 1 or None (got {self.window!r})")

    def __call__(self, logits: Logits, history: Sequence[int]) -> Logits:
        recent = history[-self.window :] if self.window is not None else history
        if len(recent) == 0:
            return logits.copy()
        ids = np.unique(np.asarray(recent, dtype=np.int64))
        if ids[0] < 0 or ids[-1] >= logits.size:
            bad = int(ids[0] if ids[0] < 0 else ids[-1])
            raise InferenceError(
                f"token id {bad} in the history is outside the model's vocabulary "
                f"(0..{logits.size - 1}); the tokenizer does not match the model"
            )
        out = logits.copy()
        seen = out[ids]
        penalty = np.float32(self.penalty)
        out[ids] = np.where(seen > 0, seen / penalty, seen * penalty)
        return out


@dataclass(frozen=True)
class BannedSequences:
    """Rules out token sequences (each a tuple of ids): the last id of a sequence gets -inf
    where the history ends with the rest of it; a one-token sequence is always ruled out.
    How a regenerated summary sentence is kept from writing a term again."""

    sequences: tuple[tuple[int, ...], ...]

    def __call__(self, logits: Logits, history: Sequence[int]) -> Logits:
        out = logits.copy()
        for sequence in self.sequences:
            head = sequence[:-1]
            if 0 <= sequence[-1] < out.size and (
                    not head or tuple(history[-len(head):]) == head):
                out[sequence[-1]] = -np.inf
        return out


# --- samplers ---------------------------------------------------------------------------------


class GreedySampler:
    """Pick the most likely token; ties go to the lowest token id."""

    def __call__(self, logits: Logits) -> int:
        _check_logits(logits)
        # np.argmax returns the first maximum, which is the lowest id.
        return int(np.argmax(logits))

    def __repr__(self) -> str:
        return "GreedySampler()"


class MultinomialSampler:
    """Draw a token from the softmax of the logits with a seeded random generator.

    The same seed and the same sequence of logits give the same tokens, on any machine.

    Args:
        seed: Seed for ``numpy.random.default_rng``, a non-negative integer; None draws fresh
            entropy from the OS (not reproducible).
    """

    def __init__(self, seed: int | None = None) -> None:
        check_seed(seed)
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def __call__(self, logits: Logits) -> int:
        _check_logits(logits)
        candidates = np.flatnonzero(np.isfinite(logits))
        cumulative = np.cumsum(_softmax(logits[candidates]))
        # Inverse-CDF draw: side="right" skips zero-probability entries, and the clamp covers a
        # total that rounds to just below the drawn value.
        draw = self._rng.random() * cumulative[-1]
        index = min(int(np.searchsorted(cumulative, draw, side="right")), candidates.size - 1)
        return int(candidates[index])

    def __repr__(self) -> str:
        return f"MultinomialSampler(seed={self.seed!r})"


# --- settings and the chain -------------------------------------------------------------------


@dataclass(frozen=True)
class SamplingSettings:
    """The user's sampling values; creating one validates every field.

    Raises:
        ConfigError: A value is out of range; the message names the field, the value and a fix.
    """

    temperature: float = 0.7  # 0 = greedy; below 1 sharper, above 1 more random
    top_k: int = 40  # keep the k most likely tokens; 0 = disabled
    top_p: float = 0.95  # nucleus mass to keep; 1.0 = disabled
    min_p: float = 0.05  # drop tokens below min_p * the top probability; 0 = disabled
    # > 1 discourages repeats; 1.0 = disabled so temperature 0 is plain greedy (as in llama.cpp)
    repetition_penalty: float = 1.0
    seed: int | None = None  # fixed seed for reproducible output; None = random

    def __post_init__(self) -> None:
        check_temperature(self.temperature)
        check_top_k(self.top_k)
        check_top_p(self.top_p)
        check_min_p(self.min_p)
        check_penalty(self.repetition_penalty)
        check_seed(self.seed)


class SamplingChain:
    """Processors applied in order, then a sampler.

    Args:
        processors: Logits processors, applied first to last.
        sampler: Picks the token from the processed logits.
    """

    def __init__(self, processors: Sequence[LogitsProcessor], sampler: Sampler) -> None:
        self.processors = tuple(processors)
        self.sampler = sampler

    def sample(self, logits: Logits, history: Sequence[int]) -> int:
        """Pick the next token id.

        Args:
            logits: Last position's logits, shape (vocab,).
            history: Token ids so far (prompt + generated), for the repetition penalty.

        Returns:
            The chosen token id.

        Raises:
            InferenceError: The logits are not a 1-D array, contain NaN or +inf, or every token
                was ruled out.
        """
        logits = np.asarray(logits)
        # Check before processing: NaN compares false everywhere and would slip through top-k.
        _check_logits(logits)
        for index, processor in enumerate(self.processors):
            if isinstance(processor, TopK) and processor.k < logits.size:
                # The rest of the chain only ever looks at finite logits, so it runs on the k
                # kept ones alone (in id order, so ties break the same way): the same token,
                # without a few full-vocabulary passes per step (0.95 -> ~0.1 ms at 49k).
                kept = processor.candidates(logits)
                compact = logits[kept]
                for later in self.processors[index + 1:]:
                    compact = later(compact, history)
                return int(kept[self.sampler(compact)])
            logits = processor(logits, history)
        return self.sampler(logits)

    def __repr__(self) -> str:
        return f"SamplingChain({list(self.processors)!r}, {self.sampler!r})"


def build_chain(settings: SamplingSettings) -> SamplingChain:
    """Build the chain for ``settings``, leaving out processors that would do nothing.

    Order: repetition penalty, temperature, top-k, top-p, min-p, then the sampler. Temperature 0
    means greedy: the repetition penalty still applies, the other processors are skipped.

    Args:
        settings: Validated sampling values.

    Returns:
        The chain to call once per generated token.
    """
    processors: list[LogitsProcessor] = []
    if settings.repetition_penalty != 1.0:
        processors.append(RepetitionPenalty(settings.repetition_penalty))
    if settings.temperature == 0:
        return SamplingChain(processors, GreedySampler())
    if settings.temperature != 1.0:
        processors.append(Temperature(settings.temperature))
    if settings.top_k > 0:
        processors.append(TopK(settings.top_k))
    if settings.top_p < 1.0:
        processors.append(TopP(settings.top_p))
    if settings.min_p > 0:
        processors.append(MinP(settings.min_p))
    return SamplingChain(processors, MultinomialSampler(settings.seed))
