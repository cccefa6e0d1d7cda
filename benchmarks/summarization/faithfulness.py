"""Faithfulness of model summaries on real manuals: the old pipeline against the sectioned,
checked one.

    NIGHTLAMP_HOME=/tmp/nlbench .venv/bin/python benchmarks/summarization/faithfulness.py \
        [--only NAME ...] [--length medium] [--threads 2] [--report FILE]

Documents: PDF manuals with outlines that Debian ships (``DOCUMENTS``); each is taken from
``/usr/share/doc`` when its package is installed, else fetched once with ``apt-get download`` into
``~/.cache/nightlamp-bench/`` (the package index is the one network this project uses).

Pipelines, each run in its own child process (wall time from start to the summary, the model's
load and the PDF's reading included; peak memory = the child's peak resident set):

- ``old``: what ``auto`` did before sectioned summaries: the whole text in one pass when it fits
  the model's input, else its most central sentences selected to fit and summarized in one
  pass, nothing checked (with today's answer tidying: headings and "Summary:" labels dropped);
- ``new``: ``nightlamp summarize --method auto --json``: section by section, every sentence
  checked, regenerated or replaced.

Scores, computed here on the outputs:

- supported: the share of summary sentences whose checkable facts (names, numbers, identifiers,
  quotations, rare words: ``engine.summarize.grounding``) all occur in the source, counted
  against the whole document for both pipelines, and for ``new`` also against each sentence's
  own section (the stricter test the pipeline itself applies);
- ROUGE-1 / ROUGE-2 precision of the summary against its source (the share of its words and word
  pairs found there; own implementation, lower-cased words, no stemming);
- coverage: the share of the document's sections that reached the model (``old``: sections with
  at least one selected sentence; ``new``: sections summarized, contents and indexes excluded).

Every figure and summary goes to ``results/faithfulness.json`` (not committed).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CACHE = Path.home() / ".cache" / "nightlamp-bench"
# name: (Debian package, path of the PDF in it; a .gz is unpacked)
DOCUMENTS = {
    "R-intro": ("r-doc-pdf", "usr/share/doc/r-doc-pdf/manual/R-intro.pdf"),
    "gnuplot": ("gnuplot-doc", "usr/share/doc/gnuplot/gnuplot.pdf"),
    "valgrind": ("valgrind", "usr/share/doc/valgrind/valgrind_manual.pdf.gz"),
    "nettle": ("nettle-dev", "usr/share/doc/nettle-dev/nettle.pdf.gz"),
    "libtasn1": ("libtasn1-doc", "usr/share/doc/libtasn1-doc/libtasn1.pdf"),
    "fontconfig": ("fontconfig", "usr/share/doc/fontconfig/fontconfig-user.pdf.gz"),
    "shared-mime-info": ("shared-mime-info",
                         "usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf"),
}
_WORD = re.compile(r"\w+")


def fetch(name: str) -> Path:
    """The document's PDF, from the installed package or a downloaded copy."""
    return fetch_package_file(name, *DOCUMENTS[name])


def fetch_package_file(name: str, package: str, inside: str) -> Path:
    """``inside`` (a path in a Debian package; .gz unpacked) as ``CACHE/faithfulness/NAME.pdf``:
    copied from the installed package, else from the package fetched with apt-get download."""
    import gzip

    target = CACHE / "faithfulness" / f"{name}.pdf"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    source = Path("/") / inside
    if not source.exists():
        unpacked = CACHE / "debs" / package
        if not (unpacked / inside).exists():
            unpacked.mkdir(parents=True, exist_ok=True)
            subprocess.run(["apt-get", "download", package], cwd=unpacked, check=True,
                           capture_output=True)
            deb = next(unpacked.glob(f"{package}_*.deb"))
            subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], check=True)
        source = unpacked / inside
    data = source.read_bytes()
    target.write_bytes(gzip.decompress(data) if source.suffix == ".gz" else data)
    return target


