"""Training checkpoints: safetensors weights, a JSON config, optimizer and RNG state, tokenizer.

A checkpoint folder holds ``config.json`` (architecture, model and training settings, step,
metrics), ``model.safetensors``, ``optimizer.pt`` (optimizer state and random-generator states,
loaded with ``weights_only=True`` so it can't run code) and ``tokenizer.json`` (a translation
model with separate vocabularies adds ``target.tokenizer.json``). It is written to a temporary
folder and swapped into place, so an interrupted save never corrupts the last good one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer
from torch import nn

from convert.seq2seq_config import Seq2SeqConfig
from engine.atomic import atomic_folder
from engine.errors import ConfigError
from training.lstm import LSTMLM, LSTMConfig
from training.seq2seq_model import Seq2SeqModel
from training.transformer import TransformerConfig, TransformerLM

ModelConfig = TransformerConfig | LSTMConfig | Seq2SeqConfig

CHECKPOINT_FORMAT = "nightlamp-checkpoint"
CHECKPOINT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
STATE_FILE = "optimizer.pt"
TOKENIZER_FILE = "tokenizer.json"
TARGET_TOKENIZER_FILE = "target.tokenizer.json"
SEQ2SEQ = "seq2seq"  # the arch of translation checkpoints


@dataclass
class CheckpointInfo:
    """What ``config.json`` records."""

    arch: str
    preset: str
    model: dict[str, Any]
    train: dict[str, Any]
    step: int = 0
    tokens_seen: int = 0
    corpus_sha256: str = ""  # fingerprint of the training text, to warn when a resume differs
    metrics: list[dict[str, float]] = field(default_factory=list)
    # Translation: source/target BCP-47 tags and whether the vocabularies are separate.
    data: dict[str, Any] = field(default_factory=dict)

    def model_config(self) -> ModelConfig:
        if self.arch == SEQ2SEQ:
            return Seq2SeqConfig.from_dict(self.model)
        return TransformerConfig(**self.model) if self.arch == "transformer" \
            else LSTMConfig(**self.model)


def build_model(arch: str, config: ModelConfig) -> nn.Module:
    if arch == SEQ2SEQ:
        assert isinstance(config, Seq2SeqConfig)
        return Seq2SeqModel(config)
    if arch == "transformer":
        assert isinstance(config, TransformerConfig)
        return TransformerLM(config)
    assert isinstance(config, LSTMConfig)
    return LSTMLM(config)


def unique_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict with each tensor once: tied weights (a translation model's shared
    embedding is also ``lm_head.weight``) keep their first name; safetensors wants no aliases."""
    weights, seen = {}, set()
    for name, tensor in model.state_dict().items():
        key = (tensor.data_ptr(), tuple(tensor.shape), tuple(tensor.stride()))
        if key not in seen:
            seen.add(key)
            weights[name] = tensor.detach().contiguous().cpu()
    return weights


def has_checkpoint(folder: Path) -> bool:
    return (folder / CONFIG_FILE).is_file()


def save_checkpoint(folder: Path, info: CheckpointInfo, model: nn.Module,
                    optimizer: torch.optim.Optimizer, data_generator: torch.Generator,
                    tokenizer: Tokenizer, target_tokenizer: Tokenizer | None = None) -> None:
    """Writes the whole checkpoint folder atomically (replacing an older one)."""
    with atomic_folder(folder, overwrite=True) as temporary:
        config = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **asdict(info)}
        (temporary / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n",
                                             encoding="utf-8")
        save_file(unique_weights(model), str(temporary / WEIGHTS_FILE))
        torch.save(
            {
                "optimizer": optimizer.state_dict(),
                "data_generator": data_generator.get_state(),
                "torch_rng": torch.get_rng_state(),
            },
            temporary / STATE_FILE,
        )
        tokenizer.save(str(temporary / TOKENIZER_FILE))
        if target_tokenizer is not None:
            target_tokenizer.save(str(temporary / TARGET_TOKENIZER_FILE))


def read_checkpoint_info(folder: Path) -> CheckpointInfo:
    """Reads ``config.json``; errors name the file and what is wrong with it."""
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(f"{folder}: no checkpoint here ({CONFIG_FILE} missing); train one with "
                          "'nightlamp train lm --out FOLDER'")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(f"{path}: not valid JSON ({error}); the checkpoint is damaged") from None
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise ConfigError(f"{path}: not a Nightlamp training checkpoint")
    if data.get("version") != CHECKPOINT_VERSION:
        raise ConfigError(f"{path}: checkpoint version {data.get('version')!r} is not supported "
                          f"(expected {CHECKPOINT_VERSION}); retrain with this Nightlamp")
    try:
        info = CheckpointInfo(**{k: v for k, v in data.items() if k not in ("format", "version")})
        info.model_config()
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{path}: unexpected checkpoint fields ({error})") from None
    return info


def load_weights(folder: Path, model: nn.Module) -> None:
    path = folder / WEIGHTS_FILE
    if not path.is_file():
        raise ConfigError(f"{path}: weights file missing; the checkpoint is incomplete")
    try:
        state = load_file(str(path))
    except Exception as error:
        raise ConfigError(f"{path}: cannot read weights ({error}); the checkpoint is damaged") \
            from None
    expected = unique_weights(model)
    mismatched = [k for k, v in expected.items() if k not in state or state[k].shape != v.shape]
    if mismatched or set(state) - set(expected):
        raise ConfigError(f"{path}: weights do not match the model in {CONFIG_FILE} "
                          f"(e.g. {(mismatched or sorted(set(state) - set(expected)))[0]})")
    # Tied aliases are not in the file; loading their first name fills them.
    model.load_state_dict(state, strict=False)


def load_training_state(folder: Path, optimizer: torch.optim.Optimizer,
                        data_generator: torch.Generator) -> None:
    path = folder / STATE_FILE
    if not path.is_file():
        raise ConfigError(f"{path}: optimizer state missing; cannot resume exactly")
    state = torch.load(path, weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    data_generator.set_state(state["data_generator"])
    torch.set_rng_state(state["torch_rng"])


def load_tokenizer(folder: Path, name: str = TOKENIZER_FILE) -> Tokenizer:
    path = folder / name
    if not path.is_file():
        raise ConfigError(f"{path}: tokenizer missing; the checkpoint is incomplete")
    return Tokenizer.from_file(str(path))
