"""``nightlamp generate``: stream a completion (or a chat answer) from a model to stdout."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from commands.options import (
    add_device_options,
    add_model_option,
    checked_text,
    read_stdin_text,
    thread_count,
)
from engine.errors import ConfigError
from engine.generation import GenerationConfig, generate
from engine.model import load_model
from engine.sampling import SamplingSettings


def register(subcommands: Any) -> None:
    defaults = SamplingSettings()
    parser = subcommands.add_parser(
        "generate", help="generate text with a model",
        description="Stream text from a model. PROMPT '-' reads the prompt from stdin.",
    )
    parser.add_argument("prompt", metavar="PROMPT")
    add_model_option(parser)
    parser.add_argument("--max-tokens", type=int, default=256, help="new tokens at most")
    parser.add_argument("--temperature", type=float, default=defaults.temperature,
                        help="0 means greedy")
    parser.add_argument("--top-k", type=int, default=defaults.top_k, help="0 disables")
    parser.add_argument("--top-p", type=float, default=defaults.top_p, help="1 disables")
    parser.add_argument("--min-p", type=float, default=defaults.min_p, help="0 disables")
    parser.add_argument("--repetition-penalty", type=float,
                        default=defaults.repetition_penalty, help="1 disables")
    parser.add_argument("--seed", type=int, default=None, help="seed for sampling")
    parser.add_argument("--stop", action="append", default=[], metavar="TEXT",
                        help="stop before this text (repeatable)")
    add_device_options(parser)
    parser.add_argument("--context", type=int, default=None,
                        help="context length in tokens (default: the model's)")
    parser.add_argument("--chat", action="store_true",
                        help="send PROMPT as a user message through the chat template")
    parser.add_argument("--system", default=None, help="system prompt (with --chat)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object at the end instead of streaming")
    parser.set_defaults(handler=run)


def _prompt(args: argparse.Namespace) -> str | list[dict[str, str]]:
    text = read_stdin_text() if args.prompt == "-" else checked_text(args.prompt, "PROMPT")
    if not args.chat:
        if args.system:
            raise ConfigError("--system needs --chat")
        return text
    system = checked_text(args.system, "--system") if args.system else None
    messages = [{"role": "system", "content": system}] if system else []
    return [*messages, {"role": "user", "content": text}]


def run(args: argparse.Namespace) -> int:
    sampling = SamplingSettings(
        temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, min_p=args.min_p,
        repetition_penalty=args.repetition_penalty, seed=args.seed,
    )
    stops = tuple(checked_text(stop, "--stop") for stop in args.stop)
    config = GenerationConfig(max_new_tokens=args.max_tokens, sampling=sampling,
                              stop_strings=stops)
    prompt = _prompt(args)
    model = load_model(args.model, device=args.device, threads=thread_count(args),
                       context_length=args.context)
    pieces: list[str] = []
    for chunk in generate(model, prompt, config):
        pieces.append(chunk.text)
        if not args.json and chunk.text:
            sys.stdout.write(chunk.text)
            sys.stdout.flush()
        if chunk.stats is None:
            continue
        stats = chunk.stats
        if args.json:
            result = {
                "text": "".join(pieces), "finish_reason": chunk.finish_reason,
                "prompt_tokens": stats.prompt_tokens, "completion_tokens": stats.completion_tokens,
                "ttft_s": round(stats.ttft_s, 4), "tokens_per_s": round(stats.tokens_per_s, 2),
                "device": stats.device, "model": model.name,
            }
            print(json.dumps(result, ensure_ascii=False))
        else:
            sys.stdout.write("\n")
            print(f"[{stats.completion_tokens} tokens, {stats.tokens_per_s:.1f} tok/s, first "
                  f"token {stats.ttft_s:.2f}s, {stats.device}, {chunk.finish_reason}]",
                  file=sys.stderr)
    return 0
