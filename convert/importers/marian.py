"""Imports Hugging Face Marian (OPUS-MT) translation folders into Nightlamp model folders.

Two kinds of folder are recognised (``config.json`` with ``model_type: marian``):

* a transformers checkpoint: ``model.safetensors`` + ``source.spm``, ``target.spm``,
  ``vocab.json`` (+ ``tokenizer_config.json``). The weights go through our own graph builder
  (``convert/seq2seq_graph.py``) into ``encoder.onnx`` / ``decoder.onnx``.
* an Optimum ONNX export: ``encoder_model.onnx`` + ``decoder_model.onnx`` /
  ``decoder_with_past_model.onnx`` or ``decoder_model_merged.onnx`` with the same tokenizer
  files. Its graphs are copied unchanged and run by the engine's Optimum adapter
  (``layout: optimum``): pulling weights back out of foreign graphs (renamed, folded, perhaps
  quantized initializers) would be the fragile step, while their inputs and outputs are stable.

Either way both tokenizers are converted from the ``.spm`` files with ids mapped through
``vocab.json`` (``convert/importers/spm_tokenizer.py``). Only data is read: JSON, safetensors
(bounds-checked) and protobuf; pickle checkpoints are refused and nothing in the folder runs.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from convert.decoder_graph import MAX_HEADS, MAX_INTERMEDIATE, MAX_LAYERS, MAX_VOCAB
from convert.importers.hf_model import PICKLE_SUFFIXES, read_safetensors, weight_files
from convert.importers.imported import IMPORT_REPORT
from convert.importers.spm_tokenizer import marian_tokenizer, read_sentencepiece
from convert.seq2seq_config import Seq2SeqConfig
from convert.seq2seq_folder import (
    PRECISION_BITS,
    SOURCE_TOKENIZER,
    TARGET_TOKENIZER,
    write_seq2seq_folder,
)
from engine.atomic import atomic_folder
from engine.callbacks import Progress, no_progress
from engine.errors import ModelFormatError
from engine.formats import (
    hf_special_tokens,
    inside_folder,
    manifest_from_optimum_seq2seq,
    optimum_seq2seq_files,
    read_model_json,
)
from engine.manifest import write_manifest

TOKENIZER_FILES = ("source.spm", "target.spm", "vocab.json")
_LANGUAGE_TAG = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
# importer precision -> what a Marian import writes (fp16 graphs are not built for seq2seq yet)
_PRECISIONS = {"fp32": "fp32", "fp16": "fp32", "int8": "int8", "int4": "int4"}
# Upper bounds of config.json's sizes, checked before any table is sized from them (the sinusoid
# table is max_position_embeddings x d_model floats; OPUS-MT models have 512 x 512).
_CONFIG_BOUNDS = {
    "vocab_size": MAX_VOCAB, "d_model": 8192, "encoder_layers": MAX_LAYERS,
    "decoder_layers": MAX_LAYERS, "encoder_attention_heads": MAX_HEADS,
    "decoder_attention_heads": MAX_HEADS, "encoder_ffn_dim": MAX_INTERMEDIATE,
    "decoder_ffn_dim": MAX_INTERMEDIATE, "max_position_embeddings": 16384,
}


@dataclass
class ImportedSeq2Seq:
    """A Marian checkpoint read into memory (what ``nightlamp models import`` reports on)."""

    name: str
    config: Seq2SeqConfig | None  # None for an Optimum export (graphs copied as they are)
    weights: dict[str, np.ndarray]
    source_tokenizer: Tokenizer
    target_tokenizer: Tokenizer
    source_languages: list[str]
    target_languages: list[str]
    license: str
    source: dict[str, Any]
    optimum_files: tuple[str, str, str | None] | None = None
    tensor_report: dict[str, list[str]] = field(default_factory=dict)


def marian_config(folder: Path) -> dict[str, Any] | None:
    """The folder's config.json if it describes a Marian model, else None."""
    path = inside_folder(folder, "config.json")
    if not path.is_file():
        return None
    config = read_model_json(folder, "config.json")
    architectures = config.get("architectures") or []
    if config.get("model_type") == "marian" or "MarianMTModel" in architectures:
        return config
    return None


