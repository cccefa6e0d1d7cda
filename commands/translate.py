"""``nightlamp translate``: translate a document (or stdin), keeping its structure.

The translation goes to stdout or ``-o OUT`` (whose suffix picks the format; the input's by
default), progress to stderr; ``--json`` prints one JSON object with the translation and its
report, segment by segment. Every answer is checked before it goes into the document; segments
that failed a check (kept in the source language), and glossary terms not translated as
required, are listed on stderr, then one summary line with the mean confidence and, when most of
the document failed, a warning that the model is not fit for the language pair.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from commands.options import (
    add_device_options,
    add_model_option,
    read_stdin_text,
    thread_count,
)
from commands.progress import ProgressPrinter
from engine.documents import ReadLimits, check_file
from engine.documents.limits import ReadGuard
from engine.errors import ConfigError, DocumentError
from engine.model import load_model
from engine.translate import (
    AUTO,
    TranslationResult,
    check_tag,
    load_glossary,
    make_translator,
    plan,
    translate_file,
    translate_text,
)
from engine.translate.files import write_text
from engine.translate.report import reason_text

SHOWN = 10  # flagged segments and glossary misses listed on stderr


def register(subcommands: Any) -> None:
    parser = subcommands.add_parser(
        "translate", help="translate a document (txt, md, html, docx; pdf to text)",
        description="Translate a document, keeping its structure; FILE '-' reads text from "
                    "stdin. The translation goes to stdout or -o OUT, progress to stderr.",
    )
    parser.add_argument("file", metavar="FILE|-")
    parser.add_argument("--to", required=True, metavar="LANG",
                        help="target language (BCP-47 tag, e.g. de, fr, zh, pt-BR)")
    parser.add_argument("--from", dest="source", default=AUTO, metavar="LANG",
                        help="source language (default: auto, detected from the text)")
    add_model_option(parser, help="model folder or name: an instruct model or a translation "
                     "(encoder-decoder) model (default: the default model)")
    parser.add_argument("-o", "--output", type=Path, metavar="OUT",
                        help="write the translation here; .txt, .md, .html or .docx (a DOCX "
                             "input needs it)")
    parser.add_argument("--glossary", type=Path, metavar="FILE",
                        help="required translations: one 'term<TAB>translation' per line")
    parser.add_argument("--beam", type=int, default=1, metavar="N",
                        help="beam search width for translation models (default 1: greedy)")
    parser.add_argument("--round-trip", action="store_true",
                        help="also translate every answer back and score it against the source "
                             "(a better confidence figure, twice the time)")
    add_device_options(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object: "
                        "translation, source, target, segments, flagged, glossary_misses, "
                        "seconds, model, summary, warning and one record per segment")
    parser.set_defaults(handler=run)




def _report(result: TranslationResult) -> None:
    for flag in result.flagged[:SHOWN]:
        why = reason_text(flag.reason)
        print(f"nightlamp: segment {flag.segment}: {why}: {flag.source[:80]!r}",
              file=sys.stderr)
    for miss in result.glossary_misses[:SHOWN]:
        print(f"nightlamp: segment {miss.segment}: glossary term {miss.term!r} should be "
              f"{miss.expected!r}: {miss.got[:80]!r}", file=sys.stderr)
    more = len(result.flagged) + len(result.glossary_misses) - \
        min(len(result.flagged), SHOWN) - min(len(result.glossary_misses), SHOWN)
    if more > 0:
        print(f"nightlamp: ... and {more} more (see --json)", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    # Everything that can be wrong with the request is checked before the model loads.
    target = check_tag(args.to, "target")
    source = check_tag(args.source, "source", allow_auto=True)
    stdin = args.file == "-"
    path = None if stdin else Path(args.file)
    plan(path, args.output)
    if path is not None:
        limits = ReadLimits()
        check_file(path, ReadGuard(path.name, limits.timeout_s), limits)
    if not 1 <= args.beam <= 16:
        raise ConfigError(f"--beam must be between 1 and 16 (got {args.beam})")
    glossary = load_glossary(args.glossary) if args.glossary else None
    text = read_stdin_text() if stdin else None
    if text is not None and len(text) > ReadLimits().max_chars:
        raise DocumentError(f"stdin: too much text ({len(text):,} characters, limit "
                            f"{ReadLimits().max_chars:,}); split it")
    translator = make_translator(load_model(args.model, device=args.device,
                                            threads=thread_count(args)), beam_size=args.beam)
    progress = ProgressPrinter()
    if path is None:
        assert text is not None
        kind = "markdown" if args.output is not None and \
            args.output.suffix.lower() in (".md", ".markdown") else "txt"
        result = translate_text(text, translator, target, source, kind=kind, glossary=glossary,
                                progress=progress, round_trip=args.round_trip)
        if args.output is not None:
            write_text(args.output, result.translation)
            result = replace(result, output=args.output)
    else:
        result = translate_file(path, translator, target, source, output=args.output,
                                glossary=glossary, progress=progress, round_trip=args.round_trip)
    if args.json:
        print(json.dumps(result.to_json(), ensure_ascii=False))
        return 0
    if args.output is None:
        sys.stdout.write(result.translation)
        if not result.translation.endswith("\n"):
            sys.stdout.write("\n")
    _report(result)
    where = f" -> {args.output}" if args.output is not None else ""
    print(f"[{result.source}->{result.target}, {result.summary_line()}, "
          f"{result.seconds:.1f} s{where}]", file=sys.stderr)
    warning = result.warning()
    if warning:
        print(f"nightlamp: warning: {warning}", file=sys.stderr)
    return 0
