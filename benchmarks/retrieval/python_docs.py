"""Document search on the Python 3.11 HTML documentation (Debian's python3.11-doc, 530 pages):
recall@5 and MRR for keyword, vector and hybrid search, indexing time and query latency.

    NIGHTLAMP_HOME=/tmp/nlbench .venv/bin/python benchmarks/retrieval/python_docs.py \
        [--limit-questions N] [--report FILE]

Questions with known answers, from text nobody here wrote: the FAQ pages' questions ("How do I
copy an object in Python?"). Each question is blanked out of the copy that is indexed (its
heading and every other occurrence on its page become "Question N"), so the question's own
words are not in the index and only the answer below it can be found. A hit is right when it is
a passage under that heading of that page. The whole documentation (every page, FAQ included)
is indexed with ``nightlamp docs``'s own path (``update_collection``), timed end to end.

Needs the embedding model (``nightlamp models pull minilm``). The package is fetched once with
``apt-get download`` into ``~/.cache/nightlamp-bench/`` (the package index is the one network
this project uses). Results go to ``results/python_docs.json`` (not committed).
"""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))
CACHE = Path.home() / ".cache" / "nightlamp-bench"
PACKAGE, INSIDE = "python3.11-doc", "usr/share/doc/python3.11/html"
_HEADING = re.compile(r"<h([2-4])>(.*?)<a class=\"headerlink\"", re.S)
_TAGS = re.compile(r"<[^>]+>")


def fetch_docs() -> Path:
    """The HTML folder of the package, unpacked once into the cache."""
    target = CACHE / "debs" / PACKAGE
    html_dir = target / INSIDE
    if html_dir.is_dir():
        return html_dir
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(["apt-get", "download", PACKAGE], cwd=target, check=True,
                   capture_output=True)
    deb = next(target.glob("*.deb"))
    subprocess.run(["dpkg-deb", "-x", str(deb), str(target)], check=True)
    deb.unlink()
    return html_dir


def blank_questions(source: Path, into: Path) -> list[dict[str, Any]]:
    """Copies the documentation's pages to ``into`` with each FAQ question replaced by
    "Question N" on every page (the FAQ's own, and the contents pages that list them all);
    returns the questions with their page and heading."""
    if into.exists():
        shutil.rmtree(into)
    pages = [page for page in sorted(source.rglob("*.html"))
             if not page.relative_to(source).parts[0].startswith("_")]  # Sphinx's own files
    questions: list[dict[str, Any]] = []
    blanks: list[tuple[str, str]] = []  # (text as written in the HTML, label)
    for page in pages:
        relative = page.relative_to(source)
        if relative.parts[0] != "faq":
            continue
        text = page.read_text(encoding="utf-8", errors="replace")
        for match in _HEADING.finditer(text):
            raw = match.group(2)
            plain = " ".join(html.unescape(_TAGS.sub("", raw)).split())
            if plain.endswith("?") and len(plain.split()) >= 4:
                label = f"Question {len(questions) + 1}"
                questions.append({"question": plain, "page": str(relative), "label": label})
                blanks += [(raw, label), (html.escape(plain, quote=False), label)]
    # Longest first, so that "... in C++?" is blanked before "... in C?" could cut it.
    blanks.sort(key=lambda blank: -len(blank[0]))
    for page in pages:
        text = page.read_text(encoding="utf-8", errors="replace")
        for written, label in blanks:
            text = text.replace(written, label)
        out = into / page.relative_to(source)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    return questions


def is_answer(hit: Any, question: dict[str, Any], root: Path) -> bool:
    """A passage of the question's page under its heading, or one that holds its heading's
    line (a short section joins its first subsection: engine/retrieval/chunks.py)."""
    if Path(hit.passage.path) != (root / question["page"]).resolve():
        return False
    label = question["label"]
    return label in hit.passage.heading.split(" › ") or any(
        line.lstrip("#").strip() == label for line in hit.passage.text.splitlines()
        if line.startswith("#"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit-questions", type=int, default=0)
    parser.add_argument("--report", type=Path, default=None, help="reprint a results file")
    args = parser.parse_args()
    if args.report:
        print(table(json.loads(args.report.read_text())))
        return 0
    from engine.retrieval.collection import Collection, list_collections, remove_collection
    from engine.retrieval.embedder import load_embedder
    from engine.retrieval.indexer import update_collection
    from engine.retrieval.search import search

    corpus = CACHE / "python-docs-blanked"
    questions = blank_questions(fetch_docs(), corpus)
    if args.limit_questions:
        questions = questions[:args.limit_questions]
    pages = sum(1 for _ in corpus.rglob("*.html"))
    print(f"{pages} pages, {len(questions)} questions", file=sys.stderr)
    embedder = load_embedder("minilm")
    if "python-docs-bench" in list_collections():
        remove_collection("python-docs-bench")
    collection = Collection.create("python-docs-bench", [corpus], embedder.name,
                                   embedder.dimension)
    started = time.perf_counter()
    report = update_collection(collection, embedder)
    index_s = time.perf_counter() - started
    print(f"indexed in {index_s:.0f} s: {report.passages} passages, {len(report.skipped)} "
          "skipped", file=sys.stderr)
    scores: dict[str, dict[str, float]] = {}
    latencies: dict[str, list[float]] = {}
    for mode in ("keyword", "vector", "hybrid"):
        found, reciprocal, times = 0, 0.0, []
        for question in questions:
            began = time.perf_counter()
            hits = search(collection, embedder, question["question"], 10, mode)
            times.append(time.perf_counter() - began)
            ranks = [i for i, hit in enumerate(hits, 1) if is_answer(hit, question, corpus)]
            found += bool(ranks and ranks[0] <= 5)
            reciprocal += 1 / ranks[0] if ranks else 0.0
        scores[mode] = {"recall@5": found / len(questions), "mrr@10": reciprocal / len(questions)}
        latencies[mode] = times
    results = {
        "pages": pages, "questions": len(questions), "passages": report.passages,
        "skipped": len(report.skipped), "index_s": index_s,
        "index_s_per_1000_pages": index_s * 1000 / pages, "scores": scores,
        "latency_ms": {mode: {"p50": 1000 * statistics.median(t),
                              "p95": 1000 * sorted(t)[int(0.95 * (len(t) - 1))]}
                       for mode, t in latencies.items()},
        "embedding_model": embedder.name, "device": embedder.device,
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "python_docs.json").write_text(json.dumps(results, indent=2))
    print(table(results))
    return 0


def table(results: dict[str, Any]) -> str:
    lines = [f"{results['pages']} pages, {results['passages']} passages, "
             f"{results['questions']} questions; indexed in {results['index_s']:.0f} s "
             f"({results['index_s_per_1000_pages']:.0f} s per 1,000 pages)", "",
             "| search | recall@5 | MRR@10 | query p50 ms | query p95 ms |",
             "|---|---:|---:|---:|---:|"]
    for mode, score in results["scores"].items():
        latency = results["latency_ms"][mode]
        lines.append(f"| {mode} | {score['recall@5']:.2f} | {score['mrr@10']:.2f} | "
                     f"{latency['p50']:.0f} | {latency['p95']:.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
