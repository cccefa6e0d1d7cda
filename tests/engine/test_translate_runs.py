"""No formatted run's text is ever lost: DOCX runs and hyperlinks, HTML inline elements and
Markdown emphasis and links come back translated, or kept in the source with their formatting
and the segment flagged, whatever a translator does with the span markers (keeps them, drops
them, keeps them but leaves out the words between them). A sentence repeated in another
paragraph keeps its own protected parts (URLs, formatting)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import docx
import pytest
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.text.paragraph import Paragraph
from translate_fakes import FakeInstructTranslator, FakeTranslator

from engine.translate import translate_file, translate_text
from engine.translate.protect import Token, append_tokens, filled, mark, new_pair

_PLACEHOLDER = re.compile(r"⟦\d+⟧")
_WORD = re.compile(r"[A-Za-z]+")
_T = qn("w:t")
_HYPERLINK = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/hyperlink"


def translated(text: str) -> str:
    """A "translation" whose every word is visibly new (``Costs`` -> ``ZCosts``) and short
    enough that language detection never calls it untranslated."""
    return _WORD.sub(lambda m: "Z" + m.group(0), text)


Answer = Callable[[str, bool], str]
ANSWERS: dict[str, Answer] = {
    "faithful": lambda segment, strict: translated(segment),
    # the markers gone, the words kept
    "drops markers": lambda segment, strict: translated(_PLACEHOLDER.sub("", segment)),
    # both markers of the first span kept, the words between them left out: the defect
    "empties a span": lambda segment, strict: re.sub(
        r"(⟦\d+⟧)[^⟦]*(⟦\d+⟧)", r"\1\2", translated(segment), count=1),
    # every marker put first, the words after them (the span holds nothing)
    "moves words out": lambda segment, strict: "".join(_PLACEHOLDER.findall(segment))
    + translated(_PLACEHOLDER.sub("", segment)),
}
KINDS = {"plain": FakeTranslator, "instruct": FakeInstructTranslator}


def words_of(text: str) -> list[str]:
    return _WORD.findall(text)


def assert_every_word_kept(source: str, output: str) -> None:
    """Every source word is in the output, translated or (kept in source) as it was."""
    got = set(words_of(output))
    missing = [w for w in words_of(source) if "Z" + w not in got and w not in got]
    assert not missing, f"lost {missing} from {output!r}"


# --- DOCX ---------------------------------------------------------------------------------------

def add_link(paragraph: Paragraph, text: str, bold: bool = False) -> None:
    """A w:hyperlink around one run (python-docx has no API for adding one)."""
    relation = paragraph.part.relate_to("https://example.com/costs", _HYPERLINK,
                                        is_external=True)
    link = OxmlElement("w:hyperlink")
    link.set(qn("r:id"), relation)
    run = paragraph.add_run(text)
    run.bold = bold or None
    link.append(run._r)  # moves the run into the link
    paragraph._p.append(link)


Run = tuple[str, str]  # text, formatting: "" (plain), "b", "i", "link", "boldlink"
PARAGRAPHS: dict[str, list[Run]] = {
    "bold at the start": [("Costs fell", "b"), (" by 5% in March.", "")],
    "bold in the middle": [("In March ", ""), ("costs fell", "b"), (" by 5%.", "")],
    "italic then bold": [("Costs ", "i"), ("fell", "b"), (" by 5% in March.", "")],
    "whitespace run": [("Costs fell", "b"), (" ", "i"), ("by 5%", "i"), (" in March.", "")],
    "hyperlink": [("Read ", ""), ("the cost report", "link"), (" in March.", "")],
    "bold hyperlink first": [("Costs fell", "boldlink"), (" by 5% in March.", "")],
}


def make_runs_docx(path: Path) -> Path:
    document = docx.Document()
    for runs in PARAGRAPHS.values():
        paragraph = document.add_paragraph()
        for text, how in runs:
            if "link" in how:
                add_link(paragraph, text, bold=how == "boldlink")
            else:
                run = paragraph.add_run(text)
                run.bold = True if how == "b" else None
                run.italic = True if how == "i" else None
    document.save(str(path))
    return path


def body_texts(path: Path) -> list[str]:
    """Each body paragraph's text, hyperlinks included, read from the XML."""
    return ["".join(t.text or "" for t in p._p.iter(_T)) for p in docx.Document(str(path))
            .paragraphs]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("behaviour", ANSWERS)
