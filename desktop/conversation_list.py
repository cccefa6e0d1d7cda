"""The conversation list beside the chat: search, new, rename (double-click), delete.

It shows what the history store holds and says what the user picked; the main window does the
storing, so this widget stays a view.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop.history import Conversation

ID_ROLE = Qt.ItemDataRole.UserRole


class ConversationList(QWidget):
    selected = Signal(int)  # conversation id
    new_requested = Signal()
    rename_requested = Signal(int, str)
    delete_requested = Signal(int)
    search_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.search = QLineEdit()
        self.search.setPlaceholderText(self.tr("Search conversations"))
        self.search.setClearButtonEnabled(True)
        self.list = QListWidget()
        # Long titles end in "…" rather than growing a sideways scroll bar.
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.new_button = QPushButton(self.tr("New chat"))
        self.delete_button = QPushButton(self.tr("Delete"))
        buttons = QHBoxLayout()
        buttons.addWidget(self.new_button)
        buttons.addWidget(self.delete_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.search)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)
        self.setMaximumWidth(260)
        self._filling = False
        self.search.textChanged.connect(self.search_changed)
        self.new_button.clicked.connect(self.new_requested)
        self.delete_button.clicked.connect(self._confirm_delete)
        self.list.currentItemChanged.connect(self._on_current)
        self.list.itemChanged.connect(self._on_renamed)

    def show_conversations(self, conversations: list[Conversation], current: int | None) -> None:
        """Replaces the list; keeps ``current`` selected without announcing it again."""
        self._filling = True
        self.list.clear()
        for conversation in conversations:
            item = QListWidgetItem(conversation.title)
            item.setData(ID_ROLE, conversation.id)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
            self.list.addItem(item)
            if conversation.id == current:
                self.list.setCurrentItem(item)
        self._filling = False

    def current_id(self) -> int | None:
        item = self.list.currentItem()
        return None if item is None else int(item.data(ID_ROLE))

    def _on_current(self, item: QListWidgetItem | None, _previous: object) -> None:
        if item is not None and not self._filling:
            self.selected.emit(int(item.data(ID_ROLE)))

    def _on_renamed(self, item: QListWidgetItem) -> None:
        if not self._filling and item.text().strip():
            self.rename_requested.emit(int(item.data(ID_ROLE)), item.text().strip())

    def _confirm_delete(self) -> None:
        conversation = self.current_id()
        if conversation is None:
            return
        answer = QMessageBox.question(self, self.tr("Delete conversation"),
                                      self.tr("Delete this conversation? This can't be undone."))
        if answer == QMessageBox.StandardButton.Yes:
            self.delete_requested.emit(conversation)
