"""Cited answers in the chat: [n] made into links, the list of sources, and the passage view.

An answer from a document collection carries the passages the model was given (the engine's
``GroundedAnswer.sources()``: number, where, path, pages, heading, text, cited). The panel turns
each ``[n]`` in the answer into a ``cite:M.n`` link (message M, passage n), lists the sources
under the answer, and on a click shows the passage beside the conversation. The engine already
dropped every number that was not a passage given; a stray one is left as plain text here too.
"""

from __future__ import annotations

import re
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QTextBrowser, QVBoxLayout, QWidget

CITE_SCHEME = "cite"
_CITATION = re.compile(r"\[(\d{1,3})\](?!\()")


def cite_target(message: int, number: int) -> str:
    return f"{CITE_SCHEME}:{message}.{number}"


def parse_cite_target(path: str) -> tuple[int, int] | None:
    """(message index, passage number) of a ``cite:`` link's path, or None."""
    message, _, number = path.partition(".")
    if message.isdigit() and number.isdigit():
        return int(message), int(number)
    return None


def link_citations(markdown: str, message: int, sources: list[dict[str, Any]]) -> str:
    """``markdown`` with every ``[n]`` of a passage given made into a link to it."""
    given = len(sources)

    def link(match: re.Match[str]) -> str:
        number = int(match.group(1))
        if not 1 <= number <= given:
            return match.group(0)
        return f"[\\[{number}\\]]({cite_target(message, number)})"

    return _CITATION.sub(link, markdown)


def sources_footer(message: int, sources: list[dict[str, Any]], relevant: bool,
                   collection_label: str, nothing_label: str) -> str:
    """The Markdown line under a grounded answer: its sources as links, cited ones first in
    bold; or, when nothing relevant was found, that the answer is not from the documents."""
    if not relevant or not sources:
        return f"*{nothing_label}*"
    links = []
    for source in sources:
        number = source["number"]
        text = f"[\\[{number}\\] {_escape(source['where'])}]({cite_target(message, number)})"
        links.append(f"**{text}**" if source.get("cited") else text)
    return f"*{collection_label}* " + " · ".join(links)


def _escape(text: str) -> str:
    """Text safe inside a Markdown link's label."""
    return re.sub(r"([\\\[\]*_`<>])", r"\\\1", text)


class CitationView(QWidget):
    """The passage behind a citation: where it is (file, page or heading) and its text."""

    closed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("citationView")
        self.title = QLabel()
        self.title.setWordWrap(True)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.location = QLabel()
        self.location.setWordWrap(True)
        self.location.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.text = QTextBrowser()
        self.text.setOpenLinks(False)  # a passage's text is shown, never followed
        self.close_button = QPushButton(self.tr("Close"))
        header = QHBoxLayout()
        header.addWidget(self.title, 1)
        header.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(header)
        layout.addWidget(self.location)
        layout.addWidget(self.text, 1)
        self.close_button.clicked.connect(self._close)
        self.hide()

    def pages_label(self, source: dict[str, Any]) -> str:
        """ "Pages 3-4", "Page 3" or "" (not a PDF) for a passage."""
        start, end = source.get("page_start"), source.get("page_end")
        if not start:
            return ""
        if not end or end == start:
            return self.tr("Page {page}").format(page=start)
        return self.tr("Pages {start}-{end}").format(start=start, end=end)

    def show_source(self, source: dict[str, Any]) -> None:
        heading = source.get("heading") or ""
        # The title names the file and the pages or the heading already; say each thing once.
        where = [self.pages_label(source),
                 "" if source["where"].endswith(f", {heading}") else heading]
        self.title.setText(self.tr("[{number}] {name}").format(
            number=source["number"], name=source["where"]))
        self.location.setText(" · ".join([*(w for w in where if w), source.get("path", "")]))
        self.text.setPlainText(source.get("text", ""))
        self.show()

    def _close(self) -> None:
        self.hide()
        self.closed.emit()
