"""The history under faults: killed writers, two writers at once, a full disk, a read-only home.

Every test is bounded in time. The kill test runs a child process that writes through the
history API and prints one acknowledgement line after each committed write, and ``kill -9``s it
at random moments (also during start-up and opening); every acknowledged message must be there
afterwards and the file must pass ``PRAGMA integrity_check``. A full disk and a read-only home are
simulated by making the connection raise the errors SQLite raises for them (tests may run as
root, where ``chmod`` does not stop writes, and mounting a tiny tmpfs needs privileges).
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from tests_desktop_fakes import fake_worker, quick_generate

from desktop.history import HistoryStore, HistoryWriteError
from desktop.main_window import MainWindow

ROOT = Path(__file__).resolve().parents[2]

# The writer: a conversation per run, then messages (every third one a streamed answer that is
# begun, updated and finished), each acknowledged on stdout once the call has returned.
WRITER = r"""
import sys
from pathlib import Path
from desktop.history import HistoryStore

path, tag, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
store = HistoryStore.open(path)
store.recover_interrupted()
conv = store.create_conversation(f"run {tag}").id
print(f"conv {conv}", flush=True)
for i in range(count):
    text = f"{tag}-{i}"
    if i % 3 == 2:
        answer = store.begin_assistant_message(conv).id
        store.update_streaming(answer, text[:2])
        store.finish_message(answer, text, "complete", {"tokens": i})
    else:
        store.add_message(conv, "user", text)
    print(f"ack {conv} {text}", flush=True)
store.close()
print("done", flush=True)
"""


def _child(path: Path, tag: str, count: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", WRITER, str(path), tag, str(count)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=ROOT)


def _acks(stdout: str) -> list[tuple[int, str]]:
    """Acknowledged (conversation, text) pairs; a line cut by the kill has no newline."""
    lines = stdout.split("\n")[:-1]  # the last piece is empty or was cut off mid-line
    return [(int(parts[1]), parts[2]) for parts in (line.split() for line in lines)
            if parts and parts[0] == "ack"]


def _stored(path: Path) -> set[tuple[int, str]]:
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        rows = db.execute("SELECT conversation_id, content, status FROM messages").fetchall()
    # An acknowledged streamed answer was finished: it must be stored whole and complete.
    return {(conv, text) for conv, text, status in rows if status == "complete"}


def test_acknowledged_messages_survive_100_kill_9s(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    rng = random.Random(1234)
    acknowledged: list[tuple[int, str]] = []
    kills = 0
    started = time.monotonic()
    for run in range(100):
        child = _child(path, f"r{run}", 10_000)
        # 0-150 ms: a part of the kills lands in start-up or in HistoryStore.open.
        time.sleep(rng.uniform(0.0, 0.15))
        child.send_signal(signal.SIGKILL)
        stdout, stderr = child.communicate(timeout=10)
        assert child.returncode == -signal.SIGKILL, f"writer failed early: {stderr[-400:]}"
        kills += 1
        acknowledged += _acks(stdout)
    elapsed = time.monotonic() - started
    # A last, clean run opens (and recovers) whatever the kills left.
    final = _child(path, "final", 3)
    stdout, stderr = final.communicate(timeout=30)
    assert final.returncode == 0, stderr[-400:]
    acknowledged += _acks(stdout)
    stored = _stored(path)
    missing = [ack for ack in acknowledged if ack not in stored]
    print(f"\n{kills} kills in {elapsed:.1f} s, {len(acknowledged)} acknowledged writes, "
          f"{len(missing)} missing")
    assert kills >= 100 and not missing, missing[:5]
    assert len(acknowledged) > 20  # not every kill landed before the first write
    with HistoryStore.open(path) as store:
        assert not [m for c in store.list_conversations() for m in store.messages(c.id)
                    if m.status == "streaming"]  # the final run marked them interrupted
    assert time.monotonic() - started < 60


def test_two_instances_write_one_file_at_once(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    HistoryStore.open(path).close()  # as the first window would have made it
    writers = [_child(path, tag, 400) for tag in ("a", "b")]
    outputs = [writer.communicate(timeout=50) for writer in writers]
    for writer, (stdout, stderr) in zip(writers, outputs, strict=True):
        assert writer.returncode == 0, stderr[-600:]
        assert "database is locked" not in stderr and stdout.endswith("done\n")
    acknowledged = [ack for stdout, _ in outputs for ack in _acks(stdout)]
    assert len(acknowledged) == 800
    assert set(acknowledged) <= _stored(path)


class _FailingConnection:
    """Wraps a sqlite3 connection; every write raises ``error`` while ``failing`` is set."""

    WRITES: tuple[str, ...] = ("BEGIN", "INSERT", "UPDATE", "DELETE", "COMMIT")

    def __init__(self, conn: sqlite3.Connection, error: str) -> None:
        self.conn, self.error, self.failing = conn, error, True

    def execute(self, sql: str, *args: Any) -> Any:
        if self.failing and sql.lstrip().upper().startswith(self.WRITES):
            raise sqlite3.OperationalError(self.error)
        return self.conn.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


class _FailingCommit(_FailingConnection):
    """Only COMMIT fails: SQLite's disk-full usually shows up when the WAL grows at commit."""

    WRITES = ("COMMIT",)


FULL = "database or disk is full"
READ_ONLY = "attempt to write a readonly database"


