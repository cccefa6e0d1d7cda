"""Document readers for text-like formats (txt, Markdown, HTML, pasted text) and the shared API:
the Document model, limits, and the one-line errors for bad files. PDF and DOCX are in
test_documents_pdf_docx.py."""

from __future__ import annotations

import codecs
import time
from pathlib import Path

import pytest

from engine.documents import (
    Block,
    Document,
    DocumentError,
    ReadLimits,
    read_document,
    read_text,
)
from engine.documents.text import SAMPLE_BYTES, detect_encoding
from engine.errors import ConfigError, OperationCancelledError

CHINESE = "夜灯照亮了房间。小模型读了一本书。\n\n助手回答每一个问题：你好，世界！"


def write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def paragraphs(document: Document) -> list[str]:
    return [block.text for block in document.blocks]


# --- plain text and encodings -------------------------------------------------------------------

def test_utf8_text_with_bom_and_crlf_splits_paragraphs(tmp_path: Path) -> None:
    text = "First line\r\nstill first.\r\n\r\n  \r\nSecond — ü\r\n"
    path = write(tmp_path, "notes.txt", codecs.BOM_UTF8 + text.encode())
    document = read_document(path)
    assert (document.name, document.format, document.pages) == ("notes.txt", "txt", None)
    assert document.blocks == [Block("paragraph", "First line\nstill first."),
                               Block("paragraph", "Second — ü")]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_with_and_without_bom(tmp_path: Path, encoding: str) -> None:
    text = "Hello UTF-16 world.\n\nZweiter Absatz: Grüße, 你好."
    document = read_document(write(tmp_path, "wide.txt", text.encode(encoding)))
    assert paragraphs(document) == ["Hello UTF-16 world.", "Zweiter Absatz: Grüße, 你好."]


def test_gb18030_chinese_text_comes_back_exactly(tmp_path: Path) -> None:
    data = CHINESE.encode("gb18030")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")  # so the detector really had to recognise GB18030
    document = read_document(write(tmp_path, "中文.txt", data))
    assert paragraphs(document) == ["夜灯照亮了房间。小模型读了一本书。",
                                    "助手回答每一个问题：你好，世界！"]


def test_shift_jis_and_cp1252_legacy_files(tmp_path: Path) -> None:
    japanese = "こんにちは、世界。これは日本語のテキストです。"
    western = "Café crème – naïve “quotes” for €5"
    assert paragraphs(read_document(write(tmp_path, "ja.txt", japanese.encode("shift_jis")))) \
        == [japanese]
    assert paragraphs(read_document(write(tmp_path, "fr.txt", western.encode("cp1252")))) \
        == [western]
    assert detect_encoding(western.encode("cp1252"))[0] == "cp1252"
    assert detect_encoding(japanese.encode("shift_jis"))[0] == "shift_jis"


# Legacy files the small detector of before issue 27 read as cp1252 (Cyrillic, Big5, Greek,
# Turkish) or as GB18030 (EUC-KR): mojibake without an error.
LEGACY_TEXTS = {
    "cp1251": "Ночник стоит на столе у окна.\n\nКаждый вечер он первым зажигается в доме, и в "
              "комнате становится тепло и спокойно.",
    "koi8-r": "Ночник стоит на столе у окна.\n\nКаждый вечер он первым зажигается в доме, и в "
              "комнате становится тепло и спокойно.",
    "big5": "夜燈放在窗邊的桌子上。\n\n每天晚上它都是家裡第一盞亮起的燈，房間因此變得溫暖又安靜。",
    "euc_kr": "야간 조명은 창가의 탁자 위에 있습니다.\n\n매일 저녁 집에서 가장 먼저 켜지는 등이라 "
              "방이 따뜻하고 조용해집니다.",
    "iso8859-7": "Η λάμπα της νύχτας βρίσκεται στο τραπέζι δίπλα στο παράθυρο.\n\nΆναβει πρώτη "
                 "κάθε βράδυ στο σπίτι.",
    "cp1254": "Gece lambası pencerenin yanındaki masanın üzerinde duruyor.\n\nHer akşam evde ilk "
              "yanan ışık odur; oda ısınır ve sessizleşir.",
}


