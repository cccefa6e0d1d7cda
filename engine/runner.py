"""Runs a decoder step by step, carrying its KV cache or recurrent state between calls.

The runner knows the graph's inputs (read from the session, so foreign exports with or without
``position_ids`` work) and feeds back what the previous call returned. Batch size is 1: one
conversation per runner.

Graphs whose cache may live in one preallocated buffer (``KVCacheSpec.shared_buffer``, our own
exports) run through ONNX Runtime's I/O binding: each layer's past and present are bound to the
same buffer once, the graph writes the new keys/values into it in place, and the logits of the
last position land in a preallocated array. Nothing is copied per token except the token itself,
which is what keeps a small model's decode loop fast. Other graphs (LSTMs, Optimum and
onnxruntime-genai exports) get their cache fed back as arrays.

A CPU model may open a second, narrow session of the same graph when the CPU turns out to be
shared; the runner then times its steps and runs each on the faster one
(``engine.thread_policy``). Both share the cache, so the choice never changes the output.

The runner remembers which tokens its cache holds, so a new prompt that starts like the previous
one (the next turn of a chat) only runs the tokens after the shared prefix (`keep_prefix`).
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Sequence

import numpy as np
import onnxruntime as ort

from engine.device import physical_cores
from engine.errors import InferenceError
from engine.manifest import Manifest
from engine.session import float_type, short_reason
from engine.thread_policy import BackgroundSession, SessionChooser

# Cache buffers grow in steps of this many positions (and at least double), so a conversation
# reallocates a handful of times, not per turn.
_CAPACITY_STEP = 256


class DecoderRunner:
    """Feeds tokens through a decoder session and keeps its cache.

    Attributes:
        tokens: the token ids the cache holds, in order.
    """

    def __init__(self, session: ort.InferenceSession, manifest: Manifest,
                 device: str = "cpu",
                 narrow: Callable[[], ort.InferenceSession] | None = None) -> None:
        self.session = session
        self.sessions = [session]
        # `narrow` opens the busy-CPU session; it runs (in the background) only once needed.
        self._narrow_factory = narrow
        self._narrow: BackgroundSession | None = None
        self.chooser: SessionChooser | None = None
        if narrow is not None:
            threads = session.get_session_options().intra_op_num_threads or physical_cores()
            self.chooser = SessionChooser(threads)
        self.manifest = manifest
        self.device = device
        self.tokens: list[int] = []
        self._owner: weakref.ref[object] | None = None
        self._inputs = {i.name: i for i in session.get_inputs()}
        self._feedback: dict[str, str] = {}  # output name -> input name it becomes next call
        if manifest.kv_cache:
            for layer in range(manifest.kv_cache.num_layers):
                for past, present in zip(manifest.kv_cache.past_names(layer),
                                         manifest.kv_cache.present_names(layer), strict=True):
                    self._feedback[present] = past
        for state in manifest.recurrent_state:
            self._feedback[state.output] = state.input
        self._output_names = [manifest.io.logits, *self._feedback]
        self._state: dict[str, np.ndarray] = {}
        self._buffers: _SharedCache | None = None
        if manifest.kv_cache and manifest.kv_cache.shared_buffer:
            self._buffers = _SharedCache(session, manifest, device,
                                         self._dtype_of(manifest.kv_cache.past_names(0)[0]))
        self.reset()

    # The generation using the cache now. Held weakly: the generation holds the model, which
    # holds this runner, and a cycle would keep a dropped model's session and cache buffers
    # (hundreds of MB) alive until Python's cycle collector happened to run.
    @property
    def owner(self) -> object | None:
        return self._owner() if self._owner is not None else None

    @owner.setter
    def owner(self, generation: object | None) -> None:
        self._owner = None if generation is None else weakref.ref(generation)

    @property
    def past_length(self) -> int:
        """Tokens already in the cache (the absolute position of the next token)."""
        return len(self.tokens)

    def _dtype_of(self, name: str) -> type[np.floating]:
        return float_type(self._inputs[name].type)

    def reset(self) -> None:
        """Forgets all context (empty cache, zero recurrent state)."""
        self.tokens = []
        self._state = {}
        cache = self.manifest.kv_cache
        if cache and self._buffers is None:
            shape = (1, cache.num_kv_heads, 0, cache.head_dim)
            for layer in range(cache.num_layers):
                for name in cache.past_names(layer):
                    self._state[name] = np.zeros(shape, self._dtype_of(name))
        for state in self.manifest.recurrent_state:
            self._state[state.input] = np.zeros((state.num_layers, 1, state.size),
                                                self._dtype_of(state.input))

    def keep_prefix(self, token_ids: Sequence[int]) -> int:
        """Keeps the part of the cache that `token_ids` starts with and drops the rest.

        At least the last id is left to run (its logits are what comes next). A recurrent
        state can't be rewound: it is kept only when it holds exactly a prefix of `token_ids`.

        Returns:
            How many of `token_ids` are already in the cache.
        """
        shared = 0
        for cached, wanted in zip(self.tokens, token_ids, strict=False):
            if cached != wanted:
                break
            shared += 1
        shared = min(shared, len(token_ids) - 1)
        if shared < len(self.tokens):
            if self.manifest.recurrent_state:
                self.reset()
                return 0
            self._truncate(shared)
        return shared

    def _truncate(self, length: int) -> None:
        self.tokens = self.tokens[:length]
        if self._buffers is None:  # positions past `length` live in the fed-back arrays
            for name in list(self._state):
                self._state[name] = self._state[name][:, :, :length]
        # A shared buffer needs nothing: the mask says how much of it is valid.

    def forward(self, token_ids: Sequence[int], all_logits: bool = False) -> np.ndarray:
        """Runs new tokens through the model after the cached context.

        Returns:
            The last position's logits (V,) as float32, or all positions' (S, V) if all_logits.
        """
        ids = np.asarray([token_ids], dtype=np.int64)
        count = ids.shape[1]
        index = self._pick(count)
        started, cpu = time.perf_counter(), time.process_time()
        try:
            if self._buffers is not None:
                logits = self._buffers.run(ids, len(self.tokens), all_logits, index)
            else:
                logits = self._run_with_feeds(ids, all_logits, self.sessions[index])
        except Exception as error:
            raise InferenceError(f"model {self.manifest.name!r} failed to run: "
                                 f"{short_reason(error)}") from None
        if self.chooser is not None:
            self.chooser.record(index, count, time.perf_counter() - started,
                                time.process_time() - cpu)
        self.tokens.extend(int(t) for t in token_ids)
        return logits

    def _pick(self, count: int) -> int:
        """The session for this pass; opens or adopts the narrow one when the chooser asks."""
        chooser = self.chooser
        if chooser is None:
            return 0
        if chooser.wants_narrow and self._narrow is None and self._narrow_factory is not None:
            self._narrow = BackgroundSession(self._narrow_factory)
            self._narrow_factory = None
        if self._narrow is not None and self._narrow.done:
            session = self._narrow.take()
            self._narrow = None
            if session is not None:
                self.sessions.append(session)
                if self._buffers is not None:
                    self._buffers.add_session(session)
                chooser.narrow_ready()
        return chooser.pick(count)

    def _run_with_feeds(self, ids: np.ndarray, all_logits: bool,
                        session: ort.InferenceSession) -> np.ndarray:
        io = self.manifest.io
        past, count = len(self.tokens), ids.shape[1]
        feeds: dict[str, np.ndarray] = {io.input_ids: ids}
        if io.attention_mask in self._inputs:
            feeds[io.attention_mask] = np.ones((1, past + count), dtype=np.int64)
        if io.position_ids in self._inputs:
            feeds[io.position_ids] = np.arange(past, past + count, dtype=np.int64)[None, :]
        if io.logits_to_keep in self._inputs:
            feeds[io.logits_to_keep] = np.array(0 if all_logits else 1, np.int64)
        if "use_cache_branch" in self._inputs:  # Optimum's merged decoders
            feeds["use_cache_branch"] = np.array([past > 0])
        feeds.update(self._state)
        outputs = session.run(self._output_names, feeds)
        for name, value in zip(self._output_names[1:], outputs[1:], strict=True):
            self._state[self._feedback[name]] = value
        logits = outputs[0][0]  # (S or 1, V)
        return logits.astype(np.float32) if all_logits else logits[-1].astype(np.float32)


class _SharedCache:
    """Preallocated past/present buffers bound once through I/O binding (see the module doc)."""

    # It holds the sessions, not the runner: no reference cycle (see DecoderRunner.owner).
    # Every session gets a binding of its own, all bound to the same cache buffers.
    def __init__(self, session: ort.InferenceSession, manifest: Manifest,
                 device: str, dtype: type[np.floating]) -> None:
        assert manifest.kv_cache is not None
        self.sessions: list[ort.InferenceSession] = []
        self.bindings: list[ort.IOBinding] = []
        self.device = device
        self.manifest = manifest
        self.cache = manifest.kv_cache
        self._pairs = [pair for layer in range(self.cache.num_layers)
                       for pair in zip(self.cache.past_names(layer),
                                       self.cache.present_names(layer), strict=True)]
        self.capacity = 0
        self.buffers: dict[str, ort.OrtValue] = {}
        self._host: dict[str, np.ndarray] = {}  # CPU buffers behind the OrtValues
        self._mask = np.ones((1, 0), np.int64)
        self._keep_last = np.array(1, np.int64)
        self._keep_all = np.array(0, np.int64)
        vocab = manifest.vocab_size
        self._logits = np.zeros((1, 1, vocab), np.float32)
        self._logits_value = ort.OrtValue.ortvalue_from_numpy(self._logits)
        self._dtype = dtype  # the graph's cache type
        self.has_keep_input = manifest.io.logits_to_keep in {
            i.name for i in session.get_inputs()}
        self.add_session(session)

    def _grow(self, needed: int, valid: int) -> None:
        """Makes room for `needed` positions, keeping the first `valid` ones."""
        wanted = max(needed, 2 * self.capacity)
        rounded = -(-wanted // _CAPACITY_STEP) * _CAPACITY_STEP
        capacity = max(needed, min(self.manifest.context_length, rounded))
        shape = (1, self.cache.num_kv_heads, capacity, self.cache.head_dim)
        on_device = self.device == "cuda"
        for past, _ in self._pairs:
            fresh = np.zeros(shape, self._dtype)
            if valid:
                old = self.buffers[past]
                kept = self._host[past] if not on_device else old.numpy()
                fresh[:, :, :valid] = kept[:, :, :valid]
            if on_device:
                value = ort.OrtValue.ortvalue_from_numpy(fresh, "cuda", 0)
            else:
                value = ort.OrtValue.ortvalue_from_numpy(fresh)
                self._host[past] = fresh  # the OrtValue borrows this memory
            self.buffers[past] = value
        for binding in self.bindings:
            self._bind(binding)
        self._mask = np.ones((1, capacity), np.int64)
        self.capacity = capacity

    def add_session(self, session: ort.InferenceSession) -> None:
        """A session of the graph, bound to the buffers (those that exist now; ``_grow`` binds
        every session to new ones)."""
        binding = session.io_binding()
        self._bind(binding)
        self.sessions.append(session)
        self.bindings.append(binding)

    def _bind(self, binding: ort.IOBinding) -> None:
        """Each layer's past and present to its one buffer."""
        if not self.buffers:
            return
        for past, present in self._pairs:
            binding.bind_ortvalue_input(past, self.buffers[past])
            binding.bind_ortvalue_output(present, self.buffers[past])

    def run(self, ids: np.ndarray, past: int, all_logits: bool, index: int = 0) -> np.ndarray:
        io = self.manifest.io
        total = past + ids.shape[1]
        if total > self.capacity:
            self._grow(total, past)
        binding = self.bindings[index]
        binding.bind_cpu_input(io.input_ids, ids)
        binding.bind_cpu_input(io.attention_mask, self._mask[:, :total])
        # Without a logits_to_keep input (genai's graphs) every new position gets logits.
        every_position = all_logits or not self.has_keep_input
        if every_position and ids.shape[1] > 1:
            logits = np.zeros((1, ids.shape[1], self._logits.shape[-1]), np.float32)
            value = ort.OrtValue.ortvalue_from_numpy(logits)
        else:
            logits, value = self._logits, self._logits_value
        if self.has_keep_input:
            binding.bind_cpu_input(io.logits_to_keep,
                                   self._keep_all if all_logits else self._keep_last)
        binding.bind_ortvalue_output(io.logits, value)
        self.sessions[index].run_with_iobinding(binding)
        return logits[0].copy() if all_logits else logits[0, -1].copy()
