"""Reads a model folder of any supported layout into a Manifest.

Three layouts load: Nightlamp's own (``nightlamp.json``), onnxruntime-genai's model builder
(``genai_config.json``), and Optimum / transformers.js exports (``config.json`` next to
``model.onnx``, ``decoder_model_merged.onnx`` or ``onnx/model.onnx`` with
``past_key_values.N.key/value`` inputs; encoder-decoders such as Marian with
``encoder_model.onnx`` and a decoder with past, when a ``tokenizer.json`` is there). Foreign
configs are read as plain JSON only; nothing in a model folder is ever executed.
"""

from __future__ import annotations

import json
import stat
from dataclasses import replace
from pathlib import Path
from typing import Any

from engine.errors import ModelFormatError, ModelNotFoundError
from engine.manifest import (
    MANIFEST_NAME,
    EncoderDecoderSpec,
    IONames,
    KVCacheSpec,
    Manifest,
    read_manifest,
)

GENAI_CONFIG = "genai_config.json"
OPTIMUM_DECODER_FILES = (
    "model.onnx",
    "decoder_model_merged.onnx",
    "onnx/model.onnx",
    "onnx/decoder_model_merged.onnx",
    "onnx/model_quantized.onnx",
)


def inside_folder(folder: Path, name: str) -> Path:
    """``folder / name`` once it is known to be a regular file of the folder (or missing).

    A model folder is untrusted input: a ``config.json`` or ``chat_template.jinja`` that is a
    link to ``/etc/passwd`` must not be read (or copied into a manifest). The rule: the path,
    with every link followed, must end inside the folder, at a regular file. One exception is
    the Hugging Face hub cache, whose snapshot folders (``models--ORG--NAME/snapshots/REV``) hold
    only links to ``../../blobs/HASH``: when the folder is such a snapshot (its parent is named
    ``snapshots`` and a ``blobs`` folder sits beside that), targets inside that ``blobs`` folder
    are allowed too. Anything else is refused. A path that does not exist is returned as is, so
    the caller can say what is missing.

    Raises:
        ModelFormatError: the path leads outside the folder, or to a folder, device or pipe.
    """
    path = folder / name
    if not path.is_symlink() and not path.exists():
        return path
    root = folder.resolve()
    target = path.resolve()
    allowed = [root]
    if root.parent.name == "snapshots" and (root.parent.parent / "blobs").is_dir():
        allowed.append((root.parent.parent / "blobs").resolve())
    if not any(target == base or base in target.parents for base in allowed):
        raise ModelFormatError(f"{path}: is a link to a file outside the model folder ({target}); "
                               "copy the real file into the folder")
    try:
        regular = stat.S_ISREG(target.stat().st_mode)
    except OSError:  # a link to nothing
        regular = False
    if not regular:
        raise ModelFormatError(f"{path}: is not a regular file ({target}); model files must be "
                               "plain files (replace it with the real file)")
    return path


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON file whose top level is an object; errors name the file (ModelFormatError)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFormatError(f"{path}: cannot read JSON ({error}); fix or re-create it") from None
    except RecursionError:  # json nests as deep as the text does
        raise ModelFormatError(f"{path}: cannot read JSON (nested too deeply); fix or re-create "
                               "it") from None
    if not isinstance(data, dict):
        raise ModelFormatError(f"{path}: expected a JSON object at the top level")
    return data


def read_model_json(folder: Path, name: str) -> dict[str, Any]:
    """``read_json_object`` of a file of a model folder, refusing links out of the folder."""
    return read_json_object(inside_folder(folder, name))


def _require_int(path: Path, data: dict[str, Any], key: str, prefix: str = "") -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ModelFormatError(
            f"{path}: field '{prefix}{key}' must be a positive integer, got {value!r}"
        )
    return value


