"""Entry point of ``nightlamp-gui`` (Windows and macOS): the app window, with no console.

A windowed executable has no standard streams, so everything goes to the window; the command
line stays with the console ``nightlamp`` executable next to it in the same bundle. Arguments
that start with a subcommand are run as that command.
"""

import multiprocessing
import os
import sys

from commands.main import build_parser, main

if __name__ == "__main__":
    multiprocessing.freeze_support()
    # No console: the streams are None, and a print or a log line would raise. Discard them.
    for stream in ("stdout", "stderr"):
        if getattr(sys, stream) is None:
            setattr(sys, stream, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115
    # A subcommand is run as asked (the window starts `nightlamp models pull` and the like
    # through the console executable, but this one must not turn them into `gui` options).
    arguments = sys.argv[1:]
    if not arguments or arguments[0] not in build_parser().parse_args([]).available_commands:
        arguments = ["gui", *arguments]
    sys.exit(main(arguments))
