"""``nightlamp translate-eval``: how well a model translates, measured (chrF, 0..1) and timed.

On the built-in sentences (``engine.translate.evaluate``) for ``--from``/``--to``, or, with
neither, for every built-in pair the model translates; or on the user's own ``--pairs FILE.tsv``
(``source<TAB>reference`` per line, which needs ``--from`` and ``--to``). One line per pair on
stdout, or with ``--json`` one JSON object (the desktop app runs this command for its Models
panel, reading ``--json-progress`` lines on stderr). Bad input is found before the model loads:
one line and exit status 2.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from commands.options import add_device_options, add_model_option, thread_count
from commands.progress import ProgressPrinter
from engine.errors import ConfigError
from engine.model import load_model
from engine.translate import make_translator
from engine.translate.evaluate import (
    BUILTIN_PAIRS,
    EvalResult,
    Pair,
    builtin_pairs,
    evaluate_pair,
    read_pairs,
)
from engine.translate.languages import check_tag
from engine.translate.translators import PairChecking, Translator, same_or_error


def register(subcommands: Any) -> None:
    parser = subcommands.add_parser(
        "translate-eval", help="measure how well a model translates (chrF against references)",
        description="Translate reference sentences and score the answers with chrF (0: nothing "
                    "alike, 1: identical). Without --from/--to: every built-in pair the model "
                    "translates (en->de, en->fr, en->zh, de->en, fr->en, zh->en).",
    )
    add_model_option(parser)
    parser.add_argument("--from", dest="source", metavar="LANG", help="source language")
    parser.add_argument("--to", dest="target", metavar="LANG", help="target language")
    parser.add_argument("--pairs", type=Path, metavar="FILE.tsv",
                        help="your own sentences: 'source<TAB>reference' per line, UTF-8 "
                             "(needs --from and --to)")
    add_device_options(parser)
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object: model and one result per pair")
    parser.add_argument("--json-progress", action="store_true", help=argparse.SUPPRESS)
    parser.set_defaults(handler=run)


def _jobs(args: argparse.Namespace) -> list[tuple[str, str, list[Pair]]]:
    """(source, target, pairs) to evaluate, all checked before any model loads."""
    if (args.source is None) != (args.target is None):
        raise ConfigError("pass both --from and --to, or neither (every built-in pair)")
    if args.source is None:
        if args.pairs is not None:
            raise ConfigError("--pairs needs --from and --to (the file's languages)")
        return [(source, target, builtin_pairs(source, target))
                for source, target in BUILTIN_PAIRS]
    source, target = check_tag(args.source, "source"), check_tag(args.target, "target")
    same_or_error(source, target)
    pairs = read_pairs(args.pairs) if args.pairs is not None else builtin_pairs(source, target)
    return [(source, target, pairs)]


def _can_translate(translator: Translator, source: str, target: str) -> bool:
    if not isinstance(translator, PairChecking):
        return True
    try:
        translator.check_pair(source, target)
    except ConfigError:
        return False
    return True


def run(args: argparse.Namespace) -> int:
    jobs = _jobs(args)
    translator = make_translator(load_model(args.model, device=args.device,
                                            threads=thread_count(args)))
    if args.source is None:  # every built-in pair: only those the model translates
        jobs = [job for job in jobs if _can_translate(translator, job[0], job[1])]
        if not jobs:
            raise ConfigError(f"{translator.name} translates none of the built-in pairs; pass "
                              "--from, --to and --pairs FILE.tsv with your own sentences")
    printer = ProgressPrinter(args.json_progress)
    total = sum(len(pairs) for _, _, pairs in jobs)
    offset = 0
    results: list[tuple[str, str, EvalResult]] = []
    for source, target, pairs in jobs:
        stage = f"measuring {source}→{target}"

        def progress(done: int, _count: int, stage: str = stage, offset: int = offset) -> None:
            printer(stage, offset + done, total)  # one bar for the whole run

        results.append((source, target, evaluate_pair(translator, source, target, pairs,
                                                      progress=progress)))
        offset += len(pairs)
    data = str(args.pairs) if args.pairs is not None else "built-in"
    if args.json:
        print(json.dumps({"model": translator.name, "data": data, "results": [
            {"source": source, "target": target, **result.to_json()}
            for source, target, result in results]}, ensure_ascii=False))
        return 0
    for source, target, result in results:
        print(f"{source}→{target}: chrF {result.chrf:.2f} ({result.sentences} sentences, "
              f"{result.seconds:.1f} s, {data})")
    return 0
