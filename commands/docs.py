"""``nightlamp docs``: document collections, and questions answered from them with citations.

``add`` creates a collection (or adds folders to one) and indexes them; ``update`` re-reads only
new or changed files; ``list`` shows the collections, or one collection's files with the reason
each skipped file was skipped; ``remove`` deletes a collection's index (never the documents);
``ask`` answers a question from the collection's passages, citing them [1], [2] ..., and lists
the passages cited with their file and page (``--search-only``: the passages, no model).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path
from typing import Any

from commands.options import add_model_option, checked_text
from commands.progress import ProgressPrinter
from engine.device import DEVICES
from engine.errors import ConfigError
from engine.retrieval import EMBEDDING_MODEL


def register(subcommands: Any) -> None:
    docs = subcommands.add_parser("docs", help="document collections: index folders, ask "
                                               "questions with cited answers")
    actions = docs.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="create a collection (or extend one) and index folders")
    add.add_argument("name")
    add.add_argument("folders", nargs="+", type=Path, metavar="FOLDER")
    add.add_argument("--embedding-model", default=EMBEDDING_MODEL,
                     help=f"embedding model for a new collection (default {EMBEDDING_MODEL})")
    add.add_argument("--json-progress", action="store_true", help=argparse.SUPPRESS)
    add.set_defaults(handler=run_add)
    update = actions.add_parser("update", help="re-read new and changed files")
    update.add_argument("name")
    update.add_argument("--json-progress", action="store_true", help=argparse.SUPPRESS)
    update.set_defaults(handler=run_update)
    listing = actions.add_parser("list", help="list collections, or one collection's files")
    listing.add_argument("name", nargs="?")
    listing.set_defaults(handler=run_list)
    remove = actions.add_parser("remove", help="delete a collection's index (not the files)")
    remove.add_argument("name")
    remove.set_defaults(handler=run_remove)
    ask = actions.add_parser("ask", help="answer a question from a collection, with citations")
    ask.add_argument("name")
    ask.add_argument("question")
    add_model_option(ask)
    ask.add_argument("-k", "--passages", type=int, default=5, help="passages to give the model")
    ask.add_argument("--mode", choices=("hybrid", "vector", "keyword"), default="hybrid")
    ask.add_argument("--max-tokens", type=int, default=384)
    ask.add_argument("--search-only", action="store_true",
                     help="show the passages found; no model is run")
    ask.add_argument("--device", choices=DEVICES, default="auto")
    ask.add_argument("--json", action="store_true", help="print the answer and sources as JSON")
    ask.set_defaults(handler=run_ask)


def _embedder(name: str) -> Any:
    from engine.retrieval.embedder import load_embedder
    return load_embedder(name)


def _index(collection: Any, embedder: Any, json_progress: bool) -> int:
    from engine.retrieval.indexer import update_collection
    stop = threading.Event()
    try:
        report = update_collection(collection, embedder, stop.is_set,
                                   ProgressPrinter(json_progress))
    except KeyboardInterrupt:  # (the indexer ends between files; this is Ctrl-C in a read)
        print("stopped; the collection keeps the files indexed so far", file=sys.stderr)
        return 130
    print(f"{collection.name}: {report.added} added, {report.updated} updated, "
          f"{report.unchanged} unchanged, {report.removed} removed, {len(report.skipped)} "
          f"skipped; {report.passages} passages written in {report.seconds:.1f} s")
    for path, reason in report.skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    return 0


def run_add(args: argparse.Namespace) -> int:
    from engine.retrieval.collection import Collection, check_collection_name, list_collections
    check_collection_name(args.name)
    for folder in args.folders:
        if not folder.exists():
            raise ConfigError(f"{folder}: no such file or folder")
    folders = [folder.resolve() for folder in args.folders]
    if args.name in list_collections():
        collection = Collection.open(args.name)
        embedder = _embedder(collection.embedding_model)
        collection.set_folders(folders)
    else:
        embedder = _embedder(args.embedding_model)
        collection = Collection.create(args.name, folders, embedder.name, embedder.dimension)
    with collection:
        return _index(collection, embedder, args.json_progress)


def run_update(args: argparse.Namespace) -> int:
    from engine.retrieval.collection import Collection
    with Collection.open(args.name) as collection:
        return _index(collection, _embedder(collection.embedding_model), args.json_progress)


def run_list(args: argparse.Namespace) -> int:
    from engine.retrieval.collection import Collection, collections_dir, list_collections
    if args.name is None:
        names = list_collections()
        if not names:
            print(f"no collections in {collections_dir()}; try: nightlamp docs add NAME FOLDER")
        for name in names:
            with Collection.open(name) as collection:
                files = collection.files()
                skipped = sum(f.status == "skipped" for f in files)
                print(f"{name}: {len(files) - skipped} files, {collection.passage_count()} "
                      f"passages, {skipped} skipped; folders: {', '.join(collection.folders)}")
        return 0
    with Collection.open(args.name) as collection:
        for record in collection.files():
            detail = f"{record.chunks} passages" if record.status == "ok" \
                else f"skipped: {record.reason}"
            print(f"{record.path}: {detail}")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    from engine.retrieval.collection import remove_collection
    folder = remove_collection(args.name)
    print(f"removed {folder} (the documents themselves are untouched)")
    return 0


def _found(hits: list[Any]) -> list[dict[str, Any]]:
    from engine.retrieval.answer import GroundedAnswer
    sources = GroundedAnswer("", hits, relevant=True).sources()
    for source in sources:
        source.pop("cited")  # nothing has been answered
    return sources


def run_ask(args: argparse.Namespace) -> int:
    from engine.generation import GenerationConfig
    from engine.retrieval.answer import fit_passages, new_answer, stream_answer
    from engine.retrieval.collection import Collection
    from engine.retrieval.search import search
    from engine.sampling import SamplingSettings
    question = checked_text(args.question, "QUESTION").strip()
    if not question:
        raise ConfigError("the question is empty")
    if args.max_tokens < 1:
        raise ConfigError(f"--max-tokens must be >= 1 (got {args.max_tokens})")
    with Collection.open(args.name) as collection:
        hits = search(collection, _embedder(collection.embedding_model), question,
                      args.passages, args.mode)
    if args.search_only:
        sources = _found(hits)
        if args.json:
            print(json.dumps({"question": question, "passages": sources}, ensure_ascii=False))
        for source in [] if args.json else sources:
            print(f"[{source['number']}] {source['where']} (cosine {source['cosine']:.2f})\n"
                  f"{source['text']}\n")
        return 0
    from engine.model import load_model, require_decoder
    model = require_decoder(load_model(args.model, device=args.device))
    if not model.manifest.chat_template:
        raise ConfigError(f"{model.name} has no chat template; answers need a chat model",
                          hint="pass -m with a chat model")
    hits = fit_passages(model, question, hits, args.max_tokens)
    if not hits:
        print("note: nothing in the collection matches this question; the model was told so",
              file=sys.stderr)
    config = GenerationConfig(max_new_tokens=args.max_tokens,
                              sampling=SamplingSettings(temperature=0))
    stop = threading.Event()
    answer = new_answer(hits)
    try:
        for shown in stream_answer(model, question, answer, config, stop.is_set):
            if not args.json:
                sys.stdout.write(shown)
                sys.stdout.flush()
    except KeyboardInterrupt:
        stop.set()
    sources = answer.sources()
    if args.json:
        print(json.dumps({"question": question, "answer": answer.text.strip(),
                          "relevant": answer.relevant, "cited": answer.cited,
                          "dropped_citations": answer.dropped, "sources": sources},
                         ensure_ascii=False))
        return 0
    print("\n")
    for source in sources:
        mark = "" if source["cited"] else " (not cited)"
        print(f"[{source['number']}] {source['where']}{mark}")
    if answer.dropped:
        print(f"note: removed citations of passages that were not given: "
              f"{' '.join(answer.dropped)}", file=sys.stderr)
    return 0
