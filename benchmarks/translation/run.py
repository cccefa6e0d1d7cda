"""Translation quality and speed of any model folder on a held-out TSV: BLEU, chrF, exact match.

Evaluate a model (a dedicated encoder-decoder or an instruct chat model) on source<TAB>target
pairs:

    .venv/bin/python benchmarks/translation/run.py -m MODEL --held-out FILE --src en --tgt zh
    ... run.py -m MODEL --held-out FILE --beam 1,4 --path translator,pipeline --threads 1
    ... run.py --held-out FILE --limit 100 --path pipeline     # the default (instruct) model

End to end on a corpus the benchmark makes itself (make_corpus.py: English numbers and dates
-> Chinese numerals / dates): generate -> ``nightlamp train translation`` -> ``nightlamp export``
-> evaluate the exported folder, each stage timed, plus the default instruct model on the first
``--instruct-limit`` held-out items as a comparison row:

    NIGHTLAMP_HOME=/tmp/nlbench .venv/bin/python benchmarks/translation/run.py --end-to-end

Each evaluation translates through the app's own code (``engine.translate``):

- ``--path translator`` (default): the translator object the app builds (``Seq2SeqTranslator``
  with ``--beam N`` for encoder-decoders, which calls ``engine.seq2seq.translate_batch``;
  ``make_translator`` -> ``InstructTranslator`` for chat models), called in its own batch size,
  answers cleaned with the pipeline's ``clean_answer``. One hypothesis per held-out line by
  construction.
- ``--path pipeline``: the whole ``translate_text`` pipeline (protection, segmentation,
  per-segment language detection, retries, de-duplication) on one document holding every
  source as its own paragraph; the translation is split back into paragraphs.
- ``--path batch`` (encoder-decoders): ``engine.seq2seq.translate_batch`` on all sources in
  one call (its own batches of 16), with ``--early-stopping true|false|both`` for beam search
  (the translators always use its default, True: transformers' ``early_stopping=True``).

End to end runs all three paths with greedy and beam 4 (both early-stopping settings on the
batch path), then the comparison on ``--instruct-path`` (default pipeline). PyTorch training
runs with ``--train-threads`` (default 1) intra-op threads; ``--threads`` sets ONNX Runtime's
for every evaluation (default: one per core, as the app).

Scores: sacrebleu corpus BLEU (tokenizer ``zh`` for Chinese, ``13a`` otherwise, the trainer's
convention from ``training.translation_metrics``) and chrF (character 6-grams, beta 2); exact
match is the share of hypotheses equal to the reference after stripping spaces at both ends.
Speed: source words (split on spaces) and sentences per second of translation time (model
loading excluded, reported apart). Prints Markdown tables; writes JSON (every hypothesis too)
with ``--json`` (end to end: ``WORK/results.json``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from make_corpus import TASKS, make_corpus, read_tsv

from training.translation_metrics import score

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
_MONTH = re.compile(r"January|February|March|April|May|June|July|August|September|October|"
                    r"November|December")


# Evaluation --------------------------------------------------------------------------------


def load(model_name: str | None, threads: int | None) -> tuple[Any, float]:
    from engine.model import load_model

    started = time.perf_counter()
    model = load_model(model_name, device="cpu", threads=threads)
    return model, time.perf_counter() - started


def translator_for(model: Any, beam: int) -> Any:
    """The translator the app uses for this model; beam search only for encoder-decoders."""
    from engine.translate import make_translator

    if beam != 1 and model.manifest.architecture != "encoder-decoder":
        raise SystemExit(f"--beam {beam}: {model.name} is a chat model, which decodes greedily")
    return make_translator(model, beam_size=beam)


def translate_direct(translator: Any, sources: list[str], src: str, tgt: str) -> list[str]:
    """Translator batches straight through, cleaned as the pipeline cleans every answer."""
    from engine.translate.answers import clean_answer

    size = max(1, int(getattr(translator, "batch_size", 1)))
    out: list[str] = []
    for first in range(0, len(sources), size):
        batch = sources[first:first + size]
        answers = translator.translate(batch, src, tgt)
        out.extend(clean_answer(a, s) for a, s in zip(answers, batch, strict=True))
    return out


def translate_pipeline(translator: Any, sources: list[str], src: str, tgt: str,
                       ) -> tuple[list[str], int]:
    """The app's translate_text on one document (a paragraph per source); (lines, flagged)."""
    from engine.translate import translate_text

    result = translate_text("\n\n".join(sources), translator, tgt, src, kind="txt")
    lines = result.translation.split("\n\n")
    if len(lines) != len(sources):
        raise SystemExit(f"the pipeline returned {len(lines)} paragraphs for {len(sources)} "
                         "sources; cannot align them (use --path translator)")
    return [line.strip() for line in lines], len(result.flagged)


