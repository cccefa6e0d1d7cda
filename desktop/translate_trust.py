"""How far to trust a translation, shown under the Translate panel's result.

``TrustReport`` shows the engine's summary (segments translated, retried, kept in the source
language; the mean confidence), a plain notice when the model is not fit for the language pair,
and marks the segments to check in the result view: a pale yellow background on those with a
confidence under 0.5, a pale red one on those kept in the source language, each with a tooltip
saying why in plain words. It works on the plain data ``desktop.tasks.translation_stats`` sends
(``counts``, ``unfit``, ``marks``), once the translation has finished: while it streams the
result is plain text that is replaced by the rendered Markdown at the end, so marks are applied
to that final view.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import QEvent
from PySide6.QtGui import QColor, QHelpEvent, QTextCharFormat, QTextCursor, QTextDocument
from PySide6.QtWidgets import QLabel, QTextBrowser, QToolTip, QVBoxLayout, QWidget

from engine.translate.report import reason_text

LOW_BACKGROUND = QColor("#fff1b8")  # pale yellow: low confidence
KEPT_BACKGROUND = QColor("#f8d3d0")  # pale red: kept in the source language
MARKED_TEXT = QColor("#1f1f1f")  # dark text on the pale backgrounds, in the dark theme too
NOTICE_STYLE = ("QLabel { background: #fde2e1; color: #5a1a17; border: 1px solid #e0a29e; "
                "border-radius: 4px; padding: 6px; }")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_MARKUP = re.compile(r"[*_`~]+")


class MarkedTextBrowser(QTextBrowser):
    """A text browser that shows the tooltip of the text under the mouse (set on its character
    format by ``mark_segments``)."""

    def viewportEvent(self, event: QEvent) -> bool:  # noqa: N802 (Qt's name)
        if event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent):
            tip = self.cursorForPosition(event.pos()).charFormat().toolTip()
            if tip:
                QToolTip.showText(event.globalPos(), tip, self)
            else:
                QToolTip.hideText()
            return True
        return super().viewportEvent(event)


def shown_text(text: str) -> str:
    """A segment's text as rendered Markdown shows it: link targets, emphasis and code marks
    left out, runs of spaces as one."""
    return " ".join(_MARKUP.sub("", _LINK.sub(r"\1", text)).split())


def mark_segments(document: QTextDocument, marks: Sequence[dict[str, Any]],
                  tip: Callable[[dict[str, Any]], str]) -> int:
    """Gives each marked segment's text in ``document`` its background and tooltip; returns how
    many were found.

    Records carry their translation's text, not its place, so each is looked for in document
    order from where the previous one was found (its text as written, then as rendered
    Markdown shows it). Good enough: a marked segment whose text also occurs earlier in an
    unmarked one may mark that occurrence instead, and one not found (its markup rendered
    differently) stays unmarked rather than marking the wrong place.
    """
    position, found = 0, 0
    for mark in sorted(marks, key=lambda m: int(m.get("index", 0))):
        text = str(mark.get("text", "")).strip()
        if not text:
            continue
        cursor = QTextCursor()
        for candidate in dict.fromkeys((text, shown_text(text))):
            if candidate:
                cursor = document.find(candidate, position)
                if not cursor.isNull():
                    break
        if cursor.isNull():
            continue
        style = QTextCharFormat()
        style.setBackground(KEPT_BACKGROUND if mark.get("status") == "kept_source"
                            else LOW_BACKGROUND)
        style.setForeground(MARKED_TEXT)
        style.setToolTip(tip(mark))
        cursor.mergeCharFormat(style)
        position = cursor.selectionEnd()
        found += 1
    return found


class TrustReport(QWidget):
    """The summary line, the legend of the marks and the not-fit notice, under the result."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.legend = QLabel()
        self.legend.setWordWrap(True)
        self.unfit_notice = QLabel()
        self.unfit_notice.setWordWrap(True)
        self.unfit_notice.setStyleSheet(NOTICE_STYLE)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for label in (self.unfit_notice, self.summary, self.legend):
            layout.addWidget(label)
        self.clear()

    def clear(self) -> None:
        for label in (self.summary, self.legend, self.unfit_notice):
            label.clear()
            label.setVisible(False)

    def show_report(self, stats: dict[str, Any], result: QTextBrowser,
                    language_label: Callable[[str], str]) -> None:
        """Shows what ``stats`` (``tasks.translation_stats``) says and marks ``result``."""
        self.clear()
        counts = stats.get("counts") or {}
        source = language_label(stats.get("source", "?"))
        target = language_label(stats.get("target", "?"))
        if counts.get("segments"):
            line = self.tr("{segments} segments: {translated} translated, {retried} retried, "
                           "{kept} kept in {language}; mean confidence {confidence:.2f}").format(
                segments=counts["segments"], translated=counts.get("translated", 0),
                retried=counts.get("retried", 0), kept=counts.get("kept_source", 0),
                language=source, confidence=counts.get("mean_confidence", 0.0))
            if stats.get("round_trip"):
                line += self.tr(" · checked by translating back")
            self.summary.setText(line)
            self.summary.setVisible(True)
        if stats.get("unfit"):
            self.unfit_notice.setText(self.tr(
                "{model} is not fit for translating {source} into {target}: {kept} of "
                "{segments} segments had to be kept in {source} and the mean confidence is "
                "{confidence:.2f}. Choose another model for Translate in Models.").format(
                model=stats.get("model") or self.tr("This model"), source=source,
                target=target, kept=counts.get("kept_source", 0),
                segments=counts.get("segments", 0),
                confidence=counts.get("mean_confidence", 0.0)))
            self.unfit_notice.setVisible(True)
        marks = stats.get("marks") or []
        if marks and mark_segments(result.document(), marks,
                                   lambda mark: self.tip(mark, source)):
            self.legend.setText(self.tr(
                "Marked in the result: pale yellow, low confidence; pale red, kept in "
                "{language}. Point at a marked passage to see why.").format(language=source))
            self.legend.setVisible(True)

    def reason_words(self, reason: str) -> str:
        """A failed check in the UI's words (the engine's English words for a new one)."""
        words = {
            "empty": self.tr("no translation came back"),
            "untranslated": self.tr("it came back untranslated"),
            "placeholders": self.tr("code, links or markup did not come back intact"),
            "markers": self.tr("the answer had stray marker characters"),
            "label": self.tr("the answer was an instruction or a label"),
            "script": self.tr("the answer was not in the target script"),
            "language": self.tr("the answer was in another language"),
            "length": self.tr("the answer was far too long or too short"),
        }
        return words.get(reason) or reason_text(reason)

    def tip(self, mark: dict[str, Any], source: str) -> str:
        """Why a segment is marked, in plain words."""
        reasons = [self.reason_words(reason) for reason in mark.get("reasons") or []]
        why = self.tr("; ").join(reasons)
        if mark.get("status") == "kept_source":
            return self.tr("Kept in {language}: {reason}.").format(
                language=source, reason=why or self.tr("no answer passed the checks"))
        confidence = float(mark.get("confidence", 0.0))
        if why:
            return self.tr("Low confidence ({confidence:.2f}): it needed a second try "
                           "({reason}).").format(confidence=confidence, reason=why)
        return self.tr("Low confidence ({confidence:.2f}): the checks could not confirm its "
                       "language or it reads differently when translated back.").format(
            confidence=confidence)
