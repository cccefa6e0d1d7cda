"""HTML pages read for their content: main-content markers, navigation and other page chrome
left out, permalink anchors dropped from headings, in linear time on hostile markup."""

from __future__ import annotations

import time
from pathlib import Path

from engine.documents import Block, Document, read_document


def read_page(tmp_path: Path, page: str, name: str = "page.html") -> Document:
    path = tmp_path / name
    path.write_text(page, encoding="utf-8")
    return read_document(path)


def texts(document: Document) -> list[str]:
    return [block.text for block in document.blocks]


SPHINX = """<!DOCTYPE html><html><head><title>argparse</title></head><body>
<div class="related" role="navigation"><h3>Navigation</h3><ul><li><a href="genindex.html">index
</a></li><li><a href="modules.html">modules</a> |</li></ul></div>
<div class="document"><div class="documentwrapper"><div class="bodywrapper">
<div class="body" role="main">
<section id="argparse"><h1>argparse — Parser<a class="headerlink" href="#argparse"
 title="Permalink to this heading">¶</a></h1>
<p>The argparse module makes it easy to write command-line interfaces.</p>
<dl class="py class"><dt class="sig" id="argparse.ArgumentParser">
<span>class argparse.ArgumentParser</span><a class="headerlink"
 href="#argparse.ArgumentParser">¶</a></dt>
<dd><p>Create a new parser.</p></dd></dl>
<table><tr><th>Name</th><th>Value</th></tr><tr><td><span>MAX_PREC</span><a class="headerlink"
 href="#MAX_PREC">¶</a></td><td>425000000</td></tr></table>
</section></div></div></div>
<div class="sphinxsidebar" role="navigation"><h3>Table of Contents</h3><ul><li>argparse</li>
</ul><h4>Previous topic</h4><p>time</p></div></div>
<div class="footer">© Copyright 2001-2024, Python Software Foundation.</div>
<p>Stray text after the footer.</p>
</body></html>"""


def test_sphinx_page_is_its_body_without_permalinks(tmp_path: Path) -> None:
    document = read_page(tmp_path, SPHINX)
    assert document.blocks == [
        Block("heading", "argparse — Parser", level=1),
        Block("paragraph", "The argparse module makes it easy to write command-line interfaces."),
        Block("paragraph", "class argparse.ArgumentParser"),
        Block("paragraph", "Create a new parser."),
        Block("table", "Name\tValue\nMAX_PREC\t425000000"),
    ]


def test_permalink_anchors_of_other_generators(tmp_path: Path) -> None:
    page = """<h2 id="install"><a class="header-anchor" href="#install">#</a> Install</h2>
    <h2>Setup <a href="#setup" aria-label="Permalink">🔗</a></h2>
    <h2>Usage<a href="#usage"></a></h2>
    <h3>Using C#</h3><h3><a href="#intro">Introduction</a></h3><h3>Plain title ¶</h3>
    <h3><a class="header-anchor" href="#wrapped">Wrapped title</a></h3>
    <h3><a class="anchor" name="old">Old-style anchor</a></h3>
    <p>Jump to <a href="#install">#</a> here.</p>"""
    # A permalink is dropped when it shows only a sign, never when it wraps the heading's text.
    assert texts(read_page(tmp_path, page)) == [
        "Install", "Setup", "Usage", "Using C#", "Introduction", "Plain title", "Wrapped title",
        "Old-style anchor", "Jump to # here."]  # outside headings a "#" link is text


def test_main_and_article_are_the_content(tmp_path: Path) -> None:
    page = """<body><header><p>Lamp Shop</p><nav><a href="/">Home</a></nav></header>
    <div class="banner">Sale!</div>
    <main><article><header><h1>Night lights</h1><p>By Ada</p></header>
    <p>A night light glows softly.</p><aside class="footnote"><p>1. Measured in lux.</p></aside>
    <nav class="toc"><p>On this page</p></nav><footer><p>Tags: light</p></footer></article></main>
    <aside><p>Related posts</p></aside><footer><p>© Lamp Shop</p></footer></body>"""
    # The article's own header, footer and aside belong to it; the page's do not.
    assert texts(read_page(tmp_path, page)) == [
        "Night lights", "By Ada", "A night light glows softly.", "1. Measured in lux.",
        "Tags: light"]


def test_role_main_marks_content_too(tmp_path: Path) -> None:
    page = """<div class="sidebar"><p>Menu</p></div>
    <div role="main"><p>Body text.</p></div><p>Outside.</p>"""
    assert texts(read_page(tmp_path, page)) == ["Body text."]


def test_without_a_main_marker_only_chrome_is_left_out(tmp_path: Path) -> None:
    page = """<header><h1>Site name</h1></header><nav><ul><li>Home</li></ul></nav>
    <div id="cookie-banner"><p>We use cookies.</p></div>
    <div class="onetrust-consent-sdk"><p>Accept all</p></div>
    <div class="cookie-recipe"><p>Mix flour and sugar.</p></div>
    <h2>Recipe</h2><p>Bake for ten minutes.</p><div hidden><p>Secret</p></div>
    <ul role="navigation"><li>Next</li></ul><form role="search"><p>Search</p></form>
    <div class="breadcrumbs"><p>Home › Recipes</p></div>
    <aside><p>Ads</p></aside><footer><p>Contact us</p></footer>"""
    assert texts(read_page(tmp_path, page)) == ["Mix flour and sugar.", "Recipe",
                                                 "Bake for ten minutes."]


def test_a_page_that_is_all_navigation_still_reads(tmp_path: Path) -> None:
    page = "<nav><ul><li>Home</li><li>About</li></ul></nav>"
    assert texts(read_page(tmp_path, page)) == ["Home", "About"]


def test_an_end_tag_closes_regions_left_open_inside_it(tmp_path: Path) -> None:
    page = """<article><p>One</p><nav><p>Menu</p></article>
    <article><p>Two</p></article><div class="body"><div><p>Three</p></div></div><p>Four</p>"""
    # Without the implicit end of the <nav>, "Two" would be lost; nested <div>s close the right
    # region, so "Four" is outside the body.
    assert texts(read_page(tmp_path, page)) == ["One", "Two", "Three"]


def test_ligatures_and_typographic_spaces_in_html(tmp_path: Path) -> None:
    page = "<p>The ﬁle&thinsp;is ﬂat.</p><pre>x = 'ﬁ'</pre>"
    assert read_page(tmp_path, page).blocks == [Block("paragraph", "The file is flat."),
                                                Block("code", "x = 'ﬁ'")]


def test_deeply_nested_and_unclosed_regions_read_in_linear_time(tmp_path: Path) -> None:
    pages = {
        "nested.html": '<div class="body">' + "<div>" * 100_000 + "<p>Deep</p>"
                       + "</div>" * 100_001 + "<p>After</p>",
        "unclosed.html": "<main><p>Start</p>" + "<nav><div>" * 50_000 + "</main><p>End</p>",
        "sidebar.html": '<div class="sphinxsidebar">' + "<div>" * 100_000 + "x"
                        + "</div>" * 100_001 + "<p>Visible</p>",
        "anchors.html": "<h2>" + '<a href="#x">¶' * 100_000 + "</h2><p>Text</p>",
    }
    expected = {"nested.html": ["Deep"], "unclosed.html": ["Start"],
                "sidebar.html": ["Visible"], "anchors.html": ["Text"]}
    for name, page in pages.items():
        started = time.perf_counter()
        document = read_page(tmp_path, page, name)
        assert time.perf_counter() - started < 10, name
        assert texts(document) == expected[name], name
