"""Extraction artefacts that must not reach summaries and translations."""

from __future__ import annotations

import time
import zlib
from pathlib import Path

import pytest

from engine.documents import read_document, read_text
from engine.documents.cleanup import clean_pages, fix_characters
from engine.documents.minimal_pdf import make_pdf
from engine.documents.model import Block

SPHINX_PAGE = """<html><head><title>4. More Control Flow Tools</title></head><body>
<div class="related" role="navigation"><ul><li><a href="index.html">index</a></li>
<li><a href="modules.html">modules</a> |</li></ul></div>
<div class="document"><div class="body" role="main">
<h1>4. More Control Flow Tools<a class="headerlink" href="#more" title="Link">¶</a></h1>
<p>Python knows the usual control flow statements.</p>
<div class="highlight"><pre>for w in words: print(w)</pre></div>
<p>The page goes on.<img class="toc" src="x.png"></p>
</div></div>
<div class="sphinxsidebar" role="navigation"><div><h3>Table of Contents</h3>
<ul><li><a href="#">4.1. if Statements</a></li></ul></div><div><h3>Previous topic</h3></div></div>
<nav><a href="/">Home</a></nav><aside>Sponsored</aside>
<p>Outside the main content.</p>
</body></html>"""


def test_html_navigation_sidebars_and_permalinks_are_left_out(tmp_path: Path) -> None:
    page = tmp_path / "controlflow.html"
    page.write_text(SPHINX_PAGE, encoding="utf-8")
    text = read_document(page).text()
    assert "# 4. More Control Flow Tools\n" in text + "\n" and "¶" not in text
    assert "Python knows the usual control flow statements." in text
    assert "for w in words" in text
    for furniture in ("index", "modules", "Table of Contents", "Previous topic", "Home",
                      "Sponsored", "Outside the main content"):
        assert furniture not in text, furniture
    assert "The page goes on." in text  # a void element hides nothing


def test_ligatures_are_spelled_out_but_code_and_cjk_punctuation_stay() -> None:
    assert Block("paragraph", "The ﬁle is ﬂat and ﬃcient.").text == "The file is flat and fficient."
    assert Block("code", "x = 'ﬁ'").text == "x = 'ﬁ'"
    assert Block("paragraph", "你好，世界！ x² ½").text == "你好，世界！ x² ½"
    assert "ﬁ" not in read_text("A ﬁne day.\n\nAnother ﬂow.").text()


# --- PDF text repair (engine.documents.cleanup, engine.documents.words) ------------------------

Line = str | list[str | int]  # a text line, or a TJ array: strings and kerning offsets


def _pdf_string(text: str) -> str:
    return "(" + text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"


def page_stream(lines: list[Line]) -> bytes:
    """A compressed content stream that writes ``lines`` top-down in Helvetica 12 pt.

    A list is one TJ array: a negative number moves the next glyph right by that many
    thousandths of the font size, which is how PDFs kern, and what makes pypdf's text extraction
    put a space inside a word when the move passes its word-gap threshold (a third of a space).
    """
    ops = ["BT /F1 12 Tf 14 TL 72 720 Td"]
    for line in lines:
        if isinstance(line, str):
            ops.append(f"{_pdf_string(line)} Tj T*")
        else:
            items = " ".join(_pdf_string(item) if isinstance(item, str) else str(item)
                             for item in line)
            ops.append(f"[{items}] TJ T*")
    ops.append("ET")
    return zlib.compress("\n".join(ops).encode("latin-1"))


def write_pdf(tmp_path: Path, pages: list[list[Line]], name: str = "doc.pdf") -> Path:
    path = tmp_path / name
    path.write_bytes(make_pdf([page_stream(lines) for lines in pages]))
    return path


def clean(*pages: str) -> list[str]:
    return clean_pages(list(pages))