@pytest.mark.parametrize("encoding", list(LEGACY_TEXTS))
def test_legacy_code_pages_decode_right_and_are_reported(tmp_path: Path, encoding: str) -> None:
    text = LEGACY_TEXTS[encoding]
    document = read_document(write(tmp_path, "legacy.txt", text.encode(encoding)))
    assert paragraphs(document) == text.split("\n\n")
    assert document.encoding == codecs.lookup(encoding).name
    markdown = read_document(write(tmp_path, "legacy.md", text.encode(encoding)))
    assert (paragraphs(markdown), markdown.encoding) == (paragraphs(document), document.encoding)


def test_the_encoding_assumed_is_reported_for_every_text_format(tmp_path: Path) -> None:
    assert read_document(write(tmp_path, "plain.txt", "plain ASCII")).encoding == "utf-8"
    assert read_document(write(tmp_path, "wide.txt", "UTF-16 text".encode("utf-16"))).encoding \
        == "utf-16-le"
    page = '<html><head><meta charset="gb2312"></head><body><p>夜灯照亮了房间。</p></body></html>'
    # The page's own <meta charset> (gb2312, read as its superset GB18030) is what is reported.
    assert read_document(write(tmp_path, "zh.htm", page.encode("gb18030"))).encoding == "gb18030"
    russian = LEGACY_TEXTS["cp1251"].replace("\n\n", "</p><p>")
    html = read_document(write(tmp_path, "ru.html", f"<p>{russian}</p>".encode("cp1251")))
    assert (paragraphs(html)[0], html.encoding) == ("Ночник стоит на столе у окна.", "cp1251")
    assert read_text("pasted").encoding is None


def test_a_long_legacy_file_is_judged_on_a_sample_cut_between_characters(
        tmp_path: Path) -> None:
    # Over SAMPLE_BYTES, whose end falls inside a two-byte Big5 character: a sample cut there
    # would rule Big5 out (charset-normalizer then finds nothing: cp1252 mojibake).
    text = "x" + (LEGACY_TEXTS["big5"] + "\n\n") * 800
    data = text.encode("big5")
    with pytest.raises(UnicodeDecodeError):
        data[:SAMPLE_BYTES].decode("big5")
    document = read_document(write(tmp_path, "long.txt", data))
    assert document.encoding == "big5"
    assert document.text() == text.strip()


def test_binary_renamed_txt_is_refused_and_named(tmp_path: Path) -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
    with pytest.raises(DocumentError,
                       match=r"^picture\.txt: not a text file \(it is a PNG image\)$"):
        read_document(write(tmp_path, "picture.txt", png))
    noise = bytes((index * 37) % 256 for index in range(4096))
    with pytest.raises(DocumentError, match=r"^noise\.txt: not a text file \(binary content\)"):
        read_document(write(tmp_path, "noise.txt", noise))
    with pytest.raises(DocumentError, match=r"report\.md: not a text file \(it is a PDF"):
        read_document(write(tmp_path, "report.md", b"%PDF-1.4\n\x00\x01\x02 binary"))


def test_text_over_max_chars_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "long.txt", "word " * 1000)
    with pytest.raises(DocumentError, match=r"long\.txt: too much text \(5,000 characters, "
                                            r"limit 100\)"):
        read_document(path, ReadLimits(max_chars=100))


# --- Markdown -----------------------------------------------------------------------------------

MARKDOWN = """\
---
title: front matter is skipped
---
# Nightlamp *guide*

Intro paragraph
on two lines.

Setext title
============

## Steps ##

- first item
  wrapped line
- second item
    - nested item
1. numbered

```python
# a comment, not a heading
print("hi")
```

| Name | Value |
|:-----|------:|
| a \\| b | 1 |
| c | 2 |

> quoted text

Sub heading
-----------
***
Last words.
"""


