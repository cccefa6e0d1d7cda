"""Runs a decoder step by step, carrying its KV cache or recurrent state between calls.

The runner knows the graph's inputs (read from the session, so foreign exports with or without
``position_ids`` work) and feeds back what the previous call returned. Batch size is 1: one
conversation per runner.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnxruntime as ort

from engine.errors import InferenceError
from engine.manifest import Manifest

_ORT_FLOAT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


class DecoderRunner:
    """Feeds tokens through a decoder session and keeps its cache.

    Attributes:
        past_length: tokens already in the cache (the absolute position of the next token).
    """

    def __init__(self, session: ort.InferenceSession, manifest: Manifest) -> None:
        self.session = session
        self.manifest = manifest
        self._inputs = {i.name: i for i in session.get_inputs()}
        self._output_names = [manifest.io.logits]
        self._feedback: dict[str, str] = {}  # output name -> input name it becomes next call
        if manifest.kv_cache:
            for layer in range(manifest.kv_cache.num_layers):
                for past, present in zip(manifest.kv_cache.past_names(layer),
                                         manifest.kv_cache.present_names(layer), strict=True):
                    self._feedback[present] = past
        for state in manifest.recurrent_state:
            self._feedback[state.output] = state.input
        self._output_names += list(self._feedback)
        self._state: dict[str, np.ndarray] = {}
        self.past_length = 0
        self.reset()

    def _dtype_of(self, name: str) -> type[np.floating]:
        return _ORT_FLOAT_TYPES.get(self._inputs[name].type, np.float32)

    def reset(self) -> None:
        """Forgets all context (empty cache, zero recurrent state)."""
        self.past_length = 0
        self._state = {}
        cache = self.manifest.kv_cache
        if cache:
            shape = (1, cache.num_kv_heads, 0, cache.head_dim)
            for layer in range(cache.num_layers):
                for name in cache.past_names(layer):
                    self._state[name] = np.zeros(shape, self._dtype_of(name))
        for state in self.manifest.recurrent_state:
            self._state[state.input] = np.zeros((state.num_layers, 1, state.size),
                                                self._dtype_of(state.input))

    def forward(self, token_ids: Sequence[int], all_logits: bool = False) -> np.ndarray:
        """Runs new tokens through the model after the cached context.

        Returns:
            The last position's logits (V,) as float32, or all positions' (S, V) if all_logits.
        """
        io = self.manifest.io
        count = len(token_ids)
        feeds: dict[str, np.ndarray] = {io.input_ids: np.asarray([token_ids], dtype=np.int64)}
        if io.attention_mask in self._inputs:
            feeds[io.attention_mask] = np.ones((1, self.past_length + count), dtype=np.int64)
        if io.position_ids in self._inputs:
            positions = np.arange(self.past_length, self.past_length + count, dtype=np.int64)
            feeds[io.position_ids] = positions[None, :]
        if "use_cache_branch" in self._inputs:  # Optimum's merged decoders
            feeds["use_cache_branch"] = np.array([self.past_length > 0])
        feeds.update(self._state)
        try:
            outputs = self.session.run(self._output_names, feeds)
        except Exception as error:
            # ONNX Runtime's messages span lines with the detail in the middle; keep all of it.
            reason = " ".join(str(error).split())[:300] or type(error).__name__
            raise InferenceError(f"model {self.manifest.name!r} failed to run: {reason}") from None
        for name, value in zip(self._output_names[1:], outputs[1:], strict=True):
            self._state[self._feedback[name]] = value
        self.past_length += count
        logits = outputs[0][0]  # (S, V)
        return logits.astype(np.float32) if all_logits else logits[-1].astype(np.float32)
