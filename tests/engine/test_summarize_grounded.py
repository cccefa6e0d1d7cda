"""Grounded summaries: a PDF's outline as headings, sections with page ranges, the fact check,
and the sectioned pipeline catching and replacing a planted unsupported name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import engine.summarize.abstractive as abstractive
from commands.main import main
from engine.documents import Block, Document, read_document
from engine.documents.minimal_pdf import make_pdf, placed_text
from engine.documents.pdf_outline import apply_outline
from engine.errors import OperationCancelledError
from engine.model import load_model
from engine.sampling import BannedSequences
from engine.summarize import summarize
from engine.summarize.abstractive import Ask, tidy
from engine.summarize.grounding import (
    SourceIndex,
    best_source_sentence,
    unsupported_terms,
)
from engine.summarize.sections import MAX_SECTIONS, split_sections

TOPICS = ["Lamps", "Batteries", "Switches", "Wiring"]


def _prose(topic: str, sentences: int = 8) -> str:
    return " ".join(f"The {topic.lower()} chapter explains detail {i} of {topic.lower()} "
                    f"for careful readers at home." for i in range(sentences))


def _manual_pdf(tmp_path: Path) -> Path:
    """Six pages: a contents page, then four chapters (the second two pages long), each page a
    title line over lines of prose; the outline points at each chapter's first page."""
    pages: list[str | bytes] = []
    contents = [(72, 720, f"{n} {topic} . . . . . . . . . . {n + 1}")
                for n, topic in enumerate(TOPICS, 1)]
    pages.append(placed_text(contents))
    outline = []
    for number, topic in enumerate(TOPICS, 1):
        outline.append((0, f"{number} {topic}", len(pages)))
        for page in range(2 if topic == "Batteries" else 1):
            lines = [(72, 720, f"{number} {topic}")] if page == 0 else []
            words = _prose(topic + (" more" if page else "")).split()
            lines += [(72, 690 - 14 * row, " ".join(words[row * 10:row * 10 + 10]))
                      for row in range(len(words) // 10)]
            pages.append(placed_text(lines))
    path = tmp_path / "manual.pdf"
    path.write_bytes(make_pdf(pages, outline))
    return path


def test_a_pdf_outline_becomes_headings_on_the_right_pages(tmp_path: Path) -> None:
    document = read_document(_manual_pdf(tmp_path))
    headings = [(b.text, b.page, b.level) for b in document.blocks if b.kind == "heading"]
    assert headings == [("1 Lamps", 2, 1), ("2 Batteries", 3, 1), ("3 Switches", 5, 1),
                        ("4 Wiring", 6, 1)]
    # The contents page lists every title too; the headings are the chapters' own lines.
    assert any("Lamps . . ." in b.text and b.page == 1 for b in document.blocks)


def test_outline_titles_match_with_or_without_numbers_and_split_their_paragraph() -> None:
    blocks = [Block("paragraph", "2.1 Reading data The reader takes files.", page=3),
              Block("paragraph", "Other text on page four.", page=4)]
    out = apply_outline(blocks, [[1, "Reading data", 3], [0, "Missing title", 4]])
    assert [(b.kind, b.text, b.level, b.page) for b in out] == [
        ("heading", "2.1 Reading data", 2, 3), ("paragraph", "The reader takes files.", 0, 3),
        ("heading", "Missing title", 1, 4), ("paragraph", "Other text on page four.", 0, 4)]


def test_sections_follow_the_outline_with_page_ranges(tmp_path: Path) -> None:
    sections = split_sections(read_document(_manual_pdf(tmp_path)))
    assert [(s.title, s.pages) for s in sections] == [
        ("", (1, 1)), ("1 Lamps", (2, 2)), ("2 Batteries", (3, 4)), ("3 Switches", (5, 5)),
        ("4 Wiring", (6, 6))]
    assert sections[0].is_listing() and not sections[1].is_listing()
    assert sections[2].where() == "pp. 3\u20134" and sections[1].where() == "p. 2"
    assert "batteries more" in sections[2].body() and "2 Batteries" not in sections[2].body()


def test_sections_refine_long_chapters_merge_tiny_ones_and_stay_within_the_limit() -> None:
    blocks = [Block("heading", "Guide", 1), Block("paragraph", "Short intro."),
              Block("heading", "Long part", 2), Block("paragraph", _prose("long", 80)),
              Block("heading", "First detail", 3), Block("paragraph", _prose("first", 40)),
              Block("heading", "Second detail", 3), Block("paragraph", _prose("second", 40)),
              Block("heading", "Tiny", 2), Block("paragraph", "Only a few words here."),
              Block("heading", "Closing", 2), Block("paragraph", _prose("closing"))]
    sections = split_sections(Document("guide", "markdown", blocks))
    titles = [s.title for s in sections]
    # The intro joins the first subsection under the parent's title; the long part is cut at
    # its subheadings; the tiny section (no parent of the next) joins the next.
    assert titles == ["Guide", "First detail", "Second detail", "Closing"]
    assert "Only a few words here." in sections[3].text
    many = [b for n in range(3 * MAX_SECTIONS)
            for b in (Block("heading", f"Chapter {n}", 1), Block("paragraph", _prose(str(n))))]
    grouped = split_sections(Document("big", "markdown", many))
    assert len(grouped) <= MAX_SECTIONS
    assert grouped[0].title == "Chapter 0 \u2026 Chapter 2"
    assert sum(len(s.blocks) for s in grouped) == len(many)  # nothing lost


def test_numbered_titles_make_sections_when_there_are_no_headings() -> None:
    blocks = [Block("paragraph", "1 Getting started"), Block("paragraph", _prose("start")),
              Block("paragraph", "2 Going further"), Block("paragraph", _prose("further")),
              Block("paragraph", "3 people came. This is a sentence, not a title.")]
    sections = split_sections(Document("plain", "txt", blocks))
    assert [s.title for s in sections] == ["1 Getting started", "2 Going further"]


@pytest.mark.parametrize(("sentence", "unsupported"), [
    ("The manual covers the dplyr package and the lm function.", ["dplyr"]),
    ("Version 4.3 was written by Ada Lovelace.", ["4.3", "Ada", "Lovelace"]),
    ("It explains read.csv, asn1Parser and DER files.", []),
    ('It says "statistical computation" and "quantum computing" matter.',
     ["quantum computing"]),
    ("Overall, the text describes statistical computation in R.", []),
    ("It calls asn1_parse_tree on memory-safe buffers.", ["asn1_parse_tree"]),
    ("It explains how galaxies bend starlight through gravitational lensing.",
     ["galaxies", "bend", "starlight", "through", "gravitational", "lensing"]),
    ("It explains how linear models handle statistical data files.", []),
])
def test_facts_missing_from_the_source_are_flagged(sentence: str,
                                                   unsupported: list[str]) -> None:
    source = SourceIndex.of("R is a system for statistical computation. The function lm() fits "
                            "linear models; read.csv reads files. Version 4.2 added asn1Parser "
                            "for DER data and safe memory handling with asn1_parse.")
    common = {"manual", "covers", "package", "function", "version", "written", "explains",
              "files", "matter", "overall", "describes", "calls", "buffers", "handle"}
    assert unsupported_terms(sentence, source, rare=lambda word: word not in common) == \
        unsupported
    # Without a tokenizer to tell rare words, only the shapes of names and numbers count.
    assert unsupported_terms(sentence, source) == [t for t in unsupported if t != "dplyr"]


def test_the_best_source_sentence_replaces_and_is_not_used_twice() -> None:
    candidates = ["Lamps need power from a battery.", "Switches turn the lamps on and off.",
                  "Wires carry power."]
    best = best_source_sentence("The Zorblax switches turn lamps on.", candidates)
    assert best == "Switches turn the lamps on and off."
    assert best_source_sentence("The Zorblax switches turn lamps on.", candidates,
                                {best}) == "Lamps need power from a battery."


def test_tidy_drops_echoed_headings_and_open_lists() -> None:
    assert tidy("### 2. Lamps\nLamps give light at night. These include: 1.") == \
        "Lamps give light at night."
    assert tidy("- Lamps give light.\n- Batteries store power.") == \
        "Lamps give light. Batteries store power."


def test_banned_sequences_rule_out_a_term_only_after_its_start() -> None:
    banned = BannedSequences(((5,), (2, 3)))
    logits = np.zeros(8, dtype=np.float32)
    assert np.isneginf(banned(logits, [1])[5]) and not np.isneginf(banned(logits, [1])[3])
    assert np.isneginf(banned(logits, [1, 2])[3])


def _sectioned_doc() -> Document:
    blocks: list[Block] = []
    for page, topic in enumerate(TOPICS, 1):
        blocks += [Block("heading", topic, 1, page=page),
                   Block("paragraph", _prose(topic), page=page)]
    return Document("manual.pdf", "pdf", blocks, pages=len(TOPICS))


class PlantedModel:
    """Stands in for the model's answers: a planted name in the Switches section's summary,
    and (when ``stubborn``) again in its regeneration."""

    def __init__(self, stubborn: bool) -> None:
        self.stubborn = stubborn
        self.asks: list[tuple[str, Ask]] = []

    def __call__(self, summarizer: Any, asks: list[Ask], stage: str = "summarizing") -> list[str]:
        self.asks += [(stage, one) for one in asks]
        answers = []
        for one in asks:
            topic = next((t for t in TOPICS if f"(section: {t})" in one.instruction), None)
            if stage == "checking":
                answers.append("It was designed by Zorblax Industries." if self.stubborn
                               else "The switches chapter explains details for readers.")
            elif topic == "Switches":
                answers.append("The switches chapter was written by Zorblax Industries. "
                               "It explains details for readers.")
            elif topic:
                answers.append(f"The {topic.lower()} chapter explains details for readers.")
            else:
                answers.append("The manual explains lamps, batteries, switches and wiring.")
        return answers


@pytest.mark.parametrize("stubborn", [False, True])
def test_a_planted_name_is_caught_regenerated_and_if_still_there_replaced(
        roomy_model_dir: Path, monkeypatch: pytest.MonkeyPatch, stubborn: bool) -> None:
    model = load_model(roomy_model_dir, device="cpu", threads=1)
    planted = PlantedModel(stubborn)
    monkeypatch.setattr(abstractive.Summarizer, "ask_many",
                        lambda self, asks, stage="summarizing", *_: planted(self, asks, stage))
    # The tiny test tokenizer splits most English words in pieces: only the planted one is rare.
    monkeypatch.setattr(abstractive.Summarizer, "is_rare", lambda self, word: word == "zorblax")
    monkeypatch.setattr(abstractive.Summarizer, "fits", lambda self, text: len(text) < 800)
    sections: list[Any] = []
    result = summarize(_sectioned_doc(), model, "abstractive", "medium",
                       on_section=sections.append)
    assert result.method == "sectioned"
    assert [(s.title, s.where) for s in result.sections] == [
        (t, f"p. {n}") for n, t in enumerate(TOPICS, 1)]
    assert sections == result.sections  # each was announced as it was done
    summarized = [one for stage, one in planted.asks if stage == "summarizing"]
    for topic in TOPICS:  # every section went to the model, with its own text
        assert sum(_prose(topic) in one.text for one in summarized) == 1
    retries = [one for stage, one in planted.asks if stage == "checking"]
    # The name, and (most of the sentence being new to the section) its other new word.
    assert len(retries) == 1 and set(retries[0].banned) == {"Zorblax", "Industries", "written"}
    assert retries[0].prefix == ""  # the planted sentence came first: nothing to continue
    switches = result.sections[2]
    assert "Zorblax" not in result.summary and "Zorblax" not in switches.summary
    assert (switches.grounding.checked, switches.grounding.regenerated,
            switches.grounding.replaced) == (2, 1, int(stubborn))
    if stubborn:  # replaced by the section's own sentence closest to it
        assert switches.summary.startswith("The switches chapter explains detail")
    assert result.grounding is not None and result.grounding.regenerated == 1
    assert "- **Switches** (p. 3): " in result.summary
    assert result.summary.startswith("The manual explains lamps")


@pytest.mark.parametrize("noise", ["", "Pagpagpagpagpag pagpagpag."])
def test_noise_or_nothing_from_the_model_never_leaves_a_summary_empty(
        roomy_model_dir: Path, monkeypatch: pytest.MonkeyPatch, noise: str) -> None:
    # A broken or untrained model: its answers share no word with any source sentence.
    model = load_model(roomy_model_dir, device="cpu", threads=1)
    monkeypatch.setattr(abstractive.Summarizer, "ask_many",
                        lambda self, asks, *_: [noise for _ in asks])
    monkeypatch.setattr(abstractive.Summarizer, "is_rare", lambda self, word: "pag" in word)
    monkeypatch.setattr(abstractive.Summarizer, "fits", lambda self, text: len(text) < 800)
    result = summarize(_sectioned_doc(), model, "abstractive", "medium")
    assert result.method == "sectioned" and "pag" not in result.summary.casefold()
    for section in result.sections:  # each section's own opening sentence stands in
        assert section.summary and section.summary in section.text
        assert (section.grounding.checked, section.grounding.replaced) == (1, 1)
    assert result.summary.startswith(result.sections[0].summary)
    short = summarize(_sectioned_doc(), model, "abstractive", "short")
    assert short.summary.strip() and "pag" not in short.summary.casefold()


def test_a_sectioned_summary_with_a_real_tiny_model_covers_every_section(
        roomy_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = load_model(roomy_model_dir, device="cpu", threads=1)
    monkeypatch.setattr(abstractive.Summarizer, "fits", lambda self, text: len(text) < 800)
    progress: list[tuple[str, int, int]] = []
    result = summarize(_sectioned_doc(), model, "abstractive", "long",
                       progress=lambda *update: progress.append(update))
    assert [s.title for s in result.sections] == TOPICS
    assert ("sections", len(TOPICS), len(TOPICS)) in progress
    assert progress[-1] == ("combining", 1, 1)
    grounding = result.grounding
    assert grounding is not None and grounding.checked >= grounding.regenerated >= \
        grounding.replaced
    for section in result.sections:  # whatever it wrote, what is left is supported
        source = SourceIndex.of(section.text)
        assert all(not unsupported_terms(sentence, source)
                   for sentence in section.summary.split(". ") if sentence)


def test_a_sectioned_summary_stops_between_sections(roomy_model_dir: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    model = load_model(roomy_model_dir, device="cpu", threads=1)
    monkeypatch.setattr(abstractive.Summarizer, "fits", lambda self, text: len(text) < 800)
    seen: list[tuple[str, int, int]] = []
    with pytest.raises(OperationCancelledError):
        summarize(_sectioned_doc(), model, "abstractive", "medium",
                  should_stop=lambda: any(stage == "summarizing" and done
                                          for stage, done, _ in seen),
                  progress=lambda *update: seen.append(update))
    assert not any(stage == "combining" for stage, _, _ in seen)


def test_cli_json_reports_sections_and_grounding(tmp_path: Path, roomy_model_dir: Path,
                                                 capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    planted = PlantedModel(stubborn=True)
    monkeypatch.setattr(abstractive.Summarizer, "ask_many",
                        lambda self, asks, stage="summarizing", *_: planted(self, asks, stage))
    # The tiny test tokenizer splits most English words in pieces: only the planted one is rare.
    monkeypatch.setattr(abstractive.Summarizer, "is_rare", lambda self, word: word == "zorblax")
    monkeypatch.setattr(abstractive.Summarizer, "fits", lambda self, text: len(text) < 800)
    article = tmp_path / "manual.md"
    article.write_text("\n\n".join(f"# {t}\n\n{_prose(t)}" for t in TOPICS), encoding="utf-8")
    assert main(["summarize", str(article), "-m", str(roomy_model_dir), "--method", "abstractive",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["method"] == "sectioned"
    assert out["grounding"] == {"checked": 6, "regenerated": 1, "replaced": 1,
                                "unsupported": ["Zorblax", "Industries", "written"]}
    assert [s["title"] for s in out["sections"]] == TOPICS
    assert out["sections"][2]["replaced"] == 1 and "text" not in out["sections"][2]
    assert main(["summarize", str(article), "-m", str(roomy_model_dir), "--method",
                 "abstractive"]) == 0
    captured = capsys.readouterr()
    assert "- **Switches**: " in captured.out and "Zorblax" not in captured.out
    assert "6 sentences checked against the source: 1 regenerated, 1 replaced" in captured.err
