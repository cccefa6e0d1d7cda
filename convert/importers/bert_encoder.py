"""Import a sentence-transformers BERT encoder (all-MiniLM-L6-v2 and its family) as an embedding
model folder, checked against an independent numpy forward pass.

The folder is what ``SentenceTransformer.save`` writes: ``config.json`` (``model_type: bert``),
``model.safetensors``, ``tokenizer.json``, ``modules.json`` naming Transformer, Pooling and
Normalize, ``1_Pooling/config.json`` (mean pooling is the one supported) and
``sentence_bert_config.json`` (``max_seq_length``). Pickle weights are refused as everywhere.
The folder written has architecture ``encoder`` and task ``embed`` (``engine/manifest.py``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from convert.encoder_graph import (
    EMBEDDING_OUTPUT,
    EncoderShape,
    build_encoder_graph,
    expected_shapes,
)
from convert.importers.hf_model import PICKLE_SUFFIXES, read_safetensors, safetensors_header
from convert.importers.imported import IMPORT_REPORT, MODEL_FILE, weight_bits
from convert.onnx_graph import save_model
from engine.atomic import atomic_folder
from engine.callbacks import Progress, no_progress
from engine.errors import ModelFormatError
from engine.formats import inside_folder, read_model_json
from engine.manifest import Manifest, write_manifest

# Buffers some BERT checkpoints carry beside the weights (int64, not parameters).
_BUFFERS = frozenset({"embeddings.position_ids", "bert.embeddings.position_ids"})
_MAX_LAYERS, _MAX_HIDDEN = 128, 8192
CHECK_SENTENCES = ("Nightlamp answers from your own documents.",
                   "The quick brown fox jumps over the lazy dog, twice!",
                   "Résumé: 3 páginas, ünïcödé and numbers 1234.")
CHECK_MIN_COSINE = 0.9999  # float32 graph against float64 numpy
CHECK_MIN_COSINE_QUANTIZED = 0.99  # int8 weights


@dataclass
class ImportedEncoder:
    """A BERT encoder read from a folder, ready to be written as an embedding model."""

    name: str
    shape: EncoderShape
    weights: dict[str, np.ndarray]
    tokenizer: Tokenizer
    max_tokens: int  # longer inputs are cut (sentence_bert_config's max_seq_length)
    license: str = "unknown"
    source: dict[str, Any] = field(default_factory=dict)

    def parameter_count(self) -> int:
        return sum(int(w.size) for w in self.weights.values())


def is_bert_folder(folder: Path) -> bool:
    """Whether ``folder`` holds a BERT checkpoint (``config.json`` with ``model_type: bert``)."""
    config = folder / "config.json"
    if not folder.is_dir() or not config.is_file():
        return False
    try:
        return read_model_json(folder, "config.json").get("model_type") == "bert"
    except ModelFormatError:
        return False


def _size(config: dict[str, Any], key: str, path: Path, maximum: int) -> int:
    value = config.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= maximum:
        raise ModelFormatError(f"{path}: field '{key}' must be a positive integer up to "
                               f"{maximum:,}, got {value!r}; the download may be damaged")
    return value


def _shape(folder: Path) -> EncoderShape:
    path = folder / "config.json"
    config = read_model_json(folder, "config.json")
    if config.get("hidden_act", "gelu") != "gelu" or \
            config.get("position_embedding_type", "absolute") != "absolute":
        raise ModelFormatError(f"{path}: only BERT encoders with GELU and absolute positions "
                               "can be imported (got hidden_act "
                               f"{config.get('hidden_act')!r}, position_embedding_type "
                               f"{config.get('position_embedding_type')!r})")
    eps = config.get("layer_norm_eps", 1e-12)
    if not isinstance(eps, float) or not 0 < eps < 1:
        raise ModelFormatError(f"{path}: field 'layer_norm_eps' must be a small positive number, "
                               f"got {eps!r}")
    shape = EncoderShape(
        vocab_size=_size(config, "vocab_size", path, 1 << 20),
        hidden_size=_size(config, "hidden_size", path, _MAX_HIDDEN),
        num_layers=_size(config, "num_hidden_layers", path, _MAX_LAYERS),
        num_heads=_size(config, "num_attention_heads", path, 256),
        intermediate_size=_size(config, "intermediate_size", path, 4 * _MAX_HIDDEN),
        max_positions=_size(config, "max_position_embeddings", path, 1 << 16),
        type_vocab_size=_size(config, "type_vocab_size", path, 64), layer_norm_eps=eps)
    if shape.hidden_size % shape.num_heads:
        raise ModelFormatError(f"{path}: hidden_size {shape.hidden_size} is not a multiple of "
                               f"num_attention_heads {shape.num_heads}")
    return shape


def _check_pooling(folder: Path) -> int:
    """The folder's sentence-transformers head must be mean pooling (+ Normalize); returns its
    ``max_seq_length`` (512 when the folder does not say)."""
    pooling_path = folder / "1_Pooling" / "config.json"
    if pooling_path.is_file():
        pooling = read_model_json(folder, "1_Pooling/config.json")
        modes = sorted(key for key, value in pooling.items()
                       if key.startswith("pooling_mode_") and value is True)
        if modes != ["pooling_mode_mean_tokens"]:
            raise ModelFormatError(f"{pooling_path}: pooling {', '.join(modes) or 'none'} is not "
                                   "supported; only mean pooling (pooling_mode_mean_tokens)")
    settings = folder / "sentence_bert_config.json"
    if not settings.is_file():
        return 512
    value = read_model_json(folder, "sentence_bert_config.json").get("max_seq_length", 512)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 1 << 16:
        raise ModelFormatError(f"{settings}: field 'max_seq_length' must be a positive integer, "
                               f"got {value!r}")
    return value


def _weights(folder: Path, shape: EncoderShape) -> dict[str, np.ndarray]:
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        pickles = [p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES]
        reason = (f"its weights are pickle files ({pickles[0]}), which can run code when loaded"
                  if pickles else "no *.safetensors weights found")
        raise ModelFormatError(f"{folder}: {reason}; Nightlamp imports safetensors only")
    wanted = expected_shapes(shape)
    found: dict[str, np.ndarray] = {}
    for file in files:
        path = inside_folder(folder, file.name)
        names = safetensors_header(path, _BUFFERS)[1]
        # BertForX checkpoints prefix the encoder's names with "bert."; the pooler is unused.
        ignored = _BUFFERS | {n for n in names if _plain(n) not in wanted}
        for name, tensor in read_safetensors(path, ignored).items():
            found[_plain(name)] = tensor
    for name, expected in wanted.items():
        if name not in found:
            raise ModelFormatError(f"{folder}: the safetensors lack tensor {name!r}; the "
                                   "download may be incomplete")
        if found[name].shape != expected:
            raise ModelFormatError(f"{folder}: tensor {name!r} has shape {found[name].shape}, "
                                   f"config.json implies {expected}")
    return found


def _plain(name: str) -> str:
    return name.removeprefix("bert.")


def read_bert_encoder(folder: Path, progress: Progress = no_progress) -> ImportedEncoder:
    """Reads and checks the folder (see the module docstring).

    Raises:
        ModelFormatError: naming the file and what is wrong or unsupported.
    """
    if not is_bert_folder(folder):
        raise ModelFormatError(f"{folder}: no config.json with model_type 'bert'; not a "
                               "sentence-transformers BERT folder")
    shape = _shape(folder)
    max_tokens = min(_check_pooling(folder), shape.max_positions)
    tokenizer_path = inside_folder(folder, "tokenizer.json")
    if not tokenizer_path.is_file():
        raise ModelFormatError(f"{folder}: no tokenizer.json; Nightlamp needs the fast tokenizer "
                               "file")
    try:
        tokenizer = Tokenizer.from_file(str(tokenizer_path))
    except Exception as error:  # the Rust library raises plain Exceptions
        raise ModelFormatError(f"{tokenizer_path}: cannot read the tokenizer "
                               f"({' '.join(str(error).split())[:200]})") from None
    # sentence-transformers files pad every text to 128 tokens and cut at 128: padding would
    # count as text, and the cut is the engine's to make (at ``max_tokens``).
    tokenizer.no_padding()
    tokenizer.no_truncation()
    if tokenizer.get_vocab_size() > shape.vocab_size:
        raise ModelFormatError(f"{tokenizer_path}: has {tokenizer.get_vocab_size()} tokens but "
                               f"config.json says vocab_size {shape.vocab_size}")
    progress("reading weights", 0, 1)
    weights = _weights(folder, shape)
    progress("reading weights", 1, 1)
    return ImportedEncoder(folder.resolve().name.lower(), shape, weights, tokenizer, max_tokens,
                           source={"format": "sentence-transformers", "file": folder.name})


def write_encoder_folder(encoder: ImportedEncoder, out: Path, precision: str = "fp32",
                         progress: Progress = no_progress) -> Path:
    """The ONNX graph at ``precision`` (fp32 or int8), the tokenizer and the manifest, written
    atomically."""
    if precision not in ("fp32", "int8"):
        raise ModelFormatError(f"an embedding model is imported at fp32 or int8, not "
                               f"{precision!r}")
    progress("building graph", 0, 1)
    graph = build_encoder_graph(encoder.weights, encoder.shape, weight_bits(precision))
    progress("building graph", 1, 1)
    with atomic_folder(out, overwrite=True) as folder:
        save_model(graph, folder / MODEL_FILE)
        encoder.tokenizer.save(str(folder / "tokenizer.json"))
        write_manifest(folder, Manifest(
            name=out.name, architecture="encoder", decoder_file=MODEL_FILE,
            tokenizer_file="tokenizer.json", vocab_size=encoder.shape.vocab_size,
            context_length=encoder.max_tokens, precision=precision,
            pad_token="[PAD]" if encoder.tokenizer.token_to_id("[PAD]") is not None else None,
            tasks=("embed",), license=encoder.license,
            source={**encoder.source, "parameters": encoder.parameter_count(),
                    "dimension": encoder.shape.hidden_size}))
        report = {"precision": precision, "architecture": "bert", "layers":
                  encoder.shape.num_layers, "dimension": encoder.shape.hidden_size}
        (folder / IMPORT_REPORT).write_text(json.dumps(report, indent=2) + "\n",
                                            encoding="utf-8")
    return out.expanduser().resolve()


# The independent reference: the same forward pass in float64 numpy, from the checkpoint's own
# weights (nothing shared with the graph builder but the weight names).

def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + eps) * w + b


def _gelu(x: np.ndarray) -> np.ndarray:
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def reference_embeddings(encoder: ImportedEncoder, ids: list[list[int]]) -> np.ndarray:
    """Unit sentence embeddings (batch, dimension) of unpadded token ids, in float64."""
    w = {name: tensor.astype(np.float64) for name, tensor in encoder.weights.items()}
    shape, eps = encoder.shape, encoder.shape.layer_norm_eps
    out = []
    for row in ids:
        tokens = len(row)
        x = (w["embeddings.word_embeddings.weight"][row]
             + w["embeddings.position_embeddings.weight"][:tokens]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
        for layer in range(shape.num_layers):
            p = f"encoder.layer.{layer}."

            def dense(v: np.ndarray, name: str, p: str = p) -> np.ndarray:
                return v @ w[f"{p}{name}.weight"].T + w[f"{p}{name}.bias"]

            heads = [dense(x, f"attention.self.{n}").reshape(tokens, shape.num_heads, -1)
                     .transpose(1, 0, 2) for n in ("query", "key", "value")]
            scores = heads[0] @ heads[1].transpose(0, 2, 1) / math.sqrt(shape.head_dim)
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            attended = (scores / scores.sum(-1, keepdims=True)) @ heads[2]  # (H, T, D)
            attended = attended.transpose(1, 0, 2).reshape(tokens, -1)
            x = _layer_norm(dense(attended, "attention.output.dense") + x,
                            w[f"{p}attention.output.LayerNorm.weight"],
                            w[f"{p}attention.output.LayerNorm.bias"], eps)
            hidden = _gelu(dense(x, "intermediate.dense"))
            x = _layer_norm(dense(hidden, "output.dense") + x, w[f"{p}output.LayerNorm.weight"],
                            w[f"{p}output.LayerNorm.bias"], eps)
        mean = x.mean(0)
        out.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
    return np.stack(out)


@dataclass(frozen=True)
class EncoderCheck:
    """How the written graph's embeddings compare with the numpy reference's."""

    min_cosine: float
    required: float
    sentences: int

    @property
    def passed(self) -> bool:
        return self.min_cosine >= self.required

    def summary(self) -> str:
        return (f"check against the numpy reference: embeddings of {self.sentences} sentences, "
                f"lowest cosine {self.min_cosine:.6f} (required {self.required})")

    def to_json(self) -> dict[str, Any]:
        return {"min_cosine": round(self.min_cosine, 7), "required": self.required,
                "sentences": self.sentences, "passed": self.passed}


def verify_encoder(encoder: ImportedEncoder, folder: Path,
                   sentences: tuple[str, ...] = CHECK_SENTENCES) -> EncoderCheck:
    """Embeds ``sentences`` as one padded batch with the folder's graph and compares each
    with the reference (which sees each alone, unpadded: padding must change nothing); the
    result goes into the folder's import report.

    Raises:
        ModelFormatError: the graph disagrees with the reference.
    """
    encodings = [encoder.tokenizer.encode(s).ids[:encoder.max_tokens] for s in sentences]
    width = max(len(ids) for ids in encodings)
    ids = np.zeros((len(encodings), width), np.int64)
    mask = np.zeros_like(ids)
    for row, tokens in enumerate(encodings):
        ids[row, :len(tokens)], mask[row, :len(tokens)] = tokens, 1
    session = ort.InferenceSession(str(folder / MODEL_FILE), providers=["CPUExecutionProvider"])
    got = session.run([EMBEDDING_OUTPUT], {"input_ids": ids, "attention_mask": mask})[0]
    want = reference_embeddings(encoder, encodings)
    cosine = float(np.min(np.sum(got.astype(np.float64) * want, axis=1)))
    precision = json.loads((folder / IMPORT_REPORT).read_text(encoding="utf-8"))["precision"]
    required = CHECK_MIN_COSINE if precision == "fp32" else CHECK_MIN_COSINE_QUANTIZED
    check = EncoderCheck(cosine, required, len(sentences))
    report_path = folder / IMPORT_REPORT
    report = json.loads(report_path.read_text(encoding="utf-8"))
    report["check"] = check.to_json()
    report_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if not check.passed:
        raise ModelFormatError(f"{folder}: the ONNX encoder disagrees with the reference (cosine "
                               f"{cosine:.5f} < {required}); please report this model")
    return check
