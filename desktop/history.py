"""Conversation history: conversations and their messages in one SQLite file.

The database runs in WAL mode and every change is its own short transaction, so a crash (or a
killed process) loses at most the tokens streamed since the last ``update_streaming`` call. An
answer that was still streaming is marked ``interrupted`` at the next start-up by
``recover_interrupted``, keeping its saved partial text. A damaged file is moved aside and a file
from a newer Nightlamp is copied before we refuse it, so no history is ever silently overwritten.
A change that cannot be saved (disk full, read-only file) raises ``HistoryWriteError`` after
rolling back, never a raw ``sqlite3`` error; the store stays usable for a retry. Two Nightlamp
processes may share one file: each write waits up to ``BUSY_TIMEOUT_S`` for the other's lock.

Threading: a store belongs to the thread that opened it (the GUI thread). sqlite3's
``check_same_thread=True`` is kept on purpose, so use from another thread fails loudly instead of
racing. Calls are small indexed queries; only the integrity check at open and a search read the
whole file, which takes milliseconds at chat-history sizes.
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.sqlite_transaction import transaction

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
ROLES = ("system", "user", "assistant")
STATUSES = ("complete", "streaming", "interrupted", "cancelled", "failed")
BUSY_TIMEOUT_S = 10.0  # how long a write waits for another process's lock on the file
FINAL_STATUSES = ("complete", "cancelled", "failed")
_SIDECARS = ("-wal", "-shm", "-journal")  # SQLite's files next to the database; they travel with it
_MARKERS = {"interrupted": "*(interrupted)*", "cancelled": "*(stopped)*",
            "failed": "*(failed)*", "streaming": "*(still generating)*"}
_HEADINGS = {"user": "## You", "assistant": "## Assistant", "system": "## System"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    system_prompt TEXT NOT NULL DEFAULT '',
    model TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    settings TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    content TEXT NOT NULL,
    status TEXT NOT NULL
        CHECK (status IN ('complete', 'streaming', 'interrupted', 'cancelled', 'failed')),
    created REAL NOT NULL,
    stats TEXT
);
CREATE INDEX IF NOT EXISTS messages_by_conversation ON messages(conversation_id, id);
"""


def _now() -> float:
    """Wall-clock seconds; a module function so tests can substitute a fake clock."""
    return time.time()


class HistoryError(Exception):
    """The history file cannot be used. ``backup`` is where the file was moved or copied to."""

    def __init__(self, message: str, backup: Path | None = None) -> None:
        super().__init__(message)
        self.backup = backup


class HistoryWriteError(HistoryError):
    """A change could not be saved (disk full, read-only file, locked too long, I/O error).

    Nothing was changed: the transaction was rolled back, and the store stays usable, so the
    same call can be retried once the cause is fixed.
    """


class _CorruptError(Exception):
    """Internal: the file is not SQLite or fails the integrity check (message says why)."""


@dataclass(frozen=True)
class Conversation:
    """A snapshot of one conversation row (read again after changing it)."""

    id: int
    title: str
    system_prompt: str
    model: str | None  # model name, or None for "the default model"
    created: float  # seconds since the epoch
    updated: float  # last message activity; the list is sorted by it
    settings: dict[str, Any]  # per-conversation generation settings (temperature, ...)


@dataclass(frozen=True)
class Message:
    """A snapshot of one message row."""

    id: int
    conversation_id: int
    role: str  # 'system' | 'user' | 'assistant'
    content: str
    status: str  # 'complete' | 'streaming' | 'interrupted' | 'cancelled' | 'failed'
    created: float
    stats: dict[str, Any] | None  # generation stats (tokens, tokens/s, ...) for answers