def test_docx_runs_keep_their_words_whatever_happens_to_the_markers(
        tmp_path: Path, behaviour: str, kind: str) -> None:
    source = make_runs_docx(tmp_path / "costs.docx")
    out = tmp_path / "costs.de.docx"
    result = translate_file(source, KINDS[kind](ANSWERS[behaviour]), "de", "en", output=out)
    sources = ["".join(text for text, _ in runs) for runs in PARAGRAPHS.values()]
    outputs = body_texts(out)
    assert len(outputs) == len(sources)
    for before, after in zip(sources, outputs, strict=True):
        assert_every_word_kept(before, after)
        assert "⟦" not in after
    if behaviour == "faithful":
        assert result.flagged == []
        runs = docx.Document(str(out)).paragraphs[0].runs
        assert [(r.text, bool(r.bold)) for r in runs] == [("ZCosts Zfell", True),
                                                          (" Zby 5% Zin ZMarch.", False)]
        links = [["".join(t.text or "" for t in link.iter(_T))
                  for link in p._p.iter(qn("w:hyperlink"))]
                 for p in docx.Document(str(out)).paragraphs]
        assert links[4] == ["Zthe Zcost Zreport"] and links[5] == ["ZCosts Zfell"]
    else:  # the source is kept with its formatting (a span is never emptied), never silently
        assert {f.reason for f in result.flagged} == {"placeholders"}
        assert len(result.flagged) >= len(PARAGRAPHS) - 1  # "⟦1⟧⟦2⟧Costs…": no span emptied
        assert outputs[0] == "Costs fell by 5% in March."
        runs = docx.Document(str(out)).paragraphs[0].runs
        assert [(r.text, bool(r.bold)) for r in runs] == [("Costs fell", True),
                                                          (" by 5% in March.", False)]


def test_an_emptied_bold_span_is_asked_again_strictly_then_kept_in_the_source(
        tmp_path: Path) -> None:
    source = make_runs_docx(tmp_path / "costs.docx")
    fake = FakeInstructTranslator(ANSWERS["empties a span"])
    result = translate_file(source, fake, "de", "en", output=tmp_path / "out.docx")
    strict = [s for call in fake.calls if call["strict"] for s in call["segments"]]
    assert "⟦1⟧Costs fell⟦2⟧ by 5% in March." in strict  # asked again, markers and all
    assert "Costs fell by 5% in March." not in fake.asked  # no fallback that empties the span
    first = next(f for f in result.flagged if f.segment == 1)
    assert (first.reason, first.translation) == ("placeholders", first.source)
    assert result.records[0].status == "kept_source"
    assert result.records[0].reasons == ("placeholders",)
    assert body_texts(tmp_path / "out.docx")[0] == "Costs fell by 5% in March."


def test_a_repeated_docx_sentence_keeps_its_own_formatting(tmp_path: Path) -> None:
    document = docx.Document()
    for how in ("bold", "italic"):
        paragraph = document.add_paragraph()
        setattr(paragraph.add_run("Costs fell"), how, True)
        paragraph.add_run(" by 5% in March.")
    document.save(str(tmp_path / "twice.docx"))
    fake = FakeTranslator(ANSWERS["faithful"])
    translate_file(tmp_path / "twice.docx", fake, "de", "en", output=tmp_path / "out.docx")
    assert fake.asked == ["⟦1⟧Costs fell⟦2⟧ by 5% in March."]  # still asked once
    bold, italic = docx.Document(str(tmp_path / "out.docx")).paragraphs
    first = bold.runs[0], italic.runs[0]
    assert [(r.text, bool(r.bold), bool(r.italic)) for r in first] == \
        [("ZCosts Zfell", True, False), ("ZCosts Zfell", False, True)]


# --- HTML and Markdown --------------------------------------------------------------------------

HTML = ('<p><b>Costs fell</b> by 5% in March.</p>\n<p>In March <a href="/costs">costs fell</a> '
        'by 5%.</p>\n<p><i>Costs</i> <b>fell</b> by 5%.</p>\n')
