"""``nightlamp chat``: a conversation with a model in the terminal.

Answers stream as they are generated; Ctrl-C stops the current answer (the conversation goes
on), Ctrl-D or ``/exit`` leaves. When the conversation outgrows the model's context, the oldest
turns are left out of the prompt (the system prompt is always kept) and a note says so.
"""

from __future__ import annotations

import argparse
import sys
import threading
from typing import Any

from commands.options import add_model_option, checked_text
from engine.conversation import CHAT_MAX_TOKENS, answer_reserve, fit_to_context
from engine.device import DEVICES
from engine.errors import ConfigError
from engine.generation import GenerationConfig, generate
from engine.model import load_model, require_decoder
from engine.sampling import SamplingSettings

HELP = "Type a message. /reset starts over, /exit leaves; Ctrl-C stops an answer."


def register(subcommands: Any) -> None:
    parser = subcommands.add_parser("chat", help="chat with a model in the terminal")
    add_model_option(parser)
    parser.add_argument("--system", default=None, help="system prompt")
    parser.add_argument("--temperature", type=float, default=SamplingSettings().temperature,
                        help="0 means greedy")
    parser.add_argument("--max-tokens", type=int, default=CHAT_MAX_TOKENS,
                        help="longest answer, in tokens")
    parser.add_argument("--device", choices=DEVICES, default="auto")
    parser.add_argument("--context", type=int, default=None,
                        help="context length in tokens (default: the model's)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.max_tokens < 1:
        raise ConfigError(f"--max-tokens must be >= 1 (got {args.max_tokens})")
    system = checked_text(args.system, "--system") if args.system else None
    config = GenerationConfig(max_new_tokens=args.max_tokens,
                              sampling=SamplingSettings(temperature=args.temperature))
    model = require_decoder(load_model(args.model, device=args.device,
                                       context_length=args.context))
    messages: list[dict[str, str]] = []
    if system:
        messages.append({"role": "system", "content": system})
    print(f"{model.name} on {model.device}. {HELP}", file=sys.stderr)
    while True:
        try:
            line = input("\nyou> ")
        except EOFError:
            print(file=sys.stderr)
            return 0
        except UnicodeDecodeError as error:  # a stdin decoded strictly (not surrogateescape)
            raise ConfigError(f"stdin is not UTF-8 text (byte 0x{error.object[error.start]:02x}); "
                              "convert it to UTF-8 first (e.g. with iconv -t UTF-8)") from None
        text = checked_text(line, "stdin").strip()
        if not text:
            continue
        if text == "/exit":
            return 0
        if text == "/reset":
            del messages[int(bool(args.system)):]
            print("(conversation cleared)", file=sys.stderr)
            continue
        messages.append({"role": "user", "content": text})
        reserve = answer_reserve(model.manifest.context_length, args.max_tokens)
        prompt, dropped = fit_to_context(model, messages, reserve)
        if dropped:
            print(f"(the {dropped} oldest messages no longer fit the context and were left "
                  "out of the prompt)", file=sys.stderr)
        cancel = threading.Event()
        answer: list[str] = []
        sys.stdout.write(f"{model.name}> ")
        try:
            for chunk in generate(model, prompt, config, cancel.is_set):
                answer.append(chunk.text)
                sys.stdout.write(chunk.text)
                sys.stdout.flush()
        except KeyboardInterrupt:
            cancel.set()
            sys.stdout.write(" [stopped]")
        sys.stdout.write("\n")
        messages.append({"role": "assistant", "content": "".join(answer)})
