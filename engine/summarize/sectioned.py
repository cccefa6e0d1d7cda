"""Grounded model summaries: section by section, each sentence checked against its source.

1. Map: the document is cut along its outline (``sections``); each section is summarized on its
   own, several side by side in one batch (``Summarizer.ask_many``), in waves of ``WAVE``
   sections so each wave's results can be shown while the next is decoded. A section longer
   than one input is read through its most central sentences that fit (``auto``: every section
   covered, in bounded time), or part by part with the parts' notes combined (``abstractive``).
2. Check: every sentence of a section's summary is checked against the whole section's text
   (``grounding``); a sentence naming something the section lacks is regenerated once, continuing
   the summary's supported sentences with those terms banned, and if still unsupported, replaced
   by the section's sentence that matches it best.
3. Reduce: the section summaries are combined into the overall summary, which is checked the same
   way against the whole document (a replacement comes from the checked section summaries).

A text that fits one input is summarized in one pass and checked the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from engine.documents.model import Document
from engine.errors import OperationCancelledError
from engine.summarize.abstractive import MAX_SENTENCES, Ask, Summarizer
from engine.summarize.extractive import document_sentences, select_to_fit
from engine.summarize.grounding import (
    SentenceCheck,
    SourceIndex,
    best_source_sentence,
    check_text,
    relevant_sentences,
    unsupported_terms,
)
from engine.summarize.parts import split_parts
from engine.summarize.sections import Section, split_sections
from engine.text.sentences import join_sentences, split_sentences

WAVE = 8  # sections per batch (engine.batch's default slots): results show up wave by wave
SECTION_HOW = {"short": "in one sentence", "medium": "in one or two sentences",
               "long": "in three or four sentences"}
SECTION_SENTENCES = {"short": 1, "medium": 2, "long": 4}
RETRY_SENTENCES = 12  # source sentences a flagged sentence is regenerated from (~300 tokens)
STRICT = " Use only names, numbers and terms that appear in the text."
OPENING = "Opening"  # what the text before a document's first heading is called
LISTING = "(contents or index, not summarized)"


@dataclass
class Grounding:
    """How a summary's sentences fared against their source."""

    checked: int = 0  # sentences checked
    regenerated: int = 0  # of those, with facts the source lacks: written again once
    replaced: int = 0  # of those, still unsupported: replaced by a source sentence
    unsupported: list[str] = field(default_factory=list)  # the terms that were caught

    def add(self, other: Grounding) -> None:
        self.checked += other.checked
        self.regenerated += other.regenerated
        self.replaced += other.replaced
        self.unsupported += [t for t in other.unsupported if t not in self.unsupported]


@dataclass
class SectionSummary:
    """One section's checked summary, and where the section is."""

    title: str
    level: int
    pages: tuple[int, int] | None
    where: str  # "p. 4", "pp. 5-7" or ""
    summary: str
    grounding: Grounding
    text: str = field(default="", repr=False)  # the section's own text (the app shows it)
    listing: bool = False  # contents or an index: not summarized


OnSection = Callable[[SectionSummary], None]


@dataclass(frozen=True)
class _Draft:
    """A model answer to check: the ask that produced it, its source and replacements."""

    answer: str
    ask: Ask
    source: SourceIndex
    candidates: list[str]  # sentences a replacement may be taken from


