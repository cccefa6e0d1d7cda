"""Loads a model folder: manifest, tokenizer and an ONNX Runtime session on the chosen device.

Everything a later step relies on is checked here, once, with errors that name the file and the
field: the ONNX file loads, its inputs and outputs match the manifest, the tokenizer fits the
model's vocabulary, and every stop token exists.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import onnxruntime as ort

from engine.device import device_of, physical_cores
from engine.errors import ConfigError, ModelFormatError
from engine.formats import check_inside, manifest_source, read_model_folder
from engine.manifest import Manifest
from engine.memory import check_fits
from engine.runner import DecoderRunner
from engine.seq2seq import Seq2SeqModel, load_seq2seq
from engine.session import check_io_names, check_tokenizer_fits, open_session, token_id
from engine.store import resolve_model
from engine.thread_policy import narrow_threads, room_for_second_session
from engine.tokenizer import Tokenizer

logger = logging.getLogger(__name__)


@dataclass
class Model:
    """A loaded decoder (transformer or LSTM); its session must be used from one thread at a time.

    Encoder-decoders load as ``engine.seq2seq.Seq2SeqModel``, which is not a Model.
    """

    folder: Path
    manifest: Manifest
    tokenizer: Tokenizer
    session: ort.InferenceSession
    device: str  # "cpu" or "cuda": what the session really runs on
    stop_token_ids: frozenset[int]
    bos_token_id: int | None
    # Opens the same graph on fewer threads without spinning, for a busy CPU; the runner calls
    # it only once it sees the CPU shared (engine.thread_policy). None: one session only.
    narrow_factory: Callable[[], ort.InferenceSession] | None = None
    _runner: DecoderRunner | None = dataclasses.field(default=None, init=False, repr=False)

    @property
    def name(self) -> str:
        return self.manifest.name

    def decoder_runner(self) -> DecoderRunner:
        """The model's one long-lived runner: its cache outlives a generation, so the next
        prompt that starts the same way (a chat's next turn) only runs its new tokens."""
        if self._runner is None:
            self._runner = DecoderRunner(self.session, self.manifest, self.device,
                                         narrow=self.narrow_factory)
        return self._runner


def require_decoder(model: Model | Seq2SeqModel) -> Model:
    """``model`` itself when it generates text; a translation model is a ConfigError.

    For code holding whatever load_model returned: the user reads what the model does instead
    of an AttributeError from deep inside generation.
    """
    if isinstance(model, Seq2SeqModel):
        raise ConfigError(f"{model.name} is a translation (encoder-decoder) model: it "
                          "translates ('nightlamp translate'), it does not chat or complete")
    return model


def _check_io_names(manifest: Manifest, manifest_path: Path) -> None:
    """Every input/output name is a string (foreign configs are read as they come)."""
    for io_field in dataclasses.fields(manifest.io):
        value = getattr(manifest.io, io_field.name)
        if not isinstance(value, str) or (not value and io_field.name in ("input_ids", "logits")):
            raise ModelFormatError(
                f"{manifest_path}: field 'io.{io_field.name}' must be a tensor name (a string), "
                f"got {value!r:.60}; fix the config or re-export the model"
            )


def _check_io(manifest: Manifest, session: ort.InferenceSession, onnx_path: Path,
              manifest_path: Path) -> None:
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = {o.name: o for o in session.get_outputs()}
    required_inputs = [manifest.io.input_ids]
    required_outputs = [manifest.io.logits]
    if manifest.kv_cache:
        for layer in range(manifest.kv_cache.num_layers):
            required_inputs += manifest.kv_cache.past_names(layer)
            required_outputs += manifest.kv_cache.present_names(layer)
    for state in manifest.recurrent_state:
        required_inputs.append(state.input)
        required_outputs.append(state.output)
    # The runner feeds these when the graph has them; any other input (e.g. the cache of a layer
    # the manifest leaves out) would only fail at the first generation.
    optional = (manifest.io.attention_mask, manifest.io.position_ids, manifest.io.logits_to_keep,
                "use_cache_branch")
    check_io_names(session, onnx_path, manifest_path, required_inputs, required_outputs,
                   optional=optional)
    # Cache and state sizes the runner builds from the manifest must fit the graph's fixed dims.
    expected: list[tuple[str, int, int, int, str]] = []  # input, rank, axis, size, field
    if manifest.kv_cache:
        cache = manifest.kv_cache
        for layer in range(cache.num_layers):
            for name in cache.past_names(layer):  # (batch, kvH, past, D)
                expected += [(name, 4, 1, cache.num_kv_heads, "kv_cache.num_kv_heads"),
                             (name, 4, 3, cache.head_dim, "kv_cache.head_dim")]
    for index, state in enumerate(manifest.recurrent_state):  # (layers, batch, size)
        expected += [(state.input, 3, 0, state.num_layers, f"recurrent_state[{index}].num_layers"),
                     (state.input, 3, 2, state.size, f"recurrent_state[{index}].size")]
    for name, rank, axis, size, field in expected:
        shape = inputs[name].shape
        if len(shape) != rank or (isinstance(shape[axis], int) and shape[axis] != size):
            raise ModelFormatError(
                f"{manifest_path}: field '{field}' is {size} but input {name!r} of "
                f"{onnx_path.name} has shape {shape}; the manifest and ONNX file do not belong "
                "together"
            )
    vocab_dim = outputs[manifest.io.logits].shape[-1]
    if isinstance(vocab_dim, int) and vocab_dim != manifest.vocab_size:
        raise ModelFormatError(
            f"{manifest_path}: field 'vocab_size' is {manifest.vocab_size} but {onnx_path.name} "
            f"outputs {vocab_dim} logits; fix the manifest or re-export"
        )


def _stop_ids(manifest: Manifest, tokenizer: Tokenizer, manifest_path: Path) -> frozenset[int]:
    named = [(name, "stop_tokens") for name in manifest.stop_tokens]
    if manifest.eos_token:
        named.append((manifest.eos_token, "eos_token"))
    return frozenset(token_id(name, tokenizer, manifest.vocab_size, field, manifest_path)
                     for name, field in named)


def _narrow_factory(onnx_path: Path,
                    threads: int | None) -> Callable[[], ort.InferenceSession] | None:
    """What opens the busy-CPU session (None where the policy keeps one session)."""
    if threads is None:
        return None

    def open_narrow() -> ort.InferenceSession:
        if not room_for_second_session(onnx_path):
            raise MemoryError("too little free memory for a second copy of the weights")
        return open_session(onnx_path, "cpu", threads, spinning=False)

    return open_narrow


def load_model(spec: str | os.PathLike[str] | None, device: str = "auto",
               threads: int | None = None,
               context_length: int | None = None) -> Model | Seq2SeqModel:
    """Loads a model folder (path or store name; None for the default model).

    Decoder folders give a :class:`Model` (generation: ``engine.generation``); encoder-decoder
    folders give an ``engine.seq2seq.Seq2SeqModel`` (translation:
    ``engine.seq2seq.translate_batch``). Tell them apart with ``isinstance``.

    Args:
        spec: folder path, model name in the store, or None for the default model.
        device: ``auto`` (CUDA when usable, else CPU), ``cpu`` or ``cuda``.
        threads: ONNX Runtime intra-op threads, capped at the usable CPU cores. None: one per
            physical core, and a second, narrower session once the CPU turns out to be shared
            (``engine.thread_policy``); a number fixes the count.
        context_length: use at most this many tokens of context (None: the model's own);
            a shorter context needs less memory for the KV cache.

    Raises:
        EngineError: a subclass naming the file and field at fault.
    """
    folder = resolve_model(spec)
    manifest = read_model_folder(folder)
    if context_length is not None:
        if context_length < 2:
            raise ConfigError(f"context length must be at least 2 tokens (got {context_length})")
        manifest = replace(manifest, context_length=min(context_length, manifest.context_length))
    if manifest.architecture == "encoder":
        raise ConfigError(f"{folder.name} is an embedding model (it finds passages for "
                          "`nightlamp docs`), not one that writes text",
                          hint="pass -m with a chat model", app_hint="choose a chat model")
    check_fits(folder, manifest, manifest.context_length)
    if manifest.architecture == "encoder-decoder":
        return load_seq2seq(folder, manifest, device, threads)
    manifest_path = manifest_source(folder)
    _check_io_names(manifest, manifest_path)
    tokenizer = Tokenizer(check_inside(folder, manifest.tokenizer_file, "files.tokenizer"))
    check_tokenizer_fits(tokenizer, manifest.vocab_size)
    stop_ids = _stop_ids(manifest, tokenizer, manifest_path)  # before the costly session
    onnx_path = check_inside(folder, manifest.decoder_file, "files.decoder")
    # One thread per physical core, set explicitly: ONNX Runtime's own default pins each thread
    # to a core, and a pinned thread cannot move off a core another program keeps busy.
    cores = physical_cores()
    session = open_session(onnx_path, device, threads or cores)
    _check_io(manifest, session, onnx_path, manifest_path)
    bos_id = tokenizer.token_to_id(manifest.bos_token) if manifest.bos_token else None
    model = Model(folder, manifest, tokenizer, session, device_of(session), stop_ids, bos_id,
                  _narrow_factory(onnx_path, narrow_threads(device_of(session), threads, cores)))
    logger.info("loaded %s on %s", folder, model.device)
    return model
