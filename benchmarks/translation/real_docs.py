"""Document translation on real documents: nothing leaks, the structure is kept, the report says
how far to trust it (issue 22).

Translates real HTML documentation shipped by Debian (the Python 3.11 docs of ``python3.11-doc``
and the R manuals of ``r-doc-html``) into each target with a model (the default one unless
``-m``), through the app's own ``engine.translate.translate_file``, and checks every output:

- markers: no placeholder bracket (⟦ ⟧) anywhere in the output file, and no made-up look-alike
  marker symbol in its visible text (``integrity.invented_symbols`` of the output's text
  against the source's: a non-ASCII So/Sm/Co symbol the source lacks, repeated or glued to a
  digit), nor in any segment's accepted translation (``integrity.leaked_markers``);
- valid and structurally identical: the output parses (``html.parser`` and lxml) and has the
  source's exact sequence of tags, attributes (links, ids, classes), comments and declarations,
  with the text of ``pre``/``code``/``script``/``style`` unchanged (``structure``; lxml's
  repaired tree is compared too, so a stray ``<`` in translated text would show);
- the report: ``summary_line()``, ``warning()``, segments translated / retried / kept in the
  source, the mean confidence, the failed checks counted by name, and the seconds.

Big pages are cut to a trimmed copy first (``DOCUMENTS``: the named stretches removed, the page
ended before a marker and its open elements closed), written next to the outputs, so the figures
stay within a bounded model time; the trimmed copy is the source the output is compared with.

    PYTHONPATH=. .venv/bin/python benchmarks/translation/real_docs.py
    ... real_docs.py --docs appetite,r-intro --targets fr --out /tmp/real_docs --json figures.json

Prints a Markdown table (and each document's summary line and warning); ``--json`` writes the
raw figures (with every flagged segment).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from collections import Counter
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from engine.translate import make_translator, translate_file
from engine.translate.integrity import invented_symbols, leaked_markers

# The page-structure comparison the integrity tests use (tests/html_structure.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from html_structure import skeleton

PYTHON_DOCS = Path("/usr/share/doc/python3.11-doc/html")
R_MANUALS = Path("/usr/share/R/doc/manual")
BRACKETS = "⟦⟧"
VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
                  "param", "source", "track", "wbr"})


@dataclass(frozen=True)
class Document:
    """A real document and how it is trimmed (no cuts, no stop: the whole page)."""

    name: str
    path: Path
    cuts: tuple[tuple[str, str], ...] = ()  # (from, to): the stretch [from, to) is removed
    stop: str | None = None  # the page ends just before this (open elements closed)

    def trimming(self) -> str:
        if not self.cuts and self.stop is None:
            return "whole page"
        said = [f"removed {a!r}..{b!r}" for a, b in self.cuts]
        if self.stop:
            said.append(f"ended before {self.stop!r}")
        return "; ".join(said)


DOCUMENTS = [
    Document("appetite", PYTHON_DOCS / "tutorial/appetite.html"),
    Document("interpreter", PYTHON_DOCS / "tutorial/interpreter.html"),
    Document("keyword", PYTHON_DOCS / "library/keyword.html"),
    # Texinfo's one-page manual: the table of contents (about 200 links) is removed and the
    # page ends after sections 1.1 and 1.2 (Preface and the start of chapter 1 kept).
    Document("r-intro", R_MANUALS / "R-intro.html",
             cuts=(('<div class="Contents_element" id="SEC_Contents">',
                    '<hr>\n<div class="unnumbered" id="Preface">'),),
             stop='<div class="section" id="R-and-statistics">'),
]


# --- trimming -----------------------------------------------------------------------------------

class _Open(HTMLParser):
    """The elements still open at the end of a (cut) page, outermost first."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.stack:
            while self.stack and self.stack.pop() != tag:
                pass


def trim(text: str, document: Document) -> str:
    """The document cut as ``document`` says, its open elements closed at the end."""
    for start, end in document.cuts:
        a, b = text.index(start), text.index(end)
        text = text[:a] + text[b:]
    if document.stop is None:
        return text
    text = text[:text.index(document.stop)]
    parser = _Open()
    parser.feed(text)
    parser.close()
    return text + "".join(f"</{tag}>" for tag in reversed(parser.stack)) + "\n"


# --- checks -------------------------------------------------------------------------------------

def lxml_tree(page: str) -> list[tuple[Any, ...]] | None:
    """lxml's (repaired) element tree in document order: tag and attributes; None without lxml."""
    try:
        import lxml.html
    except ImportError:
        return None
    root = lxml.html.document_fromstring(page.encode("utf-8"))
    return [(str(element.tag), tuple(sorted(element.attrib.items()))) for element in root.iter()]


def structure(source: str, output: str) -> dict[str, Any]:
    """Compares the output page with its source: the first difference, if any."""
    a, b = skeleton(source).items, skeleton(output).items
    first = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y),
                 None if len(a) == len(b) else min(len(a), len(b)))
    tree_a, tree_b = lxml_tree(source), lxml_tree(output)
    return {"identical": first is None, "items": len(a),
            "first_difference": None if first is None else
            {"source": repr(a[first]) if first < len(a) else None,
             "output": repr(b[first]) if first < len(b) else None},
            "lxml_identical": None if tree_a is None else tree_a == tree_b,
            "lxml_elements": None if tree_a is None else len(tree_a)}


