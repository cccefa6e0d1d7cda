"""``nightlamp summarize``: summarize a document (or stdin) to stdout, progress on stderr."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from commands.options import (
    add_device_options,
    add_model_option,
    read_stdin_text,
    thread_count,
)
from commands.progress import ProgressPrinter
from engine.documents import Document, read_document, read_text
from engine.errors import ModelNotFoundError
from engine.model import Model, load_model
from engine.summarize import (
    DEFAULT_METHOD,
    LENGTHS,
    METHODS,
    Grounding,
    SummaryResult,
    summarize,
)


def register(subcommands: Any) -> None:
    parser = subcommands.add_parser(
        "summarize", help="summarize a document (txt, md, html, pdf, docx)",
        description="Summarize a document; FILE '-' reads text from stdin. The summary goes to "
                    "stdout, progress to stderr.",
    )
    parser.add_argument("file", metavar="FILE")
    add_model_option(parser)
    parser.add_argument("--method", choices=METHODS, default=DEFAULT_METHOD,
                        help="extractive: the document's own key sentences, no model (nothing "
                             "invented); auto: the model writes it section by section, every "
                             "sentence checked against the source (a long section read through "
                             "its key sentences); abstractive: the same, reading every part")
    parser.add_argument("--length", choices=LENGTHS, default="medium",
                        help="short: a few sentences; medium: a paragraph, then a line per "
                             "section; long: a paragraph per section")
    parser.add_argument("--max-words", type=int, default=None, metavar="N",
                        help="extractive: about N words instead of --length")
    parser.add_argument("--language", default=None, metavar="TAG",
                        help="write the summary in this language (BCP-47, e.g. en, zh); "
                             "default: the document's")
    add_device_options(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object: summary, "
                        "method, chunks, seconds, input_words, input_tokens, grounding (sentences "
                        "checked, regenerated, replaced) and sections (title, pages, summary)")
    parser.set_defaults(handler=run)


def _document(name: str) -> Document:
    if name == "-":
        return read_text(read_stdin_text(), "stdin")
    return read_document(Path(name))


def _model(args: argparse.Namespace) -> Model | None:
    if args.method == "extractive":
        return None
    try:
        model = load_model(args.model, device=args.device, threads=thread_count(args))
        return model if isinstance(model, Model) else None  # a translation model: extractive
    except ModelNotFoundError:
        if args.method == "auto" and args.model is None:  # no model yet: still summarize
            print("nightlamp: no model installed; using the extractive method (run "
                  "'nightlamp models pull' for abstractive summaries)", file=sys.stderr)
            return None
        raise


def _report(result: SummaryResult, model: Model | None) -> dict[str, Any]:
    """The --json object."""
    def counts(grounding: Grounding) -> dict[str, Any]:
        return {"checked": grounding.checked, "regenerated": grounding.regenerated,
                "replaced": grounding.replaced, "unsupported": grounding.unsupported}

    return {"summary": result.summary, "method": result.method, "chunks": result.chunks,
            "seconds": round(result.seconds, 2), "input_words": result.input_words,
            "input_tokens": result.input_tokens, "language": result.language,
            "model": model.name if model else None,
            "grounding": counts(result.grounding) if result.grounding else None,
            "sections": [{"title": s.title, "level": s.level,
                          "pages": list(s.pages) if s.pages else None, "summary": s.summary,
                          "listing": s.listing, **counts(s.grounding)}
                         for s in result.sections]}


def run(args: argparse.Namespace) -> int:
    document = _document(args.file)
    model = _model(args)
    # Not streamed: a model's draft is checked against the document before it is shown, and
    # the checked text may differ (the app streams the draft, then shows the checked text).
    result = summarize(document, model, args.method, args.length, args.language,
                       progress=ProgressPrinter(), max_words=args.max_words)
    if args.json:
        print(json.dumps(_report(result, model), ensure_ascii=False))
        return 0
    print(result.summary)
    tokens = "" if result.input_tokens is None else f", {result.input_tokens:,} input tokens"
    checked = ""
    if result.grounding is not None:
        grounding = result.grounding
        checked = (f"; {grounding.checked} sentences checked against the source: "
                   f"{grounding.regenerated} regenerated, {grounding.replaced} replaced")
    print(f"[{result.method}, {result.chunks} part(s), {result.input_words:,} words{tokens}, "
          f"{result.seconds:.1f} s{checked}]", file=sys.stderr)
    return 0
