"""Answering a question from a collection's passages, with numbered citations that are checked.

The chat model gets the best passages (``search``), numbered [1]..[n] with where each comes
from, and is asked to cite them by number. Its answer streams through ``CitationFilter``, which
holds back a bracket until it closes and drops any number that is not one of the passages given:
a citation the reader sees always points at a passage they can open. When no passage is
relevant (``search.RELEVANT_COSINE``), the model is told that the documents do not cover the
question, and the result says so (``relevant`` False), so the app and the CLI can show it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from engine.callbacks import OnText, ShouldStop, never_stop
from engine.conversation import answer_reserve
from engine.generation import GenerationConfig, TextChunk, generate, prompt_ids
from engine.model import Model
from engine.retrieval.collection import Collection
from engine.retrieval.embedder import Embedder
from engine.retrieval.search import Hit, search

INSTRUCTIONS = (
    "Answer the question using only the numbered passages from the user's documents. After "
    "each sentence, cite the passages it comes from by number in square brackets, like [1] or "
    "[2][3]. If the passages do not contain the answer, say that the documents do not say.")
NOTHING_FOUND = ("No passage of the user's documents is relevant to this question. Say that "
                 "the documents do not cover it; answer from general knowledge only if asked.")
_NUMBER = re.compile(r"\d+")
_MAX_BRACKET = 16  # "[12, 13, 14]": longer is not a citation


@dataclass
class GroundedAnswer:
    """An answer with the passages it was given and the citations it made."""

    text: str
    hits: list[Hit]  # the passages given, [1] first
    relevant: bool  # False: nothing relevant was found and the model was told so
    cited: list[int] = field(default_factory=list)  # passage numbers cited, in order
    dropped: list[str] = field(default_factory=list)  # citations removed: no such passage
    finish_reason: str = "stop"
    stats: dict[str, Any] = field(default_factory=dict)  # the generation's (tokens/s, ...)

    def sources(self) -> list[dict[str, Any]]:
        """The passages given, as plain data for JSON and the app: number, where, path, pages,
        heading, cosine, whether the answer cites it, and the text."""
        return [{"number": n, "where": hit.passage.where(), "path": hit.passage.path,
                 "page_start": hit.passage.page_start, "page_end": hit.passage.page_end,
                 "heading": hit.passage.heading, "cosine": round(hit.cosine, 4),
                 "cited": n in self.cited, "text": hit.passage.text}
                for n, hit in enumerate(self.hits, 1)]


class CitationFilter:
    """Streams text, checking every ``[n]`` against the passages given (module docstring)."""

    def __init__(self, passages: int) -> None:
        self.passages = passages
        self.cited: list[int] = []
        self.dropped: list[str] = []
        self._pending = ""

    def feed(self, text: str) -> str:
        """The part of ``text`` that can be shown now."""
        out: list[str] = []
        for char in text:
            if not self._pending:
                if char == "[":
                    self._pending = char
                else:
                    out.append(char)
                continue
            self._pending += char
            if char == "]":
                out.append(self._close())
            elif not (char.isdigit() or char in ", ") or len(self._pending) > _MAX_BRACKET:
                out.append(self._pending)  # not a citation after all
                self._pending = ""
        return "".join(out)

    def flush(self) -> str:
        """What is still held back, at the end of the answer."""
        rest, self._pending = self._pending, ""
        return rest

    def _close(self) -> str:
        bracket, self._pending = self._pending, ""
        numbers = [int(n) for n in _NUMBER.findall(bracket)]
        if not numbers:
            return bracket  # "[]", "[ ]": not a citation
        valid = [n for n in numbers if 1 <= n <= self.passages]
        if len(valid) < len(numbers):
            self.dropped.append(bracket)
        self.cited += [n for n in valid if n not in self.cited]
        return "".join(f"[{n}]" for n in valid)


def passages_prompt(question: str, hits: list[Hit]) -> list[dict[str, str]]:
    """The chat messages for a question and its passages (none: the model is told so)."""
    relevant = [hit for hit in hits if hit.relevant]
    if not relevant:
        return [{"role": "system", "content": INSTRUCTIONS},
                {"role": "user", "content": f"{NOTHING_FOUND}\n\nQuestion: {question}"}]
    numbered = "\n\n".join(f"[{n}] ({hit.passage.where()})\n{hit.passage.text}"
                           for n, hit in enumerate(relevant, 1))
    return [{"role": "system", "content": INSTRUCTIONS},
            {"role": "user", "content": f"Passages:\n\n{numbered}\n\nQuestion: {question}"}]


def fit_passages(model: Model, question: str, hits: list[Hit], max_tokens: int) -> list[Hit]:
    """The relevant hits that fit the model's context with ``max_tokens`` left for the answer
    (the weakest left out first)."""
    relevant = [hit for hit in hits if hit.relevant]
    reserve = answer_reserve(model.manifest.context_length, max_tokens)
    while relevant and len(prompt_ids(model, passages_prompt(question, relevant))) + reserve \
            >= model.manifest.context_length:
        relevant = relevant[:-1]
    return relevant


GenerateFunction = Callable[[Model, Any, GenerationConfig, ShouldStop], Iterable[TextChunk]]


def stream_answer(model: Model, question: str, answer: GroundedAnswer, config: GenerationConfig,
                  should_stop: ShouldStop = never_stop,
                  generate_fn: GenerateFunction = generate) -> Iterator[str]:
    """Yields the text to show as the model writes, filling ``answer`` (made with the hits to
    give, ``fit_passages`` first); once the iterator ends, ``answer`` is final."""
    citations = CitationFilter(len(answer.hits))
    for chunk in generate_fn(model, passages_prompt(question, answer.hits), config, should_stop):
        shown = citations.feed(chunk.text)
        answer.text += shown
        answer.finish_reason = chunk.finish_reason or answer.finish_reason
        if chunk.stats is not None:
            answer.stats = asdict(chunk.stats)
        if shown:
            yield shown
    rest = citations.flush()
    answer.text += rest
    answer.cited, answer.dropped = citations.cited, citations.dropped
    if rest:
        yield rest


def new_answer(hits: list[Hit]) -> GroundedAnswer:
    """An empty answer that will be given ``hits`` (none: nothing relevant was found)."""
    return GroundedAnswer("", hits, relevant=bool(hits))


def answer_question(model: Model, collection: Collection, embedder: Embedder, question: str,
                    config: GenerationConfig, k: int = 5, should_stop: ShouldStop = never_stop,
                    on_text: OnText | None = None) -> GroundedAnswer:
    """Searches, asks, checks: the whole answer (``on_text`` receives it as it streams)."""
    hits = fit_passages(model, question, search(collection, embedder, question, k),
                        config.max_new_tokens)
    answer = new_answer(hits)
    for shown in stream_answer(model, question, answer, config, should_stop):
        if on_text is not None:
            on_text(shown)
    return answer
