"""The packaged app's entry point: the ``nightlamp`` command, as in a source install.

Started with no arguments from a file manager or launcher it opens the app (commands/main.py
decides; Windows and macOS shortcuts start ``nightlamp-gui``, entry_gui.py).
"""

import multiprocessing
import sys

from commands.main import main

if __name__ == "__main__":
    # The PDF reader runs in a "spawn" child: in a frozen app that child starts this same
    # executable, which must hand over to multiprocessing before anything else runs.
    multiprocessing.freeze_support()
    sys.exit(main())
