"""Turn a stream of token ids into a stream of text that never contains broken characters.

:class:`IncrementalDetokenizer` emits text only once the bytes of every character are complete
(a CJK character or an emoji is often split over several byte-level tokens), and
:class:`StopStringFilter` holds back text that might turn out to be the start of a stop string;
:class:`TextAssembler` is the two together, for one generated sequence.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from engine.errors import ConfigError

__all__ = ["IncrementalDetokenizer", "StopStringFilter", "TextAssembler"]

# What byte-level BPE and SentencePiece byte-fallback decoders put where the UTF-8 is incomplete.
_REPLACEMENT = "\ufffd"

# Prompt ids seeded into the window: enough context for leading-space rules (Metaspace) and for
# decoders that clean up spaces around punctuation, while keeping each decode call tiny.
_PROMPT_CONTEXT = 6

# A UTF-8 character has at most 4 bytes, so a valid one is complete after at most 4 held tokens.
# Past this many, the bytes are garbage that no later token can repair: emit them (with U+FFFD,
# as the full decode would show them) rather than let the window, and each push, grow forever.
_MAX_HELD_TOKENS = 16


class IncrementalDetokenizer:
    """Decode generated tokens one at a time, emitting only complete characters.

    Uses the prefix/read-offset technique (as in Hugging Face TGI and vLLM): the text of a token
    is the decode of a short window of recent ids minus the decode of that window without the
    new ids. If the result ends in U+FFFD the last character is still incomplete and the ids are
    held until a later token completes it. Each push decodes only the window, so the cost per
    token does not grow with the length of the output.

    Args:
        decode: Turns a list of token ids into text, e.g. ``tokenizer.decode``.
        prompt_ids: The prompt's ids; the last few seed the window, because SentencePiece-style
            decoders drop the leading space of whatever token comes first in a decode call.

    Example:
        >>> detok = IncrementalDetokenizer(tokenizer.decode, prompt_ids)
        >>> text = "".join(detok.push(t) for t in new_ids) + detok.flush()
    """

    def __init__(self, decode: Callable[[list[int]], str], prompt_ids: Sequence[int] = ()) -> None:
        self._decode = decode
        self._ids: list[int] = [int(i) for i in prompt_ids[-_PROMPT_CONTEXT:]]
        # ids[prefix:read] is context already emitted; ids[read:] is not emitted yet.
        self._prefix_offset = 0
        self._read_offset = len(self._ids)

    def push(self, token_id: int) -> str:
        """Add one generated token.

        Args:
            token_id: The token just sampled.

        Returns:
            The text this token completed; '' while a character's bytes are still incomplete.
        """
        self._ids.append(int(token_id))
        prefix_text = self._decode(self._ids[self._prefix_offset : self._read_offset])
        new_text = self._decode(self._ids[self._prefix_offset :])
        held = len(self._ids) - self._read_offset
        complete = len(new_text) > len(prefix_text) and not new_text.endswith(_REPLACEMENT)
        if not complete and held < _MAX_HELD_TOKENS:
            return ""
        self._advance()
        return new_text[len(prefix_text) :]

    def flush(self) -> str:
        """Return whatever is still held at the end of generation (possibly with U+FFFD).

        Returns:
            The remaining text, or '' if everything was already emitted.
        """
        if self._read_offset == len(self._ids):
            return ""
        prefix_text = self._decode(self._ids[self._prefix_offset : self._read_offset])
        new_text = self._decode(self._ids[self._prefix_offset :])
        self._advance()
        return new_text[len(prefix_text) :]

    def _advance(self) -> None:
        """Mark everything so far as emitted and drop ids that can no longer affect the text."""
        self._prefix_offset = self._read_offset
        self._read_offset = len(self._ids)
        # The window only needs ids from prefix_offset on; forgetting older ones keeps memory
        # (and the slices above) bounded however long the generation runs.
        del self._ids[: self._prefix_offset]
        self._read_offset -= self._prefix_offset
        self._prefix_offset = 0


class StopStringFilter:
    """Cut generated text at the first stop string, holding back possible partial matches.

    A stop string can arrive split over several pieces ("\\nUs" then "er:"), so text that could
    still be the start of one is held until the next piece decides it.

    Args:
        stop_strings: Strings that end generation; an empty sequence passes everything through.

    Raises:
        ConfigError: One of the stop strings is empty (it would match at once).
    """

    def __init__(self, stop_strings: Sequence[str]) -> None:
        for position, stop in enumerate(stop_strings, start=1):
            if not isinstance(stop, str) or not stop:
                raise ConfigError(
                    f"stop string #{position} is {stop!r}; every stop string must be "
                    "non-empty text, remove it from the stop list"
                )
        self._stops = tuple(dict.fromkeys(stop_strings))  # de-duplicated, order kept
        self._longest = max((len(s) for s in self._stops), default=0)
        self._buffer = ""
        self._stopped = False

    @property
    def stopped(self) -> bool:
        """Whether a stop string has been found."""
        return self._stopped

    def feed(self, text: str) -> tuple[str, bool]:
        """Add newly generated text.

        Args:
            text: The next piece of text (e.g. from IncrementalDetokenizer.push).

        Returns:
            ``(safe_text, stopped)``: the text that can be shown now, and whether a stop string
            was found. When found, ``safe_text`` ends just before it and the caller should stop
            generating; later calls return ``("", True)``.
        """
        if self._stopped:
            return "", True
        if not self._stops:
            return text, False
        self._buffer += text
        # Earliest match wins, so with stops "\n\n" and "\nUser:" text is cut at the first.
        cut = min(
            (i for i in (self._buffer.find(stop) for stop in self._stops) if i >= 0),
            default=-1,
        )
        if cut >= 0:
            safe = self._buffer[:cut]
            self._buffer = ""
            self._stopped = True
            return safe, True
        hold = self._partial_match_length()
        safe = self._buffer[: len(self._buffer) - hold]
        self._buffer = self._buffer[len(self._buffer) - hold :]
        return safe, False

    def flush(self) -> str:
        """Return text held back as a possible stop-string start, at the end of generation.

        Returns:
            The held text ('' after a stop string was found).
        """
        held, self._buffer = self._buffer, ""
        return held

    def _partial_match_length(self) -> int:
        """Length of the longest buffer suffix that is a proper prefix of some stop string."""
        for length in range(min(len(self._buffer), self._longest - 1), 0, -1):
            tail = self._buffer[-length:]
            if any(stop.startswith(tail) for stop in self._stops):
                return length
        return 0


class TextAssembler:
    """One sequence's tokens to the text a caller shows: whole characters, cut before the first
    stop string. The one assembly for ``engine.generation.generate`` and the server's batched
    streams, so both give the same text for the same tokens.

    Args:
        decode: Turns a list of token ids into text, e.g. ``tokenizer.decode``.
        prompt_ids: The prompt's ids (see :class:`IncrementalDetokenizer`).
        stop_strings: Generation ends before any of these (see :class:`StopStringFilter`).
    """

    def __init__(self, decode: Callable[[list[int]], str], prompt_ids: Sequence[int],
                 stop_strings: Sequence[str] = ()) -> None:
        self._detokenizer = IncrementalDetokenizer(decode, prompt_ids)
        self._filter = StopStringFilter(stop_strings)

    @property
    def stopped(self) -> bool:
        """Whether a stop string has been found (generation should end)."""
        return self._filter.stopped

    def push(self, token_id: int) -> str:
        """The text ``token_id`` adds that can be shown now (may be '')."""
        return self._filter.feed(self._detokenizer.push(token_id))[0]

    def finish(self) -> str:
        """The text still held back, once generation has ended ('' after a stop string)."""
        if self.stopped:
            return ""
        tail, stopped = self._filter.feed(self._detokenizer.flush())
        return tail if stopped else tail + self._filter.flush()
