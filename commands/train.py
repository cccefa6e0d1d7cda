"""``nightlamp train lm``, ``nightlamp train translation`` and ``nightlamp export``.

This module only builds the argument parsers at import time; torch is imported when a command
runs, so ``nightlamp --help`` works in an install without the ``train`` extra.
"""

from __future__ import annotations

import argparse
import importlib
import sys
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
        if getattr(sys, "frozen", False):  # the packaged app leaves torch and the trainers out
            raise ConfigError("training is not part of the packaged app; install Nightlamp from "
                              "source with the train extra to train (see README: Train a "
                              "model)") from None
        if error.name in ("torch", "onnx", "safetensors", "tqdm", "sacrebleu"):
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
    _common_training_options(lm)
    lm.set_defaults(handler=run_train)

    translation = kinds.add_parser(
        "translation", help="train a translation model on sentence pairs (TSV or TMX)",
        description="Train an encoder-decoder (Marian layout) on a parallel corpus: a UTF-8 TSV "
                    "file of source<TAB>target lines, or a TMX file whose <tuv xml:lang> "
                    "variants --src and --tgt pick. Reports held-out loss, BLEU and chrF. Under "
                    "torchrun the same command trains with DistributedDataParallel.",
    )
    translation.add_argument("--pairs", type=Path, required=True, metavar="FILE",
                             help="TSV (source<TAB>target) or TMX file")
    translation.add_argument("--src", default=None, metavar="LANG",
                             help="source language, a BCP-47 tag (e.g. en)")
    translation.add_argument("--tgt", default=None, metavar="LANG",
                             help="target language, a BCP-47 tag (e.g. de)")
    translation.add_argument("--separate-vocab", action="store_true",
                             help="train separate source and target tokenizers")
    translation.add_argument("--dropout", type=float, default=None, metavar="P",
                             help="dropout while training (default 0.1)")
    _common_training_options(translation)
    translation.set_defaults(handler=run_train_translation)

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


def _common_training_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, metavar="CKPT_DIR",
                        help="checkpoint folder")
    parser.add_argument("--preset", choices=PRESETS, default=None,
                        help="model and training size (default tiny; on --resume the "
                             "checkpoint's)")
    parser.add_argument("--steps", type=int, default=None, help="total optimizer steps")
    parser.add_argument("--resume", action="store_true",
                        help="continue the checkpoint in --out")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="sequences (sentence pairs) per step")
    parser.add_argument("--grad-accum", type=int, default=None, help="micro-batches per step")
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


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


def run_train_translation(args: argparse.Namespace) -> int:
    trainer = _training_module("training.translation_trainer")
    overrides = _overrides(args)
    if args.dropout is not None:
        if not 0 <= args.dropout < 1:
            raise ConfigError(f"--dropout must be in [0, 1) (got {args.dropout})")
        overrides["dropout"] = args.dropout
    if args.separate_vocab:
        if args.resume:
            raise ConfigError("--separate-vocab is fixed when training starts; drop it with "
                              "--resume")
        overrides["separate_vocab"] = True
    info = trainer.train_translation(
        args.pairs, args.out, source_language=args.src, target_language=args.tgt,
        preset=args.preset, steps=args.steps, resume=args.resume,
        device=None if args.device == "auto" else args.device, overrides=overrides,
        progress=not args.no_progress,
    )
    last = info.metrics[-1] if info.metrics else {}
    languages = f"{info.data['source_language'] or '?'} -> {info.data['target_language'] or '?'}"
    corpus = info.data
    print(f"corpus: {args.pairs}: {corpus['pairs']} pairs ({corpus['held_out']} held out); "
          f"skipped {corpus['skipped_empty']} empty lines, {corpus['skipped_incomplete']} "
          f"units without both languages, {corpus['too_long']} over-long pairs")
    print(f"checkpoint: {args.out} ({languages}, step {info.step}, held-out loss "
          f"{last.get('val_loss')}, BLEU {last.get('bleu')}, chrF {last.get('chrf')})")
    print(f"next: nightlamp export {args.out} --out MODEL_DIR")
    return 0


def run_export(args: argparse.Namespace) -> int:
    export = _training_module("training.export")
    result = export.export_checkpoint(args.checkpoint, args.out, quantize=args.quantize,
                                      overwrite=args.force)
    print(result.report.summary())
    print(f"model folder: {result.folder} (report in verify_report.json)")
    print(f"try: {result.example}")
    return 0