class HistoryStore:
    """Conversations and messages in one SQLite file. Create with ``HistoryStore.open``."""

    def __init__(self, conn: sqlite3.Connection, path: Path,
                 recovered_from: Path | None = None) -> None:
        self._conn = conn
        self.path = path
        self.recovered_from = recovered_from  # the damaged file moved aside, if we started fresh

    @classmethod
    def open(cls, path: Path, *, recover: bool = False) -> HistoryStore:
        """Open (or create) the history database at ``path``.

        Args:
            path: the database file; missing parent folders are created.
            recover: if the file is damaged, start a fresh database instead of raising
                (the damaged one is moved aside either way; see ``recovered_from``).

        Raises:
            HistoryError: the file is damaged (moved to ``<name>.broken-<timestamp>``), was
                written by a newer Nightlamp (copied to ``<name>.backup-v<N>``, left in place),
                or cannot be opened at all (e.g. no permission).
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            version = _check_existing(path)
        except _CorruptError as exc:
            broken = _move_aside(path, time.strftime("broken-%Y%m%d-%H%M%S"))
            log.warning("history %s is damaged (%s); moved it to %s", path, exc, broken)
            if not recover:
                raise HistoryError(f"History file {path} is damaged ({exc}); it was moved to "
                                   f"{broken.name} and a new history will be started",
                                   broken) from None
            return cls(_connect(path), path, recovered_from=broken)
        if version > SCHEMA_VERSION:
            backup = _unused(path.with_name(f"{path.name}.backup-v{version}"))
            for suffix in ("", *_SIDECARS):
                if Path(f"{path}{suffix}").exists():
                    shutil.copy2(f"{path}{suffix}", f"{backup}{suffix}")
            raise HistoryError(f"History file {path} was written by a newer Nightlamp (schema "
                               f"v{version}, this version reads v{SCHEMA_VERSION}); update "
                               f"Nightlamp (a copy is at {backup.name})", backup) from None
        return cls(_connect(path), path)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        # The connection is in autocommit mode; this makes each API call exactly one transaction
        # (SQLite's errors become HistoryWriteError after a rollback: engine/sqlite_transaction).
        return transaction(self._conn,
                           lambda error: HistoryWriteError(_write_problem(self.path, error)))

    # -- conversations --------------------------------------------------------------------------

    def create_conversation(self, title: str = "New chat", system_prompt: str = "",
                            model: str | None = None,
                            settings: dict[str, Any] | None = None) -> Conversation:
        now = _now()
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO conversations (title, system_prompt, model, created, updated, "
                "settings) VALUES (?, ?, ?, ?, ?, ?)",
                (title, system_prompt, model, now, now, json.dumps(settings or {})))
        return self.get_conversation(_rowid(cursor))

    def list_conversations(self, search: str = "") -> list[Conversation]:
        """All conversations, most recently active first.

        Args:
            search: keep only those whose title or any message contains this text (ignoring
                case, Unicode-aware; ``%`` and ``_`` are literal characters).
        """
        query, params = "SELECT * FROM conversations", []
        if search:
            pattern = "%" + _escape_like(search.casefold()) + "%"
            query += (" WHERE nl_fold(title) LIKE ?1 ESCAPE '\\' OR EXISTS (SELECT 1 FROM messages"
                      " m WHERE m.conversation_id = conversations.id"
                      " AND nl_fold(m.content) LIKE ?1 ESCAPE '\\')")
            params.append(pattern)
        rows = self._conn.execute(query + " ORDER BY updated DESC, id DESC", params)
        return [_conversation(row) for row in rows]

    def get_conversation(self, conversation_id: int) -> Conversation:
        """Raises KeyError if there is no such conversation."""
        row = self._conn.execute("SELECT * FROM conversations WHERE id = ?",
                                 (conversation_id,)).fetchone()
        if row is None:
            raise KeyError(f"no conversation with id {conversation_id}")
        return _conversation(row)

    def rename(self, conversation_id: int, title: str) -> None:
        self._set(conversation_id, "title", title)

    def set_system_prompt(self, conversation_id: int, text: str) -> None:
        self._set(conversation_id, "system_prompt", text)

    def set_model(self, conversation_id: int, name: str | None) -> None:
        self._set(conversation_id, "model", name)

    def set_settings(self, conversation_id: int, settings: dict[str, Any]) -> None:
        self._set(conversation_id, "settings", json.dumps(settings))

    def _set(self, conversation_id: int, column: str, value: object) -> None:
        # `column` is always one of our literals above, never user input.
        with self._transaction() as db:
            cursor = db.execute(f"UPDATE conversations SET {column} = ? WHERE id = ?",
                                (value, conversation_id))
            if cursor.rowcount == 0:
                raise KeyError(f"no conversation with id {conversation_id}")

    def delete_conversation(self, conversation_id: int) -> None:
        """Delete a conversation and (by cascade) its messages. Unknown ids are ignored."""
        with self._transaction() as db:
            db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))

    # -- messages -------------------------------------------------------------------------------

    def messages(self, conversation_id: int) -> list[Message]:
        rows = self._conn.execute("SELECT * FROM messages WHERE conversation_id = ? ORDER BY id",
                                  (conversation_id,))
        return [_message(row) for row in rows]

    def add_message(self, conversation_id: int, role: str, content: str,
                    status: str = "complete", stats: dict[str, Any] | None = None) -> Message:
        """Append a message in one committed transaction and mark the conversation active."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, not {role!r}")
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, not {status!r}")
        now = _now()
        with self._transaction() as db:
            self._touch(db, conversation_id, now)
            cursor = db.execute(
                "INSERT INTO messages (conversation_id, role, content, status, created, stats) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (conversation_id, role, content, status, now,
                 None if stats is None else json.dumps(stats)))
        return self._get_message(_rowid(cursor))

    def begin_assistant_message(self, conversation_id: int) -> Message:
        """An empty 'streaming' answer, committed now so that a crash still leaves a row."""
        return self.add_message(conversation_id, "assistant", "", status="streaming")

    def update_streaming(self, message_id: int, content: str) -> bool:
        """Save the partial text of a streaming answer. False if the message no longer exists.

        Committed without waiting for the disk (``synchronous = NORMAL``; with WAL that still
        survives a crash of the app): this runs on the GUI thread about once a second while an
        answer streams, and a disk flush each time stalled the window by up to a few hundred
        milliseconds on a busy machine (benchmarks/ui_heartbeat.py). A power cut can lose at
        most the last partial save of an answer still being written; ``finish_message`` is
        durable as every other write.
        """
        self._conn.execute("PRAGMA synchronous = NORMAL")
        try:
            with self._transaction() as db:
                cursor = db.execute("UPDATE messages SET content = ? WHERE id = ?",
                                    (content, message_id))
        finally:
            self._conn.execute("PRAGMA synchronous = FULL")
        return cursor.rowcount > 0

    def finish_message(self, message_id: int, content: str, status: str = "complete",
                       stats: dict[str, Any] | None = None) -> bool:
        """Store the final text and status of an answer.

        Returns False if the message was deleted meanwhile (e.g. its conversation was deleted
        while the answer streamed), so a late ``finished`` signal is harmless.
        """
        if status not in FINAL_STATUSES:
            raise ValueError(f"status must be one of {FINAL_STATUSES}, not {status!r}")
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE messages SET content = ?, status = ?, stats = ? WHERE id = ?",
                (content, status, None if stats is None else json.dumps(stats), message_id))
            db.execute("UPDATE conversations SET updated = ? WHERE id = "
                       "(SELECT conversation_id FROM messages WHERE id = ?)", (_now(), message_id))
        return cursor.rowcount > 0

    def delete_messages_from(self, message_id: int) -> int:
        """Delete a message and every later one in its conversation (regenerate, edit-and-resend).

        Returns how many were deleted (0 for an unknown id).
        """
        with self._transaction() as db:
            cursor = db.execute(
                "DELETE FROM messages WHERE id >= ?1 AND conversation_id = "
                "(SELECT conversation_id FROM messages WHERE id = ?1)", (message_id,))
        return cursor.rowcount

    def recover_interrupted(self) -> int:
        """At start-up: mark answers left 'streaming' by a crash as 'interrupted' (text kept).

        Returns how many were marked.
        """
        with self._transaction() as db:
            count = db.execute("UPDATE messages SET status = 'interrupted' "
                               "WHERE status = 'streaming'").rowcount
        if count:
            log.info("marked %d unfinished answer(s) in %s as interrupted", count, self.path)
        return count

    def export_markdown(self, conversation_id: int) -> str:
        """The conversation as Markdown: title, system prompt as a quote, then each message."""
        conversation = self.get_conversation(conversation_id)
        parts = ["# " + " ".join(conversation.title.split())]
        if conversation.system_prompt.strip():
            parts.append("\n".join(f"> {line}".rstrip()
                                   for line in conversation.system_prompt.strip().splitlines()))
        for message in self.messages(conversation_id):
            parts.append(_HEADINGS[message.role])
            if message.content.strip():
                parts.append(message.content.lstrip("\n").rstrip())  # keep code indentation
            if message.status in _MARKERS:
                parts.append(_MARKERS[message.status])
            sources = _sources_list(message.stats)
            if sources:
                parts.append(sources)
        return "\n\n".join(parts) + "\n"

    def _touch(self, db: sqlite3.Connection, conversation_id: int, now: float) -> None:
        if db.execute("UPDATE conversations SET updated = ? WHERE id = ?",
                      (now, conversation_id)).rowcount == 0:
            raise KeyError(f"no conversation with id {conversation_id}")

    def _get_message(self, message_id: int) -> Message:
        row = self._conn.execute("SELECT * FROM messages WHERE id = ?", (message_id,)).fetchone()
        if row is None:
            raise KeyError(f"no message with id {message_id}")
        return _message(row)


