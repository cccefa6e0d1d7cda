"""Model and training presets: ``tiny`` trains in seconds on a few kilobytes, ``small`` and
``base`` are real small models for a GPU or a patient CPU."""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import ConfigError

ARCHITECTURES = ("transformer", "lstm")
PRESETS = ("tiny", "small", "base")


@dataclass
class TrainConfig:
    steps: int = 200  # optimizer steps in total (a resumed run continues up to this)
    batch_size: int = 8  # sequences per optimizer step across all processes and micro-batches
    grad_accum: int = 1  # micro-batches per optimizer step
    lr: float = 3e-3  # peak learning rate
    min_lr_ratio: float = 0.1  # cosine decay ends at lr * min_lr_ratio
    warmup_steps: int = 20  # linear warm-up from 0 to lr
    weight_decay: float = 0.1  # AdamW decoupled weight decay (matrices only)
    grad_clip: float = 1.0  # max global gradient norm
    eval_every: int = 50  # steps between held-out evaluations (and checkpoints)
    eval_batches: int = 4  # batches in one held-out evaluation
    val_fraction: float = 0.1  # share of tokens held out
    seed: int = 1337  # seeds weights, data order and dropout
    vocab_size: int = 512  # tokenizer size to train
    amp: bool = True  # mixed precision where the device supports it (CUDA)
    threads: int = 0  # PyTorch threads on the CPU; 0: PyTorch's default (one per core)


_MODEL_PRESETS: dict[str, dict[str, dict[str, int]]] = {
    "transformer": {
        "tiny": {"hidden_size": 64, "num_layers": 2, "num_heads": 4, "num_kv_heads": 2,
                 "intermediate_size": 176, "context_length": 64},
        "small": {"hidden_size": 256, "num_layers": 4, "num_heads": 8, "num_kv_heads": 4,
                  "intermediate_size": 704, "context_length": 256},
        "base": {"hidden_size": 512, "num_layers": 8, "num_heads": 8, "num_kv_heads": 4,
                 "intermediate_size": 1408, "context_length": 512},
    },
    "lstm": {
        "tiny": {"embed_size": 64, "hidden_size": 128, "num_layers": 2, "context_length": 64},
        "small": {"embed_size": 256, "hidden_size": 512, "num_layers": 2, "context_length": 256},
        "base": {"embed_size": 512, "hidden_size": 1024, "num_layers": 3, "context_length": 512},
    },
}

_TRAIN_PRESETS: dict[str, TrainConfig] = {
    # One CPU thread: a tiny model's operations are too small to split (two threads were no
    # faster on an idle 2-core machine), and with one thread per core every parallel region
    # waits for a thread another busy process has descheduled: 7 s took 13 s next to one busy
    # process and 17-31 s next to two (one thread: 7 s and 10-12 s).
    "tiny": TrainConfig(threads=1),
    "small": TrainConfig(steps=2000, batch_size=16, lr=1e-3, warmup_steps=100, eval_every=200,
                         eval_batches=8, vocab_size=4096),
    "base": TrainConfig(steps=10000, batch_size=32, lr=6e-4, warmup_steps=500, eval_every=500,
                        eval_batches=16, vocab_size=8192),
}


def check_choice(kind: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"unknown {kind} {value!r}; choose one of: {', '.join(choices)}")


def model_preset(arch: str, preset: str) -> dict[str, int]:
    """Model hyper-parameters of a preset (vocab size is set from the trained tokenizer)."""
    check_choice("architecture", arch, ARCHITECTURES)
    check_choice("preset", preset, PRESETS)
    return dict(_MODEL_PRESETS[arch][preset])


def train_preset(preset: str) -> TrainConfig:
    check_choice("preset", preset, PRESETS)
    return TrainConfig(**vars(_TRAIN_PRESETS[preset]))
