"""Runs an encoder-decoder's ONNX sessions: encode a padded batch, then decode step by step.

Two layouts, one interface (:class:`engine.beam_search.StepDecoder`):

* ``nightlamp``: ``encoder.onnx`` returns every decoder layer's cross-attention keys/values
  (``cross.{L}.key/value``); ``decoder.onnx`` takes them with the self-attention cache
  (``past_key_values.{L}.key/value`` -> ``present.{L}.key/value``).
* ``optimum``: Optimum's export of the same models. ``encoder_model.onnx`` returns
  ``last_hidden_state``; the first decoder call (``decoder_model.onnx``, or the merged decoder with
  ``use_cache_branch`` false) computes the cross keys/values itself and returns them as
  ``present.{L}.encoder.key/value``; later calls (``decoder_with_past_model.onnx`` or the merged
  decoder with ``use_cache_branch`` true) take them back as ``past_key_values.{L}.encoder.*``
  next to the self cache ``past_key_values.{L}.decoder.*``.

All state is a dict of batch-first numpy arrays, so keeping, dropping or duplicating rows (for
beam search) is one ``take`` per array. Feeds are built only for inputs a session really has.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from engine.errors import InferenceError
from engine.manifest import EncoderDecoderSpec, KVCacheSpec
from engine.session import float_type, short_reason


def run_session(session: ort.InferenceSession, outputs: list[str] | None,
                feeds: dict[str, np.ndarray], what: str) -> list[np.ndarray]:
    """session.run with ONNX Runtime's failures turned into one-line InferenceErrors."""
    try:
        return list(session.run(outputs, feeds))
    except Exception as error:
        raise InferenceError(f"{what} failed to run: {short_reason(error)}") from None


class _StateDecoder:
    """Batch-first state arrays plus the row selection every layout shares."""

    def __init__(self, state: dict[str, np.ndarray]) -> None:
        self.state = state

    def select(self, rows: np.ndarray) -> None:
        self.state = {name: np.take(value, rows, axis=0) for name, value in self.state.items()}


class NativeDecoder(_StateDecoder):
    """Nightlamp layout: cross keys/values from the encoder, a growing self-attention cache."""

    def __init__(self, session: ort.InferenceSession, cache: KVCacheSpec,
                 spec: EncoderDecoderSpec, encoded: dict[str, np.ndarray], what: str) -> None:
        super().__init__(dict(encoded))
        self.session, self.cache, self.what = session, cache, what
        self._presents: list[tuple[str, str]] = []  # (output, input it feeds next step)
        batch = encoded["encoder_attention_mask"].shape[0]
        types = {i.name: i.type for i in session.get_inputs()}
        for layer in range(cache.num_layers):
            for past, present in zip(cache.past_names(layer), cache.present_names(layer),
                                     strict=True):
                dtype = float_type(types.get(past, ""))
                self.state[past] = np.zeros((batch, cache.num_kv_heads, 0, cache.head_dim), dtype)
                self._presents.append((present, past))
        self._outputs = ["logits", *(present for present, _ in self._presents)]

    def step(self, tokens: np.ndarray) -> np.ndarray:
        feeds = {"input_ids": tokens.astype(np.int64)[:, None], **self.state}
        outputs = run_session(self.session, self._outputs, feeds, self.what)
        for (_, past), value in zip(self._presents, outputs[1:], strict=True):
            self.state[past] = value
        return outputs[0][:, -1].astype(np.float32)


def native_encode(session: ort.InferenceSession, spec: EncoderDecoderSpec,
                  input_ids: np.ndarray, mask: np.ndarray, what: str) -> dict[str, np.ndarray]:
    """Runs encoder.onnx; returns the decoder's constant inputs (cross K/V and the mask)."""
    names = [name for layer in range(spec.num_layers) for name in spec.cross_names(layer)]
    outputs = run_session(session, names, {"input_ids": input_ids, "attention_mask": mask}, what)
    return {"encoder_attention_mask": mask, **dict(zip(names, outputs, strict=True))}


class OptimumDecoder(_StateDecoder):
    """Optimum layout: first call without past (computes cross K/V), then with past."""

    def __init__(self, first: ort.InferenceSession, with_past: ort.InferenceSession,
                 spec: EncoderDecoderSpec, hidden: np.ndarray, mask: np.ndarray,
                 what: str) -> None:
        super().__init__({"encoder_hidden_states": hidden, "encoder_attention_mask": mask})
        self.first, self.with_past, self.spec, self.what = first, with_past, spec, what
        self.started = False

    def _feeds(self, session: ort.InferenceSession, tokens: np.ndarray,
               use_cache: bool) -> dict[str, np.ndarray]:
        feeds: dict[str, np.ndarray] = {"input_ids": tokens.astype(np.int64)[:, None]}
        batch = tokens.shape[0]
        for meta in session.get_inputs():
            name = meta.name
            if name in ("encoder_hidden_states", "encoder_attention_mask"):
                feeds[name] = self.state[name]
            elif name == "use_cache_branch":
                feeds[name] = np.array([use_cache])
            elif name.startswith("past_key_values."):
                if use_cache:
                    feeds[name] = self.state[name]
                else:  # the merged decoder's no-cache branch ignores them: empty placeholders
                    dtype = float_type(meta.type)
                    feeds[name] = np.zeros((batch, self.spec.num_heads, 0, self.spec.head_dim),
                                           dtype)
        return feeds

    def step(self, tokens: np.ndarray) -> np.ndarray:
        session = self.with_past if self.started else self.first
        names = [o.name for o in session.get_outputs()]
        outputs = run_session(session, names, self._feeds(session, tokens, self.started),
                              self.what)
        for name, value in zip(names, outputs, strict=True):
            if not name.startswith("present."):
                continue
            # The cross keys/values come once, from the first call; later calls of a merged
            # decoder may pass them through or return placeholders.
            if ".encoder." in name and self.started:
                continue
            self.state["past_key_values." + name[len("present."):]] = value
        self.started = True
        return outputs[names.index("logits")][:, -1].astype(np.float32)


def optimum_encode(session: ort.InferenceSession, input_ids: np.ndarray, mask: np.ndarray,
                   what: str) -> np.ndarray:
    """Runs Optimum's encoder_model.onnx; returns last_hidden_state (B, S, D)."""
    feeds = {"input_ids": input_ids}
    if any(i.name == "attention_mask" for i in session.get_inputs()):
        feeds["attention_mask"] = mask
    return run_session(session, [session.get_outputs()[0].name], feeds, what)[0]
