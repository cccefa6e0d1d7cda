"""Reads a Hugging Face folder (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM) into an
``ImportedModel``.

Only data is read: ``config.json`` and the tokenizer files as plain JSON, weights from
``*.safetensors`` (parsed here with bounds checks). Pickle checkpoints are refused, and code a
folder asks to run (``auto_map``, custom modeling files) never is.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from engine.errors import ModelFormatError
from engine.formats import hf_chat_template, hf_special_tokens, read_json_object
from training.decoder_graph import DecoderShape
from training.importers.imported import ImportedModel, Progress, no_progress, weight_bits
from training.quantize import PackedWeight

SUPPORTED_CLASSES = ("LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
_SAFETENSORS_DTYPES = {"F32": "<f4", "F16": "<f2", "BF16": "<u2", "F64": "<f8"}
_MAX_HEADER = 100 * 1024 * 1024
STOP_TOKEN_CANDIDATES = ("<|im_end|>", "<|eot_id|>", "<|end_of_text|>", "<|endoftext|>", "</s>")


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """All tensors of a safetensors file as float32 arrays (bf16/f16 widened), bounds-checked."""
    size = path.stat().st_size
    with path.open("rb") as file:
        head = file.read(8)
        if len(head) < 8:
            raise ModelFormatError(f"{path}: too short for a safetensors file")
        (header_size,) = struct.unpack("<Q", head)
        if header_size > min(_MAX_HEADER, size - 8):
            raise ModelFormatError(f"{path}: header of {header_size} bytes does not fit the file")
        try:
            header = json.loads(file.read(header_size))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ModelFormatError(f"{path}: header is not valid JSON; file damaged") from None
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + header_size)
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype = _SAFETENSORS_DTYPES.get(entry.get("dtype"))
        if dtype is None:
            raise ModelFormatError(f"{path}: tensor {name!r} has dtype {entry.get('dtype')!r}; "
                                   "only F32, F16 and BF16 weights can be imported")
        shape = tuple(int(d) for d in entry["shape"])
        begin, end = (int(v) for v in entry["data_offsets"])
        count = int(np.prod(shape, dtype=np.int64))
        if not 0 <= begin <= end <= len(data) or end - begin != count * np.dtype(dtype).itemsize:
            raise ModelFormatError(f"{path}: tensor {name!r} offsets {begin}..{end} do not match "
                                   "its shape or lie outside the file")
        raw = np.frombuffer(data, dtype=dtype, count=count, offset=begin).reshape(shape)
        if entry["dtype"] == "BF16":
            tensors[name] = (raw.astype(np.uint32) << 16).view(np.float32)
        else:
            tensors[name] = raw.astype(np.float32)
    return tensors


def _check_folder(folder: Path) -> dict[str, Any]:
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise ModelFormatError(f"{folder}: no config.json; not a Hugging Face model folder")
    config = read_json_object(config_path)
    architectures = config.get("architectures") or []
    architecture = architectures[0] if architectures else config.get("model_type", "<missing>")
    if architecture not in SUPPORTED_CLASSES:
        raise ModelFormatError(f"{config_path}: architecture {architecture!r} is not supported "
                               f"(supported: {', '.join(SUPPORTED_CLASSES)})")
    if not list(folder.glob("*.safetensors")):
        pickles = [p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES]
        if pickles:
            raise ModelFormatError(
                f"{folder}: weights are pickle files ({pickles[0]}), which can run code when "
                "loaded; convert them to safetensors first (e.g. with transformers' "
                "save_pretrained(safe_serialization=True)) in an environment you trust"
            )
        raise ModelFormatError(f"{folder}: no *.safetensors weights found")
    if not (folder / "tokenizer.json").is_file():
        raise ModelFormatError(f"{folder}: no tokenizer.json; Nightlamp needs the fast tokenizer "
                               "file")
    return config


def _shape(config: dict[str, Any], config_path: Path) -> DecoderShape:
    def need(key: str) -> int:
        value = config.get(key)
        if not isinstance(value, int) or value <= 0:
            raise ModelFormatError(f"{config_path}: field {key!r} must be a positive integer")
        return value

    heads = need("num_attention_heads")
    scaling = config.get("rope_scaling")
    if scaling and scaling.get("rope_type", scaling.get("type")) not in (None, "default"):
        raise ModelFormatError(f"{config_path}: rope_scaling {scaling.get('rope_type')!r} is not "
                               "supported yet")
    return DecoderShape(
        vocab_size=need("vocab_size"),
        hidden_size=need("hidden_size"),
        num_layers=need("num_hidden_layers"),
        num_heads=heads,
        num_kv_heads=int(config.get("num_key_value_heads") or heads),
        head_dim=int(config.get("head_dim") or need("hidden_size") // heads),
        rope_theta=float(config.get("rope_theta", 10000.0)),
        rms_eps=float(config.get("rms_norm_eps", 1e-6)),
        tie_embeddings=bool(config.get("tie_word_embeddings", False)),
    )


def read_hf_model(folder: Path, precision: str = "int4",
                  progress: Progress = no_progress) -> ImportedModel:
    """Reads a Hugging Face model folder.

    Raises:
        ModelFormatError: unsupported architecture, pickle weights, missing files or tensors.
    """
    weight_bits(precision)
    config = _check_folder(folder)
    shape = _shape(config, folder / "config.json")
    files = sorted(folder.glob("*.safetensors"))
    weights: dict[str, np.ndarray | PackedWeight] = {}
    for index, file in enumerate(files):
        progress("reading weights", index, len(files))
        for name, tensor in read_safetensors(file).items():
            weights[name.removeprefix("model.")] = tensor
    progress("reading weights", len(files), len(files))
    required = ["embed_tokens.weight", "norm.weight"] + [
        f"layers.{i}.{p}" for i in range(shape.num_layers)
        for p in ("input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.o_proj.weight")
    ]
    if not shape.tie_embeddings:
        required.append("lm_head.weight")
    missing = [name for name in required if name not in weights]
    if missing:
        raise ModelFormatError(f"{folder}: safetensors lack tensor {missing[0]!r}; the download "
                               "is incomplete")
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    specials = hf_special_tokens(folder)
    stops = [t for t in STOP_TOKEN_CANDIDATES if tokenizer.token_to_id(t) is not None]
    context = int(config.get("max_position_embeddings", 2048))
    return ImportedModel(
        name=folder.resolve().name.lower(),
        shape=shape,
        weights=weights,
        tokenizer=tokenizer,
        context_length=context,
        chat_template=hf_chat_template(folder),
        bos_token=specials["bos"],
        eos_token=specials["eos"],
        pad_token=specials["pad"],
        stop_tokens=stops,
        license=str(config.get("license", "see the model card")),
        source={"format": "huggingface", "folder": str(folder.resolve()),
                "architecture": (config.get("architectures") or ["?"])[0]},
        tensor_report={"requantized" if weight_bits(precision) else "dequantized":
                       sorted(n for n in weights if n.endswith("proj.weight"))},
    )
