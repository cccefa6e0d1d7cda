"""Extraction artefacts that must not reach summaries and translations."""

from __future__ import annotations

from pathlib import Path

from engine.documents import read_document, read_text
from engine.documents.model import Block

SPHINX_PAGE = """<html><head><title>4. More Control Flow Tools</title></head><body>
<div class="related" role="navigation"><ul><li><a href="index.html">index</a></li>
<li><a href="modules.html">modules</a> |</li></ul></div>
<div class="document"><div class="body" role="main">
<h1>4. More Control Flow Tools<a class="headerlink" href="#more" title="Link">¶</a></h1>
<p>Python knows the usual control flow statements.</p>
<div class="highlight"><pre>for w in words: print(w)</pre></div>
</div></div>
<div class="sphinxsidebar" role="navigation"><div><h3>Table of Contents</h3>
<ul><li><a href="#">4.1. if Statements</a></li></ul></div><div><h3>Previous topic</h3></div></div>
<nav><a href="/">Home</a></nav><aside>Sponsored</aside>
<p>After the sidebar, the page goes on.<img class="toc" src="x.png"></p>
</body></html>"""


def test_html_navigation_sidebars_and_permalinks_are_left_out(tmp_path: Path) -> None:
    page = tmp_path / "controlflow.html"
    page.write_text(SPHINX_PAGE, encoding="utf-8")
    text = read_document(page).text()
    assert "# 4. More Control Flow Tools\n" in text + "\n" and "¶" not in text
    assert "Python knows the usual control flow statements." in text
    assert "for w in words" in text
    for furniture in ("index", "modules", "Table of Contents", "Previous topic", "Home",
                      "Sponsored"):
        assert furniture not in text, furniture
    assert "After the sidebar, the page goes on." in text  # a void element hides nothing


def test_ligatures_are_spelled_out_but_code_and_cjk_punctuation_stay() -> None:
    assert Block("paragraph", "The ﬁle is ﬂat and ﬃcient.").text == "The file is flat and fficient."
    assert Block("code", "x = 'ﬁ'").text == "x = 'ﬁ'"
    assert Block("paragraph", "你好，世界！ x² ½").text == "你好，世界！ x² ½"
    assert "ﬁ" not in read_text("A ﬁne day.\n\nAnother ﬂow.").text()
