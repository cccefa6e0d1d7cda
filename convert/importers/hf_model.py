"""Reads a Hugging Face folder (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM) into an
``ImportedModel``.

Only data is read: ``config.json`` and the tokenizer files as plain JSON, weights from
``*.safetensors`` (parsed here with bounds checks). Pickle checkpoints are refused, and code a
folder asks to run (``auto_map``, custom modeling files) never is. Every file read must be a
regular file of the folder (``engine.formats.inside_folder``: no links out of it), and every
value of the config and every tensor's shape is checked before the weights are read.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from convert.decoder_graph import MAX_INTERMEDIATE, DecoderShape, ShapeError
from convert.importers.imported import ImportedModel, weight_bits
from convert.quantize import PackedWeight
from engine.callbacks import Progress, no_progress
from engine.errors import ConfigError, ModelFormatError
from engine.formats import hf_chat_template, hf_special_tokens, inside_folder, read_model_json
from engine.memory import GIB, available_memory

SUPPORTED_CLASSES = ("LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
_SAFETENSORS_DTYPES = {"F32": "<f4", "F16": "<f2", "BF16": "<u2", "F64": "<f8"}
_MAX_HEADER = 100 * 1024 * 1024
STOP_TOKEN_CANDIDATES = ("<|im_end|>", "<|eot_id|>", "<|end_of_text|>", "<|endoftext|>", "</s>")
# DecoderShape field -> the config.json key it comes from (for errors about the value).
_CONFIG_KEYS = {"vocab_size": "vocab_size", "hidden_size": "hidden_size",
                "num_layers": "num_hidden_layers", "num_heads": "num_attention_heads",
                "num_kv_heads": "num_key_value_heads", "head_dim": "head_dim",
                "rope_theta": "rope_theta", "rms_eps": "rms_norm_eps",
                "rope_freq_factors": "rope_scaling"}


@dataclass(frozen=True)
class TensorEntry:
    """One tensor of a safetensors header, checked against the file."""

    dtype: str  # F32, F16, BF16 or F64
    shape: tuple[int, ...]
    begin: int  # byte offsets into the data that follows the header
    end: int


def safetensors_header(path: Path, ignored: frozenset[str] = frozenset(),
                       ) -> tuple[int, dict[str, TensorEntry]]:
    """(offset of the data, every tensor's entry) of a safetensors file, with each entry's
    dtype, shape and offsets checked against the file before anything is read or allocated.
    Tensors named in ``ignored`` (buffers such as BERT's int64 ``position_ids``) are left out
    unread."""
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
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            raise ModelFormatError(f"{path}: header is not valid JSON; file damaged") from None
    if not isinstance(header, dict):
        raise ModelFormatError(f"{path}: header is a JSON {type(header).__name__}, not an object "
                               "of tensors; file damaged")
    data_size = size - 8 - header_size
    entries = {}
    for name, entry in header.items():
        if name != "__metadata__" and name not in ignored:
            entries[name] = _entry(path, name, entry, data_size)
    return 8 + header_size, entries


def _entry(path: Path, name: str, entry: Any, data_size: int) -> TensorEntry:
    where = f"{path}: tensor {name!r}"
    if not isinstance(entry, dict):
        raise ModelFormatError(f"{where} is described by a {type(entry).__name__}, not an "
                               "object with dtype, shape and data_offsets; file damaged")
    dtype = entry.get("dtype")
    if dtype not in _SAFETENSORS_DTYPES:
        raise ModelFormatError(f"{where} has dtype {dtype!r}; only F32, F16 and BF16 weights "
                               "can be imported")
    shape, offsets = entry.get("shape"), entry.get("data_offsets")
    if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise ModelFormatError(f"{where} has shape {shape!r}; expected a list of sizes; file "
                               "damaged")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in offsets):
        raise ModelFormatError(f"{where} has data_offsets {offsets!r}; expected [begin, end]; "
                               "file damaged")
    begin, end = offsets
    count = math.prod(shape)  # exact: no int64 overflow for hostile sizes
    if not 0 <= begin <= end <= data_size or end - begin != count * np.dtype(
            _SAFETENSORS_DTYPES[dtype]).itemsize:
        raise ModelFormatError(f"{where} offsets {begin}..{end} do not match its shape or lie "
                               "outside the file")
    return TensorEntry(dtype, tuple(shape), begin, end)


def read_safetensors(path: Path, ignored: frozenset[str] = frozenset(),
                     ) -> dict[str, np.ndarray]:
    """All tensors of a safetensors file as float32 arrays (bf16/f16 widened), bounds-checked;
    those in ``ignored`` left out."""
    start, entries = safetensors_header(path, ignored)
    if not entries:
        return {}
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=start)
    tensors = {}
    for name, entry in entries.items():
        dtype = _SAFETENSORS_DTYPES[entry.dtype]
        count = math.prod(entry.shape)
        raw = np.frombuffer(data, dtype=dtype, count=count, offset=entry.begin
                            ).reshape(entry.shape)
        if entry.dtype == "BF16":
            tensors[name] = (raw.astype(np.uint32) << 16).view(np.float32)
        else:
            tensors[name] = raw.astype(np.float32)
    return tensors


def weight_files(folder: Path) -> list[Path]:
    """The folder's ``*.safetensors`` files, each a regular file of the folder."""
    return [inside_folder(folder, p.name) for p in sorted(folder.glob("*.safetensors"))]


def _check_folder(folder: Path) -> dict[str, Any]:
    config_path = inside_folder(folder, "config.json")
    if not config_path.is_file():
        raise ModelFormatError(f"{folder}: no config.json; not a Hugging Face model folder")
    config = read_model_json(folder, "config.json")
    architectures = config.get("architectures")
    architecture = architectures[0] if isinstance(architectures, list) and architectures \
        else config.get("model_type", "<missing>")
    if architecture not in SUPPORTED_CLASSES or not isinstance(architectures, list):
        raise ModelFormatError(f"{config_path}: architecture {architecture!r} is not supported "
                               f"(supported: {', '.join(SUPPORTED_CLASSES)})")
    if not weight_files(folder):
        pickles = [p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES]
        if pickles:
            raise ModelFormatError(
                f"{folder}: weights are pickle files ({pickles[0]}), which can run code when "
                "loaded; convert them to safetensors first (e.g. with transformers' "
                "save_pretrained(safe_serialization=True)) in an environment you trust"
            )
        raise ModelFormatError(f"{folder}: no *.safetensors weights found")
    inside_folder(folder, "model.safetensors.index.json")  # not read, but refused all the same
    if not inside_folder(folder, "tokenizer.json").is_file():
        raise ModelFormatError(f"{folder}: no tokenizer.json; Nightlamp needs the fast tokenizer "
                               "file")
    return config


def _positive_int(config: dict[str, Any], key: str, config_path: Path,
                  default: int | None = None) -> int:
    value = config.get(key, default)
    if value is None:
        raise ModelFormatError(f"{config_path}: field {key!r} is missing; the config is "
                               "incomplete")
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ModelFormatError(f"{config_path}: field {key!r} must be a positive integer, got "
                               f"{value!r}")
    return value


def _positive_float(config: dict[str, Any], key: str, config_path: Path, default: float,
                    ) -> float:
    value = config.get(key)
    value = default if value is None else value
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value <= 0:
        raise ModelFormatError(f"{config_path}: field {key!r} must be a finite number above 0, "
                               f"got {value!r}")
    return float(value)


def _check_rope_scaling(config: dict[str, Any], config_path: Path) -> None:
    scaling = config.get("rope_scaling")
    if scaling is None:
        return
    if not isinstance(scaling, dict):
        raise ModelFormatError(f"{config_path}: field 'rope_scaling' must be an object (e.g. "
                               f'{{"rope_type": "linear", "factor": 2.0}}) or null, got '
                               f"{scaling!r}")
    kind = scaling.get("rope_type", scaling.get("type"))
    if kind not in (None, "default"):
        raise ModelFormatError(f"{config_path}: rope_scaling {kind!r} is not supported yet")


def _shape(config: dict[str, Any], config_path: Path) -> tuple[DecoderShape, int]:
    """The decoder shape and the MLP width, every value checked before anything is sized."""
    hidden = _positive_int(config, "hidden_size", config_path)
    heads = _positive_int(config, "num_attention_heads", config_path)
    head_dim = config.get("head_dim")
    if head_dim is None:
        if hidden % heads:
            raise ModelFormatError(f"{config_path}: hidden_size {hidden} is not a multiple of "
                                   f"num_attention_heads {heads}, and no head_dim is given")
        head_dim = hidden // heads
    tied = config.get("tie_word_embeddings", False)
    if not isinstance(tied, bool):
        raise ModelFormatError(f"{config_path}: field 'tie_word_embeddings' must be true or "
                               f"false, got {tied!r}")
    _check_rope_scaling(config, config_path)
    intermediate = _positive_int(config, "intermediate_size", config_path)
    if intermediate > MAX_INTERMEDIATE:
        raise ModelFormatError(f"{config_path}: field 'intermediate_size' is {intermediate}: "
                               f"more than the {MAX_INTERMEDIATE} supported")
    try:
        shape = DecoderShape(
            vocab_size=_positive_int(config, "vocab_size", config_path),
            hidden_size=hidden,
            num_layers=_positive_int(config, "num_hidden_layers", config_path),
            num_heads=heads,
            num_kv_heads=_positive_int(config, "num_key_value_heads", config_path, heads),
            head_dim=head_dim,
            rope_theta=_positive_float(config, "rope_theta", config_path, 10000.0),
            rms_eps=_positive_float(config, "rms_norm_eps", config_path, 1e-6),
            tie_embeddings=tied,
        )
    except ShapeError as error:
        raise ModelFormatError(f"{config_path}: {error.named(_CONFIG_KEYS[error.field])}"
                               ) from None
    return shape, intermediate


def _expected_shapes(shape: DecoderShape, intermediate: int) -> dict[str, tuple[int, ...]]:
    """Every tensor the graph reads, by name without ``model.``, with the shape the config
    implies (biases are optional: Qwen2 has them on q, k and v)."""
    q, kv = shape.num_heads * shape.head_dim, shape.num_kv_heads * shape.head_dim
    hidden, vocab = shape.hidden_size, shape.vocab_size
    expected: dict[str, tuple[int, ...]] = {"embed_tokens.weight": (vocab, hidden),
                                            "norm.weight": (hidden,)}
    if not shape.tie_embeddings:
        expected["lm_head.weight"] = (vocab, hidden)
    for i in range(shape.num_layers):
        p = f"layers.{i}."
        expected.update({
            p + "input_layernorm.weight": (hidden,),
            p + "post_attention_layernorm.weight": (hidden,),
            p + "self_attn.q_proj.weight": (q, hidden), p + "self_attn.k_proj.weight": (kv, hidden),
            p + "self_attn.v_proj.weight": (kv, hidden), p + "self_attn.o_proj.weight": (hidden, q),
            p + "mlp.gate_proj.weight": (intermediate, hidden),
            p + "mlp.up_proj.weight": (intermediate, hidden),
            p + "mlp.down_proj.weight": (hidden, intermediate),
        })
    return expected


def _check_tensors(folder: Path, files: list[Path], shape: DecoderShape,
                   intermediate: int) -> None:
    """Checks every tensor's presence and shape from the headers, before any data is read,
    and that the float32 copies the import makes fit in memory."""
    found: dict[str, tuple[Path, tuple[int, ...]]] = {}
    for file in files:
        for name, entry in safetensors_header(file)[1].items():
            found[name.removeprefix("model.")] = (file, entry.shape)
    expected = _expected_shapes(shape, intermediate)
    q, kv = shape.num_heads * shape.head_dim, shape.num_kv_heads * shape.head_dim
    for i in range(shape.num_layers):  # optional, but shaped when present
        for kind, width in (("q", q), ("k", kv), ("v", kv)):
            name = f"layers.{i}.self_attn.{kind}_proj.bias"
            if name in found:
                expected[name] = (width,)
    if "lm_head.weight" in found:
        expected["lm_head.weight"] = (shape.vocab_size, shape.hidden_size)
    for name, want in expected.items():
        if name not in found:
            raise ModelFormatError(f"{folder}: safetensors lack tensor {name!r}; the download "
                                   "is incomplete")
        file, actual = found[name]
        if actual != want:
            raise ModelFormatError(f"{file}: tensor {name!r} has shape {actual} but config.json "
                                   f"implies {want}; they do not belong together")
    if any(n.startswith(f"layers.{shape.num_layers}.") for n in found):
        raise ModelFormatError(f"{folder}: the safetensors have tensors for more layers than "
                               f"num_hidden_layers ({shape.num_layers}) in config.json")
    needed = sum(4 * math.prod(s) for _, s in found.values())
    free = available_memory()
    if free is not None and needed > free:
        raise ConfigError(f"{folder}: its weights take {needed / GIB:.1f} GiB as float32 while "
                          f"importing but only {free / GIB:.1f} GiB is available; close other "
                          "programs or import a GGUF file of the model (read a tensor at a time)")


def _tokenizer(folder: Path, vocab_size: int) -> Tokenizer:
    path = inside_folder(folder, "tokenizer.json")
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as error:  # the Rust library raises plain Exceptions
        reason = " ".join(str(error).split())[:200]
        raise ModelFormatError(f"{path}: cannot read the tokenizer ({reason}); download it "
                               "again") from None
    if tokenizer.get_vocab_size() > vocab_size:
        raise ModelFormatError(f"{path}: has {tokenizer.get_vocab_size()} tokens but config.json "
                               f"says vocab_size {vocab_size}; they do not belong together")
    return tokenizer


def _suggested_name(folder: Path) -> str:
    """The folder's name; for a hub cache snapshot (``models--ORG--NAME/snapshots/REV``) the
    repository's NAME rather than the revision hash."""
    resolved = folder.resolve()
    repo = resolved.parent.parent.name
    if resolved.parent.name == "snapshots" and repo.startswith("models--"):
        return repo.split("--")[-1].lower()
    return resolved.name.lower()


def read_hf_model(folder: Path, precision: str = "int4",
                  progress: Progress = no_progress) -> ImportedModel:
    """Reads a Hugging Face model folder.

    Everything that can be checked without the weights is, first: the config's values, every
    tensor's shape (from the safetensors headers), the tokenizer and the chat template.

    Raises:
        ModelFormatError: unsupported architecture, pickle weights, missing files or tensors,
            values out of bounds, links out of the folder.
    """
    weight_bits(precision)
    config = _check_folder(folder)
    config_path = folder / "config.json"
    shape, intermediate = _shape(config, config_path)
    context = _positive_int(config, "max_position_embeddings", config_path, 2048)
    files = weight_files(folder)
    _check_tensors(folder, files, shape, intermediate)
    tokenizer = _tokenizer(folder, shape.vocab_size)
    specials = hf_special_tokens(folder)
    template = hf_chat_template(folder)
    stops = [t for t in STOP_TOKEN_CANDIDATES if tokenizer.token_to_id(t) is not None]
    weights: dict[str, np.ndarray | PackedWeight] = {}
    for index, file in enumerate(files):
        progress("reading weights", index, len(files))
        for name, tensor in read_safetensors(file).items():
            weights[name.removeprefix("model.")] = tensor
    progress("reading weights", len(files), len(files))
    return ImportedModel(
        name=_suggested_name(folder),
        shape=shape,
        weights=weights,
        tokenizer=tokenizer,
        context_length=context,
        chat_template=template,
        bos_token=specials["bos"],
        eos_token=specials["eos"],
        pad_token=specials["pad"],
        stop_tokens=stops,
        license=str(config.get("license", "see the model card")),
        source={"format": "huggingface", "folder": str(folder.resolve()),
                "architecture": config["architectures"][0]},
        tensor_report={"requantized" if weight_bits(precision) else "dequantized":
                       sorted(n for n in weights if n.endswith("proj.weight"))},
    )