def translate_batched(model: Any, sources: list[str], beam: int, early_stopping: bool,
                      ) -> list[str]:
    """``engine.seq2seq.translate_batch`` itself (encoder-decoders), all sources in one call."""
    from engine.seq2seq import translate_batch

    if model.manifest.architecture != "encoder-decoder":
        raise SystemExit(f"--path batch: {model.name} is not an encoder-decoder")
    return translate_batch(model, sources, beam_size=beam, early_stopping=early_stopping)


def evaluate(model: Any, pairs: list[tuple[str, str]], src: str, tgt: str, *, beam: int = 1,
             path: str = "translator", early_stopping: bool = True) -> dict[str, Any]:
    """Translates the sources of ``pairs`` and scores them against the targets.

    ``early_stopping`` applies to beam search on the ``batch`` path only (the translators use
    translate_batch's default, True).
    """
    sources = [s for s, _ in pairs]
    references = [t for _, t in pairs]
    flagged = None
    decoding = "greedy" if beam == 1 else f"beam {beam}"
    if path == "batch":
        started = time.perf_counter()
        hypotheses = translate_batched(model, sources, beam, early_stopping)
        if beam > 1:
            decoding += f", early_stopping={early_stopping}"
    else:
        translator = translator_for(model, beam)
        started = time.perf_counter()
        if path == "pipeline":
            hypotheses, flagged = translate_pipeline(translator, sources, src, tgt)
        else:
            hypotheses = translate_direct(translator, sources, src, tgt)
    seconds = time.perf_counter() - started
    scores = score(hypotheses, references, tgt)
    words = sum(len(s.split()) for s in sources)
    exact = [h.strip() == r.strip() for h, r in zip(hypotheses, references, strict=True)]
    by_kind: dict[str, list[bool]] = {}
    for (source, _), ok in zip(pairs, exact, strict=True):
        by_kind.setdefault("date" if _MONTH.search(source) else "number", []).append(ok)
    return {
        "model": model.name, "architecture": model.manifest.architecture,
        "decoding": decoding, "path": path,
        "items": len(pairs), "exact_match": sum(exact) / len(exact),
        "exact_match_by_kind": {k: round(sum(v) / len(v), 4) for k, v in by_kind.items()},
        "bleu": scores.bleu, "chrf": scores.chrf, "seconds": seconds,
        "words_per_s": words / seconds, "sentences_per_s": len(pairs) / seconds,
        "flagged": flagged,
        "errors": [{"source": s, "reference": r, "hypothesis": h}
                   for (s, r), h, ok in zip(pairs, hypotheses, exact, strict=True) if not ok],
        "hypotheses": hypotheses,
    }


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| model | decoding | path | items | exact match | numbers | dates | BLEU | chrF "
             "| words/s | sentences/s |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        kinds = r["exact_match_by_kind"]
        cell = {k: f"{100 * kinds[k]:.1f}%" if k in kinds else "–" for k in ("number", "date")}
        lines.append(f"| {r['model']} | {r['decoding']} | {r['path']} | {r['items']} | "
                     f"{100 * r['exact_match']:.1f}% | {cell['number']} | {cell['date']} | "
                     f"{r['bleu']:.1f} | {r['chrf']:.1f} | {r['words_per_s']:.0f} | "
                     f"{r['sentences_per_s']:.1f} |")
    return "\n".join(lines)


def evaluate_all(model: Any, pairs: list[tuple[str, str]], src: str, tgt: str,
                 beams: list[int], paths: list[str], stops: tuple[bool, ...] = (True,),
                 ) -> list[dict[str, Any]]:
    """Every path x beam (x early_stopping value, for beam search on the batch path)."""
    rows = []
    runs = [(path, beam, stop) for path in paths for beam in beams
            for stop in (stops if path == "batch" and beam > 1 else (True,))]
    for path, beam, stop in runs:
        row = evaluate(model, pairs, src, tgt, beam=beam, path=path, early_stopping=stop)
        print(f"{row['model']} {row['decoding']} ({path}): exact {row['exact_match']:.3f}, "
              f"BLEU {row['bleu']:.1f}, chrF {row['chrf']:.1f}, "
              f"{row['words_per_s']:.0f} words/s", file=sys.stderr)
        rows.append(row)
    return rows