def run_child(command: list[str]) -> tuple[dict[str, Any], float, float]:
    """A child's JSON output, its wall seconds and its peak resident memory in MB."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"{' '.join(command)} failed with status {status}")
    peak_mb = usage.ru_maxrss / 1024 if sys.platform != "darwin" else usage.ru_maxrss / 2**20
    return json.loads(output), seconds, peak_mb


def old_pipeline(path: Path, length: str, threads: int) -> None:
    """The child for ``old``: prints {"summary", "selected"} as JSON."""
    from engine.documents import read_document
    from engine.model import Model, load_model
    from engine.summarize.abstractive import Summarizer
    from engine.summarize.extractive import select_to_fit

    model = load_model(None, device="cpu", threads=threads)
    assert isinstance(model, Model)
    document = read_document(path)
    summarizer = Summarizer(model, length, "English", None, None, None)
    text = document.text()
    selected = text if summarizer.fits(text) else \
        select_to_fit(document, summarizer.count, summarizer.budget)
    print(json.dumps({"summary": summarizer.single(selected), "selected": selected}))


def ngrams(text: str, n: int) -> Counter[tuple[str, ...]]:
    tokens = [word.lower() for word in _WORD.findall(text)]
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def rouge_precision(summary: str, source: str, n: int) -> float:
    mine, theirs = ngrams(summary, n), ngrams(source, n)
    total = sum(mine.values())
    return sum(min(count, theirs[gram]) for gram, count in mine.items()) / total if total \
        else 0.0


def score(name: str, path: Path, old: dict[str, Any], new: dict[str, Any],
          checker: Any) -> dict[str, Any]:
    """Both pipelines' scores on one document (see the module docstring)."""
    from engine.documents import Document, read_document
    from engine.summarize.extractive import document_sentences
    from engine.summarize.grounding import SourceIndex, unsupported_terms
    from engine.summarize.sections import split_sections
    from engine.text.sentences import split_sentences

    document = read_document(path)
    text = document.text()
    whole = SourceIndex.of(text)
    sections = split_sections(document, checker.count, checker.budget)
    by_title = {section.title or "Opening": section for section in sections}

    def supported(sentences: list[str], source: Any) -> int:
        return sum(not unsupported_terms(s, source, checker.is_rare) for s in sentences)

    old_sentences = split_sentences(old["summary"])
    # A section reached the model if one of its sentences is in the selected text.
    reached = sum(any(s.text in old["selected"] for s in document_sentences(
        Document("section", "text", section.blocks))) for section in sections
        if not section.is_listing())
    prose = [section for section in sections if not section.is_listing()]
    overall = new["summary"].split("\n\n## Sections")[0]
    new_pairs = [(sentence, whole) for sentence in split_sentences(overall)]
    section_sources = []
    for entry in new["sections"]:
        section = by_title.get(entry["title"])
        source = SourceIndex.of(section.text) if section else whole
        for sentence in split_sentences(entry["summary"]):
            new_pairs.append((sentence, source))
            section_sources.append((sentence, section.text if section else text))
    new_sentences = [sentence for sentence, _ in new_pairs]
    return {
        "document": name, "pages": document.pages, "words": len(_WORD.findall(text)),
        "sections": len(sections),
        "old": {"sentences": len(old_sentences),
                "supported_document": supported(old_sentences, whole),
                "rouge1": rouge_precision(old["summary"], text, 1),
                "rouge2": rouge_precision(old["summary"], text, 2),
                "coverage": reached / max(1, len(prose)), "summary": old["summary"]},
        "new": {"sentences": len(new_sentences),
                "supported_document": supported(new_sentences, whole),
                "supported_section": sum(not unsupported_terms(s, src, checker.is_rare)
                                         for s, src in new_pairs),
                "rouge1": _mean([rouge_precision(s, src, 1) for s, src in section_sources]),
                "rouge2": _mean([rouge_precision(s, src, 2) for s, src in section_sources]),
                "coverage": sum(1 for e in new["sections"] if e["summary"])
                / max(1, len(prose)),
                "grounding": new["grounding"], "summary": new["summary"]},
    }


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def table(results: list[dict[str, Any]]) -> str:
    rows = ["| document | pages | sections | pipeline | s | peak MB | sentences | supported "
            "(document) | supported (section) | ROUGE-1 P | ROUGE-2 P | coverage |",
            "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        for pipeline in ("old", "new"):
            p = r[pipeline]
            section = f"{p['supported_section'] / max(1, p['sentences']):.0%}" \
                if "supported_section" in p else "-"
            rows.append(
                f"| {r['document']} | {r['pages']} | {r['sections']} | {pipeline} | "
                f"{p['seconds']:.0f} | {p['peak_mb']:.0f} | {p['sentences']} | "
                f"{p['supported_document'] / max(1, p['sentences']):.0%} | {section} | "
                f"{p['rouge1']:.2f} | {p['rouge2']:.2f} | {p['coverage']:.0%} |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", choices=sorted(DOCUMENTS), default=None)
    parser.add_argument("--length", default="medium")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--report", type=Path, default=None, help="reprint a results file")
    parser.add_argument("--child-old", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_old:
        old_pipeline(args.child_old, args.length, args.threads)
        return 0
    out = HERE / "results" / "faithfulness.json"
    if args.report:
        print(table(json.loads(args.report.read_text(encoding="utf-8"))))
        return 0
    sys.path.insert(0, str(ROOT))
    from engine.model import Model, load_model
    from engine.summarize.abstractive import Summarizer

    model = load_model(None, device="cpu", threads=1)
    assert isinstance(model, Model)
    checker = Summarizer(model, args.length, "English", None, None, None)
    results = []
    for name in args.only or list(DOCUMENTS):
        path = fetch(name)
        print(f"{name}: old ...", file=sys.stderr, flush=True)
        old, old_s, old_mb = run_child([sys.executable, __file__, "--child-old", str(path),
                                        "--length", args.length, "--threads",
                                        str(args.threads)])
        print(f"{name}: old {old_s:.0f} s, new ...", file=sys.stderr, flush=True)
        new, new_s, new_mb = run_child([sys.executable, "-m", "commands.main", "summarize",
                                        str(path), "--method", "auto", "--length", args.length,
                                        "--json", "--device", "cpu", "--threads",
                                        str(args.threads)])
        print(f"{name}: new {new_s:.0f} s", file=sys.stderr, flush=True)
        result = score(name, path, old, new, checker)
        result["old"].update(seconds=old_s, peak_mb=old_mb)
        result["new"].update(seconds=new_s, peak_mb=new_mb)
        results.append(result)
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps(results, indent=1, ensure_ascii=False), encoding="utf-8")
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
