"""The packaged app's entry point: the ``nightlamp`` command, as in a source install.

Started with no arguments where a window can be shown (a file manager, a desktop shortcut, a
macOS double-click: no terminal attached), it opens the app instead of printing help.
"""

import multiprocessing
import sys

from engine.cli.main import has_display, main

if __name__ == "__main__":
    # The PDF reader runs in a "spawn" child: in a frozen app that child starts this same
    # executable, which must hand over to multiprocessing before anything else runs.
    multiprocessing.freeze_support()
    arguments = sys.argv[1:]
    if not arguments and has_display() and not (sys.stdout and sys.stdout.isatty()):
        arguments = ["gui"]
    sys.exit(main(arguments))
