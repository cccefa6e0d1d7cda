"""Translation keeps each format's structure: txt and Markdown line by line, HTML tags and
entities, DOCX paragraphs and run formatting; PDF becomes Markdown text; unsafe or impossible
requests are refused with one line."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import docx
import pytest
from translate_fakes import FakeTranslator, to_german

from engine.documents.minimal_pdf import make_pdf
from engine.errors import ConfigError, DocumentError
from engine.translate import plan, translate_file, translate_text
from engine.translate.html import tokenize

TEXT = """Night lamps
===========

The lamp is bright.  It is on the table.
    An indented line of the first paragraph.

- first item
- second item with a long text
  that wraps
    1. a nested item

  Indented text is kept.
\tTabbed text is kept.

Read the docs at https://example.com/lamp_docs?id=3 now.

```
the lamp = bright(1)
```

1) first
2) second
"""

MARKDOWN = """---
title: the lamp
---
# The title #

The lamp is bright and it glows every evening in the quiet room of the house, and we read
by its soft light until it is very dark and the night is quiet and warm, as it is in every
small room of the house.

One sentence per line.
Another sentence here.

* first item with [a link](https://example.com/docs "the docs") and `code`
  that wraps
* second item ![a lamp](lamp.png)
  - nested item

> A quoted line
> and more of it.

| Lamp | Light |
|------|------:|
| the small lamp | `soft|warm` |

    the indented code = 1

<div class="note">
The raw HTML block.
</div>

[docs]: https://example.com/docs

Last line with a hard break{two_spaces}
and the next one.
""".format(two_spaces="  ")


def skeleton(text: str) -> list[str]:
    """What must not change: per line, its markup prefix (indentation, quote, list marker,
    heading hashes) or the whole line when it is blank or a delimiter."""
    shapes = []
    for line in text.split("\n"):
        marker = re.match(r"^([ \t>]*(?:[-*+]|\d+[.)]|#+|\|)?[ \t]*)", line)
        shapes.append(marker.group(1) if marker and line.strip() else line)
    return shapes


def test_txt_keeps_blank_lines_markers_indentation_code_and_urls() -> None:
    result = translate_text(TEXT, FakeTranslator(), "de", "en", kind="txt")
    out = result.translation
    assert skeleton(out) == skeleton(TEXT)
    assert out.count("\n") == TEXT.count("\n")
    assert "```\nthe lamp = bright(1)\n```" in out  # code fence untouched
    assert "https://example.com/lamp_docs?id=3" in out  # URL untouched
    assert "Die Lampe ist hell. Es ist auf die Tisch.\n    Ein INDENTED" in out
    assert "- erste Punkt\n- zweite Punkt mit ein LONG Text\n  THAT WRAPS\n    1. ein NESTED " \
           "Punkt" in out
    assert "\tTABBED Text ist KEPT." in out
    assert "1) erste\n2) zweite\n" in out
    assert result.flagged == [] and result.segments == 13


def test_markdown_keeps_its_structure_and_rewraps_wrapped_paragraphs() -> None:
    fake = FakeTranslator()
    out = translate_text(MARKDOWN, fake, "de", "en", kind="markdown").translation
    lines, source = out.split("\n"), MARKDOWN.split("\n")
    assert skeleton(out) == skeleton(MARKDOWN)
    assert out.count("\n") == MARKDOWN.count("\n")
    for kept in ("---", "title: the lamp", "|------|------:|", "    the indented code = 1",
                 '<div class="note">', "The raw HTML block.", "</div>",
                 "[docs]: https://example.com/docs"):
        assert kept in lines
    assert lines[3] == "# Die Titel #"
    # The hard-wrapped paragraph was translated as one text and wrapped to the same width.
    paragraph = lines[5:8]
    assert max(map(len, paragraph)) <= max(map(len, source[5:8]))
    assert " ".join(paragraph) == to_german(" ".join(source[5:8]))
    assert "The lamp is bright and it glows every evening in the quiet room of the house, " \
           "and we read by its soft light until it is very dark and the night is quiet and " \
           "warm, as it is in every small room of the house." in fake.asked
    # One sentence per line stays line by line.
    assert lines[9:11] == ["Eins SENTENCE PER LINE.", "ANOTHER SENTENCE hier."]
    assert lines[12:14] == ['* erste Punkt mit [ein Verweis](https://example.com/docs "the docs") '
                            "und", "  `code` THAT WRAPS"]  # rewrapped to the item's width
    assert lines[14] == "* zweite Punkt ![a lamp](lamp.png)"
    assert lines[17:19] == ["> Ein QUOTED LINE", "> und mehr von es."]
    assert lines[20:23] == ["| Lampe | Licht |", "|------|------:|",
                            "| die klein Lampe | `soft|warm` |"]
    assert lines[-3:] == ["LAST LINE mit ein HARD BREAK  ", "und die NEXT eins.", ""]
    assert "⟦" not in out


HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>The lamp &amp; the night</title>
<style>p { color: red } /* the lamp */</style>
<script>if (a < b) { document.write("<p>the lamp</p>"); }</script></head>
<body>
<h1 class="big" id="top">The lamp</h1>
<p>Click <a href="/lamp?a=1&amp;b=2" title="the lamp">here</a> now. It is <b>very <i>bright</i></b>
&nbsp;&copy; 2024 &lt;ok&gt;.<br>Run <code>lamp &amp;&amp; light</code> now.</p>
<pre>the lamp
  is bright</pre>
<!-- the lamp comment -->
<ul><li>first item</li><li>second <em>item</em></li></ul>
<img src="lamp.png" alt="the lamp">
<table><tr><td>the cell</td><td>   </td></tr></table>
</body></html>
"""


def test_html_keeps_tags_and_attributes_and_translates_text_only() -> None:
    fake = FakeTranslator()
    out = translate_text(HTML, fake, "de", "en", kind="html").translation
    tags = [raw for kind, raw, _ in tokenize(HTML) if kind != "text"]
    assert [raw for kind, raw, _ in tokenize(out) if kind != "text"] == tags
    for untouched in ('<style>p { color: red } /* the lamp */</style>',
                      '<script>if (a < b) { document.write("<p>the lamp</p>"); }</script>',
                      "<pre>the lamp\n  is bright</pre>", "<code>lamp &amp;&amp; light</code>",
                      "<!-- the lamp comment -->", 'alt="the lamp"', 'title="the lamp"'):
        assert untouched in out
    assert "<title>Die Lampe &amp; die Nacht</title>" in out
    assert '<h1 class="big" id="top">Die Lampe</h1>' in out
    assert '<p>Klicke <a href="/lamp?a=1&amp;b=2" title="the lamp">hier</a> jetzt. Es ist ' \
           "<b>sehr <i>hell</i></b> © 2024 &lt;OK&gt;.<br>Starte <code>" in out
    assert "<li>second <em>item</em></li>" not in out and "<li>zweite <em>Punkt</em></li>" in out
    assert "<td>die Zelle</td><td>   </td>" in out
    # The model saw placeholders, never markup, and text with its entities decoded.
    assert fake.asked[:4] == ["The lamp & the night", "The lamp", "Click ⟦1⟧here⟦2⟧ now.",
                              "It is ⟦1⟧very ⟦2⟧bright⟦3⟧⟦4⟧ © 2024 <ok>.⟦5⟧Run ⟦6⟧ now."]
    # What was never translated comes back byte for byte.
    none = translate_text(HTML, FakeTranslator(lambda s, strict: "Ü" + s), "de", "en",
                          kind="html").translation
    assert none.count("<") == HTML.count("<")


def make_docx(path: Path) -> Path:
    document = docx.Document()
    document.add_heading("The lamp", 1)
    paragraph = document.add_paragraph("The lamp is ")
    paragraph.add_run("very bright").bold = True
    paragraph.add_run(" and ")
    paragraph.add_run("warm").italic = True
    paragraph.add_run(". See https://example.com/lamp now.")
    document.add_paragraph("")
    document.add_paragraph("first item", style="List Bullet")
    table = document.add_table(rows=1, cols=2)
    table.cell(0, 0).text = "the cell"
    table.cell(0, 1).text = "42"
    document.sections[0].header.paragraphs[0].text = "The header"
    document.save(str(path))
    return path


def test_docx_keeps_paragraphs_and_bold_italic_runs(tmp_path: Path) -> None:
    source = make_docx(tmp_path / "lamp.docx")
    before = source.read_bytes()
    out = tmp_path / "lamp.de.docx"
    result = translate_file(source, FakeTranslator(), "de", "en", output=out)
    assert source.read_bytes() == before  # a new file; the original is untouched
    original, translated = docx.Document(str(source)), docx.Document(str(out))
    assert len(translated.paragraphs) == len(original.paragraphs)
    assert [p.style.name for p in translated.paragraphs] == \
        [p.style.name for p in original.paragraphs]
    runs = [(r.text, bool(r.bold), bool(r.italic)) for r in translated.paragraphs[1].runs]
    assert runs == [("Die Lampe ist ", False, False), ("sehr hell", True, False),
                    (" und ", False, False), ("warm", False, True),
                    (". Siehe ", False, False), ("https://example.com/lamp", False, False),
                    (" jetzt.", False, False)]
    assert [p.text for p in translated.paragraphs] == [
        "Die Lampe", "Die Lampe ist sehr hell und warm. Siehe https://example.com/lamp jetzt.",
        "", "erste Punkt"]
    assert translated.tables[0].cell(0, 0).text == "die Zelle"
    assert translated.tables[0].cell(0, 1).text == "42"
    assert translated.sections[0].header.paragraphs[0].text == "Die Kopf"
    assert result.translation.splitlines()[0] == "Die Lampe"


def test_docx_needs_an_output_file_and_unsafe_archives_are_refused(tmp_path: Path) -> None:
    source = make_docx(tmp_path / "lamp.docx")
    with pytest.raises(ConfigError, match=r"add -o NAME\.docx"):
        translate_file(source, FakeTranslator(), "de", "en")
    with pytest.raises(ConfigError, match="is the input file"):
        translate_file(source, FakeTranslator(), "de", "en", output=source)
    laughs = tmp_path / "laughs.docx"
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(laughs, "w") as copy:
        for item in original.infolist():
            data = original.read(item)
            if item.filename == "word/document.xml":
                data = data.replace(b"?>", b'?><!DOCTYPE d [<!ENTITY a "lamp">]>', 1)
            copy.writestr(item, data)
    fake = FakeTranslator()
    with pytest.raises(DocumentError, match="declares a DTD"):
        translate_file(laughs, fake, "de", "en", output=tmp_path / "out.docx")
    assert fake.calls == [] and not (tmp_path / "out.docx").exists()


def test_docx_can_be_written_as_text(tmp_path: Path) -> None:
    source = make_docx(tmp_path / "lamp.docx")
    out = tmp_path / "lamp.md"
    translate_file(source, FakeTranslator(), "de", "en", output=out)
    assert out.read_text("utf-8").startswith("# Die Lampe\n\nDie Lampe ist sehr hell und warm.")


def test_pdf_becomes_markdown_text(tmp_path: Path) -> None:
    source = tmp_path / "lamp.pdf"
    source.write_bytes(make_pdf(["The lamp is bright.", "The night is dark."]))
    result = translate_file(source, FakeTranslator(), "de", "en")
    assert "Die Lampe ist hell." in result.translation
    assert "Die Nacht ist dunkel." in result.translation
    with pytest.raises(ConfigError, match="PDF cannot be written"):
        plan(source, tmp_path / "out.pdf")
    with pytest.raises(ConfigError, match="cannot be written as HTML"):
        plan(source, tmp_path / "out.html")


def test_paragraph_count_out_equals_in_on_a_mixed_document() -> None:
    mixed = (
        "# Lamps 夜灯\n\nThe lamp is bright. 夜灯很亮。Die Lampe ist hell und sie steht auf "
        "dem Tisch.\n\n- item\n-\n- 好的\n\n```\ncode\n```\n\n12345 !!!\n\n"
        "\u00a0\n\n" + "word " * 3000 + "\n\nThe end.\n\n\n")
    result = translate_text(mixed, FakeTranslator(max_segment_tokens=100), "de", "en",
                            kind="markdown")
    def paragraphs(text: str) -> int:
        return len([p for p in re.split(r"\n[ \t\u00a0]*\n", text) if p.strip()])

    assert paragraphs(result.translation) == paragraphs(mixed)
    assert result.translation.count("\n") == mixed.count("\n")
    assert "Die Lampe ist hell und sie steht auf dem Tisch." in result.translation
    assert "夜灯很亮。" in result.translation and "12345 !!!" in result.translation


def test_an_empty_line_and_whitespace_are_left_alone() -> None:
    for text in ("", "\n", "   \n\n\t\n"):
        result = translate_text(text, FakeTranslator(), "de", "auto", kind="markdown")
        assert (result.translation, result.segments, result.flagged) == (text, 0, [])
