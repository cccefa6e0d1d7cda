"""Summarization quality and speed: ROUGE-1/2/L of each method against the authors' summaries.

Set-up (benchmark-only packages, not project dependencies; the default model):

    .venv/bin/pip install sumy==0.13.0 rouge-score==0.1.2   # sumy pins setuptools<82
    NIGHTLAMP_HOME=/tmp/nlbench .venv/bin/nightlamp models pull

Run (the evaluation set is built by prepare.py on first use):

    NIGHTLAMP_HOME=/tmp/nlbench .venv/bin/python benchmarks/summarization/run.py
    ... run.py --quick --methods lead,lexrank,extractive     # 3 documents, no PDF timing

Methods (``--methods``, comma-separated):

- ``lead``, ``lexrank``: the first sentences / sumy's LexRank, as many sentences as come closest
  to the reference's length in words (an oracle length that only the baselines get).
- ``lead-3``, ``lexrank-3``: the same with a fixed 3 sentences.
- ``extractive``, ``abstractive``, ``auto``: ``engine.summarize`` with the default model.
  ``abstractive`` (map-reduce) runs only on documents up to ``--abstractive-max-words`` (8500:
  the HOWTOs and What's New 3.9): on 2 cores it takes 2-5 minutes per 10k-word document.

``--length by-reference`` (default) asks ``engine.summarize`` for ``short`` when the reference
has under 150 words and ``medium`` otherwise. ROUGE is rouge-score's F1 with Porter stemming
(rougeL: longest common subsequence over the whole summary), averaged over documents. Unless
``--quick``, also times ``nightlamp summarize`` on a 50-page PDF (pdf_timing.py). Writes
results/summarization.json (every summary and score) and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from baselines import body_sentences, count_words, lead, lexrank, sentences_for_length
from prepare import prepare

HERE = Path(__file__).resolve().parent
BASELINES = ("lead", "lead-3", "lexrank", "lexrank-3")
OURS = ("extractive", "extractive-matched", "abstractive", "auto")
DEFAULT_METHODS = ("lead,lead-3,lexrank,lexrank-3,extractive,extractive-matched,abstractive,"
                   "auto")
QUICK = ("howto-sockets", "howto-ipaddress", "whatsnew-3.9")
SHORT_REFERENCE_WORDS = 150  # below: --length short matches the reference, else medium


class CjkAwareTokenizer:
    """rouge-score's tokenizer keeps only [a-z0-9] words, so Chinese or Japanese text has no tokens
    at all and two identical Chinese sentences score 0.0. Here every Han, kana or Hangul
    character is a token of its own (the usual unit for ROUGE on CJK), and the rest goes
    through rouge-score's own tokenizer (lower case, Porter stemming)."""

    _CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")

    def __init__(self, default: Any) -> None:
        self.default = default

    def tokenize(self, text: str) -> list[str]:
        tokens: list[str] = []
        for piece in re.split(f"({self._CJK.pattern})", text):
            if self._CJK.fullmatch(piece):
                tokens.append(piece)
            elif piece.strip():
                tokens.extend(self.default.tokenize(piece))
        return tokens


def scorer() -> Callable[[str, str], dict[str, float]]:
    """rouge-score's F1 for ROUGE-1, -2 and -L with stemming, as fractions; CJK text scored by
    character (``CjkAwareTokenizer``)."""
    try:
        from rouge_score import rouge_scorer, tokenizers
    except ImportError:
        raise SystemExit("rouge-score is missing: .venv/bin/pip install rouge-score==0.1.2") \
            from None
    tokenizer = CjkAwareTokenizer(tokenizers.DefaultTokenizer(use_stemmer=True))
    rouge = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], tokenizer=tokenizer)

    def score(reference: str, summary: str) -> dict[str, float]:
        return {name: value.fmeasure for name, value in rouge.score(reference, summary).items()}

    same = "夜灯照亮了桌上的地图。"
    if score(same, same)["rougeL"] != 1.0:  # the reason for the tokenizer: keep it true
        raise SystemExit("ROUGE scores identical Chinese sentences below 1.0; check the tokenizer")
    return score


