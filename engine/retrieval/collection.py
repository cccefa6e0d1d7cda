"""A document collection on disk: its files, their passages and the passages' vectors.

``$NIGHTLAMP_HOME/collections/NAME/`` holds ``index.sqlite`` (WAL: files, passages, an FTS5
keyword index over the passages, settings) and ``vectors-N.f32``, the passages' unit embeddings as
one float32 matrix, a row per passage, read memory-mapped so an exact cosine search over a
million passages needs no copy of them in memory.

Consistency: vectors are appended (and flushed to disk) first, then the file's passages that
point at those rows are written in one transaction with the file's record. A crash or a cancel
between the two leaves only unreferenced rows at the end of the matrix, which searches never
return and ``compact`` drops; a half-written last row is cut off at open. So a collection is
always one that some sequence of whole-file updates produced.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import ConfigError, DocumentError
from engine.retrieval.chunks import Chunk
from engine.sqlite_transaction import transaction
from engine.store import home

SCHEMA_VERSION = 1
DATABASE = "index.sqlite"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL, status TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '', pages INTEGER);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY, file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL, text TEXT NOT NULL, heading TEXT NOT NULL,
    page_start INTEGER, page_end INTEGER, char_start INTEGER NOT NULL,
    char_end INTEGER NOT NULL, vector_row INTEGER NOT NULL UNIQUE);
CREATE INDEX IF NOT EXISTS chunks_by_file ON chunks(file_id);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    text, heading, content='chunks', content_rowid='id', tokenize='unicode61 remove_diacritics 2');
CREATE TRIGGER IF NOT EXISTS chunks_added AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts(rowid, text, heading) VALUES (new.id, new.text, new.heading); END;
CREATE TRIGGER IF NOT EXISTS chunks_removed AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, text, heading)
    VALUES ('delete', old.id, old.text, old.heading); END;
"""


@dataclass(frozen=True)
class FileRecord:
    """A file the collection has seen: indexed (``ok``) or ``skipped`` with its reason."""

    path: str
    size: int
    mtime_ns: int
    sha256: str
    status: str  # "ok" | "skipped"
    reason: str
    chunks: int
    pages: int | None = None


@dataclass(frozen=True)
class Passage:
    """A stored passage, with the file it came from."""

    id: int
    path: str
    text: str
    heading: str
    page_start: int | None
    page_end: int | None
    char_start: int
    char_end: int

    def where(self) -> str:
        """The file name and ``p. 4`` / ``pp. 4-5`` or the heading: what a citation shows."""
        chunk = Chunk(self.text, self.heading, self.page_start, self.page_end, self.char_start,
                      self.char_end)
        place = chunk.where()
        return f"{Path(self.path).name}, {place}" if place else Path(self.path).name


def collections_dir() -> Path:
    return home() / "collections"


def check_collection_name(name: str) -> str:
    if not _NAME.fullmatch(name or ""):
        raise ConfigError(f"collection name {name!r} is not usable; use letters, digits, '.', "
                          "'_' or '-' (up to 64, starting with a letter or digit)")
    return name


def list_collections() -> list[str]:
    folder = collections_dir()
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if (p / DATABASE).is_file())


def remove_collection(name: str) -> Path:
    """Deletes a collection's index (never the documents themselves); returns its folder."""
    folder = collections_dir() / check_collection_name(name)
    if not (folder / DATABASE).is_file():
        raise ConfigError(f"no collection named {name!r}",
                          hint=_existing_hint())
    shutil.rmtree(folder)
    return folder


def _existing_hint() -> str:
    names = list_collections()
    return f"collections: {', '.join(names)}" if names else \
        "create one with: nightlamp docs add NAME FOLDER"


