"""Conversations in the window: stored as they happen, survive a restart, new/rename/delete."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QMessageBox
from tests_desktop_fakes import fake_worker, quick_generate, slow_generate

from desktop.history import HistoryStore
from desktop.main_window import MainWindow
from desktop.worker import InferenceWorker


@pytest.fixture
def open_window(qtbot: Any, tmp_path: Path) -> Iterator[Any]:
    opened: list[MainWindow] = []

    def make(worker: InferenceWorker | None = None, model: str | None = None,
             slow: bool = False) -> MainWindow:
        engine = slow_generate if slow else quick_generate
        window = MainWindow(worker=worker or fake_worker(engine), model=model or "fake",
                            device="cpu", history_path=tmp_path / "history.db")
        qtbot.addWidget(window)
        opened.append(window)
        if window.model_info is None:
            with qtbot.waitSignal(window.model_ready, timeout=30_000):
                pass
        return window

    yield make
    for window in opened:
        window.close()


def _ask(qtbot: Any, window: MainWindow, text: str) -> None:
    window.chat.input.setPlainText(text)
    with qtbot.waitSignal(window.answer_finished, timeout=30_000):
        window.chat.send()


def test_a_conversation_survives_a_restart(qtbot: Any, open_window: Any,
                                           transformer_model_dir: Path) -> None:
    window = open_window(worker=InferenceWorker(), model=str(transformer_model_dir))
    _ask(qtbot, window, "The lamp reads")
    answer = window.chat.last_answer()
    assert answer
    window.close()
    again = open_window(worker=InferenceWorker(), model=str(transformer_model_dir))
    assert [m["role"] for m in again.chat.messages] == ["user", "assistant"]
    assert again.chat.messages[0]["content"] == "The lamp reads"
    assert again.chat.messages[1]["content"] == answer
    assert again.conversations.list.count() == 1
    assert again.conversations.list.item(0).text() == "The lamp reads"  # titled from it


def test_a_stopped_answer_is_kept_and_marked(qtbot: Any, open_window: Any,
                                             tmp_path: Path) -> None:
    window = open_window(slow=True)
    window.chat.input.setPlainText("hello")
    window.chat.send()
    qtbot.waitUntil(lambda: window.chat.messages[-1]["content"] != "", timeout=5000)
    with qtbot.waitSignal(window.answer_finished, timeout=2000):
        window.stop()
    window.close()
    store = HistoryStore.open(tmp_path / "history.db")
    conversation = store.list_conversations()[0]
    stored = store.messages(conversation.id)
    assert [m.status for m in stored] == ["complete", "cancelled"]
    assert stored[1].content.startswith("t1 ")
    store.close()


def test_an_answer_cut_by_a_crash_is_recovered_as_interrupted(qtbot: Any, open_window: Any,
                                                             tmp_path: Path) -> None:
    store = HistoryStore.open(tmp_path / "history.db")
    conversation = store.create_conversation("Before the crash")
    store.add_message(conversation.id, "user", "hi")
    partial = store.begin_assistant_message(conversation.id)
    store.update_streaming(partial.id, "half an ans")
    store.close()  # the app died here: the answer is still 'streaming'
    window = open_window()
    assert window.chat.messages[-1]["status"] == "interrupted"
    assert window.chat.messages[-1]["content"] == "half an ans"
    assert "interrupted" in window.chat.notice.text()
    assert "(interrupted)" in window.chat.markdown()


def test_a_streaming_answer_is_saved_as_it_grows(qtbot: Any, open_window: Any, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # What a crash in the middle of an answer would leave: the text streamed so far.
    monkeypatch.setattr("desktop.conversations.PARTIAL_SAVE_S", 0.0)
    window = open_window(slow=True)
    window.chat.input.setPlainText("hello")
    window.chat.send()
    qtbot.waitUntil(lambda: len(window.chat.messages[-1]["content"].split()) >= 3, timeout=5000)
    store = HistoryStore.open(tmp_path / "history.db")
    stored = store.messages(store.list_conversations()[0].id)[-1]
    store.close()
    assert stored.status == "streaming"
    assert stored.content.startswith("t1 t2 ")
    assert window.chat.messages[-1]["content"].startswith(stored.content)
    with qtbot.waitSignal(window.answer_finished, timeout=2000):
        window.stop()


def test_new_rename_search_and_delete(qtbot: Any, open_window: Any,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    window = open_window()
    _ask(qtbot, window, "first topic")
    window.conversations.new_button.click()
    _ask(qtbot, window, "second topic")
    assert window.conversations.list.count() == 2
    item = window.conversations.list.currentItem()
    item.setText("Renamed")
    assert window.history.store.get_conversation(window.history.conversation_id).title == "Renamed"
    window.conversations.search.setText("first")
    assert window.conversations.list.count() == 1
    window.conversations.search.setText("")
    monkeypatch.setattr(QMessageBox, "question",
                        lambda *args: QMessageBox.StandardButton.Yes)
    deleted = window.history.conversation_id
    window.conversations.delete_button.click()
    assert window.history.conversation_id != deleted
    assert [c.title for c in window.history.store.list_conversations()] == ["first topic"]
    assert window.chat.messages[0]["content"] == "first topic"


def test_switching_conversation_mid_answer_cancels_it(qtbot: Any, open_window: Any) -> None:
    window = open_window(slow=True)
    _ask(qtbot, window, "first topic")
    first = window.history.conversation_id
    window.conversations.new_button.click()
    window.chat.input.setPlainText("second")
    window.chat.send()
    qtbot.waitUntil(lambda: window.chat.messages[-1]["content"] != "", timeout=5000)
    window.history.open_conversation(first)
    assert not window.chat.generating
    assert window.chat.messages[0]["content"] == "first topic"
    qtbot.wait(150)  # late tokens of the cancelled answer must not land here
    assert all(m["status"] != "streaming" for m in window.chat.messages)


def test_regenerate_replaces_the_stored_answer(qtbot: Any, open_window: Any) -> None:
    window = open_window()
    _ask(qtbot, window, "hello")
    with qtbot.waitSignal(window.answer_finished, timeout=30_000):
        window.chat.regenerate_button.click()
    stored = window.history.store.messages(window.history.conversation_id)
    assert [m.role for m in stored] == ["user", "assistant"]


def test_a_long_conversation_leaves_old_turns_out_and_says_so(
        qtbot: Any, open_window: Any, transformer_model_dir: Path) -> None:
    window = open_window(worker=InferenceWorker(), model=str(transformer_model_dir))
    notices = []
    for _ in range(4):
        _ask(qtbot, window, "The reader writes a long letter about the map and the lamp.")
        notices.append(window.chat.notice.text())
    assert any("no longer fit" in text for text in notices)
    # Nothing was deleted: every turn is still shown and stored.
    assert len(window.chat.messages) == 8
    assert len(window.history.store.messages(window.history.conversation_id)) == 8


def test_system_prompt_is_sent_stored_and_restored(qtbot: Any, open_window: Any) -> None:
    seen: list[Any] = []

    def recording(model: Any, prompt: Any, config: Any, should_stop: Any) -> Any:
        seen.append(prompt)
        return quick_generate(model, prompt, config, should_stop)

    window = open_window(worker=fake_worker(recording))
    window.chat.system_prompt.setText("Answer like a pirate.")
    window.chat.system_prompt.editingFinished.emit()
    _ask(qtbot, window, "hello")
    assert seen[-1][0] == {"role": "system", "content": "Answer like a pirate."}
    assert seen[-1][1] == {"role": "user", "content": "hello"}
    pirate = window.history.conversation_id
    window.conversations.new_button.click()
    assert window.chat.system_prompt.text() == ""
    window.history.open_conversation(pirate)
    assert window.chat.system_prompt.text() == "Answer like a pirate."


def test_export_to_markdown(qtbot: Any, open_window: Any, tmp_path: Path) -> None:
    window = open_window()
    _ask(qtbot, window, "hello")
    target = tmp_path / "chat.md"
    assert window.history.export(target)
    text = target.read_text(encoding="utf-8")
    assert text.startswith("# hello") and "## You" in text and "w0 w1 w2 w3 w4" in text
    assert not window.history.export(tmp_path / "missing" / "chat.md")
    assert "cannot be saved" in window.chat.notice.text()


def test_closing_mid_answer_keeps_it_and_ignores_late_tokens(qtbot: Any, open_window: Any,
                                                             tmp_path: Path) -> None:
    window = open_window(slow=True)
    window.chat.input.setPlainText("hello")
    window.chat.send()
    qtbot.waitUntil(lambda: window.chat.messages[-1]["content"] != "", timeout=5000)
    window.close()
    qtbot.wait(100)  # a queued 'finished' of the cancelled answer may arrive: it is dropped
    store = HistoryStore.open(tmp_path / "history.db")
    stored = store.messages(store.list_conversations()[0].id)
    assert stored[-1].status == "cancelled" and stored[-1].content.startswith("t1 ")
    store.close()


def test_keyboard_shortcuts(qtbot: Any, open_window: Any) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication

    window = open_window()
    window.show()
    qtbot.waitExposed(window)
    _ask(qtbot, window, "hello")
    window.activateWindow()
    qtbot.keyClick(window, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentIndex() == 1
    qtbot.keyClick(window, Qt.Key.Key_3, Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentIndex() == 2
    qtbot.keyClick(window, Qt.Key.Key_C,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert QGuiApplication.clipboard().text() == "w0 w1 w2 w3 w4 "
    before = window.history.conversation_id
    qtbot.keyClick(window, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentIndex() == 0 and window.history.conversation_id != before
    assert window.chat.messages == []
