"""Tests for desktop.history: storage round trips, crash recovery, damaged and newer files."""

from __future__ import annotations

import itertools
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from desktop import history
from desktop.history import HistoryError, HistoryStore

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(tmp_path: Path):
    with HistoryStore.open(tmp_path / "history.db") as opened:
        yield opened


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Timestamps 1000, 1001, 1002... so ordering by `updated` never depends on timer resolution."""
    ticks = itertools.count(1000.0)
    monkeypatch.setattr(history, "_now", lambda: next(ticks))


def _raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path)


def test_open_creates_folders_wal_schema_and_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "history.db"
    with HistoryStore.open(path) as store:
        assert store.recovered_from is None
        assert store._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store._conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    raw = _raw(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == history.SCHEMA_VERSION == 1
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # persistent in the file
    raw.close()
    HistoryStore.open(path).close()  # reopening an existing database


def test_conversation_round_trip(store: HistoryStore) -> None:
    conv = store.create_conversation()
    assert (conv.title, conv.system_prompt, conv.model, conv.settings) == ("New chat", "", None, {})
    store.rename(conv.id, "Trip ✈")
    store.set_system_prompt(conv.id, "Be brief.")
    store.set_model(conv.id, "tiny-llama")
    store.set_settings(conv.id, {"temperature": 0.7, "top_k": 40})
    got = store.get_conversation(conv.id)
    assert (got.title, got.system_prompt, got.model) == ("Trip ✈", "Be brief.", "tiny-llama")
    assert got.settings == {"temperature": 0.7, "top_k": 40}
    assert got.created == conv.created
    other = store.create_conversation("x", "sys", "m", {"seed": 1})
    assert store.get_conversation(other.id) == other
    with pytest.raises(KeyError):
        store.get_conversation(999)
    with pytest.raises(KeyError):
        store.rename(999, "nope")
    with pytest.raises(KeyError):
        store.add_message(999, "user", "hi")


def test_message_round_trip_and_validation(store: HistoryStore) -> None:
    conv = store.create_conversation()
    user = store.add_message(conv.id, "user", "Hello 你好 🌙")
    answer = store.add_message(conv.id, "assistant", "Hi", stats={"tokens": 3, "tok_s": 12.5})
    assert store.messages(conv.id) == [user, answer]
    assert (user.role, user.content, user.status, user.stats) == ("user", "Hello 你好 🌙",
                                                                  "complete", None)
    assert answer.stats == {"tokens": 3, "tok_s": 12.5}
    with pytest.raises(ValueError, match="role"):
        store.add_message(conv.id, "robot", "x")
    with pytest.raises(ValueError, match="status"):
        store.add_message(conv.id, "user", "x", status="done")
    assert len(store.messages(conv.id)) == 2


def test_list_ordered_by_updated(store: HistoryStore, clock: None) -> None:
    first = store.create_conversation("first")
    second = store.create_conversation("second")
    third = store.create_conversation("third")
    assert [c.title for c in store.list_conversations()] == ["third", "second", "first"]
    store.add_message(first.id, "user", "bump")
    assert [c.title for c in store.list_conversations()] == ["first", "third", "second"]
    answer = store.begin_assistant_message(second.id)
    assert store.list_conversations()[0].id == second.id
    store.add_message(third.id, "user", "bump")
    store.finish_message(answer.id, "done")
    assert [c.title for c in store.list_conversations()] == ["second", "third", "first"]
    assert store.get_conversation(second.id).updated > second.created


def test_search_title_and_content_ignoring_case(store: HistoryStore) -> None:
    paris = store.create_conversation("Paris TRIP")
    store.add_message(paris.id, "user", "what to pack")
    rome = store.create_conversation("Italy")
    store.add_message(rome.id, "user", "Best pasta in ROME?")
    german = store.create_conversation("Straße")
    titles = lambda query: sorted(c.title for c in store.list_conversations(query))  # noqa: E731
    assert titles("trip") == ["Paris TRIP"]
    assert titles("rome") == ["Italy"]
    assert titles("PACK") == ["Paris TRIP"]
    assert titles("STRASSE") == [german.title]  # Unicode case folding, not just ASCII
    assert titles("nothing like this") == []
    assert titles("") == ["Italy", "Paris TRIP", "Straße"]


def test_search_treats_like_wildcards_literally(store: HistoryStore) -> None:
    store.create_conversation("100% done")
    store.create_conversation("1000 done")
    snake = store.create_conversation("plain")
    store.add_message(snake.id, "user", "call my_func()")
    store.create_conversation("myXfunc")
    store.create_conversation("back\\slash")
    titles = lambda query: sorted(c.title for c in store.list_conversations(query))  # noqa: E731
    assert titles("100%") == ["100% done"]
    assert titles("%") == ["100% done"]
    assert titles("my_func") == ["plain"]
    assert titles("_") == ["plain"]
    assert titles("k\\s") == ["back\\slash"]


def test_delete_conversation_cascades(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    with HistoryStore.open(path) as store:
        keep, gone = store.create_conversation("keep"), store.create_conversation("gone")
        store.add_message(keep.id, "user", "a")
        for text in ("b", "c"):
            store.add_message(gone.id, "user", text)
        store.delete_conversation(gone.id)
        store.delete_conversation(12345)  # unknown: ignored
        assert [c.id for c in store.list_conversations()] == [keep.id]
        assert store.messages(gone.id) == []
    raw = _raw(path)
    assert raw.execute("SELECT conversation_id FROM messages").fetchall() == [(keep.id,)]
    raw.close()


def test_partial_saves_skip_the_disk_flush_and_every_other_write_keeps_it(
        store: HistoryStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A partial save (once a second, on the GUI thread) commits without fsync; the final
    answer and everything else are written with synchronous = FULL."""
    conv = store.create_conversation()
    answer = store.begin_assistant_message(conv.id)
    seen: list[str] = []
    real = store._conn

    class Spy:
        def __getattr__(self, name: str) -> object:
            return getattr(real, name)

        def execute(self, sql: str, *args: object) -> object:
            if sql == "COMMIT":
                seen.append(str(real.execute("PRAGMA synchronous").fetchone()[0]))
            return real.execute(sql, *args)

    monkeypatch.setattr(store, "_conn", Spy())
    assert store.update_streaming(answer.id, "Once")
    assert store.finish_message(answer.id, "Once upon a time.")
    assert seen == ["1", "2"]  # NORMAL for the partial save, FULL for the final one
    assert real.execute("PRAGMA synchronous").fetchone()[0] == 2