class Collection:
    """One open collection. Writes come from one thread (the indexer); reads may come from
    another connection at the same time (WAL)."""

    def __init__(self, folder: Path, conn: sqlite3.Connection) -> None:
        self.folder, self.name, self._conn = folder, folder.name, conn
        settings = dict(conn.execute("SELECT key, value FROM settings"))
        self.embedding_model = settings.get("embedding_model", "")
        self.dimension = int(settings.get("dimension", "0"))
        self.folders: list[str] = json.loads(settings.get("folders", "[]"))
        self._vectors_file = settings.get("vectors_file", "vectors-1.f32")

    @classmethod
    def create(cls, name: str, folders: list[Path], embedding_model: str,
               dimension: int) -> Collection:
        """A new, empty collection (its name must be free)."""
        folder = collections_dir() / check_collection_name(name)
        if (folder / DATABASE).exists():
            raise ConfigError(f"a collection named {name!r} exists already",
                              hint=f"add files with: nightlamp docs update {name}, or pick "
                                   "another name")
        folder.mkdir(parents=True, exist_ok=True)
        conn = _connect(folder / DATABASE)
        with conn:
            conn.executemany("INSERT INTO settings VALUES (?, ?)", [
                ("schema_version", str(SCHEMA_VERSION)), ("embedding_model", embedding_model),
                ("dimension", str(dimension)),
                ("folders", json.dumps([str(f) for f in folders])),
                ("vectors_file", "vectors-1.f32")])
        (folder / "vectors-1.f32").touch()
        return cls(folder, conn)

    @classmethod
    def open(cls, name: str) -> Collection:
        folder = collections_dir() / check_collection_name(name)
        if not (folder / DATABASE).is_file():
            raise ConfigError(f"no collection named {name!r}", hint=_existing_hint())
        try:
            conn = _connect(folder / DATABASE)
            version = conn.execute("SELECT value FROM settings WHERE key = 'schema_version'"
                                   ).fetchone()
        except sqlite3.DatabaseError as error:
            raise DocumentError(f"{folder / DATABASE}: the collection's index is damaged "
                                f"({error}); remove it with: nightlamp docs remove {name}, "
                                "and add the folders again") from None
        if version is None or int(version[0]) > SCHEMA_VERSION:
            raise DocumentError(f"{folder / DATABASE}: written by a newer Nightlamp; update "
                                "Nightlamp to use this collection")
        return cls(folder, conn)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Collection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- files ---------------------------------------------------------------------------------

    def set_folders(self, folders: list[Path]) -> None:
        self.folders = sorted({*self.folders, *(str(f) for f in folders)})
        with self._conn:
            self._conn.execute("REPLACE INTO settings VALUES ('folders', ?)",
                               (json.dumps(self.folders),))

    def files(self) -> list[FileRecord]:
        rows = self._conn.execute(
            "SELECT path, size, mtime_ns, sha256, status, reason, pages, "
            "(SELECT COUNT(*) FROM chunks WHERE file_id = files.id) FROM files ORDER BY path")
        return [FileRecord(r[0], r[1], r[2], r[3], r[4], r[5], r[7], r[6]) for r in rows]

    def replace_file(self, path: str, size: int, mtime_ns: int, sha256: str,
                     chunks: list[Chunk], vectors: np.ndarray, pages: int | None) -> None:
        """The file's passages (and vectors), replacing what it had, in one transaction."""
        first_row = self._append_vectors(vectors)
        with self._transaction() as db:
            db.execute("DELETE FROM files WHERE path = ?", (path,))
            file_id = db.execute(
                "INSERT INTO files (path, size, mtime_ns, sha256, status, pages) "
                "VALUES (?, ?, ?, ?, 'ok', ?)", (path, size, mtime_ns, sha256, pages)).lastrowid
            db.executemany(
                "INSERT INTO chunks (file_id, ordinal, text, heading, page_start, page_end, "
                "char_start, char_end, vector_row) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(file_id, i, c.text, c.heading, c.page_start, c.page_end, c.char_start,
                  c.char_end, first_row + i) for i, c in enumerate(chunks)])

    def skip_file(self, path: str, size: int, mtime_ns: int, sha256: str, reason: str) -> None:
        """Records a file that could not be read (its old passages go), with the reason."""
        with self._transaction() as db:
            db.execute("DELETE FROM files WHERE path = ?", (path,))
            db.execute("INSERT INTO files (path, size, mtime_ns, sha256, status, reason) "
                       "VALUES (?, ?, ?, ?, 'skipped', ?)", (path, size, mtime_ns, sha256,
                                                              reason[:500]))

    def touch_file(self, path: str, mtime_ns: int) -> None:
        """A file whose time changed but whose content did not: only its time is updated."""
        with self._transaction() as db:
            db.execute("UPDATE files SET mtime_ns = ? WHERE path = ?", (mtime_ns, path))

    def remove_files(self, paths: list[str]) -> None:
        with self._transaction() as db:
            db.executemany("DELETE FROM files WHERE path = ?", [(p,) for p in paths])

    # -- passages and vectors ------------------------------------------------------------------

    def passage_count(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])

    def passages(self, ids: list[int]) -> list[Passage]:
        """The passages with these ids, in the order given (unknown ids left out)."""
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows = {r[0]: Passage(*r) for r in self._conn.execute(
            "SELECT chunks.id, files.path, text, heading, page_start, page_end, char_start, "
            f"char_end FROM chunks JOIN files ON files.id = file_id WHERE chunks.id IN ({marks})",
            ids)}
        return [rows[i] for i in ids if i in rows]

    def ids_of_rows(self, rows: list[int]) -> dict[int, int]:
        """Vector row -> passage id, for the rows that belong to a passage."""
        if not rows:
            return {}
        marks = ",".join("?" * len(rows))
        return dict(self._conn.execute(
            f"SELECT vector_row, id FROM chunks WHERE vector_row IN ({marks})", rows))

    def rows_of_ids(self, ids: list[int]) -> dict[int, int]:
        """Passage id -> its vector row."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        return dict(self._conn.execute(
            f"SELECT id, vector_row FROM chunks WHERE id IN ({marks})", ids))

    def vectors(self) -> np.ndarray:
        """The vector matrix (rows, dimension), memory-mapped read-only (empty: a copy)."""
        # Read again each time: another connection may have compacted into a new file.
        current = self._conn.execute("SELECT value FROM settings WHERE key = 'vectors_file'"
                                     ).fetchone()
        self._vectors_file = current[0] if current else self._vectors_file
        path = self.folder / self._vectors_file
        rows = path.stat().st_size // self._row_bytes() if path.exists() else 0
        if rows == 0:
            return np.zeros((0, self.dimension), np.float32)
        return np.memmap(path, np.float32, "r", shape=(rows, self.dimension))

    def keyword_search(self, query: str, limit: int) -> list[tuple[int, float]]:
        """(passage id, bm25 score; higher is better) for an FTS5 query."""
        try:
            rows = self._conn.execute(
                "SELECT rowid, -bm25(chunks_fts, 1.0, 0.5) FROM chunks_fts WHERE chunks_fts "
                "MATCH ? ORDER BY bm25(chunks_fts, 1.0, 0.5) LIMIT ?", (query, limit))
            return [(int(r[0]), float(r[1])) for r in rows]
        except sqlite3.OperationalError:  # a query FTS5 cannot parse finds nothing
            return []

    def compact(self) -> int:
        """Rewrites the vector matrix without rows no passage points at; returns rows dropped."""
        vectors = self.vectors()
        live = self._conn.execute("SELECT id, vector_row FROM chunks ORDER BY vector_row"
                                  ).fetchall()
        dropped = len(vectors) - len(live)
        if dropped <= 0:
            return 0
        generation = int(self._vectors_file.removeprefix("vectors-").removesuffix(".f32"))
        new_file = f"vectors-{generation + 1}.f32"
        staged = self.folder / new_file
        with staged.open("wb") as sink:
            for start in range(0, len(live), 4096):
                rows = [row for _, row in live[start:start + 4096]]
                sink.write(np.ascontiguousarray(vectors[rows]).tobytes())
            sink.flush()
            os.fsync(sink.fileno())
        del vectors
        with self._transaction() as db:
            # Two steps, so the UNIQUE rows never collide while they are renumbered.
            db.executemany("UPDATE chunks SET vector_row = ? WHERE id = ?",
                           [(-1 - new, cid) for new, (cid, _) in enumerate(live)])
            db.execute("UPDATE chunks SET vector_row = -1 - vector_row")
            db.execute("REPLACE INTO settings VALUES ('vectors_file', ?)", (new_file,))
        old, self._vectors_file = self.folder / self._vectors_file, new_file
        # (Windows: a reader may still map it; then it stays, unused, until removed by hand)
        with suppress(OSError):
            old.unlink(missing_ok=True)
        return dropped

    def _row_bytes(self) -> int:
        return 4 * self.dimension

    def _trim_vectors(self) -> None:
        """Cuts a half-written last row (a crash while appending). Only the writer does this,
        just before it appends: a reader opening the collection while an indexer appends
        would otherwise cut the row being written."""
        path = self.folder / self._vectors_file
        if self.dimension and path.exists():
            size = path.stat().st_size
            if size % self._row_bytes():
                with path.open("r+b") as file:
                    file.truncate(size - size % self._row_bytes())

    def _append_vectors(self, vectors: np.ndarray) -> int:
        """Appends rows, flushed to disk; returns the first new row's index."""
        if vectors.ndim != 2 or vectors.shape[1] != self.dimension:
            raise ValueError(f"vectors of shape {vectors.shape}, the collection's are "
                             f"(n, {self.dimension})")
        self._trim_vectors()
        path = self.folder / self._vectors_file
        with path.open("ab") as file:
            first = file.tell() // self._row_bytes()
            file.write(np.ascontiguousarray(vectors, np.float32).tobytes())
            file.flush()
            os.fsync(file.fileno())
        return first

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self._conn, lambda error: DocumentError(
            f"{self.folder / DATABASE}: cannot save the collection ({error}); check the "
            "disk's free space"))


def _connect(path: Path) -> sqlite3.Connection:
    # Autocommit (isolation_level None): ``_transaction`` makes each change one transaction.
    # check_same_thread off: the indexer thread opens its own connection; one connection is
    # never shared by two threads at once.
    conn = sqlite3.connect(path, isolation_level=None, timeout=10.0, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(_SCHEMA)
    return conn
