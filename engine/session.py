"""What both model loaders share: opening ONNX Runtime sessions and checking them.

``engine.model`` (decoders) and ``engine.seq2seq`` (encoder-decoders) load different folders but
check them the same way, with errors that name the file and the field: a session per ONNX file
(:func:`open_session`), its input/output names against the manifest (:func:`check_io_names`),
the tokenizer against the model's vocabulary (:func:`check_tokenizer_fits`) and special or stop
tokens named in the manifest (:func:`token_id`, which also reads foreign configs' ``<id:N>``).
The runners share :func:`short_reason` (ONNX Runtime's messages on one line) and
:func:`float_type` (the numpy type of a float tensor).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from engine.device import providers_for, quiet_session_options, session_threads
from engine.errors import ModelFormatError, TokenizerError
from engine.manifest import stop_token_id
from engine.memory import return_free_heap
from engine.tokenizer import Tokenizer

_ERRORS_ONLY = 3
_REASON_CHARS = 300
# ONNX Runtime's element types of float tensors; anything else is fed as float32.
_FLOAT_TYPES: dict[str, type[np.floating]] = {"tensor(float)": np.float32,
                                              "tensor(float16)": np.float16}


def float_type(ort_type: str) -> type[np.floating]:
    """The numpy type for an ONNX Runtime tensor type such as ``tensor(float16)``."""
    return _FLOAT_TYPES.get(ort_type, np.float32)


def short_reason(error: BaseException) -> str:
    """An ONNX Runtime error on one line, at most 300 characters.

    Its messages span lines with the detail in the middle (which input, which shape), so every
    line is kept, joined by spaces, rather than only the first or the last.
    """
    return " ".join(str(error).split())[:_REASON_CHARS] or type(error).__name__


def open_session(path: Path, device: str, threads: int | None, *,
                 spinning: bool = True) -> ort.InferenceSession:
    """An ONNX Runtime session for ``path`` on ``device`` ("auto", "cpu" or "cuda").

    Args:
        path: the ONNX file (already checked to lie inside the model folder).
        device: passed to ``engine.device.providers_for``.
        threads: intra-op threads (None: ONNX Runtime's default); capped at the usable cores.
        spinning: let idle pool threads spin between operators (fast on a quiet machine; see
            ``engine.thread_policy`` for when it is not).

    Raises:
        ModelFormatError: the file is missing or ONNX Runtime cannot load it (one line).
        DeviceError: the device is not usable.
    """
    if not path.is_file():
        raise ModelFormatError(f"{path}: ONNX file is missing; re-export or re-import the model")
    threads = session_threads(threads)  # refuses negatives, caps at the usable cores
    options = quiet_session_options()
    options.log_severity_level = _ERRORS_ONLY
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    providers = providers_for(device)  # a DeviceError is about the device, not the file
    try:
        session = ort.InferenceSession(str(path), options, providers=providers)
    except Exception as error:
        raise ModelFormatError(
            f"{path}: ONNX Runtime cannot load this file ({short_reason(error)}); re-export or "
            "re-import the model"
        ) from None
    return_free_heap()
    return session


def check_io_names(session: ort.InferenceSession, onnx_path: Path, manifest_path: Path,
                   inputs: Sequence[str], outputs: Sequence[str], *, exact: bool = True,
                   optional: Collection[str] = ()) -> None:
    """The graph has every input and output the manifest implies.

    Args:
        inputs: graph inputs the runner feeds.
        outputs: graph outputs the runner reads.
        exact: also refuse graph inputs outside ``inputs`` and ``optional``: the runner would
            never feed them, and the first run would fail instead of the load.
        optional: inputs the runner feeds when the graph has them.

    Raises:
        ModelFormatError: naming the manifest, the ONNX file and up to four names.
    """
    have_in = [i.name for i in session.get_inputs()]
    have_out = {o.name for o in session.get_outputs()}
    missing = [n for n in inputs if n not in have_in] + [n for n in outputs if n not in have_out]
    if missing:
        raise ModelFormatError(
            f"{manifest_path}: the manifest names inputs/outputs that {onnx_path.name} does not "
            f"have ({', '.join(missing[:4])}); the manifest and ONNX file do not belong together"
        )
    fed = {*inputs, *optional}
    unfed = [n for n in have_in if n not in fed] if exact else []
    if unfed:
        raise ModelFormatError(
            f"{manifest_path}: {onnx_path.name} has inputs the manifest does not name "
            f"({', '.join(unfed[:4])}); the manifest and ONNX file do not belong together"
        )


def check_tokenizer_fits(tokenizer: Tokenizer, vocab_size: int) -> None:
    """Every id the tokenizer produces has a row in the model's embeddings.

    Raises:
        TokenizerError: the tokenizer has more tokens than the model.
    """
    if tokenizer.vocab_size > vocab_size:
        raise TokenizerError(
            f"{tokenizer.path}: has {tokenizer.vocab_size} tokens but the model has "
            f"{vocab_size}; the tokenizer does not belong to this model"
        )


def token_id(name: str, tokenizer: Tokenizer, vocab_size: int, field: str,
             manifest_path: Path) -> int:
    """The id of a token the manifest names in ``field`` (a stop, EOS, pad or start token).

    Foreign configs name tokens by id, kept as ``<id:N>``: N must be ASCII digits and a token id
    below ``vocab_size`` (an id the model cannot produce is a broken config, not a token to wait
    for forever). Any other name must be a token of ``tokenizer``.

    Raises:
        ModelFormatError: a malformed or out-of-range ``<id:N>``.
        TokenizerError: a name the tokenizer does not have.
    """
    if name.startswith("<id:") and name.endswith(">"):
        number = stop_token_id(name)
        if number is None or number >= vocab_size:
            raise ModelFormatError(
                f"{manifest_path}: field '{field}' has {name[:40]!r}, which is not '<id:N>' "
                f"with N a token id below vocab_size ({vocab_size}); fix the manifest or "
                "re-export the model"
            )
        return number
    number = tokenizer.token_to_id(name)
    if number is None:
        raise TokenizerError(
            f"{manifest_path}: field '{field}' has {name[:80]!r}, which is not a token of "
            f"{tokenizer.path.name}; the tokenizer does not belong to this model"
        )
    return number
