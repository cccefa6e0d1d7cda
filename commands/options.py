"""Command-line options several subcommands share, and the checks on text a user passes in."""

from __future__ import annotations

import argparse
import re
import sys

from engine.device import DEVICES, cpu_cores
from engine.errors import ConfigError

# NUL, and the lone surrogates that stand for undecodable bytes (``surrogateescape``).
_NOT_TEXT = re.compile("[\x00\ud800-\udfff]")


MODEL_HELP = "model folder or name in the model store (default: the default model)"


def add_model_option(parser: argparse.ArgumentParser, help: str = MODEL_HELP) -> None:
    """``-m/--model MODEL``: a model folder or store name; None (left out) = the default model.

    `help` replaces the usual text where a command takes only some models (``translate``).
    """
    parser.add_argument("-m", "--model", default=None, help=help)


def add_device_options(parser: argparse.ArgumentParser) -> None:
    """``--device auto|cpu|cuda`` and ``--threads N`` (check it with `thread_count`)."""
    parser.add_argument("--device", choices=DEVICES, default="auto")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads, at most the CPU cores (default: one per "
                             "physical core, and fewer while other programs keep the CPU "
                             "busy)")


def thread_count(args: argparse.Namespace) -> int | None:
    """``--threads``, refused with one line unless it is between 1 and the usable CPU cores.

    More threads than cores only slows a run down, and a huge count makes ONNX Runtime try to
    start that many threads (a million ran for minutes, grew to gigabytes and crashed).
    """
    if args.threads is None:
        return None
    if args.threads < 1:
        raise ConfigError(f"--threads must be >= 1 (got {args.threads})")
    cores = cpu_cores()
    if args.threads > cores:
        raise ConfigError(f"--threads {args.threads} is more than the {cores} CPU cores this "
                          f"machine lets Nightlamp use; pass at most --threads {cores}, or leave "
                          "it out")
    return args.threads


def checked_text(text: str, source: str) -> str:
    """`text`, unless it holds undecodable bytes or NUL characters (a one-line ConfigError).

    Python decodes command-line arguments, and stdin in a UTF-8 or C locale, with
    ``surrogateescape``: bytes that are not UTF-8 arrive as lone surrogates, which the tokenizer
    cannot take. `source` names where the text came from ("stdin", "PROMPT").
    """
    found = _NOT_TEXT.search(text)
    if found is None:
        return text
    char, index = found.group(), found.start()
    if char == "\x00":
        raise ConfigError(f"{source} contains a NUL character (at character {index}), so it is "
                          "binary, not text; pass plain UTF-8 text")
    byte = f"byte 0x{ord(char) - 0xDC00:02x}" if "\udc80" <= char <= "\udcff" else "a surrogate"
    raise ConfigError(f"{source} is not UTF-8 text ({byte} at character {index}); convert it to "
                      "UTF-8 first (e.g. with iconv -t UTF-8)")


def read_stdin_text() -> str:
    """All of stdin as UTF-8 text (a UTF-8 byte-order mark dropped), checked by `checked_text`."""
    raw = getattr(sys.stdin, "buffer", None)
    if raw is None:  # a text stream with no bytes underneath (tests, embedding programs)
        return checked_text(sys.stdin.read(), "stdin")
    data = raw.read()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ConfigError(f"stdin is not UTF-8 text (byte 0x{data[error.start]:02x} at offset "
                          f"{error.start}); convert it to UTF-8 first (e.g. with iconv -t "
                          "UTF-8)") from None
    return checked_text(text, "stdin")
