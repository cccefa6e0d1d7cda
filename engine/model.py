"""Loads a model folder: manifest, tokenizer and an ONNX Runtime session on the chosen device.

Everything a later step relies on is checked here, once, with errors that name the file and the
field: the ONNX file loads, its inputs and outputs match the manifest, the tokenizer fits the
model's vocabulary, and every stop token exists.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path

import onnxruntime as ort

from engine.device import device_of, providers_for, quiet_session_options, session_threads
from engine.errors import ConfigError, ModelFormatError, TokenizerError
from engine.formats import check_inside, manifest_source, read_model_folder
from engine.manifest import Manifest, stop_token_id
from engine.memory import check_fits, return_free_heap
from engine.runner import DecoderRunner
from engine.store import resolve_model
from engine.tokenizer import Tokenizer

logger = logging.getLogger(__name__)
_ERRORS_ONLY = 3


@dataclass
class Model:
    """A loaded model; its session must be used from one thread at a time."""

    folder: Path
    manifest: Manifest
    tokenizer: Tokenizer
    session: ort.InferenceSession
    device: str  # "cpu" or "cuda": what the session really runs on
    stop_token_ids: frozenset[int]
    bos_token_id: int | None
    _runner: DecoderRunner | None = dataclasses.field(default=None, init=False, repr=False)

    @property
    def name(self) -> str:
        return self.manifest.name

    def decoder_runner(self) -> DecoderRunner:
        """The model's one long-lived runner: its cache outlives a generation, so the next
        prompt that starts the same way (a chat's next turn) only runs its new tokens."""
        if self._runner is None:
            self._runner = DecoderRunner(self.session, self.manifest, self.device)
        return self._runner


def _session(path: Path, device: str, threads: int | None) -> ort.InferenceSession:
    if not path.is_file():
        raise ModelFormatError(f"{path}: ONNX file is missing; re-export or re-import the model")
    threads = session_threads(threads)  # refuses negatives, caps at the usable cores
    options = quiet_session_options()
    options.log_severity_level = _ERRORS_ONLY
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    providers = providers_for(device)  # a DeviceError is about the device, not the file
    try:
        session = ort.InferenceSession(str(path), options, providers=providers)
    except Exception as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[-1][:300]
        raise ModelFormatError(
            f"{path}: ONNX Runtime cannot load this file ({reason}); re-export or re-import the "
            "model"
        ) from None
    return_free_heap()
    return session


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
    missing = [n for n in required_inputs if n not in inputs]
    missing += [n for n in required_outputs if n not in outputs]
    if missing:
        raise ModelFormatError(
            f"{manifest_path}: the manifest names inputs/outputs that {onnx_path.name} does not "
            f"have ({', '.join(missing[:4])}); the manifest and ONNX file do not belong together"
        )
    # The other way round too: an input the runner would never feed (e.g. the cache of a layer
    # the manifest leaves out) would only fail at the first generation.
    fed = {*required_inputs, manifest.io.attention_mask, manifest.io.position_ids,
           manifest.io.logits_to_keep, "use_cache_branch"}
    unfed = [n for n in inputs if n not in fed]
    if unfed:
        raise ModelFormatError(
            f"{manifest_path}: {onnx_path.name} has inputs the manifest does not name "
            f"({', '.join(unfed[:4])}); the manifest and ONNX file do not belong together"
        )
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
    ids = set()
    names = list(manifest.stop_tokens) + ([manifest.eos_token] if manifest.eos_token else [])
    for name in names:
        if name.startswith("<id:") and name.endswith(">"):
            # Foreign configs name stop tokens by id; an id the model cannot produce is a broken
            # config, not a token to wait for forever.
            token_id = stop_token_id(name)
            if token_id is None or token_id >= manifest.vocab_size:
                raise ModelFormatError(
                    f"{manifest_path}: field 'stop_tokens' has {name[:40]!r}, which is not "
                    f"'<id:N>' with N a token id below vocab_size ({manifest.vocab_size}); fix "
                    "the manifest or re-export the model"
                )
            ids.add(token_id)
            continue
        token_id = tokenizer.token_to_id(name)
        if token_id is None:
            raise TokenizerError(
                f"{manifest_path}: stop token {name[:80]!r} is not in {tokenizer.path.name}; the "
                "tokenizer does not belong to this model"
            )
        ids.add(token_id)
    return frozenset(ids)


def load_model(spec: str | os.PathLike[str] | None, device: str = "auto",
               threads: int | None = None, context_length: int | None = None) -> Model:
    """Loads a model folder (path or store name; None for the default model).

    Encoder-decoder folders return an ``engine.seq2seq.Seq2SeqModel`` (a Model subclass whose
    ``session`` is the decoder and ``tokenizer`` the source tokenizer); use
    ``engine.seq2seq.translate_batch`` with it.

    Args:
        spec: folder path, model name in the store, or None for the default model.
        device: ``auto`` (CUDA when usable, else CPU), ``cpu`` or ``cuda``.
        threads: ONNX Runtime intra-op threads (None: ONNX Runtime's default, one per core);
            more than the usable CPU cores are capped to them.
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
    check_fits(folder, manifest, manifest.context_length)
    if manifest.architecture == "encoder-decoder":
        # Imported here: engine.seq2seq builds on this module (Model, _session).
        from engine.seq2seq import load_seq2seq

        return load_seq2seq(folder, manifest, device, threads)
    manifest_path = manifest_source(folder)
    _check_io_names(manifest, manifest_path)
    tokenizer = Tokenizer(check_inside(folder, manifest.tokenizer_file, "files.tokenizer"))
    if tokenizer.vocab_size > manifest.vocab_size:
        raise TokenizerError(
            f"{tokenizer.path}: has {tokenizer.vocab_size} tokens but the model has "
            f"{manifest.vocab_size}; the tokenizer does not belong to this model"
        )
    stop_ids = _stop_ids(manifest, tokenizer, manifest_path)  # before the costly session
    onnx_path = check_inside(folder, manifest.decoder_file, "files.decoder")
    session = _session(onnx_path, device, threads)
    _check_io(manifest, session, onnx_path, manifest_path)
    bos_id = tokenizer.token_to_id(manifest.bos_token) if manifest.bos_token else None
    model = Model(folder, manifest, tokenizer, session, device_of(session), stop_ids, bos_id)
    logger.info("loaded %s on %s", folder, model.device)
    return model
