"""``nightlamp train lm`` and ``nightlamp export``.

This module only builds the argument parsers at import time; torch is imported when a command
runs, so ``nightlamp --help`` works in an install without the ``train`` extra.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

from engine.errors import ConfigError

ARCHITECTURES = ("transformer", "lstm")
PRESETS = ("tiny", "small", "base")


def _training_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name in ("torch", "onnx", "safetensors", "tqdm"):
            raise ConfigError(
                f"training needs {error.name}, which is not installed; install the train extra: "
                "pip install 'nightlamp[train]' (or run 'make test' in a checkout)"
            ) from None
        raise


def register(subcommands: Any) -> None:
    train = subcommands.add_parser("train", help="train a model (needs the train extra)")
    kinds = train.add_subparsers(dest="kind", metavar="KIND", required=True)
    lm = kinds.add_parser(
        "lm", help="train a language model on text files",
        description="Train a Transformer or LSTM language model. Under torchrun the same command "
                    "trains with DistributedDataParallel.",
    )
    lm.add_argument("--arch", choices=ARCHITECTURES, required=True)
    lm.add_argument("--corpus", type=Path, nargs="+", required=True, metavar="FILE",
                    help="UTF-8 text files")
    lm.add_argument("--out", type=Path, required=True, metavar="CKPT_DIR",
                    help="checkpoint folder")
    lm.add_argument("--preset", choices=PRESETS, default=None,
                    help="model and training size (default tiny; on --resume the checkpoint's)")
    lm.add_argument("--steps", type=int, default=None, help="total optimizer steps")
    lm.add_argument("--resume", action="store_true", help="continue the checkpoint in --out")
    lm.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    lm.add_argument("--batch-size", type=int, default=None, help="sequences per step")
    lm.add_argument("--grad-accum", type=int, default=None, help="micro-batches per step")
    lm.add_argument("--lr", type=float, default=None, help="peak learning rate")
    lm.add_argument("--seed", type=int, default=None)
    lm.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    lm.set_defaults(handler=run_train)

    export = subcommands.add_parser(
        "export", help="export a checkpoint to a verified ONNX model folder",
        description="Export a training checkpoint to an ONNX model folder and verify it against "
                    "PyTorch (logits and greedy continuations).",
    )
    export.add_argument("checkpoint", type=Path, metavar="CKPT_DIR")
    export.add_argument("--out", type=Path, required=True, metavar="MODEL_DIR")
    export.add_argument("--quantize", choices=("none", "int8"), default="none")
    export.add_argument("--force", action="store_true", help="replace an existing MODEL_DIR")
    export.set_defaults(handler=run_export)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    chosen = {"batch_size": args.batch_size, "grad_accum": args.grad_accum, "lr": args.lr,
              "seed": args.seed}
    for name in ("batch_size", "grad_accum"):
        if chosen[name] is not None and chosen[name] < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 1 (got {chosen[name]})")
    if chosen["lr"] is not None and not chosen["lr"] > 0:
        raise ConfigError(f"--lr must be > 0 (got {chosen['lr']})")
    return {k: v for k, v in chosen.items() if v is not None}


def run_train(args: argparse.Namespace) -> int:
    trainer = _training_module("training.trainer")
    info = trainer.train_lm(
        args.arch, args.corpus, args.out, preset=args.preset, steps=args.steps,
        resume=args.resume, device=None if args.device == "auto" else args.device,
        overrides=_overrides(args), progress=not args.no_progress,
    )
    last = info.metrics[-1] if info.metrics else {}
    print(f"checkpoint: {args.out} (step {info.step}, held-out loss {last.get('val_loss')}, "
          f"perplexity {last.get('val_perplexity')})")
    print(f"next: nightlamp export {args.out} --out MODEL_DIR")
    return 0


def run_export(args: argparse.Namespace) -> int:
    export = _training_module("training.export")
    result = export.export_checkpoint(args.checkpoint, args.out, quantize=args.quantize,
                                      overwrite=args.force)
    print(result.report.summary())
    print(f"model folder: {result.folder} (report in verify_report.json)")
    print(f"try: nightlamp generate -m {result.folder} \"Once upon a time\"")
    return 0
