"""``nightlamp serve``: the installed models behind an OpenAI-compatible API (engine/server).

Point any OpenAI client at ``http://127.0.0.1:8765/v1`` (any API key unless one is set) and
name a model of ``nightlamp models list``. It listens on loopback only unless ``--host`` says
otherwise, and then an API key is required. Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import Any

from commands.options import add_device_options, add_model_option, thread_count
from engine.errors import ConfigError

API_KEY_VARIABLE = "NIGHTLAMP_API_KEY"


def register(subcommands: Any) -> None:
    from engine.server import (  # light: constants only
        DEFAULT_CONTEXT,
        DEFAULT_HOST,
        DEFAULT_PARALLEL,
        DEFAULT_PORT,
    )

    parser = subcommands.add_parser("serve", help="serve the installed models over an "
                                                  "OpenAI-compatible HTTP API (loopback)")
    add_model_option(parser, help="model to load at start (a store name; default: the "
                                  "default model); requests may name any installed model")
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help=f"address to listen on (default {DEFAULT_HOST}: this machine "
                             "only); any other needs --api-key")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"port (default {DEFAULT_PORT}; 0 picks a free one)")
    parser.add_argument("--api-key", default=None,
                        help=f"require this key (Authorization: Bearer KEY); default: "
                             f"${API_KEY_VARIABLE} if set")
    add_device_options(parser)
    parser.add_argument("--context", type=int, default=DEFAULT_CONTEXT,
                        help=f"longest prompt + answer per request, in tokens (default "
                             f"{DEFAULT_CONTEXT}, at most the model's)")
    parser.add_argument("--parallel", type=int, default=DEFAULT_PARALLEL,
                        help=f"requests decoded side by side per model (default "
                             f"{DEFAULT_PARALLEL}; fewer when their caches would not fit "
                             "memory)")
    parser.add_argument("--max-tokens", type=int, default=None,
                        help="the longest answer a request may ask for (default 2048)")
    parser.add_argument("--max-loaded", type=int, default=2,
                        help="chat models kept loaded at once (default 2)")
    parser.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                        help="let web pages from ORIGIN call the server (repeatable; '*' for "
                             "any); none by default")
    parser.set_defaults(handler=run)


def _check(args: argparse.Namespace) -> None:
    for option, value, low in (("--port", args.port, 0), ("--context", args.context, 2),
                               ("--parallel", args.parallel, 1),
                               ("--max-loaded", args.max_loaded, 1)):
        if value < low:
            raise ConfigError(f"{option} must be >= {low} (got {value})")
    if args.port > 65535:
        raise ConfigError(f"--port must be at most 65535 (got {args.port})")
    if args.max_tokens is not None and args.max_tokens < 1:
        raise ConfigError(f"--max-tokens must be >= 1 (got {args.max_tokens})")


def run(args: argparse.Namespace) -> int:
    _check(args)
    from engine.server.registry import ModelRegistry
    from engine.server.runner import RunningServer
    from engine.store import default_model_name, installed_models

    registry = ModelRegistry(device=args.device, threads=thread_count(args),
                             capacity=args.context, slots=args.parallel,
                             max_loaded=args.max_loaded)
    server = RunningServer(registry, host=args.host, port=args.port,
                           api_key=args.api_key or os.environ.get(API_KEY_VARIABLE) or None,
                           cors_origins=frozenset(args.cors_origin),
                           max_tokens=args.max_tokens)
    first = args.model or default_model_name()
    if first is not None and first not in installed_models():
        raise ConfigError(f"model {first!r} is not installed; see `nightlamp models list`")
    if first is None and not installed_models():
        print("no models are installed yet: get one with `nightlamp models pull`",
              file=sys.stderr)
    server.start()
    if first is not None:
        try:
            server.preload(first)
        except BaseException:
            server.stop()
            raise
    loaded = f"{first} loaded; " if first else ""
    # The app reads this line to learn the address (port 0 picks one).
    print(f"Serving at {server.url} ({loaded}Ctrl-C stops)", flush=True)
    stopped = threading.Event()
    # SIGTERM (the app's switch, a service manager) stops it as cleanly as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        while not stopped.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        print("stopping", file=sys.stderr)
        server.stop()
    return 0
