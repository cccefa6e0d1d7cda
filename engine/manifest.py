"""The model-folder manifest (``nightlamp.json``): dataclasses, validation, reading and writing.

The manifest is the one contract between training, convert and the engine. Every validation error
names the file and the field so a user can fix or re-export the folder.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import ModelFormatError, ModelNotFoundError

MANIFEST_NAME = "nightlamp.json"
FORMAT_VERSION = 1
# "encoder": a text encoder that returns one unit-length embedding per input (task "embed",
# document search; `files.decoder` names its graph), not a generator.
ARCHITECTURES = ("decoder-transformer", "decoder-lstm", "encoder-decoder", "encoder")
PRECISIONS = ("fp32", "fp16", "bf16", "int8", "int4")
CACHE_DTYPES = ("float32", "float16")
# Manifests are read before anything else in a folder: bigger than this is not a manifest.
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
# Upper bounds for sizes a manifest declares, far above any real model: the engine allocates
# buffers and loops from these numbers before a graph could contradict them.
MAX_VOCAB_SIZE = 1 << 24
MAX_CONTEXT_LENGTH = 1 << 24
MAX_LAYERS = 4096
MAX_HEADS = 4096
MAX_HEAD_DIM = 1 << 16
MAX_STATE_SIZE = 1 << 20
# Stop tokens named by id (foreign configs give ids, not strings): ``<id:N>``.
_ID_TOKEN = re.compile(r"<id:([0-9]{1,10})>")


def layer_name(template: str, layer: int) -> str:
    """A cache or state name for one layer: ``{layer}`` in `template` replaced by its index.

    A plain substitution, not ``str.format``: a manifest's ``{layer.__class__}`` or
    ``{layer:>999999999}`` must not reach attributes or build gigabyte strings.
    """
    return template.replace("{layer}", str(layer))


def stop_token_id(token: str) -> int | None:
    """N for a stop token written ``<id:N>`` (N up to ten digits), None for any other name."""
    match = _ID_TOKEN.fullmatch(token)
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class KVCacheSpec:
    """Names and shapes of a decoder's key/value cache; ``{layer}`` in a name is the layer index.

    Past tensors are fed as (batch, num_kv_heads, past_length, head_dim); the model returns
    present tensors of (batch, num_kv_heads, past_length + new_tokens, head_dim).

    ``shared_buffer``: the graph takes each row's length from ``attention_mask``, not from the
    past's shape, so past and present may be one preallocated buffer of any length that holds
    the context (ONNX Runtime's GroupQueryAttention): the runner binds it once and the graph
    writes the new keys/values in place, without copying the cache each step.
    """

    num_layers: int
    num_kv_heads: int
    head_dim: int
    past_key: str = "past_key_values.{layer}.key"
    past_value: str = "past_key_values.{layer}.value"
    present_key: str = "present.{layer}.key"
    present_value: str = "present.{layer}.value"
    dtype: str = "float32"
    shared_buffer: bool = False

    def past_names(self, layer: int) -> tuple[str, str]:
        return layer_name(self.past_key, layer), layer_name(self.past_value, layer)

    def present_names(self, layer: int) -> tuple[str, str]:
        return layer_name(self.present_key, layer), layer_name(self.present_value, layer)


@dataclass(frozen=True)
class RecurrentStateSpec:
    """One recurrent state tensor (e.g. an LSTM's hidden or cell state) fed back every step.

    Its shape is (num_layers, batch, size); it starts as zeros.
    """

    input: str
    output: str
    num_layers: int
    size: int


@dataclass(frozen=True)
class IONames:
    """Names of the decoder's non-cache inputs and outputs; an empty name means 'not an input'."""

    input_ids: str = "input_ids"
    attention_mask: str = "attention_mask"
    position_ids: str = "position_ids"
    logits: str = "logits"
    # Optional scalar input: logits only for the last N positions (0: all of them).
    logits_to_keep: str = "logits_to_keep"


SEQ2SEQ_LAYOUTS = ("nightlamp", "optimum")


@dataclass(frozen=True)
class EncoderDecoderSpec:
    """The encoder half of an ``encoder-decoder`` model (``encoder_decoder`` in the manifest).

    Nightlamp layout (contract, see ``convert/seq2seq_graph.py``): the encoder returns the
    cross-attention keys/values of every decoder layer (``cross_key``/``cross_value``, shape
    (batch, num_heads, source_length, head_dim)) and the decoder takes them as inputs. The
    ``optimum`` layout (Optimum's ``encoder_model.onnx`` + ``decoder_model.onnx`` /
    ``decoder_with_past_model.onnx`` or ``decoder_model_merged.onnx``) is only ever read from an
    Optimum export folder or an import of one; its two extra fields are written only for it.
    """

    num_layers: int  # decoder layers
    num_heads: int  # decoder attention heads
    head_dim: int  # d_model / num_heads
    encoder_file: str = "encoder.onnx"
    target_tokenizer_file: str | None = None  # None: the source tokenizer serves both sides
    decoder_start_token: str = "<pad>"  # first decoder input (Marian: the pad token)
    cross_key: str = "cross.{layer}.key"
    cross_value: str = "cross.{layer}.value"
    source_languages: tuple[str, ...] = ()  # BCP-47 tags; may be empty
    target_languages: tuple[str, ...] = ()
    max_source_length: int = 512  # longer sources are truncated (the position table's size)
    layout: str = "nightlamp"  # "optimum": Optimum's files and names, run through an adapter
    decoder_with_past_file: str | None = None  # optimum only, when not merged

    def cross_names(self, layer: int) -> tuple[str, str]:
        return layer_name(self.cross_key, layer), layer_name(self.cross_value, layer)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["source_languages"] = list(self.source_languages)
        data["target_languages"] = list(self.target_languages)
        if self.layout == "nightlamp":
            del data["layout"], data["decoder_with_past_file"]
        return data


@dataclass(frozen=True)
class Manifest:
    """Everything the engine needs to run a model folder."""

    name: str
    architecture: str
    decoder_file: str
    tokenizer_file: str
    vocab_size: int
    context_length: int
    precision: str = "fp32"
    io: IONames = field(default_factory=IONames)
    kv_cache: KVCacheSpec | None = None
    recurrent_state: tuple[RecurrentStateSpec, ...] = ()
    bos_token: str | None = None
    eos_token: str | None = None
    pad_token: str | None = None
    stop_tokens: tuple[str, ...] = ()
    chat_template: str | None = None
    tasks: tuple[str, ...] = ("complete",)
    license: str = "unknown"
    source: dict[str, Any] = field(default_factory=dict)
    encoder_decoder: EncoderDecoderSpec | None = None  # set for architecture "encoder-decoder"
    format_version: int = FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["recurrent_state"] = [asdict(s) for s in self.recurrent_state]
        data["stop_tokens"] = list(self.stop_tokens)
        data["tasks"] = list(self.tasks)
        if self.encoder_decoder is None:
            del data["encoder_decoder"]  # decoder-only manifests look exactly as before
        else:
            data["encoder_decoder"] = self.encoder_decoder.to_json()
        return data


_MISSING = object()


class _FieldReader:
    """Reads typed fields out of a JSON object, naming file and field in every error."""

    def __init__(self, path: Path, data: Any, prefix: str = "") -> None:
        if not isinstance(data, dict):
            where = f"field '{prefix.rstrip('.')}'" if prefix else "the top level"
            raise ModelFormatError(f"{path}: {where} must be a JSON object; re-export the model")
        self.path, self.data, self.prefix = path, data, prefix

    def fail(self, key: str, expected: str, got: Any = _MISSING) -> ModelFormatError:
        if got is _MISSING:
            got = self.data.get(key, "<missing>")
        shown = repr(got)
        if len(shown) > 80:  # the message stays one readable line
            shown = shown[:77] + "..."
        return ModelFormatError(
            f"{self.path}: field '{self.prefix}{key}' must be {expected}, got {shown}; "
            "fix the manifest or re-export the model"
        )

    def text(self, key: str, default: str | None = None, *, choices: tuple[str, ...] = ()) -> str:
        value = self.data.get(key, default)
        if not isinstance(value, str) or not value:
            raise self.fail(key, "a non-empty string")
        if choices and value not in choices:
            raise self.fail(key, "one of " + ", ".join(choices))
        return value

    def optional_text(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is not None and not isinstance(value, str):
            raise self.fail(key, "a string or null")
        return value

    def positive_int(self, key: str, default: int | None = None, *, maximum: int) -> int:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise self.fail(key, "a positive integer")
        if value > maximum:
            raise self.fail(key, f"a positive integer of at most {maximum:,}")
        return value

    def name(self, key: str, default: str, *, required: bool) -> str:
        """A tensor name: a string, which may be empty ('not an input') unless `required`."""
        value = self.data.get(key, default)
        if not isinstance(value, str) or (required and not value):
            raise self.fail(key, "a non-empty string" if required else "a string")
        return value

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, "true or false")
        return value

    def text_list(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, "a list of strings")
        return tuple(value)

    def child(self, key: str) -> _FieldReader:
        return _FieldReader(self.path, self.data.get(key), f"{self.prefix}{key}.")


def _name_template(reader: _FieldReader, key: str, default: str) -> str:
    value = reader.text(key, default)
    if "{layer}" not in value:
        raise reader.fail(key, "a name containing '{layer}'")
    return value


_REQUIRED_IO = ("input_ids", "logits")


def _stop_tokens(reader: _FieldReader, vocab_size: int) -> tuple[str, ...]:
    """``stop_tokens``: token strings, or ``<id:N>`` with N a token id below ``vocab_size``."""
    tokens = reader.text_list("stop_tokens")
    for token in tokens:
        if not (token.startswith("<id:") and token.endswith(">")):
            continue
        token_id = stop_token_id(token)
        if token_id is None or token_id >= vocab_size:
            raise reader.fail("stop_tokens", f"token strings or '<id:N>' with N a token id "
                                             f"below vocab_size ({vocab_size})", token)
    return tokens


def manifest_from_json(path: Path, data: Any) -> Manifest:
    """Validates a parsed ``nightlamp.json`` and builds a Manifest; errors name path and field."""
    top = _FieldReader(path, data)
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFormatError(
            f"{path}: field 'format_version' is {version!r:.40}, this Nightlamp reads version "
            f"{FORMAT_VERSION}; re-export the model with this version of Nightlamp"
        )
    architecture = top.text("architecture", choices=ARCHITECTURES)
    io_reader = top.child("io") if "io" in data else None
    io = IONames(
        **{
            key: (io_reader.name(key, default, required=key in _REQUIRED_IO)
                  if io_reader else default)
            for key, default in asdict(IONames()).items()
        }
    )
    kv_cache = None
    if data.get("kv_cache") is not None:
        kv = top.child("kv_cache")
        kv_cache = KVCacheSpec(
            num_layers=kv.positive_int("num_layers", maximum=MAX_LAYERS),
            num_kv_heads=kv.positive_int("num_kv_heads", maximum=MAX_HEADS),
            head_dim=kv.positive_int("head_dim", maximum=MAX_HEAD_DIM),
            past_key=_name_template(kv, "past_key", KVCacheSpec.past_key),
            past_value=_name_template(kv, "past_value", KVCacheSpec.past_value),
            present_key=_name_template(kv, "present_key", KVCacheSpec.present_key),
            present_value=_name_template(kv, "present_value", KVCacheSpec.present_value),
            dtype=kv.text("dtype", "float32", choices=CACHE_DTYPES),
            shared_buffer=kv.flag("shared_buffer"),
        )
    states_raw = data.get("recurrent_state", [])
    if not isinstance(states_raw, list):
        raise top.fail("recurrent_state", "a list of state objects")
    states = []
    for index, raw in enumerate(states_raw):
        state = _FieldReader(path, raw, f"recurrent_state[{index}].")
        states.append(
            RecurrentStateSpec(
                input=state.text("input"),
                output=state.text("output"),
                num_layers=state.positive_int("num_layers", maximum=MAX_LAYERS),
                size=state.positive_int("size", maximum=MAX_STATE_SIZE),
            )
        )
    if architecture == "decoder-transformer" and kv_cache is None:
        raise top.fail("kv_cache", "an object describing the KV cache for a decoder-transformer")
    if architecture == "decoder-lstm" and not states:
        raise top.fail("recurrent_state", "a non-empty list for a decoder-lstm")
    encoder_decoder = None
    if architecture == "encoder-decoder":
        if kv_cache is None:
            raise top.fail("kv_cache", "an object describing the decoder's self-attention cache "
                                       "for an encoder-decoder")
        encoder_decoder = _encoder_decoder(top.child("encoder_decoder"))
    files = top.child("files")
    source = data.get("source", {})
    if not isinstance(source, dict):
        raise top.fail("source", "a JSON object")
    vocab_size = top.positive_int("vocab_size", maximum=MAX_VOCAB_SIZE)
    return Manifest(
        name=top.text("name"),
        architecture=architecture,
        decoder_file=files.text("decoder"),
        tokenizer_file=files.text("tokenizer", "tokenizer.json"),
        vocab_size=vocab_size,
        context_length=top.positive_int("context_length", maximum=MAX_CONTEXT_LENGTH),
        precision=top.text("precision", "fp32", choices=PRECISIONS),
        io=io,
        kv_cache=kv_cache,
        recurrent_state=tuple(states),
        bos_token=top.optional_text("bos_token"),
        eos_token=top.optional_text("eos_token"),
        pad_token=top.optional_text("pad_token"),
        stop_tokens=_stop_tokens(top, vocab_size),
        chat_template=top.optional_text("chat_template"),
        tasks=top.text_list("tasks") or ("complete",),
        license=top.text("license", "unknown"),
        source=source,
        encoder_decoder=encoder_decoder,
    )


def _encoder_decoder(reader: _FieldReader) -> EncoderDecoderSpec:
    target = reader.data.get("target_tokenizer_file")
    if target is not None and (not isinstance(target, str) or not target):
        raise reader.fail("target_tokenizer_file", "a file name or null")
    layout = reader.text("layout", "nightlamp", choices=SEQ2SEQ_LAYOUTS)
    with_past = reader.optional_text("decoder_with_past_file")
    return EncoderDecoderSpec(
        num_layers=reader.positive_int("num_layers", maximum=MAX_LAYERS),
        num_heads=reader.positive_int("num_heads", maximum=MAX_HEADS),
        head_dim=reader.positive_int("head_dim", maximum=MAX_HEAD_DIM),
        encoder_file=reader.text("encoder_file", "encoder.onnx"),
        target_tokenizer_file=target,
        decoder_start_token=reader.text("decoder_start_token", "<pad>"),
        cross_key=_name_template(reader, "cross_key", EncoderDecoderSpec.cross_key),
        cross_value=_name_template(reader, "cross_value", EncoderDecoderSpec.cross_value),
        source_languages=reader.text_list("source_languages"),
        target_languages=reader.text_list("target_languages"),
        max_source_length=reader.positive_int("max_source_length", 512,
                                              maximum=MAX_CONTEXT_LENGTH),
        layout=layout,
        decoder_with_past_file=with_past,
    )


def manifest_to_file_json(manifest: Manifest) -> dict[str, Any]:
    """The on-disk JSON layout (file names grouped under ``files``)."""
    data = manifest.to_json()
    data["files"] = {"decoder": data.pop("decoder_file"), "tokenizer": data.pop("tokenizer_file")}
    return {"format_version": data.pop("format_version"), **data}


def read_manifest(folder: Path) -> Manifest:
    """Reads and validates ``folder/nightlamp.json``."""
    path = folder / MANIFEST_NAME
    if not path.is_file():
        raise ModelNotFoundError(f"{path}: no manifest; is {folder} a Nightlamp model folder?")
    try:
        with path.open("rb") as file:  # read at most the limit, even from a growing file
            raw = file.read(MAX_MANIFEST_BYTES + 1)
    except OSError as error:
        raise ModelFormatError(f"{path}: cannot be read ({error.strerror or error}); check the "
                               "file's permissions or re-export the model") from None
    if len(raw) > MAX_MANIFEST_BYTES:
        raise ModelFormatError(
            f"{path}: is over {MAX_MANIFEST_BYTES // (1024 * 1024)} MB, too big for a manifest; "
            "this is not a Nightlamp model folder, or re-export the model"
        )
    try:
        data = json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise ModelFormatError(
            f"{path}: its JSON is nested too deeply to be a manifest; fix it or re-export the "
            "model"
        ) from None
    except (UnicodeDecodeError, ValueError) as error:  # ValueError: also over-long integers
        reason = " ".join(str(error).split())[:200]
        if "int_max_str_digits" in reason:  # Python's own advice is no use to the user
            reason = "a number with thousands of digits"
        raise ModelFormatError(
            f"{path}: not valid JSON ({reason}); fix it or re-export the model"
        ) from None
    return manifest_from_json(path, data)


def write_manifest(folder: Path, manifest: Manifest) -> Path:
    """Writes ``folder/nightlamp.json`` (pretty-printed, UTF-8)."""
    path = folder / MANIFEST_NAME
    text = json.dumps(manifest_to_file_json(manifest), indent=2, ensure_ascii=False)
    path.write_text(text + "\n", encoding="utf-8")
    return path
