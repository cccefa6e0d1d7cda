"""Command-line options several subcommands share."""

from __future__ import annotations

import argparse

from engine.device import DEVICES
from engine.errors import ConfigError


def add_device_options(parser: argparse.ArgumentParser) -> None:
    """``--device auto|cpu|cuda`` and ``--threads N`` (check it with `thread_count`)."""
    parser.add_argument("--device", choices=DEVICES, default="auto")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads (default: ONNX Runtime's choice)")


def thread_count(args: argparse.Namespace) -> int | None:
    """``--threads``, refused with one line unless it is at least 1."""
    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads must be >= 1 (got {args.threads})")
    return args.threads
