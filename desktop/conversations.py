"""Keeps the chat panel and the conversation list in step with the history store.

The window owns the worker and the answer in flight; this object owns which conversation is open
and everything stored about it (messages, title, system prompt, sampling settings). Before it
shows another conversation it emits ``switching`` so the window can stop the answer in flight
and store it as stopped in the conversation it belongs to.

A write that fails (disk full, read-only home) never loses what is on screen: the message keeps
no stored id, a standing notice says what happened, and the next answer (or the end of this one)
stores everything still unsaved, in order.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog

from desktop.chat_panel import ChatPanel
from desktop.chat_settings import ChatSettings
from desktop.conversation_list import ConversationList
from desktop.files import save_text
from desktop.history import HistoryError, HistoryStore

NEW_TITLE = "New chat"  # the store's default title, replaced by the first message
TITLE_CHARS = 48
PARTIAL_SAVE_S = 1.0  # a crash loses at most this much of a streaming answer


def title_from(message: str, limit: int = TITLE_CHARS) -> str:
    """A conversation's title from its first message: the first line, cut at a word boundary
    with "…" when it is longer than ``limit`` (text without spaces, such as Chinese, is cut at
    ``limit`` characters)."""
    line = " ".join(message.strip().splitlines()[0].split()) if message.strip() else ""
    if len(line) <= limit:
        return line
    cut = line[:limit - 1]
    if " " in cut and not line[limit - 1].isspace():
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:.-") + "…"


class ChatHistory(QObject):
    switching = Signal()  # another conversation is about to be shown
    save_failed = Signal(str)  # a readable sentence: what could not be saved and why

    def __init__(self, chat: ChatPanel, conversations: ConversationList, path: Path,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.chat = chat
        self.conversations = conversations
        self.conversation_id: int | None = None
        self._standing = ""  # the notice that stays while the history works (temporary history)
        self._failing = False  # the last write failed; its notice stays until one succeeds
        self._partial_saved_at = 0.0  # monotonic time of the last save of a streaming answer
        self.store = self._open(path)
        chat.messages_removed.connect(self._forget_messages)
        chat.system_prompt_changed.connect(self._set_system_prompt)
        chat.settings_changed.connect(self._set_settings)
        chat.export_requested.connect(self._choose_export)
        conversations.selected.connect(self.open_conversation)
        conversations.new_requested.connect(self.new_conversation)
        conversations.rename_requested.connect(self._rename)
        conversations.delete_requested.connect(self._delete)
        conversations.search_changed.connect(lambda _text: self.refresh_list())

    def _open(self, path: Path) -> HistoryStore:
        try:
            store = HistoryStore.open(path, recover=True)
        except HistoryError as error:  # e.g. a newer version's file: leave it untouched
            # A standing notice: it must stay while answers stream, not vanish with the first.
            self._standing = self.tr("{error}. Chats of this session will not be kept.").format(
                error=error)
            self.chat.set_standing_notice(self._standing)
            try:
                return HistoryStore.open(Path(tempfile.mkdtemp(prefix="nightlamp-"))
                                         / "history.db")
            except (OSError, HistoryError):  # no writable temporary folder either
                return HistoryStore.open(Path(":memory:"))
        if store.recovered_from is not None:
            self.chat.show_notice(self.tr("The chat history was damaged; it was moved to {path} "
                                          "and a new one started.").format(
                path=store.recovered_from))
        return store

    def _report(self, error: HistoryError) -> None:
        """A write failed: say so until one succeeds; what is on screen stays as it is."""
        text = self.tr("The chat could not be saved ({error}). It stays on screen and will be "
                       "saved with the next answer.").format(error=error)
        self._failing = True
        self.chat.set_standing_notice(text)
        self.save_failed.emit(text)

    def _saved(self) -> None:
        if self._failing:
            self._failing = False
            self.chat.set_standing_notice(self._standing)

    def _write(self, change: Callable[..., object], *args: Any) -> bool:
        """Runs one store change; False (and a notice) if it could not be saved."""
        try:
            change(*args)
        except HistoryError as error:
            self._report(error)
            return False
        self._saved()
        return True

    def start(self) -> None:
        """Marks answers a crash cut off as interrupted, then opens the newest conversation."""
        try:
            interrupted = self.store.recover_interrupted()
        except HistoryError as error:
            interrupted = 0
            self._report(error)
        if interrupted:
            self.chat.show_notice(self.tr("{count} answer(s) were interrupted when Nightlamp "
                                          "last closed; what had arrived is kept.")
                                  .format(count=interrupted))
        existing = self.store.list_conversations()
        if existing:
            self.open_conversation(existing[0].id)
        else:
            self.new_conversation()

    def refresh_list(self) -> None:
        search = self.conversations.search.text()
        self.conversations.show_conversations(self.store.list_conversations(search),
                                              self.conversation_id)

    def new_conversation(self) -> None:
        self.switching.emit()
        self.conversation_id = None  # created with the first answer if this write fails
        self._write(self._create)
        self.chat.system_prompt.clear()
        self.chat.set_settings(ChatSettings())
        self.chat.set_messages([])
        self.refresh_list()

    def open_conversation(self, conversation_id: int) -> None:
        if conversation_id == self.conversation_id:
            return
        self.switching.emit()  # the answer in flight is stopped and stored where it belongs
        self.conversation_id = conversation_id
        conversation = self.store.get_conversation(conversation_id)
        self.chat.system_prompt.setText(conversation.system_prompt)
        self.chat.set_settings(ChatSettings.from_dict(conversation.settings))
        self.chat.set_messages([{"id": m.id, "role": m.role, "content": m.content,
                                 "status": m.status, "documents": (m.stats or {}).get("documents")}
                                for m in self.store.messages(conversation_id)])
        self.refresh_list()

    def _create(self) -> int:
        self.conversation_id = self.store.create_conversation(NEW_TITLE).id
        return self.conversation_id

    def _rename(self, conversation_id: int, title: str) -> None:
        self._write(self.store.rename, conversation_id, title)

    def _delete(self, conversation_id: int) -> None:
        if conversation_id == self.conversation_id:
            self.switching.emit()
        if not self._write(self.store.delete_conversation, conversation_id):
            return
        if conversation_id == self.conversation_id:
            self.conversation_id = None
            remaining = self.store.list_conversations()
            if remaining:
                self.open_conversation(remaining[0].id)
            else:
                self.new_conversation()
        self.refresh_list()

    def _set_system_prompt(self, text: str) -> None:
        if self.conversation_id is not None:
            self._write(self.store.set_system_prompt, self.conversation_id, text)

    def _set_settings(self, settings: dict[str, Any]) -> None:
        if self.conversation_id is not None:
            self._write(self.store.set_settings, self.conversation_id, settings)

    def export(self, path: Path) -> bool:
        """Writes the open conversation as Markdown; False (with a notice) on failure."""
        if self.conversation_id is None:
            return False
        problem = save_text(path, self.store.export_markdown(self.conversation_id))
        if problem:
            self.chat.show_notice(problem)
        return problem is None

    def _choose_export(self) -> None:
        name, _ = QFileDialog.getSaveFileName(self.chat, self.tr("Export conversation"),
                                              "conversation.md", self.tr("Markdown (*.md)"))
        if name:
            self.export(Path(name))

    def _forget_messages(self, ids: list[int]) -> None:
        if ids:
            self._write(self.store.delete_messages_from, min(ids))

    def begin_answer(self) -> None:
        """Stores messages the user added since the last answer, titles a new conversation by
        its first message, and opens the new answer's row (so a crash keeps what streams).

        If that cannot be saved the answer still runs; ``finish_answer`` tries again."""
        # The row opened here holds the answer's start; the first partial save (a write on
        # this thread) comes PARTIAL_SAVE_S later, not with the first token.
        self._partial_saved_at = time.monotonic()
        try:
            self._store_unsaved(self.chat.messages[:-1])
            assert self.conversation_id is not None
            conversation = self.store.get_conversation(self.conversation_id)
            first = next((m["content"] for m in self.chat.messages if m["role"] == "user"), "")
            if conversation.title == NEW_TITLE and first:
                self.store.rename(self.conversation_id, title_from(first))
                self.refresh_list()
            answer = self.store.begin_assistant_message(self.conversation_id)
        except HistoryError as error:
            self._report(error)
            return
        self.chat.messages[-1]["id"] = answer.id
        self._saved()

    def save_partial(self) -> None:
        """Saves the streaming answer's text so far, at most every PARTIAL_SAVE_S seconds, so a
        crash or power cut keeps nearly all of it (one small UPDATE, not one per token)."""
        now = time.monotonic()
        if now - self._partial_saved_at < PARTIAL_SAVE_S:
            return
        self._partial_saved_at = now
        answer = self.chat.messages[-1] if self.chat.messages else None
        if answer is None or answer.get("status") != "streaming" or "id" not in answer:
            return
        try:
            self.store.update_streaming(answer["id"], answer["content"])
        except HistoryError as error:
            self._report(error)

    def finish_answer(self, status: str, stats: dict[str, Any] | None) -> None:
        """Stores the streamed answer with how it ended (complete / cancelled / failed)."""
        answer = self.chat.messages[-1] if self.chat.messages else None
        if answer is None or answer.get("status") != "streaming":
            return
        try:
            if "id" in answer:
                self.store.finish_message(answer["id"], answer["content"], status, stats)
            else:  # its row could not be opened when it started: store it whole now
                self._store_unsaved(self.chat.messages[:-1])
                assert self.conversation_id is not None
                answer["id"] = self.store.add_message(self.conversation_id, "assistant",
                                                      answer["content"], status, stats).id
        except HistoryError as error:
            self._report(error)
            return
        self._saved()

    def _store_unsaved(self, messages: list[dict[str, Any]]) -> None:
        """Stores, in order, the messages that have no stored id yet (creating the
        conversation first if that failed); stops at the first failure (HistoryError)."""
        if self.conversation_id is None:
            self._create()
            self.refresh_list()
        assert self.conversation_id is not None
        for message in messages:
            if "id" not in message:
                message["id"] = self.store.add_message(
                    self.conversation_id, message["role"], message["content"],
                    message.get("status", "complete")).id

    def close(self) -> None:
        self.store.close()
