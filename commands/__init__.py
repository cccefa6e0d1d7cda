"""The ``nightlamp`` command line: one entry point, subcommands registered by each package."""

from __future__ import annotations
