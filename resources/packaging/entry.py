"""The packaged app's entry point: the ``nightlamp`` command, as in a source install.

Started with no arguments where a window can be shown and with no terminal at either end (a
file manager or desktop launcher on Linux), it opens the app instead of printing help; output
redirected from a terminal still gets the help. (Windows and macOS shortcuts start
``nightlamp-gui``, entry_gui.py.)
"""

import multiprocessing
import sys

from engine.cli.main import has_display, main

if __name__ == "__main__":
    # The PDF reader runs in a "spawn" child: in a frozen app that child starts this same
    # executable, which must hand over to multiprocessing before anything else runs.
    multiprocessing.freeze_support()
    arguments = sys.argv[1:]
    if not arguments and has_display() and not any(
            stream is not None and stream.isatty() for stream in (sys.stdin, sys.stdout)):
        arguments = ["gui"]
    sys.exit(main(arguments))
