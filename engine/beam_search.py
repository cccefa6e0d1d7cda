"""Greedy and beam search for encoder-decoder models, in numpy, over a batch of sentences.

The searches drive any decoder that follows :class:`StepDecoder`: feed one token per row, get
that row's next-token logits, and keep/reorder/duplicate rows of its state (KV caches) with a
row index. Finished sentences are dropped from the decoder batch at once, so a batch costs what
its longest sentence costs only for that sentence.

Beam search reproduces transformers' ``generate(num_beams=N, do_sample=False)`` (the vectorized
beam search of transformers >= 4.50): each step keeps the 2N best continuations of all beams by
summed log-probability; a continuation that ends (EOS, or the sentence's length limit) among the
first N becomes a finished hypothesis scored ``sum_logprobs / generated_length ** length_penalty``
(the EOS token counts in the length); the N best unfinished ones continue. With
``early_stopping=True`` a sentence is done once it holds N finished hypotheses; with ``False``,
transformers' heuristic: done when the best running beam, scored at the current length, can't
beat the worst finished one. Banned tokens (e.g. the pad token) get -inf after the log-softmax,
like transformers' ``bad_words_ids`` processor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from engine.callbacks import ShouldStop
from engine.errors import ConfigError, OperationCancelledError

_NEG = np.float32(-1.0e9)  # transformers' "excluded" score offset, kept bit for bit


class StepDecoder(Protocol):
    """A batch of decoder states the searches advance one token at a time."""

    def step(self, tokens: np.ndarray) -> np.ndarray:
        """Feeds one token per row ((N,) int64); returns the next-token logits (N, V)."""
        ...

    def select(self, rows: np.ndarray) -> None:
        """Keeps the state rows ``rows`` in that order (rows may repeat or be left out)."""
        ...


@dataclass(frozen=True)
class SearchSettings:
    """How to search; validated on construction (ConfigError names the bad value)."""

    start_token_id: int  # first decoder input of every sentence
    eos_token_id: int  # ends a sentence; not part of the returned ids
    banned_token_ids: tuple[int, ...] = ()  # never generated (e.g. the pad token)
    beam_size: int = 1  # 1: greedy
    length_penalty: float = 1.0  # exponent of the length that finished scores are divided by
    early_stopping: bool = False  # True: stop a sentence once beam_size hypotheses finished

    def __post_init__(self) -> None:
        if isinstance(self.beam_size, bool) or not isinstance(self.beam_size, int) \
                or not 1 <= self.beam_size <= 64:
            raise ConfigError(f"beam size must be an integer from 1 to 64 (got "
                              f"{self.beam_size!r}); 1 is greedy, 4 is usual for translation")
        if not isinstance(self.length_penalty, (int, float)) \
                or not np.isfinite(self.length_penalty):
            raise ConfigError(f"length penalty must be a finite number (got "
                              f"{self.length_penalty!r}); 1.0 is neutral")


def _check(should_stop: ShouldStop | None) -> None:
    if should_stop is not None and should_stop():
        raise OperationCancelledError("translation cancelled")


def _limits(max_new_tokens: Sequence[int]) -> np.ndarray:
    limits = np.asarray(max_new_tokens, dtype=np.int64)
    if limits.ndim != 1 or (limits < 1).any():
        raise ConfigError("every sentence needs a length limit of at least 1 token")
    return limits


def greedy_search(decoder: StepDecoder, max_new_tokens: Sequence[int],
                  settings: SearchSettings, should_stop: ShouldStop | None = None,
                  ) -> list[list[int]]:
    """The most likely token at every step, for each sentence (row) of ``decoder``.

    Returns one id list per sentence, without the start token and without EOS.
    """
    limits = _limits(max_new_tokens)
    results: list[list[int]] = [[] for _ in limits]
    active = np.arange(len(limits))
    tokens = np.full(len(limits), settings.start_token_id, dtype=np.int64)
    banned = list(settings.banned_token_ids)
    while active.size:
        _check(should_stop)
        logits = np.array(decoder.step(tokens), dtype=np.float32)  # (A, V)
        if banned:
            logits[:, banned] = -np.inf
        chosen = logits.argmax(axis=-1)
        keep = []
        for row, item in enumerate(active):
            token = int(chosen[row])
            if token == settings.eos_token_id:
                continue
            results[item].append(token)
            if len(results[item]) < limits[item]:
                keep.append(row)
        if len(keep) < active.size:
            rows = np.asarray(keep, dtype=np.int64)
            if rows.size:
                decoder.select(rows)
            active, chosen = active[rows], chosen[rows]
        tokens = chosen.astype(np.int64)
    return results


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _top_k(scores: np.ndarray, k: int, group: int | None = None) -> np.ndarray:
    """Indices (A, k) of the k largest scores per row, best first; ties go to the lower index.

    With ``group`` (the vocabulary size of a row made of beams), the threshold comes from the
    first group alone: its k-th largest value is a lower bound of the row's, and the first beam
    is the best one, so few other entries pass it. That costs one partition of a vocabulary
    instead of beams of them.
    """
    rows, width = scores.shape
    if k >= width:
        candidates = [np.arange(width)] * rows
    else:
        span = group if group is not None and k <= group else width
        kth = np.partition(scores[:, :span], span - k, axis=1)[:, span - k]
        hit_rows, hit_cols = np.nonzero(scores >= kth[:, None])
        bounds = np.searchsorted(hit_rows, np.arange(rows + 1))
        candidates = [hit_cols[bounds[r]:bounds[r + 1]] for r in range(rows)]
    out = np.empty((rows, k), dtype=np.int64)
    for row, cols in enumerate(candidates):
        out[row] = cols[np.lexsort((cols, -scores[row, cols]))[:k]]
    return out


@dataclass
class _Hypotheses:
    """One sentence's finished hypotheses: at most beam_size, best first."""

    size: int
    scores: list[float]
    ids: list[list[int]]

    def add(self, score: float, ids: list[int]) -> None:
        # A stable insertion after equal scores, as transformers' merge keeps earlier ones first.
        at = next((i for i, s in enumerate(self.scores) if score > s), len(self.scores))
        self.scores.insert(at, score)
        self.ids.insert(at, ids)
        del self.scores[self.size:], self.ids[self.size:]

    @property
    def full(self) -> bool:
        return len(self.scores) == self.size

    def worst(self) -> np.float32:
        return np.float32(self.scores[-1]) if self.full else _NEG


