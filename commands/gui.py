"""``nightlamp gui``: opens the desktop app (``--screenshot`` for a headless picture of it)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from commands.options import add_model_option
from desktop.choices import DEVICES, LANGUAGES, PANELS, THEMES
from desktop.system_libs import check_before_qt, has_display
from engine.errors import ConfigError


def register(subcommands: Any) -> None:
    parser = subcommands.add_parser("gui", help="open the desktop app")
    add_model_option(parser, help="model to load (default model if left out)")
    parser.add_argument("--device", choices=DEVICES, default=None,
                        help="auto, cpu or cuda (default: the choice saved in the app)")
    parser.add_argument("--screenshot", type=Path, metavar="PATH",
                        help="save a PNG of the window and exit")
    parser.add_argument("--prompt", default=None, help="with --screenshot: answer this first")
    parser.add_argument("--panel", choices=(*PANELS, "models"),
                        default="chat", help="with --screenshot: the panel to show (and run "
                        "--prompt in)")
    parser.add_argument("--language", choices=LANGUAGES, default=None,
                        help="UI language for this run (default: the saved choice)")
    parser.add_argument("--theme", choices=THEMES, default=None,
                        help="light or dark for this run (default: the saved choice)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if not (os.environ.get("QT_QPA_PLATFORM") or has_display()):
        if args.screenshot is None:
            raise ConfigError("no display found (DISPLAY / WAYLAND_DISPLAY are not set); run "
                              "'nightlamp chat' to chat in the terminal, or use --screenshot")
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # a picture needs no screen
    check_before_qt()  # a missing X11 library would abort the process inside Qt
    from desktop.app import run as run_app  # Qt loads only when the app is wanted

    return run_app(args.model, args.device, args.screenshot, args.prompt, args.panel,
                   args.language, args.theme)