def _inject(store: HistoryStore, error: str,
            kind: type[_FailingConnection] = _FailingConnection) -> _FailingConnection:
    failing = kind(store._conn, error)
    store._conn = failing  # type: ignore[assignment]
    return failing


@pytest.mark.parametrize("kind", [_FailingConnection, _FailingCommit])
@pytest.mark.parametrize(("error", "says"), [(FULL, "disk is full"),
                                             (READ_ONLY, "read-only")])
def test_write_errors_are_clear_and_the_store_keeps_working(
        tmp_path: Path, error: str, says: str, kind: type[_FailingConnection]) -> None:
    with HistoryStore.open(tmp_path / "history.db") as store:
        conv = store.create_conversation("kept").id
        store.add_message(conv, "user", "before")
        failing = _inject(store, error, kind)
        with pytest.raises(HistoryWriteError, match=says) as caught:
            store.add_message(conv, "user", "lost")
        assert not isinstance(caught.value, sqlite3.Error)
        assert str(tmp_path / "history.db") in str(caught.value)
        with pytest.raises(HistoryWriteError):
            store.begin_assistant_message(conv)
        failing.failing = False  # space freed: the same store writes again
        assert not store._conn.in_transaction
        store.add_message(conv, "user", "after")
        assert [m.content for m in store.messages(conv)] == ["before", "after"]


def _window(qtbot: Any, path: Path) -> MainWindow:
    window = MainWindow(worker=fake_worker(quick_generate), model="fake", device="cpu",
                        history_path=path)
    qtbot.addWidget(window)
    if window.model_info is None:
        with qtbot.waitSignal(window.model_ready, timeout=30_000):
            pass
    return window


def _ask(qtbot: Any, window: MainWindow, text: str) -> None:
    window.chat.input.setPlainText(text)
    with qtbot.waitSignal(window.answer_finished, timeout=10_000):
        window.chat.send()
    qtbot.waitUntil(lambda: not window.chat.generating, timeout=5000)


@pytest.mark.parametrize(("error", "says"), [(FULL, "disk is full"),
                                             (READ_ONLY, "read-only")])
def test_window_says_saving_failed_keeps_everything_and_saves_later(
        qtbot: Any, tmp_path: Path, error: str, says: str) -> None:
    path = tmp_path / "history.db"
    window = _window(qtbot, path)
    try:
        _ask(qtbot, window, "first")
        failing = _inject(window.history.store, error)
        _ask(qtbot, window, "second")
        # The answer streamed and stays on screen; the notice says what happened and stays.
        assert [m["content"] for m in window.chat.messages[::2]] == ["first", "second"]
        assert window.chat.messages[-1]["status"] == "complete"
        assert window.chat.messages[-1]["content"] == "w0 w1 w2 w3 w4 "
        assert "could not be saved" in window.chat.notice.text()
        assert says in window.chat.notice.text()
        assert "could not be saved" in window.statusBar().currentMessage()
        window.chat.input.setPlainText("still typing")
        window.chat.system_prompt.setText("be brief")
        window.chat.system_prompt.editingFinished.emit()  # also fails, also reported
        assert window.chat.input.toPlainText() == "still typing"
        failing.failing = False  # space freed
        _ask(qtbot, window, "third")
        assert "could not be saved" not in window.chat.notice.text()
    finally:
        window.close()
    with HistoryStore.open(path) as store:
        (conv,) = store.list_conversations()
        stored = [(m.role, m.content, m.status) for m in store.messages(conv.id)]
    answer = ("assistant", "w0 w1 w2 w3 w4 ", "complete")
    assert stored == [("user", "first", "complete"), answer, ("user", "second", "complete"),
                      answer, ("user", "third", "complete"), answer]


def test_window_starts_with_a_history_that_cannot_be_written(qtbot: Any,
                                                             tmp_path: Path,
                                                             monkeypatch: Any) -> None:
    # A read-only home that still opens: the first conversation cannot even be created.
    path = tmp_path / "history.db"
    HistoryStore.open(path).close()
    real_open = HistoryStore.open.__func__  # type: ignore[attr-defined]

    def open_failing(cls: type[HistoryStore], *args: Any, **kwargs: Any) -> HistoryStore:
        store = real_open(cls, *args, **kwargs)
        _inject(store, READ_ONLY)
        return store

    monkeypatch.setattr(HistoryStore, "open", classmethod(open_failing))
    window = _window(qtbot, path)
    try:
        assert window.history.conversation_id is None
        assert "read-only" in window.chat.notice.text()
        _ask(qtbot, window, "hello")
        assert window.chat.messages[-1]["content"] == "w0 w1 w2 w3 w4 "
        assert "read-only" in window.chat.notice.text()
    finally:
        window.close()


def test_temporary_history_notice_stays_while_answers_stream(qtbot: Any, tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    with HistoryStore.open(path) as store, store._conn:
        store._conn.execute("PRAGMA user_version = 99")  # a newer Nightlamp's file
    window = _window(qtbot, path)
    try:
        assert "will not be kept" in window.chat.notice.text()
        _ask(qtbot, window, "hello")
        assert window.chat.messages[-1]["content"] == "w0 w1 w2 w3 w4 "
        assert "will not be kept" in window.chat.notice.text()
        assert window.history.store.path != path  # the throw-away history
    finally:
        window.close()