def beam_search(decoder: StepDecoder, max_new_tokens: Sequence[int],
                settings: SearchSettings, should_stop: ShouldStop | None = None,
                ) -> list[list[int]]:
    """Beam search for each sentence (row) of ``decoder`` (see the module docstring).

    The decoder's rows are first repeated beam_size times. Returns the best hypothesis of every
    sentence, without the start token and without EOS.
    """
    limits = _limits(max_new_tokens)
    beams, count = settings.beam_size, len(limits)
    keep_count = 2 * beams  # transformers: max(2, 1 + number of EOS ids) * num_beams
    decoder.select(np.repeat(np.arange(count), beams))
    running = np.zeros((count, beams), dtype=np.float32)
    running[:, 1:] = _NEG  # only the first beam is live at the start
    sequences = np.zeros((count, beams, int(limits.max())), dtype=np.int64)
    finished = [_Hypotheses(beams, [], []) for _ in range(count)]
    improvable = np.ones(count, dtype=bool)  # transformers' is_early_stop_heuristic_unsatisfied
    active = np.arange(count)
    tokens = np.full(count * beams, settings.start_token_id, dtype=np.int64)
    banned = list(settings.banned_token_ids)
    step = 0
    while active.size:
        _check(should_stop)
        logits = np.asarray(decoder.step(tokens), dtype=np.float32)
        vocab = logits.shape[-1]
        log_probs = _log_softmax(logits)
        if banned:
            log_probs[:, banned] = -np.inf
        scores = (log_probs.reshape(active.size, beams, vocab)
                  + running[active][:, :, None]).reshape(active.size, beams * vocab)
        top = _top_k(scores, keep_count, vocab)  # (A, 2N)
        top_scores = np.take_along_axis(scores, top, axis=1)
        source_beam, top_tokens = top // vocab, top % vocab
        length = step + 1  # generated tokens, the new one (EOS too) included
        ends = (top_tokens == settings.eos_token_id) | (length >= limits[active])[:, None]
        normalized = top_scores / np.float32(length ** settings.length_penalty)
        continuing = top_scores + ends.astype(np.float32) * _NEG
        next_rows, next_tokens, still_active = [], [], []
        for a, item in enumerate(active):
            hypotheses = finished[item]
            if improvable[item] and not (settings.early_stopping and hypotheses.full):
                for c in range(beams):  # only the first N continuations may finish
                    if ends[a, c]:
                        ids = [*sequences[item, source_beam[a, c], :step].tolist()]
                        if top_tokens[a, c] != settings.eos_token_id:
                            ids.append(int(top_tokens[a, c]))
                        hypotheses.add(float(normalized[a, c]), ids)
            chosen = _top_k(continuing[a:a + 1], beams)[0]
            running[item] = continuing[a, chosen]
            sequences[item] = sequences[item, source_beam[a, chosen]]
            sequences[item, :, step] = top_tokens[a, chosen]
            # transformers' heuristic, after the step: can the best running beam still win?
            best = running[item, 0] / np.float32(length ** settings.length_penalty)
            improvable[item] &= bool(best > hypotheses.worst())
            done = (not improvable[item] or (settings.early_stopping and hypotheses.full)
                    or bool(ends[a].all()))
            if not done:
                still_active.append(item)
                next_rows.extend(a * beams + source_beam[a, chosen])
                next_tokens.extend(top_tokens[a, chosen])
        step += 1
        active = np.asarray(still_active, dtype=np.int64)
        if active.size:
            decoder.select(np.asarray(next_rows, dtype=np.int64))
            tokens = np.asarray(next_tokens, dtype=np.int64)
    return [h.ids[0] if h.ids else [] for h in finished]


def search(decoder: StepDecoder, max_new_tokens: Sequence[int], settings: SearchSettings,
           should_stop: ShouldStop | None = None) -> list[list[int]]:
    """Greedy search when ``settings.beam_size`` is 1, else beam search."""
    if settings.beam_size == 1:
        return greedy_search(decoder, max_new_tokens, settings, should_stop)
    return beam_search(decoder, max_new_tokens, settings, should_stop)
