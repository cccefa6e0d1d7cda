"""The translation pipeline: a document's units of text in, translated units and a report out.

A unit is one paragraph, heading, list item, table cell or HTML/DOCX block, as a list of text and
protected tokens (see ``protect``). For each unit:

1. URLs, code and the like are protected (the format's rules), glossary terms too for translators
   that cannot take instructions; a unit without letters is left alone.
2. It is cut into segments (``segments``); each segment's language is detected when it is long
   enough, so a sentence already in the target language passes through unchanged and an instruct
   model is told the right source language for each sentence of a mixed paragraph.
3. Units are translated in consecutive groups of a few batches' worth of segments, so finished
   units can be shown while the rest is translated (``on_units``); the grouping is the same
   with and without a listener, so the output is too. In each group the segments not seen
   before in the document are translated in batches by language (cancellation checked and
   progress reported between batches); a repeated segment reuses the earlier answer, restored
   with its own protected parts. Answers are cleaned of chatter.
4. Every answer is checked before it goes into the document: not empty, not still the source
   language (``answers.problem``), no placeholder brackets or invented markers left, no label or
   prompt echo, the target's script and language, a sane length (``integrity.check``), and its
   placeholders back exactly once, well nested, spans still holding words (``protect.intact``,
   ``filled``). A failing answer is asked again once with a stricter prompt (instruct models);
   if it still fails, the segment keeps its SOURCE text, unchanged, and is flagged with the
   check's name, so nothing is dropped and no broken answer reaches the document. The one
   exception: a segment whose protected parts are all atoms (code, URLs, pictures), whose
   answer only lost its placeholders, is translated again without them and the atoms are put
   at its end (flagged ``placeholders``); spans (links, bold runs) are never emptied that way.
   As a last safety net no segment's text ever carries a placeholder bracket.
5. Glossary terms are checked in every segment; misses are reported.
6. Each segment gets a record: translated / retried / kept in the source, the failed checks,
   and a confidence (``integrity.confidence``); with ``round_trip`` each accepted translation
   is translated back and its chrF against the source (``chrf``) is part of the confidence.

Progress is one bar for the whole run: ``(stage, done, total)`` with ``total`` first the number
of distinct segments, growing when retries, placeholder fallbacks or round trips turn out to be
needed, and ``done`` the translation requests finished; neither ever goes down. The stage says
what the current request is: ``translating``, ``retrying``, ``placing protected text`` or
``translating back`` (the round trip).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from engine.callbacks import Progress, ShouldStop
from engine.errors import ConfigError, InferenceError, OperationCancelledError
from engine.translate.answers import clean_answer, problem, segment_language
from engine.translate.chrf import chrf
from engine.translate.glossary import Glossary, Term
from engine.translate.integrity import Verdict, check, confidence
from engine.translate.languages import same_language
from engine.translate.protect import (
    Parts,
    Rule,
    Token,
    append_tokens,
    apply_rules,
    bracket_rule,
    filled,
    intact,
    mark,
    merge_text,
    plain_text,
    relabel,
    restore,
    text_only,
    without_tokens,
)
from engine.translate.report import (
    KEPT_SOURCE,
    RETRIED,
    TRANSLATED,
    Flag,
    GlossaryMiss,
    Outcome,
    SegmentRecord,
)
from engine.translate.rules import special_token_rule
from engine.translate.segments import joiner, segment
from engine.translate.translators import InstructionFollowing, PairChecking, Translator

# Called after each group with how many leading units are final, and every unit's result so
# far (entries from that count on are not final yet).
UnitsDone = Callable[[int, Sequence[Parts | None]], None]
GROUP_BATCHES = 2  # a group holds up to this many batches' worth of segments
# The stages progress reports. The last three go over answers again (a stricter prompt, the
# protected parts put back, the round trip): a UI says "checking", not "part n of m".
TRANSLATING, RETRYING, PLACING = "translating", "retrying", "placing protected text"
ROUND_TRIP = "translating back"
SECOND_PASS_STAGES = (RETRYING, PLACING, ROUND_TRIP)
_BRACKETS = ("⟦", "⟧")
Key = tuple[str, str, tuple[Term, ...]]


@dataclass
class _Segment:
    text: str  # marked with its own placeholders ⟦1⟧..⟦k⟧
    tokens: list[Token]
    glue: str | None
    language: str  # translate from this language; "" = pass through unchanged
    terms: tuple[Term, ...] = ()
    number: int = 0
    result: Parts = field(default_factory=list)
    status: str = TRANSLATED
    reasons: list[str] = field(default_factory=list)  # checks failed on the way
    verdict: Verdict = field(default_factory=lambda: Verdict(None))  # on the accepted answer
    moved: bool = False  # protected parts put at the end
    missed: bool = False  # a glossary term not used
    round_trip: float | None = None

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


_Prepared = tuple[str, list[_Segment], str]  # a unit's leading space, segments, trailing space


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
        progress: called with (stage, done, total) as segments are translated (see the module
            docstring: one running count that never goes down).
        round_trip: translate every accepted answer back and score it against the source
            (twice the requests; part of each segment's confidence).

    Raises:
        ConfigError: ``round_trip`` with a model that cannot translate target -> source.
    """

    def __init__(self, translator: Translator, source: str, target: str, *,
                 rules: Sequence[Rule] = (), glossary: Glossary | None = None,
                 should_stop: ShouldStop | None = None, progress: Progress | None = None,
                 round_trip: bool = False) -> None:
        if round_trip and isinstance(translator, PairChecking):
            try:
                translator.check_pair(target, source)
            except ConfigError:
                raise ConfigError(f"{translator.name} cannot translate {target}->{source}, so "
                                  "it cannot translate back for the round-trip check",
                                  hint="leave out --round-trip or choose a model for both "
                                       "directions",
                                  app_hint="turn the round-trip check off") from None
        self.round_trip = round_trip
        self.translator = translator
        self.source, self.target = source, target
        self.glossary = glossary if glossary is not None and len(glossary) else None
        self.prompted = isinstance(translator, InstructionFollowing)
        self.rules: list[Rule] = [bracket_rule(), special_token_rule(), *rules]
        if self.glossary is not None and not self.prompted:
            self.rules.append(self.glossary.rule())
        self.should_stop = should_stop or (lambda: False)
        self.progress = progress or (lambda _stage, _done, _total: None)
        self.batch_size = max(1, int(getattr(translator, "batch_size", 1)))
        self.flagged: list[Flag] = []
        self.misses: list[GlossaryMiss] = []
        self.records: list[SegmentRecord] = []
        self._verdicts: dict[tuple[str, str, str], Verdict] = {}
        self._answers: dict[Key, str] = {}  # every distinct segment's final answer
        self._first: dict[Key, str] = {}  # why the first answer was refused (asked again)
        self._fallbacks: dict[Key, str] = {}  # translations made without placeholders
        # Round trips' chrF by translation, source words and language.
        self._backs: dict[tuple[str, str, str], float] = {}
        self._done = self._total = 0

    def run(self, units: Sequence[Parts], on_units: UnitsDone | None = None) -> Outcome:
        """Translates every unit; the result has one entry per unit, in order.

        Args:
            units: the format's units.
            on_units: called after each group of units is finished (see ``UnitsDone``).
        """
        prepared = [self._prepare(parts) for parts in units]
        jobs = [s for p in prepared if p is not None for s in p[1] if s.language]
        for number, job in enumerate(jobs, start=1):
            job.number = number
        self._total = len({job.key for job in jobs})  # known before the first request
        self.progress(TRANSLATING, 0, self._total)
        results: list[Parts | None] = [None] * len(prepared)
        start = 0
        while start < len(prepared):
            stop = self._group_end(prepared, start)
            group = [s for p in prepared[start:stop] if p is not None for s in p[1]
                     if s.language]
            self._translate(group)
            for job in group:
                self._check_glossary(job)
            if self.round_trip:
                self._round_trip(group)
            self.records.extend(self._record(job) for job in group)
            for index in range(start, stop):
                results[index] = _joined(prepared[index])
            if on_units is not None:
                on_units(stop, results)
            start = stop
        return Outcome(results, len(jobs), self.flagged, self.misses, self.records)

    def _group_end(self, prepared: Sequence[_Prepared | None], start: int) -> int:
        """Where the group starting at ``start`` ends: units are added while their segments
        fit ``GROUP_BATCHES`` batches (a bigger unit is a group of its own); units without
        anything to translate always join. Repeated segments count too, although they cost
        no request, so a document of repeats still streams unit by unit."""
        limit = GROUP_BATCHES * self.batch_size
        count = 0
        stop = start
        while stop < len(prepared):
            item = prepared[stop]
            size = sum(1 for s in item[1] if s.language) if item is not None else 0
            if size and count and count + size > limit:
                break
            count += size
            stop += 1
        return stop

    def _prepare(self, parts: Parts) -> _Prepared | None:
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

    def _call(self, jobs: Sequence[_Segment], texts: list[str], strict: bool,
              back: bool = False) -> list[str]:
        if self.should_stop():
            raise OperationCancelledError("translation was cancelled")
        source, target = (self.target, jobs[0].language) if back \
            else (jobs[0].language, self.target)
        if isinstance(self.translator, InstructionFollowing):
            answers = self.translator.translate_with(
                texts, source, target, self.should_stop,
                terms=[() if back else j.terms for j in jobs], strict=strict)
        else:
            answers = self.translator.translate(texts, source, target, self.should_stop)
        if len(answers) != len(texts):
            raise InferenceError(f"{self.translator.name} returned {len(answers)} translations "
                                 f"for {len(texts)} segments")
        return [clean_answer(a if isinstance(a, str) else "", t)
                for a, t in zip(answers, texts, strict=True)]

    def _batches(self, jobs: list[_Segment], stage: str,
                 text_of: Callable[[_Segment], str], strict: bool = False,
                 back: bool = False) -> list[str]:
        """Answers for ``jobs`` in order, batched by language, with progress."""
        answers: dict[int, str] = {}
        by_language: dict[str, list[int]] = {}
        for index, job in enumerate(jobs):
            by_language.setdefault(job.language, []).append(index)
        for indexes in by_language.values():
            for start in range(0, len(indexes), self.batch_size):
                batch = indexes[start:start + self.batch_size]
                got = self._call([jobs[i] for i in batch], [text_of(jobs[i]) for i in batch],
                                 strict, back)
                answers.update(zip(batch, got, strict=True))
                self._done += len(batch)
                self.progress(stage, self._done, self._total)
        return [answers[i] for i in range(len(jobs))]

    def _more(self, stage: str, count: int) -> None:
        """Work found on the way (retries, fallbacks, round trips) makes the bar longer, never
        restarts it."""
        self._total += count
        self.progress(stage, self._done, self._total)

    def _translate(self, jobs: list[_Segment]) -> None:
        """Translates one group's segments and settles each with its own protected parts."""
        fresh: dict[Key, _Segment] = {}
        for job in jobs:
            if job.key not in self._answers:
                fresh.setdefault(job.key, job)
        first = list(fresh.values())
        answers = self._batches(first, TRANSLATING, lambda j: j.text)
        if self.prompted:
            refused = [(i, self._refusal(job, answers[i])) for i, job in enumerate(first)]
            retry = [i for i, why in refused if why]
            if retry:
                self._more(RETRYING, len(retry))
                again = self._batches([first[i] for i in retry], RETRYING,
                                      lambda j: j.text, strict=True)
                for i, answer in zip(retry, again, strict=True):
                    answers[i] = answer
                self._first.update((first[i].key, why) for i, why in refused if why)
        self._answers.update((job.key, answer) for job, answer in zip(first, answers,
                                                                       strict=True))
        # Whether placeholders survived depends on each segment's own tokens (a repeated
        # sentence can hold a link in one paragraph and bold text in another).
        moved: dict[Key, _Segment] = {}
        for job in jobs:
            answer = self._answers[job.key]
            if not self._problem(job, answer) and not self._fits(job, answer) \
                    and _movable(job) and _bare_key(job) not in self._fallbacks:
                moved.setdefault(_bare_key(job), job)
        if moved:
            self._more(PLACING, len(moved))
            texts = self._batches(list(moved.values()), PLACING,
                                  lambda j: without_tokens(j.text, j.tokens))
            self._fallbacks.update(zip(moved, texts, strict=True))
        for job in jobs:
            if job.key in self._first:
                job.reasons.append(self._first[job.key])
            result, reason = self._settle(job, self._answers[job.key],
                                          self._fallbacks.get(_bare_key(job)))
            job.result = result
            if reason:
                job.reasons.append(reason)
                self.flagged.append(Flag(job.number, reason, plain_text(job.original()),
                                         plain_text(result)))
            if reason and not job.moved:
                job.status = KEPT_SOURCE
            elif job.moved or job.key in self._first:
                job.status = RETRIED

    def _fits(self, job: _Segment, answer: str) -> bool:
        """The answer kept every placeholder, in a valid order, with the spans' words."""
        return intact(answer, job.tokens) and filled(answer, job.text, job.tokens)

    def _refusal(self, job: _Segment, answer: str) -> str | None:
        """Why an answer is asked again: a failed check, or its placeholders."""
        return self._problem(job, answer) or (None if self._fits(job, answer)
                                              else "placeholders")

    def _problem(self, job: _Segment, answer: str) -> str | None:
        return self._verdict(job, answer).reason

    def _verdict(self, job: _Segment, answer: str) -> Verdict:
        return self._judge(job.words, text_only(restore(answer, [_as_term(t)
                                                                 for t in job.tokens])),
                           job.language)

    def _judge(self, source_text: str, words: str, language: str) -> Verdict:
        key = (source_text, words, language)
        if key not in self._verdicts:  # asked several times per answer; detection is slow
            reason = problem(source_text, words, language, self.target)
            self._verdicts[key] = Verdict(reason) if reason is not None or not words.strip() \
                else check(source_text, words, language, self.target)
        return self._verdicts[key]

    def _settle(self, job: _Segment, answer: str,
                fallback: str | None) -> tuple[Parts, str | None]:
        """The segment's final parts and why it is flagged (None when it is fine); any
        failure but the atoms' fallback keeps the source."""
        source = job.original()
        verdict = self._verdict(job, answer)
        if verdict.reason is not None:
            return source, verdict.reason
        if self._fits(job, answer):
            result: Parts = restore(answer, job.tokens)
            reason = None
        elif fallback is None or not _movable(job):
            return source, "placeholders"
        else:
            verdict = self._judge(without_tokens(job.text, job.tokens), fallback, job.language)
            if verdict.reason is not None:
                return source, verdict.reason
            result, reason, job.moved = append_tokens(fallback, job.tokens), "placeholders", True
        if any(isinstance(p, str) and any(b in p for b in _BRACKETS) for p in result):
            job.moved = False  # the last safety net: no bracket ever reaches the document
            return source, "markers"
        job.verdict = verdict
        return result, reason

    def _check_glossary(self, job: _Segment) -> None:
        if self.glossary is None:
            return
        got = plain_text(job.result)
        for term in self.glossary.misses(job.words, got):
            job.missed = True
            self.misses.append(GlossaryMiss(job.number, term.source, term.target, got))

    def _round_trip(self, jobs: list[_Segment]) -> None:
        """Translates the group's accepted answers back and scores them against the source."""
        fresh: dict[tuple[str, str, str], _Segment] = {}
        for job in jobs:
            key = (text_only(job.result), job.words, job.language)
            if job.status != KEPT_SOURCE and key not in self._backs:
                fresh.setdefault(key, job)
        if fresh:
            self._more(ROUND_TRIP, len(fresh))
            backs = self._batches(list(fresh.values()), ROUND_TRIP,
                                  lambda j: text_only(j.result), back=True)
            for (key, job), back in zip(fresh.items(), backs, strict=True):
                self._backs[key] = round(chrf(back, job.words), 3)
        for job in jobs:
            if job.status != KEPT_SOURCE:
                job.round_trip = self._backs[(text_only(job.result), job.words, job.language)]

    def _record(self, job: _Segment) -> SegmentRecord:
        value = confidence(job.status, job.verdict, moved=job.moved, glossary_miss=job.missed,
                           round_trip=job.round_trip)
        return SegmentRecord(job.number, plain_text(job.original()), plain_text(job.result),
                             job.status, value, tuple(dict.fromkeys(job.reasons)),
                             job.round_trip)


def _movable(job: _Segment) -> bool:
    """Whether the segment's protected parts may be put at its end when placeholders fail:
    only atoms (code, URLs, pictures) can; a span (a link, a bold run) would be left empty."""
    return all(t.role in ("atom", "text") for t in job.tokens)


def _bare_key(job: _Segment) -> Key:
    """What a segment's fallback request is: its text without placeholders."""
    return without_tokens(job.text, job.tokens), job.language, job.terms


def _joined(item: _Prepared | None) -> Parts | None:
    """A prepared unit's translation: its segments' results joined (None: nothing in it was
    translated, so the format keeps the unit as it was)."""
    if item is None or not any(s.language for s in item[1]):
        return None
    lead, pieces, trail = item
    joined: Parts = [lead]
    for index, piece in enumerate(pieces):
        if index:
            joined.append(joiner(_last_char(joined), _first_char(piece.result), piece.glue))
        joined.extend(piece.result)
    joined.append(trail)
    return merge_text(joined)


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