# -- opening, checking and moving files ---------------------------------------------------------


def _check_existing(path: Path) -> int:
    """The schema version of the file at ``path`` (0 if none); _CorruptError if it is damaged.

    Tries a read-only connection first so that a file we refuse is not modified; a writable one
    only if that fails (a hot rollback journal needs writing to be undone). Errors that do not
    prove damage (locked, no permission, I/O) raise HistoryError and leave the file alone.
    """
    if not path.exists() or path.stat().st_size == 0:
        return 0  # SQLite treats an empty file as an empty database
    error: sqlite3.Error | None = None
    for mode in ("ro", "rw"):
        try:
            probe = sqlite3.connect(f"{path.resolve().as_uri()}?mode={mode}", uri=True)
            try:
                version: int = probe.execute("PRAGMA user_version").fetchone()[0]
                if version <= SCHEMA_VERSION:
                    result = probe.execute("PRAGMA integrity_check").fetchall()
                    if result != [("ok",)]:
                        raise _CorruptError(" ".join(str(result[0][0]).split())[:120])
                return version
            finally:
                probe.close()
        except sqlite3.Error as exc:
            code, text = getattr(exc, "sqlite_errorcode", None), str(exc)  # code: Python >= 3.11
            if code in (11, 26) or (  # SQLITE_CORRUPT, SQLITE_NOTADB
                    code is None and ("malformed" in text or "not a database" in text)):
                raise _CorruptError(text) from None
            error = exc
    raise HistoryError(f"Cannot read history file {path}: {error}")