def test_markdown_structure(tmp_path: Path) -> None:
    document = read_document(write(tmp_path, "guide.md", MARKDOWN))
    assert document.format == "markdown"
    assert document.blocks == [
        Block("heading", "Nightlamp *guide*", level=1),
        Block("paragraph", "Intro paragraph\non two lines."),
        Block("heading", "Setext title", level=1),
        Block("heading", "Steps", level=2),
        Block("list_item", "first item wrapped line"),
        Block("list_item", "second item"),
        Block("list_item", "nested item", level=1),
        Block("list_item", "numbered"),
        Block("code", '# a comment, not a heading\nprint("hi")'),
        Block("table", "Name\tValue\na | b\t1\nc\t2"),
        Block("paragraph", "quoted text"),
        Block("heading", "Sub heading", level=2),
        Block("paragraph", "Last words."),
    ]


def test_document_text_and_sections() -> None:
    document = Document("x.md", "markdown", [
        Block("paragraph", "Preface."),
        Block("heading", "Title", level=1),
        Block("list_item", "one"),
        Block("list_item", "two", level=1),
        Block("table", "a\tb\nc\td"),
        Block("heading", "Next", level=2),
        Block("code", "x = 1"),
    ])
    assert document.text() == ("Preface.\n\n# Title\n\n- one\n  - two\n\na\tb\nc\td\n\n"
                               "## Next\n\nx = 1")
    assert document.char_count == len("Preface.Titleonetwoa\tb\nc\tdNextx = 1")
    sections = document.sections()
    assert [(heading.text if heading else None, [b.text for b in blocks])
            for heading, blocks in sections] == [(None, ["Preface."]),
                                                 ("Title", ["one", "two", "a\tb\nc\td"]),
                                                 ("Next", ["x = 1"])]
    with pytest.raises(ValueError, match="block kind must be one of"):
        Block("list", "bad kind")  # type: ignore[arg-type]


# --- HTML ---------------------------------------------------------------------------------------

HTML = """<!DOCTYPE html>
<html><head><title>Head title is dropped</title>
<style>body { color: red }</style>
<script>var secret = "<p>not text</p>";</script>
<link rel="stylesheet" href="http://example.com/x.css">
<body>
<h1>Tom &amp; Jerry&#39;s &lt;guide&gt;</h1>
<p>First   paragraph
   with <b>bold</b> and a <a href="http://example.com">link</a>.</p>
<noscript><p>Enable JavaScript</p></noscript>
<svg><text>svg text</text></svg>
<div>Line one<br>Line two &#20320;&#22909;&nbsp;end</div>
<ul><li>apple<ul><li>seed</li></ul></li><li>pear<li><p>plum</p> tart</ul>
<table><tr><th>Name</th><th>Qty</th></tr>
<tr><td>Lamp</td><td><p>2</p></td></tr></table>
<pre>  code
    indented</pre>
<template><p>template text</p></template>
<p>Unclosed paragraph
<h3>Small heading</h3>
"""


def test_html_visible_text_only(tmp_path: Path) -> None:
    document = read_document(write(tmp_path, "page.html", HTML))
    assert document.format == "html"
    assert document.blocks == [
        Block("heading", "Tom & Jerry's <guide>", level=1),
        Block("paragraph", "First paragraph with bold and a link."),
        Block("paragraph", "Line one\nLine two 你好 end"),
        Block("list_item", "apple"),
        Block("list_item", "seed", level=1),
        Block("list_item", "pear"),
        Block("list_item", "plum"),
        Block("list_item", "tart"),
        Block("table", "Name\tQty\nLamp\t2"),
        Block("code", "  code\n    indented"),
        Block("paragraph", "Unclosed paragraph"),
        Block("heading", "Small heading", level=3),
    ]
    text = document.text()
    for hidden in ("secret", "color", "Head title", "JavaScript", "svg text", "template"):
        assert hidden not in text


