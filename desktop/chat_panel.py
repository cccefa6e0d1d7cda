"""The Chat panel: a conversation view, an input box, Send / Stop / Regenerate.

The panel owns no model: it asks the controller to generate and receives tokens back through
signals; it only ever touches its own widgets, on the GUI thread. Streamed text is re-rendered at
most every 50 ms so long answers don't flood the event loop.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

ROLE_TITLES = {"user": "You", "assistant": "Assistant", "system": "System"}
STATUS_MARKS = {"cancelled": " *(stopped)*", "failed": " *(failed)*",
                "interrupted": " *(interrupted)*"}


class ChatPanel(QWidget):
    """Shows one conversation and collects the next message."""

    send_requested = Signal(list)  # the messages to answer (role/content dicts)
    stop_requested = Signal()
    messages_removed = Signal(list)  # stored ids of messages taken away (regenerate)
    system_prompt_changed = Signal(str)
    export_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.messages: list[dict[str, Any]] = []
        self.generating = False
        self.system_prompt = QLineEdit()
        self.system_prompt.setPlaceholderText(
            self.tr("System prompt for this conversation (optional)"))
        self.export_button = QPushButton(self.tr("Export…"))
        self.view = QTextBrowser()
        self.view.setOpenExternalLinks(False)  # nothing leaves the machine, not even a click
        self.view.setObjectName("chatView")
        self.input = QPlainTextEdit()
        self.input.setPlaceholderText(self.tr("Message Nightlamp… (Ctrl+Enter to send)"))
        self.input.setMaximumHeight(110)
        self.send_button = QPushButton(self.tr("Send"))
        self.stop_button = QPushButton(self.tr("Stop"))
        self.regenerate_button = QPushButton(self.tr("Regenerate"))
        self.notice = QLabel()
        self.notice.setWordWrap(True)
        self.notice.setObjectName("chatNotice")
        buttons = QHBoxLayout()
        buttons.addWidget(self.notice, 1)
        for button in (self.regenerate_button, self.stop_button, self.send_button):
            buttons.addWidget(button)
        header = QHBoxLayout()
        header.addWidget(self.system_prompt, 1)
        header.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.addLayout(header)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.input)
        layout.addLayout(buttons)
        self.send_button.clicked.connect(self.send)
        self.stop_button.clicked.connect(self.stop_requested)
        self.regenerate_button.clicked.connect(self.regenerate)
        self.export_button.clicked.connect(self.export_requested)
        self.system_prompt.editingFinished.connect(
            lambda: self.system_prompt_changed.emit(self.system_prompt.text().strip()))
        QShortcut(QKeySequence("Ctrl+Return"), self, self.send)
        QShortcut(QKeySequence("Escape"), self, self.stop_requested.emit)
        self._render_timer = QTimer(self)
        self._render_timer.setSingleShot(True)
        self._render_timer.setInterval(50)
        self._render_timer.timeout.connect(self.refresh)
        self.set_generating(False)

    # Conversation state ------------------------------------------------------------------

    def set_messages(self, messages: list[dict[str, Any]]) -> None:
        self.messages = [dict(m) for m in messages]
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

    def finish_answer(self, status: str) -> None:
        if self.messages and self.messages[-1]["status"] == "streaming":
            self.messages[-1]["status"] = status
        self.set_generating(False)
        self.refresh()

    def set_generating(self, generating: bool) -> None:
        self.generating = generating
        self.send_button.setEnabled(not generating)
        self.stop_button.setEnabled(generating)
        self.regenerate_button.setEnabled(not generating and bool(self.messages))

    def show_notice(self, text: str) -> None:
        self.notice.setText(text)

    # Rendering ---------------------------------------------------------------------------

    def markdown(self) -> str:
        parts = []
        for message in self.messages:
            title = self.tr(ROLE_TITLES.get(message["role"], message["role"]))
            mark = STATUS_MARKS.get(message.get("status", ""), "")
            body = message["content"] or ("…" if message.get("status") == "streaming" else "")
            parts.append(f"**{title}**{mark}\n\n{body}")
        return "\n\n---\n\n".join(parts)

    def refresh(self) -> None:
        scrollbar = self.view.verticalScrollBar()
        at_bottom = scrollbar.value() >= scrollbar.maximum() - 4
        self.view.setMarkdown(self.markdown())
        if at_bottom:
            scrollbar.setValue(scrollbar.maximum())

    def last_answer(self) -> str:
        answers = [m["content"] for m in self.messages if m["role"] == "assistant"]
        return answers[-1] if answers else ""