MARKDOWN = ("**Costs fell** by 5% in March.\n\nIn March [costs fell](https://example.com/c) "
            "by 5%.\n")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("behaviour", ANSWERS)
def test_html_inline_elements_keep_their_words(behaviour: str, kind: str) -> None:
    result = translate_text(HTML, KINDS[kind](ANSWERS[behaviour]), "de", "en", kind="html")
    out = result.translation
    for before, after in zip(HTML.splitlines(), out.splitlines(), strict=True):
        assert_every_word_kept(re.sub(r"<[^>]+>", "", before).replace("href", ""),
                               re.sub(r"<[^>]+>", "", after))
    assert out.count("<") == HTML.count("<") and "⟦" not in out
    if behaviour == "faithful":
        assert out.startswith("<p><b>ZCosts Zfell</b> Zby 5% Zin ZMarch.</p>")
        assert result.flagged == []
    else:
        assert result.flagged and {f.reason for f in result.flagged} == {"placeholders"}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("behaviour", ANSWERS)
def test_markdown_emphasis_and_links_keep_their_words(behaviour: str, kind: str) -> None:
    result = translate_text(MARKDOWN, KINDS[kind](ANSWERS[behaviour]), "de", "en",
                            kind="markdown")
    out = result.translation
    for before, after in zip(MARKDOWN.splitlines(), out.splitlines(), strict=True):
        assert_every_word_kept(before.replace("https://example.com/c", ""),
                               after.replace("https://example.com/c", ""))
    assert "](https://example.com/c)" in out and "⟦" not in out
    if behaviour == "faithful":  # ** is text, not markup, for the translator: it stays put
        assert out.split("\n")[0] == "**ZCosts Zfell** Zby 5% Zin ZMarch."


def test_a_repeated_sentence_keeps_its_own_urls_and_markup() -> None:
    text = "See https://a.example now.\n\nSee https://b.example now.\n"
    fake = FakeTranslator()
    out = translate_text(text, fake, "de", "en").translation
    assert out == "Siehe https://a.example jetzt.\n\nSiehe https://b.example jetzt.\n"
    assert fake.asked == ["See ⟦1⟧ now."]  # translated once, restored with each own URL
    page = "<p>Read <b>the docs</b> now.</p><p>Read <i>the docs</i> now.</p>"
    assert translate_text(page, FakeTranslator(), "de", "en", kind="html").translation == \
        "<p>Lies <b>die Doku</b> jetzt.</p><p>Lies <i>die Doku</i> jetzt.</p>"


# --- the checks themselves ----------------------------------------------------------------------

def test_filled_wants_words_in_every_span_that_had_some() -> None:
    bold_open, bold_close = new_pair("<b>", "</b>")
    link_open, link_close = new_pair("<a>", "</a>")
    marked, tokens = mark([bold_open, "Costs fell", bold_close, " by 5% ", link_open,
                           Token("<img>"), link_close, "."])
    assert marked == "⟦1⟧Costs fell⟦2⟧ by 5% ⟦3⟧⟦4⟧⟦5⟧."
    assert filled("⟦1⟧Kosten sanken⟦2⟧ um 5 % ⟦3⟧⟦4⟧⟦5⟧.", marked, tokens)
    assert filled("⟦1⟧5⟦2⟧ ⟦3⟧⟦4⟧⟦5⟧", marked, tokens)  # a digit is a word too
    assert not filled("⟦1⟧⟦2⟧ Kosten sanken um 5 % ⟦3⟧⟦4⟧⟦5⟧.", marked, tokens)
    assert not filled("⟦1⟧ ⟦2⟧ um 5 % ⟦3⟧⟦4⟧⟦5⟧.", marked, tokens)
    # A span holding only a picture needs no words; a glossary term's placeholder is words.
    term = Token("Kosten", "text", term="costs")
    marked, tokens = mark([bold_open, term, bold_close, " fell."])
    assert filled("⟦1⟧⟦2⟧⟦3⟧ sanken.", marked, tokens)


def test_the_fallback_leaves_no_stray_placeholder_numbers() -> None:
    opening, closing = new_pair("<b>", "</b>")
    parts = append_tokens("Die Kosten ⟦1⟧sanken⟦2⟧.", [opening, closing])
    assert parts == ["Die Kosten sanken", opening, closing, "."]  # no space before the stop