def test_pdf_ligature_glyphs_become_letters(tmp_path: Path) -> None:
    # \256 and \257 are the "fi" and "fl" glyphs of the standard encoding: pypdf gives U+FB01/2.
    path = write_pdf(tmp_path, [["The \256le is \257at and ef\256cient."]])
    assert read_document(path).blocks == [
        Block("paragraph", "The file is flat and efficient.", page=1)]


def test_only_safe_compatibility_characters_are_mapped() -> None:
    text = "ﬀ ﬁ ﬂ ﬃ ﬄ ﬅ ﬆ|a\u2009b\u200ac|so\u00adft|\ufeffx"
    assert fix_characters(text) == "ff fi fl ffi ffl st st|a b c|soft|x"
    # NFKC would turn all of these into something else; they mean what they say.
    kept = "你好，世界！ x² ½ ™ ① Ｈ 10\u00a0km 5\u202f% 全\u3000角 a\u200db"
    assert fix_characters(kept) == kept
    assert fix_characters("so\u00adft", soft_hyphens=False) == "so\u00adft"


def test_pdf_hyphenated_words_are_joined_within_a_paragraph(tmp_path: Path) -> None:
    path = write_pdf(tmp_path, [["This is an exam-", "ple of typeset text, with man-",
                                 "agement of long lines."]])
    assert read_document(path).blocks == [Block(
        "paragraph", "This is an example\nof typeset text, with management\nof long lines.",
        page=1)]


@pytest.mark.parametrize(("lines", "expected"), [
    # The second half is capitalised, a number, or a compound goes on: the hyphen is real.
    ("the Anglo-\nSaxon world", "the Anglo-\nSaxon world"),
    ("COVID-\n19 cases", "COVID-19\ncases"),
    ("a state-\nof-the-art lamp", "a state-of-the-art\nlamp"),
    ("time hh-\nmm’ss here", "time hh-mm’ss\nhere"),
    # A known compound prefix, and two halves that are both words of the text.
    ("a non-\nnegative value", "a non-negative\nvalue"),
    ("a long-\nterm plan: long plans, term ends", "a long-term\nplan: long plans, term ends"),
    # No word on either side: a typeset break. A soft hyphen is always one.
    ("inter-\nnational", "international"),
    ("docu\u00ad\nment", "document"),
    # A dash standing alone, or a line that ends a paragraph, is no broken word.
    ("one -\ntwo", "one -\ntwo"),
    ("exam-\n\nple", "exam-\n\nple"),
])
def test_hyphenation_rules(lines: str, expected: str) -> None:
    assert clean(lines) == [expected]


def test_the_document_spelling_decides_hyphenation() -> None:
    assert clean("the e-\nmail says: e-mail") == ["the e-mail\nsays: e-mail"]
    assert clean("the e-\nmail says: email") == ["the email\nsays: email"]
    assert clean("long-\nterm plans") == ["longterm\nplans"]  # no evidence: no word here


def test_a_word_broken_across_a_page_break_is_joined_on_the_first_page() -> None:
    assert clean("The argu-", "ment goes on.") == ["The argument", "goes on."]


def test_pdf_kerning_split_words_are_joined(tmp_path: Path) -> None:
    path = write_pdf(tmp_path, [[
        ["The program e", -300, "xecutes each ar", -250, "gument it gets."],
        ["See T", -300, "able 2."],
        "Table 2: how the program executes an argument.",
    ]])
    text = read_document(path).text()
    assert text == ("The program executes each argument it gets.\nSee Table 2.\n"
                    "Table 2: how the program executes an argument.")


def test_split_word_repair_keeps_real_words_apart() -> None:
    vocabulary = " ".join(["a cat and a dog; a way to go, away from a place. I am in it; into "
                           "the box. Some people say sometimes. ar ar ar."] * 3)
    text = "a cat. I am here. A way out, not away. Go in to win. Some times. ar gument"
    # "acat"/"iam" are no words; "a", "in" and "some" stand alone as often as "away", "into"
    # and "sometimes" occur; "argument" never occurs unsplit, so nothing supports it.
    assert clean(text, vocabulary)[0] == text


