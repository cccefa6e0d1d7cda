"""Entry point of the ``nightlamp`` command: builds the parser, runs a subcommand, maps errors.

Subcommands live next to the code they drive and register themselves through a ``register``
function; they are imported by module name so the engine never imports torch or Qt itself
(training and desktop commands import those only when they run). Expected failures print one line
and exit with status 2; nothing prints a traceback for them.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from importlib import metadata

from engine.errors import EngineError

# Packages that add subcommands; a package missing from this install (e.g. training in the app
# bundle) is skipped.
COMMAND_MODULES = (
    "engine.cli.generate", "engine.cli.chat", "engine.cli.models", "engine.cli.summarize",
    "engine.cli.translate", "engine.cli.evaluate", "engine.cli.bench",
    "training.cli", "desktop.cli",
)
USER_ERROR = 2
INTERRUPTED = 130


def version() -> str:
    try:
        return metadata.version("nightlamp")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nightlamp",
        description="Nightlamp: an offline assistant. Nothing leaves your machine.",
    )
    parser.add_argument("--version", action="version", version=f"nightlamp {version()}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    parser.add_argument("--self-test", nargs="?", const="", default=None, metavar="MODEL",
                        help="check this installation on the CPU (generate, summarize a PDF, "
                             "translate) with the given or the default model; exit 0 if "
                             "all work")
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name and module_name.startswith(error.name):
                continue
            raise
        module.register(subcommands)
    parser.set_defaults(available_commands=tuple(subcommands.choices))
    return parser


def has_display() -> bool:
    """Whether a window can be shown: always off Linux, else when X11 or Wayland is there."""
    if not sys.platform.startswith("linux"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _wants_desktop(args: argparse.Namespace) -> bool:
    """Plain ``nightlamp`` from a terminal on a desktop opens the app; so does the packaged app
    started with no terminal at either end (a file manager, a launcher). Output redirected from
    a terminal, or no display, gets the help."""
    if "gui" not in args.available_commands or not has_display():
        return False
    terminal = [stream is not None and stream.isatty() for stream in (sys.stdin, sys.stdout)]
    return all(terminal) or (getattr(sys, "frozen", False) and not any(terminal))


def _run_self_test(args: argparse.Namespace) -> int:
    from engine.self_test import run_self_test  # imported when asked: it loads the summarizers

    return run_self_test(args.self_test or None, version())


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; Ctrl-C at any point in it (loading, generating) exits with 130
    and one line, never a traceback."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("nightlamp: interrupted", file=sys.stderr)
        return INTERRUPTED


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()  # imports ONNX Runtime and the subcommands: takes a moment
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.self_test is not None and not getattr(args, "handler", None):
        args.handler = _run_self_test
    if not getattr(args, "handler", None):
        if _wants_desktop(args):
            args = parser.parse_args(["gui"])
        else:
            parser.print_help()
            return 0
    try:
        return int(args.handler(args) or 0)
    except EngineError as error:
        print(f"nightlamp: error: {error}", file=sys.stderr)
        return USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
