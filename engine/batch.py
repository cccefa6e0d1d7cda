"""Batched decoding: many sequences in one forward pass per step (continuous batching).

A small model's decode step costs about the same for one row as for eight: the weights are read
once either way and the operator overhead is paid once. So a job of many independent prompts (the
parts of a long document, the paragraphs of a translation, several callers of the server) runs
them side by side: each sequence holds a *slot*, one row of a preallocated cache buffer per layer
(``slots x kv_heads x capacity x head_dim``), and every step feeds each active slot its last token
in one batch. Sequences leave when they stop or reach their length and the next waiting prompt
takes the free slot between two steps, so the batch stays full.

This relies on the graph contract of our decoder graphs (``KVCacheSpec.shared_buffer``):
GroupQueryAttention reads each row's length from its right-padded attention mask and writes the
new keys and values at that row's own position, so rows of different lengths share one step. A
prompt is prefilled alone (batch 1) into its slot's rows of the same buffer. Each sequence has its
own sampling chain and history; greedy output equals ``engine.generation``'s token for token.
Graphs without a shared buffer (LSTMs, foreign exports) are refused: they run one at a time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import onnxruntime as ort

from engine.callbacks import ShouldStop
from engine.errors import ConfigError, InferenceError, OperationCancelledError
from engine.memory import available_memory, cache_bytes_per_token
from engine.model import Model
from engine.sampling import LogitsProcessor, SamplingChain, SamplingSettings, build_chain
from engine.session import float_type, short_reason

GREEDY = SamplingSettings(temperature=0.0)
PREFILL_CHUNK = 256  # prompt tokens per forward pass while prefilling a slot
DEFAULT_SLOTS = 8
MEMORY_SHARE = 0.5  # of the free memory, at most, for the slots' cache buffers


@dataclass(frozen=True)
class BatchRequest:
    """One sequence to continue: its prompt ids and how to pick its tokens."""

    prompt_ids: Sequence[int]
    max_new_tokens: int = 128
    sampling: SamplingSettings = GREEDY
    # Applied before the sampling chain, e.g. ``BannedSequences`` for a regenerated sentence.
    constraints: tuple[LogitsProcessor, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.max_new_tokens, bool) or not isinstance(self.max_new_tokens, int) \
                or self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be a positive integer (got "
                              f"{self.max_new_tokens!r})")


@dataclass
class BatchResult:
    token_ids: list[int] = field(default_factory=list)
    finish_reason: str = "length"  # "stop" (a stop token) or "length"


@dataclass
class _Sequence:
    index: int  # position in the caller's list
    request: BatchRequest
    chain: SamplingChain
    history: list[int]
    result: BatchResult
    limit: int  # new tokens it may still take (its max, or what the capacity leaves)


def batchable(model: Model) -> bool:
    """Whether ``model`` can decode in batches here: our shared-buffer graphs, on the CPU (the
    slots are host memory)."""
    if not isinstance(model, Model):
        return False
    cache = model.manifest.kv_cache
    names = {i.name for i in model.session.get_inputs()}
    return (cache is not None and cache.shared_buffer and model.device == "cpu"
            and model.manifest.io.logits_to_keep in names)


class BatchDecoder:
    """The slots of one model and the steps over them; one thread at a time.

    Args:
        model: a loaded decoder whose graph keeps its cache in a shared buffer.
        slots: sequences decoded side by side.
        capacity: positions per slot (prompt + new tokens), at most the model's context.
    """

    def __init__(self, model: Model, slots: int, capacity: int) -> None:
        cache = model.manifest.kv_cache
        if cache is None or not cache.shared_buffer:
            raise ConfigError(f"{model.name} cannot decode in batches (its graph keeps no "
                              "shared cache buffer); it runs one sequence at a time")
        if slots < 1 or not 2 <= capacity <= model.manifest.context_length:
            raise ConfigError(f"batch needs slots >= 1 and 2 <= capacity <= the context "
                              f"(got {slots}, {capacity})")
        self.model, self.slots, self.capacity = model, slots, capacity
        self.session = model.session
        self._io = model.manifest.io
        inputs = {i.name: i for i in self.session.get_inputs()}
        if self._io.logits_to_keep not in inputs:  # every row's logits would be kept
            raise ConfigError(f"{model.name}: batching needs a logits_to_keep input")
        self._pairs = [pair for layer in range(cache.num_layers)
                       for pair in zip(cache.past_names(layer), cache.present_names(layer),
                                       strict=True)]
        dtype = float_type(inputs[self._pairs[0][0]].type)
        shape = (slots, cache.num_kv_heads, capacity, cache.head_dim)
        self._buffers = {past: np.zeros(shape, dtype) for past, _ in self._pairs}
        self.lengths = np.zeros(slots, np.int64)  # tokens in each slot's cache
        self._bindings: dict[tuple[int, int], ort.IOBinding] = {}  # (first row, rows)
        self._keep_last = np.array(1, np.int64)
        self._outputs: dict[int, tuple[np.ndarray, ort.OrtValue]] = {}

    def _binding(self, first: int, rows: int) -> ort.IOBinding:
        """An I/O binding of cache rows first..first+rows-1 (views: nothing is copied)."""
        key = (first, rows)
        if key not in self._bindings:
            binding = self.session.io_binding()
            for past, present in self._pairs:
                view = ort.OrtValue.ortvalue_from_numpy(self._buffers[past][first:first + rows])
                binding.bind_ortvalue_input(past, view)
                binding.bind_ortvalue_output(present, view)
            self._bindings[key] = binding
        return self._bindings[key]

    def _logits(self, rows: int) -> tuple[np.ndarray, ort.OrtValue]:
        """The output array for ``rows`` rows, made once (each step overwrites it)."""
        if rows not in self._outputs:
            array = np.zeros((rows, 1, self.model.manifest.vocab_size), np.float32)
            self._outputs[rows] = (array, ort.OrtValue.ortvalue_from_numpy(array))
        return self._outputs[rows]

    def _run(self, binding: ort.IOBinding, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        logits, value = self._logits(ids.shape[0])
        binding.bind_cpu_input(self._io.input_ids, ids)
        binding.bind_cpu_input(self._io.attention_mask, mask)
        binding.bind_cpu_input(self._io.logits_to_keep, self._keep_last)
        binding.bind_ortvalue_output(self._io.logits, value)
        try:
            self.session.run_with_iobinding(binding)
        except Exception as error:
            raise InferenceError(f"model {self.model.name!r} failed to run: "
                                 f"{short_reason(error)}") from None
        return logits[:, -1, :].copy()  # the array is reused by the next pass

    def prefill(self, slot: int, prompt: Sequence[int],
                should_stop: ShouldStop | None = None) -> np.ndarray:
        """Runs a prompt into an empty slot; returns the logits after its last token.
        ``should_stop`` is asked between chunks (a long prompt takes a second or more):
        True raises OperationCancelledError."""
        if not 1 <= len(prompt) < self.capacity:
            raise ConfigError(f"a batch prompt must have 1 to {self.capacity - 1} tokens "
                              f"(got {len(prompt)})")
        binding = self._binding(slot, 1)
        done = 0
        logits = np.empty(0, np.float32)
        while done < len(prompt):
            if done and should_stop is not None and should_stop():
                raise OperationCancelledError("batch decoding was cancelled")
            chunk = np.asarray([prompt[done:done + PREFILL_CHUNK]], np.int64)
            done += chunk.shape[1]
            logits = self._run(binding, chunk, np.ones((1, done), np.int64))[0]
        self.lengths[slot] = len(prompt)
        return logits

    def step(self, tokens: dict[int, int]) -> dict[int, np.ndarray]:
        """Feeds each slot in ``tokens`` its next token in one pass; returns their logits.

        The pass spans the rows from the lowest to the highest busy slot; a free row inside
        that span gets a dummy token at its position 0, which the next prefill overwrites.
        """
        first, last = min(tokens), max(tokens)
        rows = last - first + 1
        lengths = self.lengths[first:last + 1].copy()
        ids = np.zeros((rows, 1), np.int64)
        for slot, token in tokens.items():
            ids[slot - first, 0] = token
        busy = np.zeros(rows, bool)
        busy[[slot - first for slot in tokens]] = True
        totals = np.where(busy, lengths + 1, 1)
        mask = (np.arange(int(totals.max()))[None, :] < totals[:, None]).astype(np.int64)
        logits = self._run(self._binding(first, rows), ids, mask)
        for slot in tokens:
            self.lengths[slot] += 1
        return {slot: logits[slot - first] for slot in tokens}

    def free(self, slot: int) -> None:
        self.lengths[slot] = 0


def fitting_slots(model: Model, slots: int, capacity: int) -> int:
    """``slots``, fewer where their cache buffers would take more than ``MEMORY_SHARE`` of the
    free memory (at least one: a single sequence is what load_model already checked fits).

    Each slot holds a whole cache (``capacity`` positions of every layer): 8 slots of a 1.7B
    model at 8k positions would be many gigabytes.
    """
    free = available_memory()
    per_slot = cache_bytes_per_token(model.manifest) * capacity
    if free is None or per_slot == 0:
        return slots
    return max(1, min(slots, int(MEMORY_SHARE * free) // per_slot))


class ContinuousBatch:
    """Sequences joining and leaving one :class:`BatchDecoder` between steps.

    The caller admits a request whenever a slot is free (:meth:`admit` prefills it and picks
    its first token) and calls :meth:`step` while any sequence is active; :meth:`drop` ends one
    early (a client that went away). Each sequence is known by the caller's ``key``.

    Args:
        on_token: called with (key, token id) as each token is chosen.
        until: called with (key, its new ids) after each token; True ends that sequence there
            (finish reason "stop"), e.g. at the end of enough sentences.
        on_finish: called with (key, its result) as each sequence ends.
    """

    def __init__(self, decoder: BatchDecoder,
                 on_token: Callable[[int, int], None] | None = None,
                 until: Callable[[int, list[int]], bool] | None = None,
                 on_finish: Callable[[int, BatchResult], None] | None = None) -> None:
        self.decoder = decoder
        self._on_token, self._until, self._on_finish = on_token, until, on_finish
        self._stops = decoder.model.stop_token_ids
        self._active: dict[int, _Sequence] = {}  # by slot
        self._last_tokens: dict[int, int] = {}  # by slot: the token the next step feeds

    @property
    def active(self) -> int:
        return len(self._active)

    def has_room(self) -> bool:
        return len(self._active) < self.decoder.slots

    def admit(self, key: int, request: BatchRequest,
              should_stop: ShouldStop | None = None) -> BatchResult:
        """Prefills ``request`` into a free slot and picks its first token; its result fills in
        as it decodes. Raises ConfigError when no slot is free or the prompt does not fit."""
        slot = next((s for s in range(self.decoder.slots) if s not in self._active), None)
        if slot is None:
            raise ConfigError("every batch slot is busy; admit after a sequence finishes")
        prompt = list(request.prompt_ids)
        limit = min(request.max_new_tokens, self.decoder.capacity - len(prompt))
        result = BatchResult()
        logits = self.decoder.prefill(slot, prompt, should_stop)
        self._active[slot] = _Sequence(key, request, build_chain(request.sampling), prompt,
                                       result, limit)
        self._choose(slot, logits)
        return result

    def drop(self, key: int) -> None:
        """Ends sequence ``key`` now (finish reason "cancelled"); its slot is free at once."""
        for slot, sequence in list(self._active.items()):
            if sequence.index == key:
                self._finish(slot, "cancelled")

    def step(self) -> None:
        """One token for every active sequence, in one pass."""
        pending = {slot: self._last_tokens[slot] for slot in self._active}
        if pending:
            for slot, logits in self.decoder.step(pending).items():
                self._choose(slot, logits)

    def _finish(self, slot: int, reason: str) -> None:
        sequence = self._active.pop(slot)
        self._last_tokens.pop(slot, None)
        sequence.result.finish_reason = reason
        self.decoder.free(slot)
        if self._on_finish is not None:
            self._on_finish(sequence.index, sequence.result)

    def _choose(self, slot: int, logits: np.ndarray) -> None:
        sequence = self._active[slot]
        for constraint in sequence.request.constraints:
            logits = constraint(logits, sequence.history)
        token = sequence.chain.sample(logits, sequence.history)
        if token in self._stops:
            self._finish(slot, "stop")
            return
        sequence.result.token_ids.append(token)
        sequence.history.append(token)
        if self._on_token is not None:
            self._on_token(sequence.index, token)
        if self._until is not None and self._until(sequence.index, sequence.result.token_ids):
            self._finish(slot, "stop")
        elif len(sequence.result.token_ids) >= sequence.limit:
            self._finish(slot, "length")
        else:
            self._last_tokens[slot] = token


def decode_batch(model: Model, requests: Sequence[BatchRequest], slots: int = DEFAULT_SLOTS,
                 should_stop: ShouldStop | None = None,
                 on_token: Callable[[int, int], None] | None = None,
                 until: Callable[[int, list[int]], bool] | None = None,
                 on_finish: Callable[[int], None] | None = None) -> list[BatchResult]:
    """Continues every request's prompt, ``slots`` at a time, and returns their new token ids
    in the order of ``requests``.

    Args:
        on_token: called with (request index, token id) as each token is chosen.
        until: called with (request index, its new ids) after each token; True ends that
            sequence there (finish reason "stop"), e.g. at the end of enough sentences.
        on_finish: called with the request index as each sequence ends.
        should_stop: checked before every step; True raises OperationCancelledError.

    Raises:
        ConfigError: the model's graph cannot batch, or a prompt does not fit the context.
    """
    if not requests:
        return []
    context = model.manifest.context_length
    for request in requests:
        check_prompt_fits(model, len(request.prompt_ids), context)
    capacity = min(context, max(len(r.prompt_ids) + r.max_new_tokens for r in requests))
    decoder = BatchDecoder(model, fitting_slots(model, min(slots, len(requests)), capacity),
                           capacity)
    results: list[BatchResult | None] = [None] * len(requests)
    batch = ContinuousBatch(decoder, on_token, until,
                            None if on_finish is None else lambda index, _: on_finish(index))
    waiting = deque(range(len(requests)))
    while waiting or batch.active:
        if should_stop is not None and should_stop():
            raise OperationCancelledError("batch decoding was cancelled")
        while waiting and batch.has_room():
            if should_stop is not None and should_stop():  # a prefill takes a while too
                raise OperationCancelledError("batch decoding was cancelled")
            index = waiting.popleft()
            results[index] = batch.admit(index, requests[index], should_stop)
        batch.step()
    return [result for result in results if result is not None]


def check_prompt_fits(model: Model, prompt_tokens: int, capacity: int) -> None:
    """Refuses (ConfigError) an empty prompt or one that leaves no room in ``capacity``."""
    if not 1 <= prompt_tokens < capacity:
        raise ConfigError(f"a prompt of {prompt_tokens} tokens does not fit {model.name}'s "
                          f"context of {capacity}")
