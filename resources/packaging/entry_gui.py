"""Entry point of ``nightlamp-gui`` (Windows and macOS): the app window, with no console.

A windowed executable has no standard streams, so everything goes to the window; the command
line stays with the console ``nightlamp`` executable next to it in the same bundle.
"""

import multiprocessing
import sys

from engine.cli.main import main

if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main(["gui", *sys.argv[1:]]))