# End to end --------------------------------------------------------------------------------


def nightlamp() -> list[str]:
    script = Path(sys.executable).parent / "nightlamp"
    return [str(script)] if script.exists() else [sys.executable, "-m", "commands.main"]


def stage(name: str, command: list[str], log: Path, env: dict[str, str]) -> dict[str, Any]:
    """Runs one CLI stage, its output to ``log``; its time and the output's last lines."""
    print(f"[{name}] {' '.join(command)}", file=sys.stderr)
    started = time.perf_counter()
    with log.open("w", encoding="utf-8") as out:
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env,
                              cwd=ROOT, check=False)
    seconds = time.perf_counter() - started
    tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-6:]
    if done.returncode:
        raise SystemExit(f"[{name}] failed (exit {done.returncode}) after {seconds:.0f} s; "
                         f"see {log}:\n" + "\n".join(tail))
    print(f"[{name}] {seconds:.1f} s: {tail[-1] if tail else ''}", file=sys.stderr)
    return {"command": " ".join(command), "seconds": seconds, "output_tail": tail}


def end_to_end(args: argparse.Namespace) -> dict[str, Any]:
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    src, tgt = TASKS[args.task]
    stages: dict[str, Any] = {}

    started = time.perf_counter()
    corpus = make_corpus(work / "corpus", args.task, args.train_pairs, args.held_out_pairs,
                         args.seed)
    stages["corpus"] = {"seconds": time.perf_counter() - started, **corpus}

    # Intra-op threads: 1 by default. On a 2-core machine with anything else running, PyTorch's
    # default (one thread per core) made each step of the tiny model ~25x slower.
    env = {**os.environ, "OMP_NUM_THREADS": str(args.train_threads)}
    train = [*nightlamp(), "train", "translation", "--pairs", str(work / "corpus/train.tsv"),
             "--src", src, "--tgt", tgt, "--out", str(work / "ckpt"), "--preset", args.preset,
             "--steps", str(args.steps), "--batch-size", str(args.batch_size),
             "--seed", str(args.seed), "--no-progress"]
    if (work / "ckpt").exists():
        import shutil

        shutil.rmtree(work / "ckpt")
    stages["train"] = stage("train", train, work / "train.log", env)
    folder = work / f"numbers-dates-{src}-{tgt}-{args.preset}"  # the name shown in the tables
    stages["export"] = stage("export", [*nightlamp(), "export", str(work / "ckpt"), "--out",
                                        str(folder), "--force"], work / "export.log", env)

    held_out = read_tsv(work / "corpus/held_out.tsv")
    model, load_s = load(str(folder), args.threads)
    rows = evaluate_all(model, held_out, src, tgt, args.beams, args.paths, args.stops)
    stages["evaluate"] = {"seconds": sum(r["seconds"] for r in rows), "load_s": load_s}

    comparison = None
    if args.instruct != "none" and args.instruct_limit > 0:
        name = None if args.instruct == "default" else args.instruct
        started = time.perf_counter()
        try:
            chat, chat_load = load(name, args.threads)
            comparison = evaluate_all(chat, held_out[:args.instruct_limit], src, tgt, [1],
                                      [args.instruct_path])
            comparison[0]["load_s"] = chat_load
        except SystemExit as error:  # e.g. a target an instruct model cannot be told (zxx)
            print(f"instruct comparison skipped: {error}", file=sys.stderr)
        except Exception as error:  # report it, keep the dedicated model's rows
            print(f"instruct comparison failed: {type(error).__name__}: {error}",
                  file=sys.stderr)
        # the dedicated model on the same subset, for a like-for-like row
        if comparison:
            stages["instruct"] = {"seconds": time.perf_counter() - started}
            comparison += evaluate_all(model, held_out[:args.instruct_limit], src, tgt, [1],
                                       [args.instruct_path])
    return {"stages": stages, "rows": rows, "comparison": comparison}


