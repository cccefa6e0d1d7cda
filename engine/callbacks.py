"""The callback shapes long operations take, written once.

Every slow engine call (generation, beam search, summaries, translation, imports) reports and
stops the same way, so the command line, the desktop worker and the server can hand the same
three functions to any of them.
"""

from __future__ import annotations

from collections.abc import Callable

# Asked between steps; True ends the operation (a stream ends with finish_reason "cancelled",
# a whole-result call raises OperationCancelledError).
ShouldStop = Callable[[], bool]
# (stage, done, total): one progress bar whose stage name can change along the way.
Progress = Callable[[str, int, int], None]
# (done, total) for operations with a single stage, e.g. sentences of an evaluation.
CountProgress = Callable[[int, int], None]
# Text as it is produced, in order; the pieces join to the whole result.
OnText = Callable[[str], None]


def no_progress(stage: str, done: int, total: int) -> None:
    """A Progress that reports nowhere (the default where nobody watches)."""


def never_stop() -> bool:
    """A ShouldStop for callers that cannot cancel."""
    return False