def hf_chat_template(folder: Path) -> str | None:
    """The chat template from ``tokenizer_config.json`` or ``chat_template.jinja``, if any."""
    jinja_file = inside_folder(folder, "chat_template.jinja")
    if jinja_file.is_file():
        try:
            return jinja_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise ModelFormatError(f"{jinja_file}: cannot read the chat template ({error}); fix "
                                   "or re-create it") from None
    config_file = inside_folder(folder, "tokenizer_config.json")
    if not config_file.is_file():
        return None
    template = read_json_object(config_file).get("chat_template")
    if isinstance(template, list):  # named templates: take the default one
        named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
        template = named.get("default")
    return template if isinstance(template, str) else None


def hf_special_tokens(folder: Path) -> dict[str, str | None]:
    """bos/eos/pad strings from ``tokenizer_config.json`` (plain strings or AddedToken dicts)."""
    config_file = inside_folder(folder, "tokenizer_config.json")
    tokens: dict[str, str | None] = {"bos": None, "eos": None, "pad": None}
    if config_file.is_file():
        config = read_json_object(config_file)
        for kind in tokens:
            value = config.get(f"{kind}_token")
            if isinstance(value, dict):
                value = value.get("content")
            tokens[kind] = value if isinstance(value, str) else None
    return tokens


def _eos_ids(*sources: Any) -> list[int]:
    ids: list[int] = []
    for value in sources:
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, int) and not isinstance(item, bool) and item not in ids:
                ids.append(item)
    return ids


def _with_stop_ids(manifest: Manifest, stop_ids: list[int]) -> Manifest:
    """Foreign configs name stop tokens by id; the manifest keeps them as ``<id:N>`` entries
    that the engine resolves after loading the tokenizer."""
    extra = tuple(f"<id:{i}>" for i in stop_ids)
    return replace(manifest, stop_tokens=manifest.stop_tokens + extra)


def manifest_from_genai(folder: Path) -> Manifest:
    """Manifest for a folder written by onnxruntime-genai's model builder."""
    path = folder / GENAI_CONFIG
    config = read_model_json(folder, GENAI_CONFIG)
    model = config.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("decoder"), dict):
        raise ModelFormatError(f"{path}: field 'model.decoder' is missing; not a decoder model")
    decoder = model["decoder"]
    inputs = decoder.get("inputs", {})
    outputs = decoder.get("outputs", {})

    def template(mapping: dict[str, Any], key: str, default: str) -> str:
        value = mapping.get(key, default)
        if not isinstance(value, str) or "%d" not in value:
            raise ModelFormatError(f"{path}: field 'model.decoder.{key}' must contain '%d'")
        return value.replace("%d", "{layer}")

    cache = KVCacheSpec(
        num_layers=_require_int(path, decoder, "num_hidden_layers", "model.decoder."),
        num_kv_heads=_require_int(path, decoder, "num_key_value_heads", "model.decoder."),
        head_dim=_require_int(path, decoder, "head_size", "model.decoder."),
        past_key=template(inputs, "past_key_names", "past_key_values.%d.key"),
        past_value=template(inputs, "past_value_names", "past_key_values.%d.value"),
        present_key=template(outputs, "present_key_names", "present.%d.key"),
        present_value=template(outputs, "present_value_names", "present.%d.value"),
        # genai's builder sets this where its graph uses GroupQueryAttention, whose lengths
        # come from the mask: the same contract as our own graphs.
        shared_buffer=(config.get("search") or {}).get("past_present_share_buffer") is True,
    )
    filename = decoder.get("filename", "model.onnx")
    manifest = Manifest(
        name=folder.name,
        architecture="decoder-transformer",
        decoder_file=str(filename),
        tokenizer_file="tokenizer.json",
        vocab_size=_require_int(path, model, "vocab_size", "model."),
        context_length=_require_int(path, model, "context_length", "model."),
        io=IONames(
            input_ids=inputs.get("input_ids", "input_ids"),
            attention_mask=inputs.get("attention_mask", "attention_mask"),
            position_ids=inputs.get("position_ids", "position_ids"),  # genai's default name
            logits=outputs.get("logits", "logits"),
        ),
        kv_cache=cache,
        chat_template=hf_chat_template(folder),
        tasks=("complete", "chat"),
        source={"format": "onnxruntime-genai", "type": model.get("type")},
    )
    return _with_stop_ids(_with_special_tokens(manifest, folder),
                          _eos_ids(model.get("eos_token_id")))