def is_marian_folder(folder: Path) -> bool:
    return folder.is_dir() and marian_config(folder) is not None


def _tag(value: Any) -> list[str]:
    if isinstance(value, str) and _LANGUAGE_TAG.match(value.strip()):
        return [value.strip()]
    return []


def languages(folder: Path, config: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Source and target BCP-47 tags: config.json or tokenizer_config.json ``source_lang`` /
    ``target_lang``, else a name ending in ``-xx-yy`` (``opus-mt-en-de``), else empty."""
    tokenizer_config_path = inside_folder(folder, "tokenizer_config.json")
    tokenizer_config = (read_model_json(folder, "tokenizer_config.json")
                        if tokenizer_config_path.is_file() else {})
    found = []
    for key in ("source_lang", "target_lang"):
        found.append(_tag(config.get(key)) or _tag(tokenizer_config.get(key)))
    if not found[0] and not found[1]:
        parts = folder.resolve().name.lower().split("-")
        if len(parts) >= 3 and all(_LANGUAGE_TAG.match(p) for p in parts[-2:]):
            found = [[parts[-2]], [parts[-1]]]
    return found[0], found[1]


def _tokenizers(folder: Path, config: dict[str, Any]) -> tuple[Tokenizer, Tokenizer]:
    for name in TOKENIZER_FILES:
        if not inside_folder(folder, name).is_file():
            raise ModelFormatError(f"{folder / name}: missing; a Marian folder needs "
                                   f"{', '.join(TOKENIZER_FILES)} (download it again)")
    tokenizer_config_path = inside_folder(folder, "tokenizer_config.json")
    tokenizer_config = (read_model_json(folder, "tokenizer_config.json")
                        if tokenizer_config_path.is_file() else {})
    if tokenizer_config.get("separate_vocabs") or (folder / "target_vocab.json").is_file():
        raise ModelFormatError(f"{folder}: separate source and target vocabularies are not "
                               "supported yet")
    vocab = read_model_json(folder, "vocab.json")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in vocab.values()):
        raise ModelFormatError(f"{folder / 'vocab.json'}: ids must be integers")
    if len(vocab) > int(config.get("vocab_size", 0)):
        raise ModelFormatError(f"{folder / 'vocab.json'}: has {len(vocab)} tokens but config.json "
                               f"says vocab_size {config.get('vocab_size')}; they do not belong "
                               "together")
    specials = hf_special_tokens(folder)
    unk = tokenizer_config.get("unk_token")
    names = {"unk_token": unk if isinstance(unk, str) else "<unk>",
             "eos_token": specials["eos"] or "</s>", "pad_token": specials["pad"] or "<pad>"}
    sides = []
    for name, append_eos in (("source.spm", True), ("target.spm", False)):
        model = read_sentencepiece(inside_folder(folder, name))
        try:
            sides.append(marian_tokenizer(model, vocab, append_eos=append_eos, **names))
        except ValueError as error:
            raise ModelFormatError(f"{folder / name}: {error}") from None
    return sides[0], sides[1]


def _read_config(folder: Path, config: dict[str, Any]) -> Seq2SeqConfig:
    path = folder / "config.json"
    for key, bound in _CONFIG_BOUNDS.items():
        value = config.get(key)
        if value is None:
            continue  # from_marian names a missing key or uses MarianConfig's default
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ModelFormatError(f"{path}: field {key!r} must be a positive integer, got "
                                   f"{value!r}")
        if value > bound:
            raise ModelFormatError(f"{path}: field {key!r} is {value}: more than the {bound} "
                                   "supported")
    try:
        return Seq2SeqConfig.from_marian(config)
    except (TypeError, ValueError, OverflowError) as error:
        raise ModelFormatError(f"{path}: {error}") from None


def _read_weights(folder: Path, config: Seq2SeqConfig,
                  progress: Progress) -> dict[str, np.ndarray]:
    files = weight_files(folder)
    if not files:
        pickles = [p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES]
        if pickles:
            raise ModelFormatError(
                f"{folder}: weights are pickle files ({pickles[0]}), which can run code when "
                "loaded; convert them to safetensors first (e.g. with transformers' "
                "save_pretrained(safe_serialization=True)) in an environment you trust")
        raise ModelFormatError(f"{folder}: no *.safetensors weights found")
    weights: dict[str, np.ndarray] = {}
    for index, file in enumerate(files):
        progress("reading weights", index, len(files))
        weights.update(read_safetensors(file))
    progress("reading weights", len(files), len(files))
    required = [f"model.{stack}.layers.{i}.{part}"
                for stack, count in (("encoder", config.encoder_layers),
                                     ("decoder", config.decoder_layers))
                for i in range(count)
                for part in ("self_attn.q_proj.weight", "fc1.weight", "final_layer_norm.weight")]
    required += [f"model.decoder.layers.{i}.encoder_attn.k_proj.weight"
                 for i in range(config.decoder_layers)]
    if not any(n in weights for n in ("model.shared.weight", "model.encoder.embed_tokens.weight")):
        required.append("model.shared.weight")
    missing = [n for n in required if n not in weights]
    if missing:
        raise ModelFormatError(f"{folder}: safetensors lack tensor {missing[0]!r}; the download "
                               "is incomplete or this is not a MarianMTModel")
    expected = _expected_shapes(config)
    for name, weight in weights.items():
        if name in expected and tuple(weight.shape) != expected[name]:
            raise ModelFormatError(f"{folder}: tensor {name!r} has shape {tuple(weight.shape)} "
                                   f"but config.json implies {expected[name]}; they do not "
                                   "belong together")
    for stack, count in (("encoder", config.encoder_layers), ("decoder", config.decoder_layers)):
        if any(n.startswith(f"model.{stack}.layers.{count}.") for n in weights):
            raise ModelFormatError(f"{folder}: the safetensors have more {stack} layers than "
                                   f"{stack}_layers ({count}) in config.json")
    return weights


def _expected_shapes(config: Seq2SeqConfig) -> dict[str, tuple[int, ...]]:
    """The shape config.json implies for each MarianMTModel tensor (a graph built from weights
    of other sizes would fail in ONNX Runtime, or worse, run)."""
    d, vocab = config.d_model, config.vocab_size
    tables = ("model.shared.weight", "model.encoder.embed_tokens.weight",
              "model.decoder.embed_tokens.weight", "lm_head.weight")
    expected: dict[str, tuple[int, ...]] = dict.fromkeys(tables, (vocab, d))
    expected["final_logits_bias"] = (1, vocab)
    for stack, count, ffn in (("encoder", config.encoder_layers, config.encoder_ffn_dim),
                              ("decoder", config.decoder_layers, config.decoder_ffn_dim)):
        attentions = ("self_attn", "encoder_attn") if stack == "decoder" else ("self_attn",)
        for i in range(count):
            p = f"model.{stack}.layers.{i}."
            for attention in attentions:
                for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
                    expected[f"{p}{attention}.{proj}.weight"] = (d, d)
                    expected[f"{p}{attention}.{proj}.bias"] = (d,)
                for part in ("weight", "bias"):
                    expected[f"{p}{attention}_layer_norm.{part}"] = (d,)
            for part in ("weight", "bias"):
                expected[f"{p}final_layer_norm.{part}"] = (d,)
            expected.update({f"{p}fc1.weight": (ffn, d), f"{p}fc1.bias": (ffn,),
                             f"{p}fc2.weight": (d, ffn), f"{p}fc2.bias": (d,)})
    return expected


def read_marian(folder: Path, progress: Progress = no_progress) -> ImportedSeq2Seq:
    """Reads a Marian checkpoint folder or an Optimum export of one.

    Raises:
        ModelFormatError: not Marian, pickle weights, a missing or damaged file (named).
    """
    config = marian_config(folder)
    if config is None:
        raise ModelFormatError(f"{folder / 'config.json'}: not a Marian (model_type 'marian') "
                               "config")
    source_tokenizer, target_tokenizer = _tokenizers(folder, config)
    source_langs, target_langs = languages(folder, config)
    optimum = None if list(folder.glob("*.safetensors")) else optimum_seq2seq_files(folder)
    common: dict[str, Any] = {
        "name": folder.resolve().name.lower(), "source_tokenizer": source_tokenizer,
        "target_tokenizer": target_tokenizer, "source_languages": source_langs,
        "target_languages": target_langs,
        "license": str(config.get("license", "see the model card")),
    }
    if optimum is not None:
        return ImportedSeq2Seq(config=None, weights={}, optimum_files=optimum,
                               source={"format": "optimum", "folder": str(folder.resolve()),
                                       "architecture": "MarianMTModel"},
                               tensor_report={"copied": [f for f in optimum if f]},
                               **common)
    seq2seq = _read_config(folder, config)
    weights = _read_weights(folder, seq2seq, progress)
    return ImportedSeq2Seq(config=seq2seq, weights=weights,
                           source={"format": "huggingface", "folder": str(folder.resolve()),
                                   "architecture": "MarianMTModel"},
                           tensor_report={"converted": sorted(n for n in weights
                                                              if n.endswith("proj.weight"))},
                           **common)


def _copy_graph(folder: Path, relative: str, into: Path) -> None:
    """Copies an ONNX file and its external-data siblings (``name.onnx_data``, ``.data``)."""
    source = folder / relative
    for path in [source, *sorted(source.parent.glob(source.name + "?*"))]:
        inside_folder(folder, str(path.relative_to(folder)))
        if not path.is_file():
            raise ModelFormatError(f"{path}: missing; the export is incomplete")
        target = into / path.relative_to(folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)


def _write_optimum(model: ImportedSeq2Seq, folder: Path, out: Path, overwrite: bool,
                   progress: Progress) -> Path:
    assert model.optimum_files is not None
    with atomic_folder(out, overwrite=overwrite) as scratch:
        files = [f for f in model.optimum_files if f]
        for index, relative in enumerate(files):
            progress("copying graphs", index, len(files))
            _copy_graph(folder, relative, scratch)
        shutil.copyfile(inside_folder(folder, "config.json"), scratch / "config.json")
        model.source_tokenizer.save(str(scratch / SOURCE_TOKENIZER))
        model.target_tokenizer.save(str(scratch / TARGET_TOKENIZER))
        manifest = manifest_from_optimum_seq2seq(scratch, model.optimum_files, SOURCE_TOKENIZER,
                                                 TARGET_TOKENIZER)
        spec = manifest.encoder_decoder
        assert spec is not None
        start = spec.decoder_start_token
        if start.startswith("<id:"):  # name the start token, as our own manifests do
            start = model.target_tokenizer.id_to_token(int(start[4:-1])) or start
        manifest = replace(manifest, name=out.name, license=model.license, source=model.source,
                           encoder_decoder=replace(
                               spec, decoder_start_token=start,
                               source_languages=tuple(model.source_languages),
                               target_languages=tuple(model.target_languages)))
        write_manifest(scratch, manifest)
        progress("copying graphs", len(files), len(files))
    return out.expanduser().resolve()


def write_marian_folder(model: ImportedSeq2Seq, folder: Path, out: Path, precision: str = "fp32",
                        *, overwrite: bool = False, progress: Progress = no_progress) -> Path:
    """Writes the imported model as a Nightlamp folder at ``out`` (atomically).

    ``precision``: fp32, int8 or int4 MatMul weights (fp16 writes fp32: no fp16 seq2seq graphs
    yet). An Optimum export is copied as it is, whatever the precision.
    """
    if model.optimum_files is not None:
        return _write_optimum(model, folder, out, overwrite, progress)
    assert model.config is not None
    written = _PRECISIONS.get(precision, precision)
    if written not in PRECISION_BITS:
        raise ModelFormatError(f"precision {precision!r} is not available for translation "
                               f"models; choose one of {', '.join(PRECISION_BITS)}")
    report = {"precision": written, **model.tensor_report}
    return write_seq2seq_folder(
        model.weights, model.config, out, source_tokenizer=model.source_tokenizer,
        target_tokenizer=model.target_tokenizer, source_languages=model.source_languages,
        target_languages=model.target_languages, precision=written, license=model.license,
        source=model.source, overwrite=overwrite, progress=progress,
        extra_files={IMPORT_REPORT: json.dumps(report, indent=2) + "\n"})