# Command line ------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    import onnxruntime

    return {"date": datetime.date.today().isoformat(), "python": platform.python_version(),
            "onnxruntime": onnxruntime.__version__, "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-m", "--model", help="model folder or name (not with --end-to-end)")
    parser.add_argument("--held-out", type=Path, help="source<TAB>target TSV to evaluate on")
    parser.add_argument("--src", default="en", help="source language tag (default en)")
    parser.add_argument("--tgt", default="zh", help="target language tag (default zh)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N pairs")
    parser.add_argument("--beam", default=None, help="comma-separated beam sizes, 1 = greedy "
                        "(beam search: encoder-decoders only); default 1, end to end 1,4")
    parser.add_argument("--path", default=None, help="comma-separated: translator, pipeline, "
                        "batch (see the module docstring); default translator, end to end all")
    parser.add_argument("--early-stopping", choices=("true", "false", "both"), default=None,
                        help="beam search on the batch path: transformers' early_stopping "
                             "(default true, end to end both)")
    parser.add_argument("--threads", type=int, default=None,
                        help="ONNX Runtime threads (default: one per core, as the app)")
    parser.add_argument("--json", type=Path, help="write every row (and hypothesis) here")
    e2e = parser.add_argument_group("end to end")
    e2e.add_argument("--end-to-end", action="store_true",
                     help="make a corpus, train, export and evaluate")
    e2e.add_argument("--work", type=Path, default=Path("/tmp/nightlamp-translation-bench"))
    e2e.add_argument("--task", choices=tuple(TASKS), default="zh")
    e2e.add_argument("--train-pairs", type=int, default=40_000)
    e2e.add_argument("--held-out-pairs", type=int, default=1000)
    e2e.add_argument("--seed", type=int, default=0)
    e2e.add_argument("--preset", default="tiny")
    e2e.add_argument("--steps", type=int, default=4000)
    e2e.add_argument("--batch-size", type=int, default=64)
    e2e.add_argument("--train-threads", type=int, default=1, help="PyTorch threads")
    e2e.add_argument("--instruct", default="default",
                     help="chat model for the comparison row ('default', a name, or 'none')")
    e2e.add_argument("--instruct-limit", type=int, default=100,
                     help="held-out items (the first N) for the comparison rows")
    e2e.add_argument("--instruct-path", choices=("translator", "pipeline"), default="pipeline",
                     help="path of the comparison rows (default: the app's whole pipeline)")
    args = parser.parse_args()
    e2e_mode = args.end_to_end
    args.beams = [int(b) for b in (args.beam or ("1,4" if e2e_mode else "1")).split(",")]
    args.paths = (args.path or ("translator,pipeline,batch" if e2e_mode else "translator")
                  ).split(",")
    args.early_stopping = args.early_stopping or ("both" if e2e_mode else "true")
    if any(p not in ("translator", "pipeline", "batch") for p in args.paths):
        parser.error("--path takes translator, pipeline and/or batch")
    args.stops = {"true": (True,), "false": (False,), "both": (True, False)}[args.early_stopping]

    if args.end_to_end:
        if args.model or args.held_out:
            parser.error("--end-to-end makes its own model and held-out set")
        result = {"machine": machine(), "settings": {k: str(v) for k, v in vars(args).items()},
                  **end_to_end(args)}
        out = args.json or args.work / "results.json"
        rows = result["rows"]
        print("\n## stages\n")
        for name, info in result["stages"].items():
            print(f"- {name}: {info['seconds']:.1f} s" + (f" — `{info['command']}`"
                                                         if "command" in info else ""))
        print("\n## held-out set (all items)\n\n" + table(rows))
        if result["comparison"]:
            print(f"\n## first {args.instruct_limit} items\n\n" + table(result["comparison"]))
    else:
        if not args.held_out:
            parser.error("give --held-out FILE (and -m MODEL), or --end-to-end")
        pairs = read_tsv(args.held_out)
        if args.limit:
            pairs = pairs[:args.limit]
        model, load_s = load(args.model, args.threads)
        rows = evaluate_all(model, pairs, args.src, args.tgt, args.beams, args.paths,
                            args.stops)
        result = {"machine": machine(), "load_s": load_s, "rows": rows}
        out = args.json
        print(table(rows))
    if out:
        out.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        print(f"\nwrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
