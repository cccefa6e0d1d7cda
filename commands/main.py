"""Entry point of the ``nightlamp`` command: builds the parser, runs a subcommand, maps errors.

The command is the top of the layering: it may use every package (engine, convert, training,
desktop), and none of them imports it. Each subcommand is a module of this package with a
``register`` function; the heavy packages (torch for ``train``, Qt for ``gui``, the ONNX graph
builders for ``models import``) are imported only when their command runs, so ``nightlamp --help``
is quick and works in an install without the train extra. Expected failures print one line and
exit with status 2; nothing prints a traceback for them.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from importlib import metadata

from desktop.system_libs import has_display
from engine.errors import EngineError

# The subcommands, in the order of the help; one whose package is missing from this install is
# skipped.
COMMAND_MODULES = (
    "commands.generate", "commands.chat", "commands.models", "commands.summarize",
    "commands.translate", "commands.evaluate", "commands.bench",
    "commands.train", "commands.gui", "commands.docs", "commands.serve",
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


def _wants_desktop(args: argparse.Namespace) -> bool:
    """Plain ``nightlamp`` from a terminal on a desktop opens the app; so does the packaged app
    started with no terminal at either end (a file manager, a launcher). Output redirected from
    a terminal, or no display, gets the help."""
    if "gui" not in args.available_commands or not has_display():
        return False
    terminal = [stream is not None and stream.isatty() for stream in (sys.stdin, sys.stdout)]
    return all(terminal) or (getattr(sys, "frozen", False) and not any(terminal))


def _run_self_test(args: argparse.Namespace) -> int:
    from convert.importers.wheel_download import trust_report
    from engine.self_test import run_self_test  # imported when asked: it loads the summarizers

    return run_self_test(args.self_test or None, version(), [("downloads", trust_report)])


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