def _connect(path: Path) -> sqlite3.Connection:
    conn = None
    try:
        # isolation_level=None: autocommit; HistoryStore._transaction issues BEGIN/COMMIT itself.
        # timeout: another Nightlamp writing the same file holds its lock for milliseconds;
        # wait for it (SQLite's busy timeout) rather than fail with "database is locked".
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=True,
                               timeout=BUSY_TIMEOUT_S)
        conn.row_factory = sqlite3.Row
        conn.create_function("nl_fold", 1, _fold, deterministic=True)
        conn.execute("PRAGMA foreign_keys = ON")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":  # e.g. some network file systems; still correct, just slower
            log.warning("history %s: WAL mode unavailable, using %s", path, mode)
        # FULL: every committed message survives a power cut, not just a process crash.
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("BEGIN IMMEDIATE")
        if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        if conn is not None:
            conn.close()
        raise HistoryError(f"Cannot open history file {path}: {exc}") from None
    return conn


def _write_problem(path: Path, exc: sqlite3.Error) -> str:
    """A readable sentence for a failed write, naming the file and what to do."""
    text = str(exc)
    if "full" in text:
        cause = "the disk is full; free some space"
    elif "readonly" in text or "read-only" in text:
        cause = "the file or its folder is read-only; check its permissions"
    elif "locked" in text or "busy" in text:
        cause = "another program kept it locked; close other Nightlamp windows"
    else:
        cause = text
    return f"Could not save the chat history to {path}: {cause}"


def _unused(target: Path) -> Path:
    """``target``, or ``target-2``, ``target-3``... whichever does not exist yet."""
    candidate, number = target, 1
    while candidate.exists():
        number += 1
        candidate = target.with_name(f"{target.name}-{number}")
    return candidate


def _move_aside(path: Path, label: str) -> Path:
    """Rename the database and its sidecar files to ``<name>.<label>[-wal|-shm|-journal]``."""
    target = _unused(path.with_name(f"{path.name}.{label}"))
    for suffix in _SIDECARS:
        sidecar = Path(f"{path}{suffix}")
        if sidecar.exists():
            sidecar.replace(f"{target}{suffix}")
    path.replace(target)
    return target


# -- row helpers --------------------------------------------------------------------------------


def _sources_list(stats: dict[str, Any] | None) -> str:
    """The passages a documents answer was given, as a Markdown list ("" for other answers)."""
    documents = (stats or {}).get("documents")
    if not isinstance(documents, dict) or not isinstance(documents.get("sources"), list):
        return ""
    lines = [f"- [{source.get('number')}] {source.get('where', '')} ({source.get('path', '')})"
             for source in documents["sources"] if isinstance(source, dict)]
    return "Sources:\n\n" + "\n".join(lines) if lines else ""


def _fold(text: str | None) -> str | None:
    # SQLite's own LIKE folds ASCII only; casefold() also matches "É" with "é", "STRASSE" with "ß".
    return None if text is None else text.casefold()


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _rowid(cursor: sqlite3.Cursor) -> int:
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def _conversation(row: sqlite3.Row) -> Conversation:
    return Conversation(row["id"], row["title"], row["system_prompt"], row["model"],
                        row["created"], row["updated"], json.loads(row["settings"] or "{}"))


def _message(row: sqlite3.Row) -> Message:
    return Message(row["id"], row["conversation_id"], row["role"], row["content"], row["status"],
                   row["created"], None if row["stats"] is None else json.loads(row["stats"]))
