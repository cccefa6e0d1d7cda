"""The model-folder manifest (``nightlamp.json``): dataclasses, validation, reading and writing.

The manifest is the one contract between training/importers and the engine. Every validation error
names the file and the field so a user can fix or re-export the folder.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import ModelFormatError, ModelNotFoundError

MANIFEST_NAME = "nightlamp.json"
FORMAT_VERSION = 1
ARCHITECTURES = ("decoder-transformer", "decoder-lstm", "encoder-decoder")
PRECISIONS = ("fp32", "fp16", "bf16", "int8", "int4")
CACHE_DTYPES = ("float32", "float16")


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
        return self.past_key.format(layer=layer), self.past_value.format(layer=layer)

    def present_names(self, layer: int) -> tuple[str, str]:
        return self.present_key.format(layer=layer), self.present_value.format(layer=layer)


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

    Nightlamp layout (contract, see ``training/seq2seq_graph.py``): the encoder returns the
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
        return self.cross_key.format(layer=layer), self.cross_value.format(layer=layer)

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


class _FieldReader:
    """Reads typed fields out of a JSON object, naming file and field in every error."""

    def __init__(self, path: Path, data: Any, prefix: str = "") -> None:
        if not isinstance(data, dict):
            where = f"field '{prefix.rstrip('.')}'" if prefix else "the top level"
            raise ModelFormatError(f"{path}: {where} must be a JSON object; re-export the model")
        self.path, self.data, self.prefix = path, data, prefix

    def fail(self, key: str, expected: str) -> ModelFormatError:
        got = self.data.get(key, "<missing>")
        return ModelFormatError(
            f"{self.path}: field '{self.prefix}{key}' must be {expected}, got {got!r}; "
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

    def positive_int(self, key: str, default: int | None = None) -> int:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise self.fail(key, "a positive integer")
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


def manifest_from_json(path: Path, data: Any) -> Manifest:
    """Validates a parsed ``nightlamp.json`` and builds a Manifest; errors name path and field."""
    top = _FieldReader(path, data)
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFormatError(
            f"{path}: field 'format_version' is {version!r}, this Nightlamp reads version "
            f"{FORMAT_VERSION}; re-export the model with this version of Nightlamp"
        )
    architecture = top.text("architecture", choices=ARCHITECTURES)
    io_reader = top.child("io") if "io" in data else None
    io = IONames(
        **{
            key: (io_reader.data.get(key, default) if io_reader else default)
            for key, default in asdict(IONames()).items()
        }
    )
    kv_cache = None
    if data.get("kv_cache") is not None:
        kv = top.child("kv_cache")
        kv_cache = KVCacheSpec(
            num_layers=kv.positive_int("num_layers"),
            num_kv_heads=kv.positive_int("num_kv_heads"),
            head_dim=kv.positive_int("head_dim"),
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
                num_layers=state.positive_int("num_layers"),
                size=state.positive_int("size"),
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
    return Manifest(
        name=top.text("name"),
        architecture=architecture,
        decoder_file=files.text("decoder"),
        tokenizer_file=files.text("tokenizer", "tokenizer.json"),
        vocab_size=top.positive_int("vocab_size"),
        context_length=top.positive_int("context_length"),
        precision=top.text("precision", "fp32", choices=PRECISIONS),
        io=io,
        kv_cache=kv_cache,
        recurrent_state=tuple(states),
        bos_token=top.optional_text("bos_token"),
        eos_token=top.optional_text("eos_token"),
        pad_token=top.optional_text("pad_token"),
        stop_tokens=top.text_list("stop_tokens"),
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
        num_layers=reader.positive_int("num_layers"),
        num_heads=reader.positive_int("num_heads"),
        head_dim=reader.positive_int("head_dim"),
        encoder_file=reader.text("encoder_file", "encoder.onnx"),
        target_tokenizer_file=target,
        decoder_start_token=reader.text("decoder_start_token", "<pad>"),
        cross_key=_name_template(reader, "cross_key", EncoderDecoderSpec.cross_key),
        cross_value=_name_template(reader, "cross_value", EncoderDecoderSpec.cross_value),
        source_languages=reader.text_list("source_languages"),
        target_languages=reader.text_list("target_languages"),
        max_source_length=reader.positive_int("max_source_length", 512),
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
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFormatError(
            f"{path}: not valid JSON ({error}); fix it or re-export the model"
        ) from None
    return manifest_from_json(path, data)


def write_manifest(folder: Path, manifest: Manifest) -> Path:
    """Writes ``folder/nightlamp.json`` (pretty-printed, UTF-8)."""
    path = folder / MANIFEST_NAME
    text = json.dumps(manifest_to_file_json(manifest), indent=2, ensure_ascii=False)
    path.write_text(text + "\n", encoding="utf-8")
    return path