def markers(source: str, output: str, records: list[Any]) -> dict[str, Any]:
    """Placeholder brackets and invented marker symbols in the output and its segments."""
    source_text = "".join(skeleton(source).text)
    output_text = "".join(skeleton(output).text)
    brackets = sum(output.count(c) for c in BRACKETS) - sum(source.count(c) for c in BRACKETS)
    symbols = invented_symbols(output_text, source_text)
    segments = [r.index for r in records
                if r.status != "kept_source" and leaked_markers(r.translation, r.source)]
    return {"brackets": brackets, "invented_symbols": symbols, "segments": segments,
            "leaked": max(0, brackets) + len(symbols) + len(segments)}


# --- the run ------------------------------------------------------------------------------------

def run_one(document: Document, target: str, translator: Any, out: Path) -> dict[str, Any]:
    source_path = document.path
    source = source_path.read_text(encoding="utf-8")
    if document.cuts or document.stop:
        source = trim(source, document)
        source_path = out / f"{document.name}.trimmed.html"
        source_path.write_text(source, encoding="utf-8")
    output_path = out / f"{document.name}.{target}.html"
    started = time.perf_counter()
    try:
        result = translate_file(source_path, translator, target, "en", output=output_path)
    except Exception as error:  # a crash is a finding: record it and go on
        return {"doc": document.name, "target": target, "error": f"{type(error).__name__}: "
                f"{error}", "seconds": round(time.perf_counter() - started, 1)}
    output = output_path.read_text(encoding="utf-8")
    summary = result.summary
    reasons = Counter(reason for record in result.records for reason in record.reasons)
    return {
        "doc": document.name, "target": target, "source": str(document.path),
        "trimming": document.trimming(), "source_bytes": len(source.encode("utf-8")),
        "output": str(output_path), "segments": summary.segments,
        "translated": summary.translated, "retried": summary.retried,
        "kept_source": summary.kept_source, "mean_confidence": summary.mean_confidence,
        "reasons": dict(reasons.most_common()), "markers": markers(source, output,
                                                                    result.records),
        "structure": structure(source, output), "summary_line": result.summary_line(),
        "warning": result.warning(), "seconds": round(result.seconds, 1),
        "flagged": [vars(flag) for flag in result.flagged],
    }


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| doc | target | segments | translated / retried / kept | mean confidence "
             "| markers leaked | structure identical | seconds |",
             "|---|---|---:|---|---:|---:|---|---:|"]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['doc']} | {row['target']} | - | crashed: {row['error']} "
                         f"| - | - | - | {row['seconds']} |")
            continue
        same = row["structure"]["identical"] and row["structure"]["lxml_identical"] is not False
        lines.append(
            f"| {row['doc']} | {row['target']} | {row['segments']} | {row['translated']} / "
            f"{row['retried']} / {row['kept_source']} | {row['mean_confidence']:.2f} | "
            f"{row['markers']['leaked']} | {'yes' if same else 'NO'} | {row['seconds']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-m", "--model", default=None, help="model folder or name (default: "
                        "the default model)")
    parser.add_argument("--docs", default=",".join(d.name for d in DOCUMENTS),
                        help="comma-separated names from DOCUMENTS")
    parser.add_argument("--targets", default="zh-CN,fr,de")
    parser.add_argument("--out", type=Path, default=Path("/tmp/nightlamp-real-docs"),
                        help="folder for the trimmed copies and the translations")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None, help="write the raw figures here")
    args = parser.parse_args(argv)

    from engine.model import load_model

    by_name = {d.name: d for d in DOCUMENTS}
    documents = [by_name[name] for name in args.docs.split(",") if name]
    targets = [t for t in args.targets.split(",") if t]
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    model = load_model(args.model, device="cpu", threads=args.threads)
    translator = make_translator(model)
    load_s = time.perf_counter() - started
    rows: list[dict[str, Any]] = []
    for document in documents:
        for target in targets:
            row = run_one(document, target, translator, args.out)
            rows.append(row)
            print(f"{row['doc']} -> {row['target']}: "
                  f"{row.get('summary_line', row.get('error'))}", file=sys.stderr, flush=True)
            if row.get("warning"):
                print(f"  warning: {row['warning']}", file=sys.stderr, flush=True)
    print(table(rows))
    for row in rows:
        if "error" not in row:
            print(f"\n{row['doc']} -> {row['target']}: {row['summary_line']}"
                  + (f"\n  warning: {row['warning']}" if row["warning"] else "")
                  + f"\n  failed checks: {row['reasons'] or 'none'}")
    if args.json:
        args.json.write_text(json.dumps({
            "date": datetime.date.today().isoformat(), "model": translator.name,
            "load_s": round(load_s, 1), "machine": f"{platform.machine()}, "
            f"{os.cpu_count()} cores, Python {platform.python_version()}",
            "documents": {d.name: {"path": str(d.path), "trimming": d.trimming()}
                          for d in documents},
            "rows": rows}, ensure_ascii=False, indent=1), encoding="utf-8")
    failed = any("error" in r or r["markers"]["leaked"] or not r["structure"]["identical"]
                 or r["structure"]["lxml_identical"] is False for r in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