def load_ours(threads: int, model_name: str | None) -> tuple[Callable[..., Any], Any]:
    """``engine.summarize.summarize`` and the model (loaded once, on the CPU)."""
    from engine.model import load_model
    from engine.summarize import summarize

    started = time.perf_counter()
    model = load_model(model_name, device="cpu", threads=threads)
    print(f"loaded {model.name} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return summarize, model


def summarize_one(method: str, document: str, reference: str, length: str,
                  ours: tuple[Callable[..., Any], Any] | None) -> dict[str, Any]:
    """One method on one document: the summary and what it cost."""
    started = time.perf_counter()
    extra: dict[str, object] = {}
    if method in BASELINES:
        count = 3 if method.endswith("-3") else sentences_for_length(
            body_sentences(document), count_words(reference))
        summary = (lead if method.startswith("lead") else lexrank)(document, count)
        extra["sentences"] = count
    else:
        assert ours is not None
        summarize, model = ours
        # "extractive-matched" gets the reference's length in words, as lead and lexrank do.
        matched = method == "extractive-matched"
        result = summarize(document, model=None if method.startswith("extractive") else model,
                           method="extractive" if matched else method, length=length,
                           max_words=count_words(reference) if matched else None)
        summary = result.summary
        extra = {"engine_method": result.method, "chunks": result.chunks,
                 "input_tokens": result.input_tokens, "input_words": result.input_words,
                 "engine_seconds": round(result.seconds, 3)}
    return {"summary": summary, "words": count_words(summary),
            "seconds": round(time.perf_counter() - started, 3), **extra}


def mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


def _table(rows: dict[tuple[str, str], dict[str, Any]], methods: list[str], names: list[str],
           reference_words: float, with_docs: bool) -> list[str]:
    head = ("| method |" + (" docs |" if with_docs else "")
            + " ROUGE-1 | ROUGE-2 | ROUGE-L | words | s/doc |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for method in methods:
        own = [rows[method, name] for name in names if (method, name) in rows]
        cells = [100 * mean([r[key] for r in own]) for key in ("rouge1", "rouge2", "rougeL")]
        lines.append(f"| {method} |" + (f" {len(own)} |" if with_docs else "")
                     + f" {cells[0]:.1f} | {cells[1]:.1f} | {cells[2]:.1f} | "
                     f"{mean([r['words'] for r in own]):.0f} | "
                     f"{mean([r['seconds'] for r in own]):.2f} |")
    lines.append("| (reference) |" + (" |" if with_docs else "")
                 + f" | | | {reference_words:.0f} | |")
    return lines


def tables(rows: list[dict[str, Any]], methods: list[str], names: list[str],
           reference_words: dict[str, int]) -> str:
    """The Markdown result tables: overall, on the documents every method ran on (when some
    ran on fewer), ROUGE-L by document group, and per-document ROUGE-L wins."""
    by = {(str(row["method"]), str(row["name"])): row for row in rows}
    common = [n for n in names if all((m, n) in by for m in methods)]
    lines = _table(by, methods, names, mean([reference_words[n] for n in names]),
                   len(common) < len(names))
    if len(common) < len(names):
        lines += ["", f"On the {len(common)} documents every method ran on:", ""]
        lines += _table(by, methods, common, mean([reference_words[n] for n in common]), False)
    groups = sorted({name.split("-")[0] for name in names})
    if len(groups) > 1:
        lines += ["", "| ROUGE-L by group | " + " | ".join(
            f"{g} ({sum(n.startswith(g) for n in names)})" for g in groups) + " |",
            "|---|" + "---|" * len(groups)]
        for method in methods:
            cells = []
            for group in groups:
                scores = [by[method, n]["rougeL"] for n in names
                          if n.startswith(group) and (method, n) in by]
                whole = len(scores) == sum(n.startswith(group) for n in names)
                cells.append(f"{100 * mean(scores):.1f}" + ("" if whole else f" ({len(scores)})")
                             if scores else "–")
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
    ours = [m for m in methods if m in OURS]
    baselines = [m for m in methods if m in BASELINES]
    if ours and baselines:
        lines += ["", "ROUGE-L of ours minus each baseline, per document: documents won, mean "
                  "difference in points and its 95% paired-bootstrap interval:", "",
                  "| ours | " + " | ".join(f"vs {b}" for b in baselines) + " |",
                  "|---|" + "---|" * len(baselines)]
        for method in ours:
            cells = []
            for baseline in baselines:
                both = [n for n in names if (method, n) in by and (baseline, n) in by]
                gaps = [100 * (by[method, n]["rougeL"] - by[baseline, n]["rougeL"])
                        for n in both]
                low, high = bootstrap_interval(gaps)
                cells.append(f"{sum(g > 0 for g in gaps)}/{len(gaps)}, {mean(gaps):+.1f} "
                             f"[{low:+.1f}, {high:+.1f}]")
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def bootstrap_interval(values: list[float], rounds: int = 10_000) -> tuple[float, float]:
    """95% interval of the mean of ``values`` by resampling documents (fixed seed)."""
    if not values:
        return float("nan"), float("nan")
    rng = random.Random(0)
    means = sorted(statistics.fmean(rng.choices(values, k=len(values))) for _ in range(rounds))
    return means[int(0.025 * rounds)], means[int(0.975 * rounds) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"only {', '.join(QUICK)}; no PDF timing")
    parser.add_argument("--methods", default=DEFAULT_METHODS)
    parser.add_argument("--documents", help="comma-separated names (default: all)")
    parser.add_argument("--length", default="by-reference",
                        choices=("by-reference", "short", "medium", "long"))
    parser.add_argument("--abstractive-max-words", type=int, default=8500,
                        help="run abstractive only on documents up to this many words "
                        "(0: all); map-reduce takes minutes per long document")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("-m", "--model", default=None, help="default: the default model")
    parser.add_argument("--pdf", action=argparse.BooleanOptionalAction, default=None,
                        help="time the 50-page PDF too (default: on unless --quick)")
    parser.add_argument("--pdf-methods", default="auto,extractive")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "summarization.json")
    parser.add_argument("--report", type=Path, metavar="JSON",
                        help="only print the tables of an earlier run's JSON")
    args = parser.parse_args()
    if args.report:
        earlier = json.loads(args.report.read_text(encoding="utf-8"))
        rows = earlier["rows"]
        methods = list(dict.fromkeys(row["method"] for row in rows))
        print(tables(rows, methods, earlier["documents"], earlier["reference_words"]))
        return
    methods = args.methods.split(",")
    unknown = set(methods) - set(BASELINES) - set(OURS)
    if unknown:
        parser.error(f"unknown methods {', '.join(sorted(unknown))}; "
                     f"known: {', '.join(BASELINES + OURS)}")
    data = prepare()
    manifest = json.loads((data / "manifest.json").read_text(encoding="utf-8"))
    names = [doc["name"] for doc in manifest["documents"]]
    if args.quick:
        names = [name for name in names if name in QUICK]
    if args.documents:
        names = [name for name in names if name in args.documents.split(",")]
    score = scorer()
    ours = load_ours(args.threads, args.model) if set(methods) & set(OURS) else None
    rows = []
    sizes = {doc["name"]: doc["words"] for doc in manifest["documents"]}
    for method in methods:
        for name in names:
            if (method == "abstractive" and args.abstractive_max_words
                    and sizes[name] > args.abstractive_max_words):
                continue
            document = (data / f"{name}.txt").read_text(encoding="utf-8")
            reference = (data / f"{name}.ref.txt").read_text(encoding="utf-8")
            length = args.length if args.length != "by-reference" else (
                "short" if count_words(reference) < SHORT_REFERENCE_WORDS else "medium")
            row = {"method": method, "name": name, "length": length,
                   **summarize_one(method, document, reference, length, ours)}
            row.update(score(reference, str(row["summary"])))
            rows.append(row)
            print(f"{method:12} {name:28} R-L {100 * row['rougeL']:5.1f} {row['words']:4} words "
                  f"{row['seconds']:7.2f} s", file=sys.stderr, flush=True)
    reference_words = {n: count_words((data / f"{n}.ref.txt").read_text(encoding="utf-8"))
                       for n in names}
    report = tables(rows, methods, names, reference_words)
    result: dict[str, Any] = {
        "date": datetime.date.today().isoformat(), "command": " ".join(sys.argv),
        "machine": f"{platform.machine()}, {platform.processor() or '?'}, "
                   f"{os.cpu_count()} cores, Python {platform.python_version()}",
        "threads": args.threads, "length": args.length, "package": manifest["package"],
        "abstractive_max_words": args.abstractive_max_words, "load_average": os.getloadavg(),
        "documents": names, "reference_words": reference_words, "table": report, "rows": rows}
    if args.pdf or (args.pdf is None and not args.quick):
        from pdf_timing import run as time_pdf

        result["pdf"] = time_pdf(data, args.out.parent, 50, args.pdf_methods.split(","),
                                 args.threads, None, args.model)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n",
                        encoding="utf-8")
    print(report)
    if "pdf" in result:
        pdf = result["pdf"]
        print(f"\n50-page PDF ({pdf['words']} words), {args.threads} threads:")
        for run in pdf["runs"]:
            print(f"  --method {run['method']}: {run['wall_s']} s wall, {run['seconds']} s "
                  f"summarizing, {run['chunks']} chunks, {run['input_tokens']} input tokens "
                  f"({run['engine_method']})")
    print(f"\nwrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