def test_html_unclosed_head_ends_at_the_first_body_element(tmp_path: Path) -> None:
    page = "<html><head><title>T</title><meta charset=utf-8><h2>Visible</h2><p>Body text"
    assert read_document(write(tmp_path, "bare.htm", page)).blocks == [
        Block("heading", "Visible", level=2), Block("paragraph", "Body text")]


def test_html_unclosed_tags_read_in_linear_time(tmp_path: Path) -> None:
    """'<a <a <a ...' with no '>' made html.parser rescan the rest for every '<' (minutes)."""
    path = write(tmp_path, "broken.html", "<p>Start</p>" + "<a " * 200_000)
    started = time.perf_counter()
    document = read_document(path)
    assert time.perf_counter() - started < 5
    assert document.blocks[0].text == "Start"
    assert document.blocks[-1].text.startswith("<a <a")  # kept as text, not lost


def test_html_meta_charset_is_honoured(tmp_path: Path) -> None:
    page = '<html><head><meta charset="gb2312"></head><body><p>夜灯照亮了房间。</p></body></html>'
    document = read_document(write(tmp_path, "zh.htm", page.encode("gb18030")))
    assert paragraphs(document) == ["夜灯照亮了房间。"]


# --- pasted text --------------------------------------------------------------------------------

def test_read_text_splits_paragraphs_and_headings() -> None:
    document = read_text("# Title\nFirst para\nline two.\n\n\n## Part 2\n\nSecond para.\n---\n")
    assert (document.name, document.format) == ("pasted text", "text")
    assert document.blocks == [Block("heading", "Title", level=1),
                               Block("paragraph", "First para\nline two."),
                               Block("heading", "Part 2", level=2),
                               Block("paragraph", "Second para.\n---")]
    with pytest.raises(DocumentError, match=r"^clipboard: no text to read"):
        read_text(" \n\t\n", name="clipboard")


# --- API-level errors and limits ----------------------------------------------------------------

def test_unknown_suffix_names_it_and_the_supported_list(tmp_path: Path) -> None:
    with pytest.raises(DocumentError) as caught:
        read_document(write(tmp_path, "sheet.xlsx", b"PK\x03\x04"))
    message = str(caught.value)
    assert message.startswith("sheet.xlsx: unsupported file type '.xlsx'; supported: ")
    for suffix in (".docx", ".htm", ".html", ".markdown", ".md", ".pdf", ".text", ".txt"):
        assert suffix in message


def test_empty_missing_and_oversized_files(tmp_path: Path) -> None:
    for name in ("empty.txt", "empty.pdf", "empty.docx"):
        with pytest.raises(DocumentError, match=rf"^{name}: the file is empty$"):
            read_document(write(tmp_path, name, b""))
    with pytest.raises(DocumentError, match=r"^gone\.txt: file not found"):
        read_document(tmp_path / "gone.txt")
    with pytest.raises(DocumentError, match=r"^big\.txt: too large \(2 KB, limit 1 KB\)$"):
        read_document(write(tmp_path, "big.txt", "x" * 2048), ReadLimits(max_file_bytes=1024))
    with pytest.raises(DocumentError, match=r"^blank\.txt: no text found"):
        read_document(write(tmp_path, "blank.txt", "\n \n\t\n"))


def test_cancel_before_reading(tmp_path: Path) -> None:
    with pytest.raises(OperationCancelledError, match=r"^a\.txt: reading was cancelled$"):
        read_document(write(tmp_path, "a.txt", "text"), should_stop=lambda: True)


def test_read_limits_are_validated() -> None:
    defaults = ReadLimits()
    assert (defaults.max_file_bytes, defaults.max_pages, defaults.timeout_s) == (
        100 * 1024 * 1024, 5000, 120.0)
    with pytest.raises(ConfigError, match=r"ReadLimits\.max_pages must be a positive number, "
                                          r"got 0"):
        ReadLimits(max_pages=0)
