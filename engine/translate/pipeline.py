"""The translation pipeline: a document's units of text in, translated units and a report out.

A unit is one paragraph, heading, list item, table cell or HTML/DOCX block, as a list of text and
protected tokens (see ``protect``). For each unit:

1. URLs, code and the like are protected (the format's rules), glossary terms too for translators
   that cannot take instructions; a unit without letters is left alone.
2. It is cut into segments (``segments``); each segment's language is detected when it is long
   enough, so a sentence already in the target language passes through unchanged and an instruct
   model is told the right source language for each sentence of a mixed paragraph.
3. Distinct segments are translated in batches (cancellation checked and progress reported
   between batches); answers are cleaned of chatter.
4. An empty or untranslated answer is asked again once with a stricter prompt (instruct models),
   then flagged; a flagged empty segment keeps its source text, so nothing is ever dropped. An
   answer that lost or reordered placeholders is translated again without them and the protected
   parts are put at its end (flagged too).
5. Glossary terms are checked in every segment; misses are reported.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from engine.errors import InferenceError, OperationCancelledError
from engine.translate.answers import clean_answer, problem, segment_language
from engine.translate.glossary import Glossary, Term
from engine.translate.languages import same_language
from engine.translate.protect import (
    Parts,
    Rule,
    Token,
    append_tokens,
    apply_rules,
    bracket_rule,
    intact,
    mark,
    merge_text,
    plain_text,
    relabel,
    restore,
    text_only,
    without_tokens,
)
from engine.translate.report import Flag, GlossaryMiss, Outcome
from engine.translate.rules import special_token_rule
from engine.translate.segments import joiner, segment
from engine.translate.translators import InstructionFollowing, ShouldStop, Translator

Progress = Callable[[str, int, int], None]


@dataclass
class _Segment:
    text: str  # marked with its own placeholders ⟦1⟧..⟦k⟧
    tokens: list[Token]
    glue: str | None
    language: str  # translate from this language; "" = pass through unchanged
    terms: tuple[Term, ...] = ()
    number: int = 0
    result: Parts = field(default_factory=list)

    @property
    def words(self) -> str:
        """Its translatable text: placeholders out, glossary terms in."""
        return text_only(self.original())

    def original(self) -> Parts:
        """The segment as it was (glossary terms as written in the source)."""
        return restore(self.text, [_as_term(t) for t in self.tokens])

    @property
    def key(self) -> tuple[str, str, tuple[Term, ...]]:
        return self.text, self.language, self.terms


def _as_term(token: Token) -> Token:
    return Token(token.term, "text") if token.role == "text" else token


class Pipeline:
    """One translation run: settings shared by all units of one document.

    Args:
        translator: does the translating.
        source: the resolved source language (not ``auto``).
        target: the target language.
        rules: the format's protection rules (URLs, code, markup).
        glossary: required translations of terms, or None.
        should_stop: checked between batches and passed to the translator.
        progress: called with (stage, done, total) as segments are translated.
    """

    def __init__(self, translator: Translator, source: str, target: str, *,
                 rules: Sequence[Rule] = (), glossary: Glossary | None = None,
                 should_stop: ShouldStop | None = None, progress: Progress | None = None) -> None:
        self.translator = translator
        self.source, self.target = source, target
        self.glossary = glossary if glossary is not None and len(glossary) else None
        self.prompted = isinstance(translator, InstructionFollowing)
        self.rules: list[Rule] = [bracket_rule(), special_token_rule(), *rules]
        if self.glossary is not None and not self.prompted:
            self.rules.append(self.glossary.rule())
        self.should_stop = should_stop or (lambda: False)
        self.progress = progress or (lambda _stage, _done, _total: None)
        self.flagged: list[Flag] = []
        self.misses: list[GlossaryMiss] = []
        self._problems: dict[tuple[int, str], str | None] = {}

    def run(self, units: Sequence[Parts]) -> Outcome:
        """Translates every unit; the result has one entry per unit, in order."""
        prepared = [self._prepare(parts) for parts in units]
        jobs = [s for p in prepared if p is not None for s in p[1] if s.language]
        for number, job in enumerate(jobs, start=1):
            job.number = number
        self._translate(jobs)
        for job in jobs:
            self._check_glossary(job)
        results: list[Parts | None] = []
        for item in prepared:
            if item is None or not any(s.language for s in item[1]):
                results.append(None)
                continue
            lead, pieces, trail = item
            joined: Parts = [lead]
            for index, piece in enumerate(pieces):
                if index:
                    joined.append(joiner(_last_char(joined), _first_char(piece.result),
                                         piece.glue))
                joined.extend(piece.result)
            joined.append(trail)
            results.append(merge_text(joined))
        return Outcome(results, len(jobs), self.flagged, self.misses)

    def _prepare(self, parts: Parts) -> tuple[str, list[_Segment], str] | None:
        parts = apply_rules(merge_text(parts), self.rules)  # a URL may span two text nodes
        if not any(c.isalpha() for c in text_only(parts)):
            return None
        lead = trail = ""
        if parts and isinstance(parts[0], str):
            lead = parts[0][:len(parts[0]) - len(parts[0].lstrip())]
            parts[0] = parts[0].lstrip()
        if parts and isinstance(parts[-1], str):
            trail = parts[-1][len(parts[-1].rstrip()):]
            parts[-1] = parts[-1].rstrip()
        marked, tokens = mark(parts)
        count, limit = self.translator.count_tokens, self.translator.max_segment_tokens
        pieces: list[_Segment] = []
        found = self.source
        for piece in segment(marked, count, limit):
            text, local = relabel(piece.text, tokens)
            item = _Segment(text, local, piece.glue, self.source)
            words = item.words
            item.result = item.original()
            if not any(c.isalpha() for c in words):
                item.language = ""
            else:
                if piece.glue is None or not pieces:  # a cut sentence keeps its language
                    found = segment_language(words, self.source)
                if same_language(found, self.target) and not same_language(found, self.source):
                    item.language = ""  # already in the target language: keep it
                elif self.prompted:
                    item.language = found
                if self.glossary is not None and self.prompted:
                    item.terms = tuple(self.glossary.find(words))
            pieces.append(item)
        return lead, pieces, trail

    def _call(self, jobs: Sequence[_Segment], texts: list[str], strict: bool) -> list[str]:
        if self.should_stop():
            raise OperationCancelledError("translation was cancelled")
        language = jobs[0].language
        if isinstance(self.translator, InstructionFollowing):
            answers = self.translator.translate_with(
                texts, language, self.target, self.should_stop,
                terms=[j.terms for j in jobs], strict=strict)
        else:
            answers = self.translator.translate(texts, language, self.target, self.should_stop)
        if len(answers) != len(texts):
            raise InferenceError(f"{self.translator.name} returned {len(answers)} translations "
                                 f"for {len(texts)} segments")
        return [clean_answer(a if isinstance(a, str) else "", t)
                for a, t in zip(answers, texts, strict=True)]

    def _batches(self, jobs: list[_Segment], stage: str,
                 text_of: Callable[[_Segment], str], strict: bool = False) -> list[str]:
        """Answers for ``jobs`` in order, batched by language, with progress."""
        answers: dict[int, str] = {}
        by_language: dict[str, list[int]] = {}
        for index, job in enumerate(jobs):
            by_language.setdefault(job.language, []).append(index)
        size = max(1, int(getattr(self.translator, "batch_size", 1)))
        done = 0
        self.progress(stage, 0, len(jobs))
        for indexes in by_language.values():
            for start in range(0, len(indexes), size):
                batch = indexes[start:start + size]
                got = self._call([jobs[i] for i in batch], [text_of(jobs[i]) for i in batch],
                                 strict)
                answers.update(zip(batch, got, strict=True))
                done += len(batch)
                self.progress(stage, done, len(jobs))
        return [answers[i] for i in range(len(jobs))]

    def _translate(self, jobs: list[_Segment]) -> None:
        unique: dict[tuple[str, str, tuple[Term, ...]], list[_Segment]] = {}
        for job in jobs:
            unique.setdefault(job.key, []).append(job)
        first = [same[0] for same in unique.values()]
        answers = self._batches(first, "translating", lambda j: j.text)
        if self.prompted:
            retry = [i for i, job in enumerate(first) if self._problem(job, answers[i])]
            if retry:
                again = self._batches([first[i] for i in retry], "retrying",
                                      lambda j: j.text, strict=True)
                for i, answer in zip(retry, again, strict=True):
                    answers[i] = answer
        moved = [i for i, job in enumerate(first)
                 if not self._problem(job, answers[i]) and not intact(answers[i], job.tokens)]
        fallback: dict[int, str] = {}
        if moved:
            texts = self._batches([first[i] for i in moved], "placing protected text",
                                  lambda j: without_tokens(j.text, j.tokens))
            fallback = dict(zip(moved, texts, strict=True))
        for i, job in enumerate(first):
            result, reason = self._settle(job, answers[i], fallback.get(i))
            for same in unique[job.key]:
                same.result = list(result)
                if reason:
                    self.flagged.append(Flag(same.number, reason, plain_text(job.original()),
                                             plain_text(result)))

    def _problem(self, job: _Segment, answer: str) -> str | None:
        key = (id(job), answer)
        if key not in self._problems:  # asked up to three times per answer; detection is slow
            words = text_only(restore(answer, [_as_term(t) for t in job.tokens]))
            self._problems[key] = problem(job.words, words, job.language, self.target)
        return self._problems[key]

    def _settle(self, job: _Segment, answer: str,
                fallback: str | None) -> tuple[Parts, str | None]:
        """The segment's final parts and why it is flagged (None when it is fine)."""
        source = job.original()
        reason = self._problem(job, answer)
        if reason == "empty":
            return source, reason
        if reason is not None:
            return (restore(answer, job.tokens) if intact(answer, job.tokens) else source), reason
        if fallback is None:
            return restore(answer, job.tokens), None
        if problem(without_tokens(job.text, job.tokens), fallback, job.language, self.target) \
                == "empty":
            return source, "empty"
        return append_tokens(fallback, job.tokens), "placeholders"

    def _check_glossary(self, job: _Segment) -> None:
        if self.glossary is None:
            return
        got = plain_text(job.result)
        for term in self.glossary.misses(job.words, got):
            self.misses.append(GlossaryMiss(job.number, term.source, term.target, got))


def _last_char(parts: Parts) -> str:
    for part in reversed(parts):
        if isinstance(part, str):
            if part:
                return part[-1]
        else:
            return ""
    return ""


def _first_char(parts: Parts) -> str:
    for part in parts:
        if isinstance(part, str):
            if part:
                return part[0]
        else:
            return ""
    return ""
