"""One transaction on an autocommit SQLite connection, with SQLite's errors turned into ours.

For stores that make each API call exactly one transaction (the chat history, document
collections): ``BEGIN IMMEDIATE`` takes the write lock up front, so two processes wait for each
other instead of failing half-way; any error rolls back first, so a failed COMMIT never leaves
the connection inside a transaction; a ``sqlite3.Error`` (disk full, read-only, locked, I/O)
becomes the caller's own error, made by ``failure``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def transaction(conn: sqlite3.Connection,
                failure: Callable[[sqlite3.Error], Exception]) -> Iterator[sqlite3.Connection]:
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    except sqlite3.Error as error:
        raise failure(error) from error
