"""``nightlamp models``: list, inspect, remove, import and pull models in the local store.

``import`` and ``pull`` build ONNX graphs with the importers in ``convert.importers`` (numpy and
onnx only), loaded by name when they run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from commands.progress import ProgressPrinter
from engine.model_list import describe_model, list_models
from engine.store import (
    DEFAULT_MODEL_NAME,
    check_model_name,
    installed_folder,
    models_dir,
    remove_model,
)

IMPORT_PRECISIONS = ("int4", "int8", "fp16", "fp32")


def register(subcommands: Any) -> None:
    models = subcommands.add_parser("models", help="list, import, pull and remove models")
    actions = models.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="installed models")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=run_list)
    info = actions.add_parser("info", help="details of one model")
    info.add_argument("name")
    info.set_defaults(handler=run_info)
    remove = actions.add_parser("remove", help="delete an installed model")
    remove.add_argument("name")
    remove.set_defaults(handler=run_remove)
    imports = actions.add_parser(
        "import", help="import a .gguf file or a Hugging Face folder",
        description="Import a GGUF file (Llama family, Qwen2), a Hugging Face folder "
                    "(config.json + *.safetensors + tokenizer.json), a Marian / OPUS-MT "
                    "translation folder (+ source.spm, target.spm, vocab.json) or an Optimum "
                    "Marian ONNX export into the model store.",
    )
    imports.add_argument("path", type=Path)
    imports.add_argument("--name", help="store name (default: from the file or folder)")
    imports.add_argument("--precision", choices=IMPORT_PRECISIONS, default="int4",
                         help="int4 (default, CPU), int8, fp16 (CUDA) or fp32 (reference)")
    imports.add_argument("--force", action="store_true", help="replace a model of that name")
    imports.add_argument("--no-check", action="store_true",
                         help="skip the check against a numpy forward pass of the weights")
    imports.add_argument("--json-progress", action="store_true", help=argparse.SUPPRESS)
    imports.set_defaults(handler=run_import)
    pull = actions.add_parser("pull", help=f"download and install a catalog model (e.g. "
                                           f"{DEFAULT_MODEL_NAME})")
    pull.add_argument("name", nargs="?", default=DEFAULT_MODEL_NAME)
    pull.add_argument("--json-progress", action="store_true", help=argparse.SUPPRESS)
    pull.set_defaults(handler=run_pull)


def run_list(args: argparse.Namespace) -> int:
    rows = list_models()
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    if not rows:
        print(f"no models in {models_dir()}; try: nightlamp models pull")
        return 0
    print(f"{'NAME':<28} {'ARCH':<20} {'PARAMS':>8} {'PREC':<5} {'SIZE':>9} {'CONTEXT':>7}  TASKS")
    for row in rows:
        if "error" in row:
            print(f"{row['name']:<28} (broken: {row['error']})")
            continue
        params = f"{row['parameters'] / 1e6:.0f}M" if row["parameters"] else "?"
        mark = " *" if row["default"] else ""
        print(f"{row['name'] + mark:<28} {row['architecture']:<20} {params:>8} "
              f"{row['precision']:<5} {row['size_mb']:>7.1f}MB {row['context']:>7}  "
              f"{','.join(row['tasks'])}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    installed_folder(args.name)
    print(json.dumps(describe_model(args.name), indent=2, ensure_ascii=False))
    return 0


def run_remove(args: argparse.Namespace) -> int:
    removed = remove_model(args.name)
    if removed.link_target is not None:
        print(f"removed {args.name} (a link to {removed.link_target}; that folder was left as it "
              "is)")
    else:
        print(f"removed {args.name} ({removed.folder})")
    return 0


def _print_report(folder: Path, model: Any, check: Any, precision: str) -> None:
    report = model.tensor_report
    for kind in ("repacked", "requantized", "dequantized"):
        if report.get(kind):
            print(f"{kind}: {len(report[kind])} tensors", file=sys.stderr)
    affine = [t for t in report.get("requantized", []) if "Q4_1" in t or "Q4_K" in t]
    if affine and precision == "int4":
        print(f"note: {len(affine)} Q4_1/Q4_K tensors were rounded again to 4 bits (their "
              "float minimums have no exact 4-bit form in ONNX Runtime's fast kernels); "
              "--precision int8 keeps them exact at about the same speed on a CPU",
              file=sys.stderr)
    for note in report.get("notes", []):  # e.g. padding rows of the embedding left out
        print(f"note: {note}", file=sys.stderr)
    if check is not None:
        print(check.summary(), file=sys.stderr)
    print(f"installed: {folder}")


def run_import(args: argparse.Namespace) -> int:
    if args.name is not None:
        check_model_name(args.name, "--name")  # before minutes of reading the checkpoint
    from convert.importers import service  # builds ONNX graphs: loaded only when it runs
    result = service.import_model(args.path, args.name, args.precision, args.force,
                                  ProgressPrinter(args.json_progress),
                                  check=not args.no_check)
    _print_report(result.folder, result.model, result.check, args.precision)
    return 0


def run_pull(args: argparse.Namespace) -> int:
    from convert.importers import service
    folder, check = service.pull_model(args.name,
                                       progress=ProgressPrinter(args.json_progress))
    if check is not None:
        print(check.summary(), file=sys.stderr)
    print(f"{'installed' if check else 'already installed'}: {folder}")
    return 0
