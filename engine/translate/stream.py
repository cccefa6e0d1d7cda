"""Streaming a translation's output: each piece of the final text written once its units are done.

A layout's output is a sequence of pieces (a line, a source slice, a paragraph), each showing
units up to some index (its "need"; -1 for text that is never translated). The pipeline says
after each group how many leading units are final; every piece whose units are all final is
rendered then, in order, and handed to ``on_text``. Pieces are rendered by the same function
as the final text, after their units stopped changing, so the streamed pieces join to exactly
the final translation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from engine.callbacks import OnText
from engine.translate.protect import Parts

Piece = Callable[[int, Sequence[Parts | None]], str]


class TextStream:
    """Writes a layout's output pieces to ``on_text`` in order as their units finish.

    Args:
        needs: for each piece, the last unit it shows (-1: none).
        piece: renders piece ``index`` from the units' translations.
        on_text: called with each newly finished stretch of text (never with "").
    """

    def __init__(self, needs: Sequence[int], piece: Piece, on_text: OnText) -> None:
        self.needs = list(needs)
        self.piece = piece
        self.on_text = on_text
        self.written = 0  # pieces already handed out

    def advance(self, done: int, translated: Sequence[Parts | None]) -> None:
        """Writes every pending piece whose units are among the first ``done``."""
        texts: list[str] = []
        while self.written < len(self.needs) and self.needs[self.written] < done:
            texts.append(self.piece(self.written, translated))
            self.written += 1
        text = "".join(texts)  # one call per group: a UI redraws once, not once per line
        if text:
            self.on_text(text)

    def finish(self, translated: Sequence[Parts | None]) -> None:
        """Writes whatever is left (all units are final)."""
        self.advance(len(translated) + 1, translated)
