"""``nightlamp bench``: how fast a model generates on this machine."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from commands.options import add_device_options, add_model_option, thread_count
from commands.progress import ProgressPrinter
from engine.benchmark import BENCH_TEXT, run_bench
from engine.errors import ConfigError


def register(subcommands: Any) -> None:
    parser = subcommands.add_parser(
        "bench", help="measure a model's generation speed",
        description="Greedy generation of exactly --new-tokens tokens after a --prompt-tokens "
                    "prompt; the first run is a warm-up, figures are medians over --runs.",
    )
    add_model_option(parser)
    parser.add_argument("--prompt-tokens", type=int, default=128, help="prompt length")
    parser.add_argument("--new-tokens", type=int, default=128, help="tokens to generate")
    parser.add_argument("--runs", type=int, default=3, help="measured runs after the warm-up")
    add_device_options(parser)
    parser.add_argument("--prompt-file", type=Path, default=None,
                        help="UTF-8 text the prompt is cut from (default: built-in prose)")
    parser.add_argument("--show-ids", action="store_true",
                        help="with --json: include the generated token ids")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run)


def _text(path: Path | None) -> str:
    if path is None:
        return BENCH_TEXT
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read the prompt file ({error}); give a UTF-8 text "
                          "file") from None
    if not text.strip():
        raise ConfigError(f"{path}: the prompt file is empty; give a file with text")
    return text


def run(args: argparse.Namespace) -> int:
    text = _text(args.prompt_file)
    printer = ProgressPrinter()

    def progress(done: int, total: int) -> None:
        printer("measuring", done, total)

    result = run_bench(args.model, args.prompt_tokens, args.new_tokens, args.runs,
                       args.device, thread_count(args), text, None if args.json else progress)
    if args.json:
        print(json.dumps(result.to_json(with_ids=args.show_ids)))
        return 0
    print(f"{result.model} ({result.precision}) on {result.device}: "
          f"{result.prompt_tokens}-token prompt, {result.new_tokens} new tokens, "
          f"{result.runs} runs")
    print(f"  load            {result.load_s:.2f} s")
    print(f"  first token     {result.ttft_s * 1000:.0f} ms "
          f"(prefill {result.prefill_tok_s:.0f} tokens/s)")
    print(f"  decode          {result.decode_tok_s:.1f} tokens/s "
          f"(min {result.decode_tok_s_min:.1f}, max {result.decode_tok_s_max:.1f})")
    print(f"  peak memory     {result.peak_rss_mb:.0f} MB")
    return 0