def test_split_word_repair_handles_several_pieces_and_punctuation() -> None:
    known = "It executes the argument. Table 3 shows it."
    assert clean("It ex ecu tes, (ar gument). T able 3.", known)[0] == \
        "It executes, (argument). Table 3."
    # A continuation never starts with a capital; pieces stay on their line.
    assert clean("It ex Ecutes. ar\ngument", known)[0] == "It ex Ecutes. ar\ngument"


def running_report(pages: int) -> list[list[Line]]:
    bodies = [["The lamp glows in the dark room.", "Nobody reads at night."],
              ["Results were good this year.", "Sales grew in every region."],
              ["The outlook stays bright.", "We plan three new lamps."],
              ["Thanks to every reader.", "See you next year."]]
    return [["ACME Annual Report 2024", *bodies[index % 4], f"Page {index + 1} of {pages}"]
            for index in range(pages)]


def test_pdf_running_headers_and_page_numbers_are_dropped(tmp_path: Path) -> None:
    document = read_document(write_pdf(tmp_path, running_report(4)))
    assert document.pages == 4
    assert document.blocks == [
        # The first page keeps its title, which is the running header of the others.
        Block("paragraph", "ACME Annual Report 2024\nThe lamp glows in the dark room.\n"
                           "Nobody reads at night.", page=1),
        Block("paragraph", "Results were good this year.\nSales grew in every region.", page=2),
        Block("paragraph", "The outlook stays bright.\nWe plan three new lamps.", page=3),
        Block("paragraph", "Thanks to every reader.\nSee you next year.", page=4),
    ]


def test_running_lines_need_three_pages_and_the_same_place() -> None:
    two = clean("Header text\nbody one\n1", "Header text\nbody two\n2")
    assert two == ["Header text\nbody one\n1", "Header text\nbody two\n2"]
    # A repeated sentence at different places, or a short code line at the top, is body text.
    pages = ["Intro line\nThe same sentence.\nend\n1", "}\nThe same sentence.\n2",
             "}\nother\nThe same sentence.\n3", "}\nmore text\n4"]
    assert clean(*pages) == ["Intro line\nThe same sentence.\nend", "}\nThe same sentence.",
                             "}\nother\nThe same sentence.", "}\nmore text"]


def test_chapter_running_headers_with_changing_page_numbers() -> None:
    pages = ["1\n1 Introduction\nText.", "Chapter 1: Introduction 2\nMore text.",
             "Chapter 1: Introduction 3\nEven more.", "Chapter 1: Introduction 4\nThe end.",
             "5\n2 Usage\nUse it.", "Chapter 2: Usage 6\nUse it well.", "vii\nIndex"]
    # Bare page numbers at the top of three pages (arabic or roman) are one running line; a
    # chapter header on one page only is not (yet) recognisable.
    assert clean(*pages) == ["1 Introduction\nText.", "More text.", "Even more.", "The end.",
                             "2 Usage\nUse it.", "Chapter 2: Usage 6\nUse it well.", "Index"]


def test_cleanup_is_linear_on_a_large_document() -> None:
    sentences = ["The program e xecutes each ar gument it gets, in or-", "der of arrival.",
                 "It executes every argument in order.", "A cat and a dog; I am awake."]
    pages = []
    for number in range(400):  # 2.4 million characters
        tag = "".join(chr(97 + number // 26**index % 26) for index in range(3))
        body = [sentences[(2 * number + index) % 4] for index in range(120)]
        pages.append("\n".join(["Running header", f"Notes on part {tag}.", *body,
                                f"End of part {tag}.", str(number + 1)]))
    started = time.perf_counter()
    cleaned = clean_pages(pages)
    assert time.perf_counter() - started < 30  # about 2 s here; generous for a loaded CI box
    assert cleaned[1].startswith("Notes on part baa.\nIt executes every argument in order.")
    assert cleaned[1].endswith("\nEnd of part baa.")
    assert "The program executes each argument it gets, in order\nof arrival." in cleaned[1]