def ground(summarizer: Summarizer, drafts: list[_Draft],
           enabled: bool = True) -> list[tuple[str, Grounding]]:
    """Each draft checked, its unsupported sentences regenerated (all in one batch) and, where
    still unsupported, replaced; returns the final texts with their counts. ``enabled`` False
    leaves the drafts as they are (nothing checked)."""
    if not enabled:
        return [(draft.answer, Grounding()) for draft in drafts]
    checks = [check_text(draft.answer, draft.source, summarizer.is_rare) for draft in drafts]
    retries: list[tuple[int, int]] = []
    asks: list[Ask] = []
    for number, (draft, sentences) in enumerate(zip(drafts, checks, strict=True)):
        for position, check in enumerate(sentences):
            if check.supported:
                continue
            before = [c.text for c in sentences[:position] if c.supported]
            retries.append((number, position))
            # Read again: the source's sentences closest to the flagged one (a section would
            # cost a whole prefill per sentence), or the whole input if it is short.
            near = relevant_sentences(check.text, draft.candidates, RETRY_SENTENCES)
            source = draft.ask.text if len(near) < RETRY_SENTENCES else join_sentences(near)
            asks.append(Ask(draft.ask.instruction + STRICT, source, 1, join_sentences(before),
                            check.unsupported))
    answers = summarizer.ask_many(asks, "checking") if asks else []
    # (the sentence to use, or None to drop it; whether it was replaced by a source sentence)
    fixed: dict[tuple[int, int], tuple[str | None, bool]] = {}
    used: list[set[str]] = [set() for _ in drafts]
    for (number, position), answer in zip(retries, answers, strict=True):
        draft, original = drafts[number], checks[number][position]
        again = split_sentences(answer)[:1]
        if again and not unsupported_terms(again[0], draft.source, summarizer.is_rare):
            fixed[(number, position)] = again[0], False
            continue
        replacement = best_source_sentence(original.text, draft.candidates, used[number])
        if replacement is not None:
            used[number].add(replacement)
        fixed[(number, position)] = replacement, True
    results = []
    for number, sentences in enumerate(checks):
        counts = Grounding(checked=len(sentences))
        final: list[str] = []
        for position, check in enumerate(sentences):
            if check.supported:
                final.append(check.text)
                continue
            counts.regenerated += 1
            counts.unsupported += [t for t in check.unsupported if t not in counts.unsupported]
            sentence, replaced = fixed[(number, position)]
            counts.replaced += replaced
            if sentence is not None and sentence not in final:
                final.append(sentence)
        if not final and drafts[number].candidates:
            # Nothing left (an empty answer, or flagged sentences no source sentence matches,
            # such as a broken model's noise): the source's opening sentence stands in, so a
            # summary is never empty. An empty answer counts as one sentence, replaced.
            final.append(_lead(drafts[number].candidates))
            if not sentences:
                counts.checked = counts.replaced = 1
        results.append((join_sentences(final), counts))
    return results


def _lead(candidates: list[str]) -> str:
    """The first candidate that reads as a sentence (three words or more), else the first."""
    return next((c for c in candidates if len(c.split()) >= 3), candidates[0])


def _section_source(section: Section) -> tuple[SourceIndex, list[str]]:
    blocks = Document("section", "text", section.blocks)
    return SourceIndex.of(section.text), [s.text for s in document_sentences(blocks)]