def _with_special_tokens(manifest: Manifest, folder: Path) -> Manifest:
    tokens = hf_special_tokens(folder)
    return replace(manifest, bos_token=tokens["bos"], eos_token=tokens["eos"],
                   pad_token=tokens["pad"])


def manifest_from_optimum(folder: Path, decoder_file: str) -> Manifest:
    """Manifest for an Optimum or transformers.js export (``config.json`` + ONNX decoder)."""
    path = folder / "config.json"
    config = read_model_json(folder, "config.json")
    heads = _require_int(path, config, "num_attention_heads")
    hidden = _require_int(path, config, "hidden_size")
    head_dim = config.get("head_dim") or hidden // heads
    generation_file = inside_folder(folder, "generation_config.json")
    generation = read_json_object(generation_file) if generation_file.is_file() else {}
    manifest = Manifest(
        name=folder.name,
        architecture="decoder-transformer",
        decoder_file=decoder_file,
        tokenizer_file="tokenizer.json",
        vocab_size=_require_int(path, config, "vocab_size"),
        context_length=_require_int(path, config, "max_position_embeddings"),
        kv_cache=KVCacheSpec(
            num_layers=_require_int(path, config, "num_hidden_layers"),
            num_kv_heads=int(config.get("num_key_value_heads") or heads),
            head_dim=int(head_dim),
        ),
        chat_template=hf_chat_template(folder),
        tasks=("complete", "chat"),
        source={"format": "optimum", "model_type": config.get("model_type")},
    )
    return _with_stop_ids(_with_special_tokens(manifest, folder),
                          _eos_ids(config.get("eos_token_id"), generation.get("eos_token_id")))


def optimum_seq2seq_files(folder: Path) -> tuple[str, str, str | None] | None:
    """(encoder, decoder, decoder_with_past or None) of an Optimum encoder-decoder export.

    Looks in the folder and in ``onnx/`` (transformers.js); prefers the decoder /
    decoder-with-past pair over the merged decoder. None when there is no such export.
    """
    for base in ("", "onnx/"):
        if not (folder / f"{base}encoder_model.onnx").is_file():
            continue
        encoder = f"{base}encoder_model.onnx"
        pair = (f"{base}decoder_model.onnx", f"{base}decoder_with_past_model.onnx")
        if all((folder / name).is_file() for name in pair):
            return encoder, pair[0], pair[1]
        if (folder / f"{base}decoder_model_merged.onnx").is_file():
            return encoder, f"{base}decoder_model_merged.onnx", None
        if (folder / pair[0]).is_file():
            raise ModelFormatError(
                f"{folder}: has {pair[0]} but neither {pair[1]} nor a merged decoder; export the "
                "model with past key values (optimum-cli export onnx --task "
                "text2text-generation-with-past)")
    return None


def is_encoder_decoder_config(config: dict[str, Any]) -> bool:
    return config.get("model_type") == "marian" or config.get("is_encoder_decoder") is True