def test_streaming_lifecycle(store: HistoryStore) -> None:
    conv = store.create_conversation()
    store.add_message(conv.id, "user", "Tell me a story")
    answer = store.begin_assistant_message(conv.id)
    assert (answer.role, answer.content, answer.status) == ("assistant", "", "streaming")
    assert store.update_streaming(answer.id, "Once upon")
    assert store.messages(conv.id)[-1].content == "Once upon"
    assert store.finish_message(answer.id, "Once upon a time.", "complete", {"tokens": 5})
    final = store.messages(conv.id)[-1]
    assert (final.content, final.status, final.stats) == ("Once upon a time.", "complete",
                                                          {"tokens": 5})
    stopped = store.begin_assistant_message(conv.id)
    store.finish_message(stopped.id, "Half", "cancelled")
    assert store.messages(conv.id)[-1].status == "cancelled"
    with pytest.raises(ValueError, match="status"):
        store.finish_message(stopped.id, "x", "interrupted")
    store.delete_conversation(conv.id)  # deleted while an answer was still arriving
    assert not store.update_streaming(stopped.id, "late")
    assert not store.finish_message(stopped.id, "late", "failed")


def test_each_message_is_committed_at_once(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    with HistoryStore.open(path) as store:
        conv = store.create_conversation()
        other = _raw(path)
        store.add_message(conv.id, "user", "visible?")
        assert not store._conn.in_transaction
        assert other.execute("SELECT content FROM messages").fetchall() == [("visible?",)]
        answer = store.begin_assistant_message(conv.id)
        assert other.execute("SELECT status FROM messages WHERE id = ?",
                             (answer.id,)).fetchone() == ("streaming",)
        store.update_streaming(answer.id, "partial")
        assert other.execute("SELECT content FROM messages WHERE id = ?",
                             (answer.id,)).fetchone() == ("partial",)
        other.close()


def test_recover_after_close_without_finishing(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    with HistoryStore.open(path) as store:
        conv = store.create_conversation()
        store.add_message(conv.id, "user", "q")
        answer = store.begin_assistant_message(conv.id)
        store.update_streaming(answer.id, "saved part")
    with HistoryStore.open(path) as store:
        assert store.recover_interrupted() == 1
        got = store.messages(conv.id)[-1]
        assert (got.id, got.content, got.status) == (answer.id, "saved part", "interrupted")
        assert store.messages(conv.id)[0].status == "complete"
        assert store.recover_interrupted() == 0


def test_recover_after_process_killed_mid_stream(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    script = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from desktop.history import HistoryStore\n"
        "store = HistoryStore.open(Path(sys.argv[1]))\n"
        "conv = store.create_conversation('Crash')\n"
        "store.add_message(conv.id, 'user', 'hi')\n"
        "answer = store.begin_assistant_message(conv.id)\n"
        "store.update_streaming(answer.id, 'partial answ')\n"
        "os._exit(1)  # killed mid-stream: no close, no finish\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", script, str(path)], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    assert Path(f"{path}-wal").exists()  # the data is still in the WAL, not yet checkpointed
    with HistoryStore.open(path) as store:
        assert store.recovered_from is None  # a crashed file is not a damaged one
        assert store.recover_interrupted() == 1
        (conv,) = store.list_conversations()
        assert [(m.role, m.content, m.status) for m in store.messages(conv.id)] == [
            ("user", "hi", "complete"), ("assistant", "partial answ", "interrupted")]
    assert sorted(p.name for p in tmp_path.iterdir() if "broken" in p.name) == []


def test_hot_rollback_journal_is_not_damage(tmp_path: Path) -> None:
    """A crash mid-transaction without WAL leaves a hot journal; it must roll back, not move."""
    path = tmp_path / "h.db"
    with HistoryStore.open(path) as store:
        store.add_message(store.create_conversation("kept").id, "user", "x" * 3000)
    script = (
        "import os, sqlite3, sys\n"
        "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "db.execute('PRAGMA journal_mode = DELETE'); db.execute('PRAGMA cache_size = 1')\n"
        "db.execute('BEGIN'); db.execute(\"UPDATE conversations SET title = 'lost'\")\n"
        "db.execute('INSERT INTO messages SELECT NULL, conversation_id, role, content, status,"
        " created, stats FROM messages')\n"
        "for _ in range(4): db.execute('INSERT INTO messages SELECT NULL, conversation_id, role,"
        " content, status, created, stats FROM messages')\n"
        "os._exit(1)\n"
    )
    subprocess.run([sys.executable, "-c", script, str(path)], timeout=60, check=False)
    assert Path(f"{path}-journal").exists()
    with HistoryStore.open(path) as store:
        (conv,) = store.list_conversations()
        assert conv.title == "kept" and len(store.messages(conv.id)) == 1


def test_delete_messages_from(store: HistoryStore) -> None:
    conv, other = store.create_conversation(), store.create_conversation()
    ids = [store.add_message(conv.id, role, text).id
           for role, text in [("user", "q1"), ("assistant", "a1"), ("user", "q2"),
                              ("assistant", "a2")]]
    unrelated = store.add_message(other.id, "user", "later, elsewhere")
    assert store.delete_messages_from(ids[2]) == 2
    assert [m.content for m in store.messages(conv.id)] == ["q1", "a1"]
    assert store.messages(other.id) == [unrelated]
    assert store.delete_messages_from(999) == 0


def test_export_markdown_exact(store: HistoryStore) -> None:
    conv = store.create_conversation("Trip plan", "Be brief.\n\nUse metric units.")
    store.add_message(conv.id, "user", "How far is Paris?")
    store.add_message(conv.id, "assistant", "About 450 km.\n\n    indented line\n")
    store.add_message(conv.id, "user", "And Rome?")
    stopped = store.begin_assistant_message(conv.id)
    store.finish_message(stopped.id, "Roughly", "cancelled")
    store.add_message(conv.id, "user", "Again")
    store.add_message(conv.id, "assistant", "It is", status="interrupted")
    assert store.export_markdown(conv.id) == (
        "# Trip plan\n\n"
        "> Be brief.\n>\n> Use metric units.\n\n"
        "## You\n\nHow far is Paris?\n\n"
        "## Assistant\n\nAbout 450 km.\n\n    indented line\n\n"
        "## You\n\nAnd Rome?\n\n"
        "## Assistant\n\nRoughly\n\n*(stopped)*\n\n"
        "## You\n\nAgain\n\n"
        "## Assistant\n\nIt is\n\n*(interrupted)*\n"
    )
    bare = store.create_conversation("Empty")
    assert store.export_markdown(bare.id) == "# Empty\n"


def _truncated_database(path: Path) -> bytes:
    with HistoryStore.open(path) as store:
        conv = store.create_conversation()
        for index in range(200):
            store.add_message(conv.id, "user", f"message {index} " * 40)
    data = path.read_bytes()
    return data[: len(data) // 2]


@pytest.mark.parametrize("kind", ["random bytes", "truncated database"])
def test_damaged_file_is_moved_aside(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "history.db"
    bad = os.urandom(8192) if kind == "random bytes" else _truncated_database(path)
    path.write_bytes(bad)
    Path(f"{path}-wal").write_bytes(b"sidecar")
    with pytest.raises(HistoryError) as caught:
        HistoryStore.open(path)
    message = str(caught.value)
    assert str(path) in message and "damaged" in message and "\n" not in message
    moved = caught.value.backup
    assert moved is not None and moved.name.startswith("history.db.broken-")
    assert moved.read_bytes() == bad and Path(f"{moved}-wal").read_bytes() == b"sidecar"
    assert not path.exists() and not Path(f"{path}-wal").exists()
    with HistoryStore.open(path) as store:  # the next start begins a fresh history
        assert store.list_conversations() == [] and store.recovered_from is None


@pytest.mark.parametrize("kind", ["random bytes", "truncated database"])
def test_recover_starts_fresh_and_keeps_the_damaged_file(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "history.db"
    bad = os.urandom(8192) if kind == "random bytes" else _truncated_database(path)
    path.write_bytes(bad)
    with HistoryStore.open(path, recover=True) as store:
        assert store.recovered_from is not None and store.recovered_from.read_bytes() == bad
        assert store.recovered_from.parent == tmp_path
        conv = store.create_conversation("new")
        store.add_message(conv.id, "user", "works")
    with HistoryStore.open(path) as store:
        assert [c.title for c in store.list_conversations()] == ["new"]


def test_damaged_files_never_overwrite_each_other(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(history.time, "strftime", lambda fmt: "broken-same-second")
    path = tmp_path / "history.db"
    for content in (b"first junk" * 100, b"second junk" * 100):
        path.write_bytes(content)
        with HistoryStore.open(path, recover=True) as store:
            assert store.recovered_from is not None
    assert sorted(p.read_bytes()[:6] for p in tmp_path.glob("history.db.broken-*")) == [
        b"first ", b"second"]


def test_newer_schema_is_refused_and_backed_up(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    raw = _raw(path)
    raw.execute("PRAGMA journal_mode = WAL")
    raw.execute("CREATE TABLE future (x)")
    raw.execute("INSERT INTO future VALUES ('from v2')")
    raw.execute("PRAGMA user_version = 2")
    raw.commit()
    raw.close()
    original = path.read_bytes()
    for recover in (False, True):  # recover never discards a newer file
        with pytest.raises(HistoryError) as caught:
            HistoryStore.open(path, recover=recover)
        assert str(path) in str(caught.value) and "newer" in str(caught.value)
        assert "\n" not in str(caught.value)
    assert path.read_bytes() == original
    backups = sorted(tmp_path.glob("history.db.backup-v2*"))
    assert [p.name for p in backups if not p.name.endswith(("-wal", "-shm"))] == [
        "history.db.backup-v2", "history.db.backup-v2-2"]
    assert backups[0].read_bytes() == original
    raw = _raw(path)
    assert raw.execute("SELECT x FROM future").fetchall() == [("from v2",)]
    raw.close()


def test_store_refuses_other_threads(store: HistoryStore) -> None:
    errors: list[BaseException] = []

    def use() -> None:
        try:
            store.list_conversations()
        except sqlite3.ProgrammingError as exc:
            errors.append(exc)

    worker = threading.Thread(target=use)
    worker.start()
    worker.join()
    assert len(errors) == 1