class SectionedSummary:
    """One grounded summary of one document (see the module docstring)."""

    def __init__(self, summarizer: Summarizer, every_part: bool,
                 on_section: OnSection | None = None, check: bool = True) -> None:
        self.summarizer = summarizer
        self.check = check
        self.every_part = every_part
        self.on_section = on_section
        self.inputs = 0  # model inputs read in the map step
        self.grounding = Grounding()
        self.sections: list[SectionSummary] = []

    def single(self, document: Document) -> str:
        """A document that fits one input: one streamed pass, then checked."""
        summarizer = self.summarizer
        self.inputs = 1
        text = document.text()
        answer = summarizer.single(text)
        source = SourceIndex.of(text)
        candidates = [s.text for s in document_sentences(document)] or split_sentences(text)
        ask = Ask(summarizer.instruction("the following text"), text,
                  MAX_SENTENCES[summarizer.length])
        [(final, counts)] = ground(summarizer, [_Draft(answer, ask, source, candidates)],
                                  self.check)
        self.grounding.add(counts)
        return final

    def document(self, document: Document) -> str:
        """The whole document, section by section, then the overall summary (Markdown)."""
        summarizer = self.summarizer
        sections = split_sections(document, summarizer.count, summarizer.budget)
        total = len(sections)
        inputs = []
        for section in sections:  # choosing a long section's sentences takes a moment
            self._check_stop()
            inputs.append(self._inputs(section))
        self.inputs = sum(len(texts) for texts in inputs)
        for start in range(0, total, WAVE):
            self._check_stop()
            summarizer.progress("sections", start, total)
            self.sections += self._wave(sections[start:start + WAVE],
                                        inputs[start:start + WAVE],
                                        sum(len(texts) for texts in inputs[:start]))
        summarizer.progress("sections", total, total)
        self._check_stop()
        notes = [f"{s.title}: {s.summary}" if s.level else s.summary
                 for s in self.sections if s.summary]
        overall = self._overall(document, notes)
        return render(overall, self.sections, summarizer.length)

    def _check_stop(self) -> None:
        if self.summarizer.should_stop():
            raise OperationCancelledError("the summary was cancelled")

    def _inputs(self, section: Section) -> list[str]:
        """What the model reads of a section: nothing for contents and indexes, else its text,
        or what of it fits (see the module docstring)."""
        summarizer = self.summarizer
        if section.is_listing():
            return []
        text = section.body()
        if summarizer.fits(text):
            return [text]
        document = Document("section", "text", section.blocks)
        if self.every_part:
            return [part.text for part in split_parts(document, summarizer.count,
                                                      summarizer.budget)]
        return [select_to_fit(document, summarizer.count, summarizer.budget,
                              summarizer.should_stop) or text[:2000]]

    def _section_ask(self, section: Section, text: str, what: str = "this section") -> Ask:
        summarizer = self.summarizer
        where = f" (section: {section.title})" if section.level else ""
        return Ask(summarizer.instruction(f"{what} of a longer document{where}",
                                          SECTION_HOW[summarizer.length]),
                   text, SECTION_SENTENCES[summarizer.length])

    def _wave(self, wave: list[Section], inputs: list[list[str]],
              done_before: int) -> list[SectionSummary]:
        """One batch of sections: their inputs summarized, combined where a section had
        several, checked; each announced as it is done. ``done_before``: inputs summarized in
        the waves before (progress counts on)."""
        summarizer = self.summarizer
        asks = [self._section_ask(section, text)
                for section, texts in zip(wave, inputs, strict=True) for text in texts]
        answers = iter(summarizer.ask_many(asks, "summarizing", done_before, self.inputs))
        notes = [[next(answers) for _ in texts] for texts in inputs]
        # A section read in several parts: its parts' notes combined into one (one batch).
        combined = [index for index, parts in enumerate(notes) if len(parts) > 1]
        merged = summarizer.ask_many([self._section_ask(wave[i], "\n\n".join(notes[i]),
                                                        "these notes on one section")
                                      for i in combined], "combining sections")
        drafts: dict[int, _Draft] = {}
        first_ask = 0
        for index, section in enumerate(wave):
            if inputs[index]:
                answer = merged[combined.index(index)] if index in combined \
                    else notes[index][0]
                source, candidates = _section_source(section)
                drafts[index] = _Draft(answer, asks[first_ask], source, candidates)
            first_ask += len(inputs[index])
        checked = dict(zip(drafts, ground(summarizer, list(drafts.values()), self.check),
                           strict=True))
        done = []
        for index, section in enumerate(wave):
            summary, counts = checked.get(index, ("", Grounding()))
            self.grounding.add(counts)
            result = SectionSummary(section.title or OPENING, section.level, section.pages,
                                    section.where(), summary, counts, section.text,
                                    listing=not inputs[index])
            done.append(result)
            if self.on_section is not None:
                self.on_section(result)
            if summarizer.on_text is not None:
                summarizer.on_text(section_line(result, summarizer.length) + "\n")
        return done

    def _overall(self, document: Document, notes: list[str]) -> str:
        summarizer = self.summarizer
        if not notes:
            return ""
        ask = summarizer.reduce_ask(notes)
        summarizer.progress("combining", 0, 1)
        answer = summarizer.ask_many([ask], "combining")[0]
        candidates = [sentence for s in self.sections for sentence in split_sentences(s.summary)]
        [(final, counts)] = ground(summarizer, [_Draft(answer, ask,
                                                       SourceIndex.of(document.text()),
                                                       candidates)], self.check)
        summarizer.progress("combining", 1, 1)
        self.grounding.add(counts)
        return final


def section_line(section: SectionSummary, length: str) -> str:
    """One section's entry in the Markdown summary: a list line, or (long) a titled paragraph."""
    where = f" ({section.where})" if section.where else ""
    summary = LISTING if section.listing else section.summary
    if length == "long":
        return f"### {section.title}{where}\n\n{summary}\n"
    return f"- **{section.title}**{where}: {summary}"


def render(overall: str, sections: list[SectionSummary], length: str) -> str:
    """The overall summary, then (medium, long) one entry per section."""
    if length == "short" or not sections:
        return overall
    entries = "\n".join(section_line(s, length) for s in sections if s.summary or s.listing)
    return f"{overall}\n\n## Sections\n\n{entries}".strip()


__all__ = ["Grounding", "SectionSummary", "SectionedSummary", "SentenceCheck", "ground"]
