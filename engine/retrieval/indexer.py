"""Reading folders into a collection, incrementally.

An update scans the collection's folders for documents (the readers' suffixes; hidden files and
folders left out; links not followed out of a folder), then compares each with what the
collection recorded: a new file is read; one whose size and modification time are unchanged is
left alone; one whose size or time changed is hashed, and read again only if its content
changed; a file gone from disk loses its passages. Each file is read within the readers' own
limits (size, pages, time), cut into passages and embedded, then written in one transaction
(``collection``), so a cancel or crash at any moment leaves every file either as it was or
fully updated. A file that cannot be read is recorded as skipped with its reason; it never
stops the rest.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from engine.callbacks import Progress, ShouldStop, never_stop, no_progress
from engine.documents import SUFFIXES, read_document
from engine.errors import DocumentError, OperationCancelledError
from engine.retrieval.chunks import chunk_document
from engine.retrieval.collection import Collection, FileRecord
from engine.retrieval.embedder import PASSAGE_TOKENS, Embedder

MAX_FILES = 200_000  # a folder tree with more documents than this is refused, not scanned on
COMPACT_SHARE = 0.5  # the vector matrix is compacted once this share of its rows is unused


@dataclass
class UpdateReport:
    """What an update did."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    passages: int = 0  # passages written
    seconds: float = 0.0
    cancelled: bool = False


def find_documents(folders: list[Path], should_stop: ShouldStop = never_stop) -> list[Path]:
    """Every readable document under the folders (or the files themselves), sorted."""
    found: set[Path] = set()
    for root in folders:
        if root.is_file():
            found.add(root.resolve())
            continue
        for directory, subfolders, files in os.walk(root, followlinks=False):
            if should_stop():
                raise OperationCancelledError("the update was cancelled")
            subfolders[:] = [d for d in subfolders if not d.startswith(".")]
            for name in files:
                path = Path(directory) / name
                if not name.startswith(".") and path.suffix.lower() in SUFFIXES \
                        and not path.is_symlink():
                    found.add(path.resolve())
            if len(found) > MAX_FILES:
                raise DocumentError(f"{root}: holds more than {MAX_FILES:,} documents; add "
                                    "smaller folders")
    return sorted(found)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def update_collection(collection: Collection, embedder: Embedder,
                      should_stop: ShouldStop = never_stop,
                      progress: Progress = no_progress) -> UpdateReport:
    """Brings the collection up to date with its folders (see the module docstring).

    A cancel ends the update between files or between a file's embedding batches; the report
    says ``cancelled`` and what was done until then. Raises nothing for unreadable files.
    """
    started = time.perf_counter()
    report = UpdateReport()
    progress("scanning", 0, 1)
    try:
        paths = find_documents([Path(f) for f in collection.folders], should_stop)
    except OperationCancelledError:
        report.cancelled = True
        return report
    records = {r.path: r for r in collection.files()}
    on_disk = {str(p) for p in paths}
    gone = [path for path in records if path not in on_disk]
    if gone:
        collection.remove_files(gone)
        report.removed = len(gone)
    progress("scanning", 1, 1)
    for done, path in enumerate(paths):
        if should_stop():
            report.cancelled = True
            break
        progress(f"reading {path.name}", done, len(paths))
        try:
            _update_file(collection, embedder, path, records.get(str(path)), report,
                         should_stop)
        except OperationCancelledError:
            report.cancelled = True
            break
    else:
        progress("indexed", len(paths), len(paths))
    vectors = len(collection.vectors())
    if vectors and collection.passage_count() < (1 - COMPACT_SHARE) * vectors:
        collection.compact()
    report.seconds = time.perf_counter() - started
    return report


def _update_file(collection: Collection, embedder: Embedder, path: Path,
                 record: FileRecord | None, report: UpdateReport,
                 should_stop: ShouldStop) -> None:
    try:
        stat = path.stat()
    except OSError as error:
        report.skipped.append((str(path), error.strerror or str(error)))
        return
    if record is not None and record.size == stat.st_size and record.mtime_ns == stat.st_mtime_ns:
        report.unchanged += 1
        return
    try:
        digest = _sha256(path)
    except OSError as error:
        report.skipped.append((str(path), f"cannot be read ({error.strerror or error})"))
        return
    if record is not None and record.sha256 == digest:
        collection.touch_file(str(path), stat.st_mtime_ns)
        report.unchanged += 1
        return
    try:
        document = read_document(path, should_stop=should_stop)
    except DocumentError as error:
        collection.skip_file(str(path), stat.st_size, stat.st_mtime_ns, digest, str(error))
        report.skipped.append((str(path), str(error)))
        return
    chunks = chunk_document(document)
    vectors = embedder.embed([c.embedding_text() for c in chunks], should_stop,
                             max_tokens=PASSAGE_TOKENS)
    collection.replace_file(str(path), stat.st_size, stat.st_mtime_ns, digest, chunks, vectors,
                            document.pages)
    report.passages += len(chunks)
    if record is None:
        report.added += 1
    else:
        report.updated += 1
