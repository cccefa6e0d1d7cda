"""The Chat panel: a conversation view, an input box, Send / Stop / Regenerate / Edit.

The panel owns no model: it asks the controller to generate and receives tokens back through
signals; it only ever touches its own widgets, on the GUI thread. Streamed text is re-rendered at
most every 50 ms so long answers don't flood the event loop. It also holds the conversation's
:class:`ChatSettings` (the main window stores them) and puts a "Copy code" link after every
fenced code block. A conversation can answer from a document collection (the *Documents*
picker, stored in its settings): such answers carry their sources, their ``[n]`` citations are
links, and a click shows the cited passage beside the conversation (desktop.citations).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QGuiApplication, QKeyEvent, QKeySequence, QShortcut, QTextCursor
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from desktop.chat_markdown import add_copy_links, keep_line_breaks
from desktop.chat_settings import ChatSettings, ChatSettingsDialog
from desktop.citations import (
    CITE_SCHEME,
    CitationView,
    link_citations,
    parse_cite_target,
    sources_footer,
)

_SEPARATOR = "\n\n---\n\n"  # between two messages: a horizontal rule

NOTICE_MS = 3000  # how long a passing notice ("Code copied") stays
_MANAGE = "\x00manage"  # the Documents picker's last entry: opens the collections dialog


class ChatPanel(QWidget):
    """Shows one conversation and collects the next message."""

    send_requested = Signal(list)  # the messages to answer (role/content dicts)
    stop_requested = Signal()
    messages_removed = Signal(list)  # stored ids of messages taken away (regenerate, edit)
    system_prompt_changed = Signal(str)
    export_requested = Signal()
    settings_changed = Signal(dict)  # ChatSettings.to_dict() after the user changed them
    manage_documents_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.messages: list[dict[str, Any]] = []
        self.generating = False
        self.settings = ChatSettings()
        self._code_blocks: list[str] = []  # code of the blocks the view shows, copy:1 first
        self.system_prompt = QLineEdit()
        self.system_prompt.setPlaceholderText(
            self.tr("System prompt for this conversation (optional)"))
        self.documents = QComboBox()
        self.documents.setObjectName("documentsPicker")
        self.documents.setToolTip(self.tr("Answer from one of your document collections, with "
                                          "numbered citations of the passages used"))
        self._collections: list[str] = []
        self.settings_button = QPushButton(self.tr("Settings…"))
        self.export_button = QPushButton(self.tr("Export…"))
        self.view = QTextBrowser()
        # Nothing leaves the machine, not even a click: no link is ever followed, the panel
        # handles the few it makes itself (copy:N) and ignores every other one.
        self.view.setOpenExternalLinks(False)
        self.view.setOpenLinks(False)
        self.view.setObjectName("chatView")
        self.citation = CitationView()
        self.splitter = QSplitter()
        self.splitter.addWidget(self.view)
        self.splitter.addWidget(self.citation)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.input = QPlainTextEdit()
        self.input.setPlaceholderText(self.tr("Message Nightlamp… (Ctrl+Enter to send, "
                                              "Up to edit the last message)"))
        self.input.setMaximumHeight(110)
        self.input.installEventFilter(self)
        self.send_button = QPushButton(self.tr("Send"))
        self.stop_button = QPushButton(self.tr("Stop"))
        self.regenerate_button = QPushButton(self.tr("Regenerate"))
        self.edit_button = QPushButton(self.tr("Edit"))
        self.edit_button.setToolTip(self.tr("Take back your last message to change and resend "
                                            "it (Up in an empty input box)"))
        self.standing_notice = ""  # see set_standing_notice
        self.notice = QLabel()
        self.notice.setWordWrap(True)
        self.notice.setObjectName("chatNotice")
        buttons = QHBoxLayout()
        buttons.addWidget(self.notice, 1)
        for button in (self.edit_button, self.regenerate_button, self.stop_button,
                       self.send_button):
            buttons.addWidget(button)
        header = QHBoxLayout()
        header.addWidget(self.system_prompt, 1)
        header.addWidget(self.documents)
        header.addWidget(self.settings_button)
        header.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.addLayout(header)
        layout.addWidget(self.splitter, 1)
        layout.addWidget(self.input)
        layout.addLayout(buttons)
        self.send_button.clicked.connect(self.send)
        self.stop_button.clicked.connect(self.stop_requested)
        self.regenerate_button.clicked.connect(self.regenerate)
        self.edit_button.clicked.connect(self.edit_last)
        self.settings_button.clicked.connect(self.open_settings)
        self.export_button.clicked.connect(self.export_requested)
        self.view.anchorClicked.connect(self._on_anchor)
        self.documents.activated.connect(self._on_documents_chosen)
        self.system_prompt.editingFinished.connect(
            lambda: self.system_prompt_changed.emit(self.system_prompt.text().strip()))
        QShortcut(QKeySequence("Ctrl+Return"), self, self.send)
        QShortcut(QKeySequence("Escape"), self, self.stop_requested.emit)
        self._render_timer = QTimer(self)
        self._render_timer.setSingleShot(True)
        self._render_timer.setInterval(50)
        self._render_timer.timeout.connect(self.refresh)
        self._notice_timer = QTimer(self)
        self._notice_timer.setSingleShot(True)
        self._notice_timer.setInterval(NOTICE_MS)
        self._notice_timer.timeout.connect(self._clear_passing_notice)
        self._passing_notice = ""
        # The rendered messages before a streaming answer, and where that answer starts.
        self._settled: list[str] | None = None
        self._tail_start = 0
        self.show_collections([])
        self.set_settings(self.settings)
        self.set_generating(False)

    # Conversation state ------------------------------------------------------------------

    def set_messages(self, messages: list[dict[str, Any]]) -> None:
        self.messages = [dict(m) for m in messages]
        self.citation.hide()  # its passage belonged to the conversation shown before
        self._update_buttons()
        self.refresh()

    def send(self) -> None:
        text = self.input.toPlainText().strip()
        if not text or self.generating:
            return
        self.input.clear()
        self.messages.append({"role": "user", "content": text, "status": "complete"})
        self._start_answer()

    def regenerate(self) -> None:
        if self.generating or not self.messages:
            return
        removed = []
        while self.messages and self.messages[-1]["role"] == "assistant":
            removed.append(self.messages.pop().get("id"))
        self.messages_removed.emit([i for i in removed if i is not None])
        if self.messages:
            self._start_answer()

    def edit_last(self) -> None:
        """Takes the last user message (and the answers after it) back into the input box.

        The main window deletes the emitted ids from the history; sending the edited text then
        works like any new message.
        """
        if self.generating:
            return
        users = [i for i, m in enumerate(self.messages) if m["role"] == "user"]
        if not users:
            return
        removed = self.messages[users[-1]:]
        del self.messages[users[-1]:]
        self.messages_removed.emit([m["id"] for m in removed if m.get("id") is not None])
        # A draft already in the box is kept after the message, not silently replaced.
        draft = self.input.toPlainText()
        text = removed[0]["content"] + (f"\n\n{draft}" if draft.strip() else "")
        self.input.setPlainText(text)
        self.input.moveCursor(QTextCursor.MoveOperation.End)
        self.input.setFocus()
        self._update_buttons()
        self.refresh()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt's name)
        # Up in an empty input box edits the last message, as in most chat apps; anywhere else
        # Up moves the cursor as usual.
        if (watched is self.input and event.type() == QEvent.Type.KeyPress
                and isinstance(event, QKeyEvent) and event.key() == Qt.Key.Key_Up
                and event.modifiers() == Qt.KeyboardModifier.NoModifier
                and not self.input.toPlainText().strip() and self.edit_button.isEnabled()):
            self.edit_last()
            return True
        return super().eventFilter(watched, event)

    def _start_answer(self) -> None:
        system = self.system_prompt.text().strip()
        prompt = [{"role": "system", "content": system}] if system else []
        prompt += [{"role": m["role"], "content": m["content"]} for m in self.messages]
        self.messages.append({"role": "assistant", "content": "", "status": "streaming"})
        self.set_generating(True)
        self.refresh()
        self.send_requested.emit(prompt)

    def append_token(self, text: str) -> None:
        if self.messages and self.messages[-1]["status"] == "streaming":
            self.messages[-1]["content"] += text
            if not self._render_timer.isActive():
                self._render_timer.start()

    def set_sources(self, documents: dict[str, Any]) -> None:
        """The passages the streaming answer was given ({"collection", "relevant", "sources"},
        from the worker), so its citations can be opened as they arrive."""
        if self.messages and self.messages[-1]["status"] == "streaming":
            self.messages[-1]["documents"] = documents
            if not self._render_timer.isActive():
                self._render_timer.start()

    def finish_answer(self, status: str) -> None:
        if self.messages and self.messages[-1]["status"] == "streaming":
            self.messages[-1]["status"] = status
        self.set_generating(False)
        self.refresh()

    def set_generating(self, generating: bool) -> None:
        self.generating = generating
        self._update_buttons()

    def _update_buttons(self) -> None:
        idle = not self.generating
        self.send_button.setEnabled(idle)
        self.stop_button.setEnabled(self.generating)
        self.regenerate_button.setEnabled(idle and bool(self.messages))
        self.edit_button.setEnabled(idle and any(m["role"] == "user" for m in self.messages))

    def show_notice(self, text: str) -> None:
        """Shows ``text`` under the conversation; "" goes back to the standing notice, if any."""
        self.notice.setText(text or self.standing_notice)

    def set_standing_notice(self, text: str) -> None:
        """A notice that stays while no other one is shown, e.g. that chats are not being kept
        (answers streaming and passing notices do not clear it; "" removes it)."""
        self.standing_notice = text
        self.show_notice(text)

    def _show_passing_notice(self, text: str) -> None:
        self._passing_notice = text
        self.show_notice(text)
        self._notice_timer.start()

    def _clear_passing_notice(self) -> None:
        # Only if nothing newer (an error, say) replaced it meanwhile.
        if self.notice.text() == self._passing_notice:
            self.show_notice("")

    # Settings ----------------------------------------------------------------------------

    def set_settings(self, settings: ChatSettings) -> None:
        """Shows the settings of the conversation just opened (emits nothing)."""
        self.settings = settings
        self.settings_button.setToolTip(self.settings_summary())
        self._show_chosen_collection()

    # Documents ---------------------------------------------------------------------------

    def show_collections(self, names: list[str]) -> None:
        """Fills the Documents picker with the collections there are (emits nothing)."""
        self._collections = list(names)
        self._show_chosen_collection()

    def _show_chosen_collection(self) -> None:
        chosen = self.settings.documents
        self.documents.blockSignals(True)
        self.documents.clear()
        self.documents.addItem(self.tr("No documents"), "")
        for name in self._collections:
            self.documents.addItem(self.tr("Documents: {name}").format(name=name), name)
        if chosen and chosen not in self._collections:  # removed since: shown, not dropped
            self.documents.addItem(self.tr("Documents: {name} (missing)").format(name=chosen),
                                   chosen)
        self.documents.insertSeparator(self.documents.count())
        self.documents.addItem(self.tr("Manage documents…"), _MANAGE)
        self.documents.setCurrentIndex(max(0, self.documents.findData(chosen)))
        self.documents.blockSignals(False)

    def _on_documents_chosen(self, index: int) -> None:
        name = self.documents.itemData(index)
        if name == _MANAGE:
            self._show_chosen_collection()  # the picker keeps showing the real choice
            self.manage_documents_requested.emit()
            return
        if name != self.settings.documents:
            self.set_settings(replace(self.settings, documents=name or ""))
            self.settings_changed.emit(self.settings.to_dict())

    def settings_summary(self) -> str:
        """One line describing the active settings (the Settings button's tooltip)."""
        s = self.settings
        context = (self.tr("model default") if s.context_length == 0
                   else str(s.context_length))
        top_k = self.tr("off") if s.top_k == 0 else str(s.top_k)
        return self.tr("Temperature {temperature:g} · top-p {top_p:g} · top-k {top_k} · "
                       "up to {max_tokens} tokens · context {context} · "
                       "repetition penalty {penalty:g}").format(
            temperature=s.temperature, top_p=s.top_p, top_k=top_k, max_tokens=s.max_tokens,
            context=context, penalty=s.repetition_penalty)

    def open_settings(self) -> None:
        """Edits the settings in a dialog; OK stores them and emits ``settings_changed``."""
        dialog = ChatSettingsDialog(self.settings, self)
        try:
            if dialog.exec() != QDialog.DialogCode.Accepted:
                return
            self.set_settings(dialog.value())
        finally:
            dialog.deleteLater()
        self.settings_changed.emit(self.settings.to_dict())

    # Rendering ---------------------------------------------------------------------------

    def _role_title(self, role: str) -> str:
        # Literal tr() strings, so pyside6-lupdate finds them.
        titles = {"user": self.tr("You"), "assistant": self.tr("Assistant"),
                  "system": self.tr("System")}
        return titles.get(role, role)

    def _status_mark(self, status: str) -> str:
        marks = {"cancelled": self.tr("(stopped)"), "failed": self.tr("(failed)"),
                 "interrupted": self.tr("(interrupted)")}
        return f" *{marks[status]}*" if status in marks else ""

    def _message_parts(self) -> tuple[list[str], list[str]]:
        """Each message's Markdown, and the code of all blocks (item N-1 for link copy:N)."""
        parts: list[str] = []
        blocks: list[str] = []
        label = self.tr("Copy code")
        for index, message in enumerate(self.messages):
            title = self._role_title(message["role"])
            mark = self._status_mark(message.get("status", ""))
            body, code = add_copy_links(keep_line_breaks(message["content"]), label,
                                        first=len(blocks) + 1)
            blocks += code
            if not body and message.get("status") == "streaming":
                body = "…"
            documents = message.get("documents")
            if isinstance(documents, dict):
                body = self._with_sources(body, index, documents)
            parts.append(f"**{title}**{mark}\n\n{body}")
        return parts, blocks

    def _with_sources(self, body: str, index: int, documents: dict[str, Any]) -> str:
        """A documents answer: its citations as links, and its sources under it."""
        sources = documents.get("sources") or []
        name = documents.get("collection", "")
        footer = sources_footer(
            index, sources, bool(documents.get("relevant")),
            self.tr("Sources from {name}:").format(name=name),
            self.tr("Nothing in {name} matched this question: this answer is not from your "
                    "documents.").format(name=name))
        return f"{link_citations(body, index, sources)}\n\n{footer}"

    def markdown(self) -> str:
        return _SEPARATOR.join(self._message_parts()[0])

    def refresh(self) -> None:
        """Shows the conversation. While an answer streams only that answer is rendered again:
        re-rendering the whole chat every 50 ms cost the GUI thread (and the decoder sharing
        its CPU) more the longer the chat grew (benchmarks/ui_heartbeat.py --history)."""
        scrollbar = self.view.verticalScrollBar()
        at_bottom = scrollbar.value() >= scrollbar.maximum() - 4
        parts, self._code_blocks = self._message_parts()
        streaming = bool(self.messages) and self.messages[-1].get("status") == "streaming"
        if not streaming:
            self._settled = None
            self.view.setMarkdown(_SEPARATOR.join(parts))
        else:
            if parts[:-1] != self._settled:
                self._render_settled(parts[:-1])
            self._render_tail(parts[-1])
        if at_bottom:
            scrollbar.setValue(scrollbar.maximum())

    def _render_settled(self, parts: list[str]) -> None:
        """Renders the messages before the streaming one, and marks where it will go."""
        self.view.setMarkdown(_SEPARATOR.join(parts))
        cursor = QTextCursor(self.view.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        self._settled = parts
        self._tail_start = cursor.position()

    def _render_tail(self, part: str) -> None:
        """Replaces the streaming message's rendering (everything after the settled ones)."""
        cursor = QTextCursor(self.view.document())
        cursor.setPosition(self._tail_start)
        cursor.movePosition(QTextCursor.MoveOperation.End, QTextCursor.MoveMode.KeepAnchor)
        cursor.removeSelectedText()
        cursor.insertMarkdown(f"---\n\n{part}" if self._settled else part)

    def _on_anchor(self, url: QUrl) -> None:
        """A clicked link: copy:N copies code block N, cite:M.N shows passage N of message M;
        any other link is ignored."""
        if url.scheme() == CITE_SCHEME:
            self.show_citation(url.path())
            return
        if url.scheme() != "copy" or not url.path().isdigit():
            return
        number = int(url.path())
        if 1 <= number <= len(self._code_blocks):
            QGuiApplication.clipboard().setText(self._code_blocks[number - 1])
            self._show_passing_notice(self.tr("Code copied"))

    def show_citation(self, target: str) -> bool:
        """Shows the passage a ``cite:`` link's path names; False if there is none."""
        parsed = parse_cite_target(target)
        if parsed is None or not 0 <= parsed[0] < len(self.messages):
            return False
        documents = self.messages[parsed[0]].get("documents")
        sources = documents.get("sources") or [] if isinstance(documents, dict) else []
        source = next((s for s in sources if s.get("number") == parsed[1]), None)
        if source is None:
            return False
        self.citation.show_source(source)
        return True

    def last_answer(self) -> str:
        answers = [m["content"] for m in self.messages if m["role"] == "assistant"]
        return answers[-1] if answers else ""