def manifest_from_optimum_seq2seq(folder: Path, files: tuple[str, str, str | None],
                                  tokenizer_file: str = "tokenizer.json",
                                  target_tokenizer_file: str | None = None) -> Manifest:
    """Manifest for an Optimum export of a Marian-family encoder-decoder.

    Run through the engine's Optimum adapter (``layout: optimum``). The folder needs a
    ``tokenizers`` JSON; Optimum copies only Marian's SentencePiece files, which ``nightlamp
    models import`` converts.
    """
    path = folder / "config.json"
    config = read_model_json(folder, "config.json")
    if not (folder / tokenizer_file).is_file():
        raise ModelFormatError(
            f"{folder}: an Optimum encoder-decoder export without {tokenizer_file} (Marian ships "
            f"SentencePiece files only); import it with `nightlamp models import {folder}`, "
            "which converts them")
    layers = _require_int(path, config, "decoder_layers")
    heads = _require_int(path, config, "decoder_attention_heads")
    d_model = _require_int(path, config, "d_model")
    pad = config.get("pad_token_id")
    start = config.get("decoder_start_token_id", pad)
    max_positions = int(config.get("max_position_embeddings") or 512)
    tokens = hf_special_tokens(folder)
    manifest = Manifest(
        name=folder.name,
        architecture="encoder-decoder",
        decoder_file=files[1],
        tokenizer_file=tokenizer_file,
        vocab_size=_require_int(path, config, "vocab_size"),
        context_length=max_positions,
        kv_cache=KVCacheSpec(num_layers=layers, num_kv_heads=heads, head_dim=d_model // heads,
                             past_key="past_key_values.{layer}.decoder.key",
                             past_value="past_key_values.{layer}.decoder.value",
                             present_key="present.{layer}.decoder.key",
                             present_value="present.{layer}.decoder.value"),
        eos_token=tokens["eos"] or "</s>",
        pad_token=tokens["pad"] or "<pad>",
        tasks=("translate",),
        source={"format": "optimum", "model_type": config.get("model_type")},
        encoder_decoder=EncoderDecoderSpec(
            num_layers=layers, num_heads=heads, head_dim=d_model // heads,
            encoder_file=files[0], target_tokenizer_file=target_tokenizer_file,
            # Marian starts decoding with the pad token; by id when the config names one.
            decoder_start_token=f"<id:{start}>" if isinstance(start, int) else "<pad>",
            max_source_length=max_positions, layout="optimum",
            decoder_with_past_file=files[2],
        ),
    )
    return manifest


def read_model_folder(folder: Path) -> Manifest:
    """The manifest of a model folder of any supported layout.

    Raises:
        ModelNotFoundError: the folder does not exist or holds no known layout.
        ModelFormatError: the layout is known but a field is wrong.
    """
    if not folder.is_dir():
        raise ModelNotFoundError(f"{folder}: no such model folder")
    if (folder / MANIFEST_NAME).is_file():
        manifest = read_manifest(folder)
    elif (folder / GENAI_CONFIG).is_file():
        manifest = manifest_from_genai(folder)
    elif (folder / "config.json").is_file() and is_encoder_decoder_config(
            read_model_json(folder, "config.json")) and (
            seq2seq := optimum_seq2seq_files(folder)):
        manifest = manifest_from_optimum_seq2seq(folder, seq2seq)
    elif (folder / "config.json").is_file() and (
        found := next((f for f in OPTIMUM_DECODER_FILES if (folder / f).is_file()), None)
    ):
        manifest = manifest_from_optimum(folder, found)
    else:
        raise ModelNotFoundError(
            f"{folder}: not a model folder (no {MANIFEST_NAME}, {GENAI_CONFIG}, or config.json "
            "with an ONNX decoder); export or import a model into it first"
        )
    check_inside(folder, manifest.decoder_file, "files.decoder")
    check_inside(folder, manifest.tokenizer_file, "files.tokenizer")
    return manifest


def manifest_source(folder: Path) -> Path:
    """The file a folder's manifest is read from, for errors about what it says."""
    for name in (MANIFEST_NAME, GENAI_CONFIG):
        if (folder / name).is_file():
            return folder / name
    return folder / "config.json"


def check_inside(folder: Path, relative: str, field: str) -> Path:
    """Resolves a file named by a manifest, refusing paths that leave the folder or symlinks."""
    candidate = folder / relative
    root = folder.resolve()
    resolved = candidate.resolve()
    if candidate.is_symlink() or (root != resolved and root not in resolved.parents):
        raise ModelFormatError(
            f"{folder}: field '{field}' ({relative!r}) points outside the model folder or through "
            "a symlink; model files must be plain files inside the folder"
        )
    return resolved
