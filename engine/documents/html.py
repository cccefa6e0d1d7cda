"""HTML: the page's main text, with headings, list items, paragraphs, code and table rows.

Parsed with the standard library's ``html.parser``, which never fetches anything: no network, no
external resources, no script. Content of script, style, noscript, template, svg, math and head is
dropped; entities are decoded; whitespace collapses as a browser would show it, except in ``pre``.
Navigation, sidebars, banners and page footers are left out, and only the main content is kept
when the page marks it (``html_regions``). Permalink anchors ("¶" after Sphinx headings) are
dropped, and ligature characters become letters (``cleanup.fix_characters``).
"""

from __future__ import annotations

import codecs
import dataclasses
import re
from html.parser import HTMLParser

from engine.documents.cleanup import fix_characters
from engine.documents.html_regions import Regions, main_blocks
from engine.documents.limits import ReadGuard, ReadLimits
from engine.documents.model import Block, BlockKind
from engine.documents.text import decode_document

_SKIPPED = {"script", "style", "noscript", "template", "svg", "math", "head", "iframe", "object"}
_BLOCKS = {"p", "div", "section", "article", "header", "footer", "main", "nav", "aside",
           "blockquote", "figure", "figcaption", "address", "dl", "dt", "dd", "form", "fieldset",
           "hr", "body", "html", "details", "summary", "center", "caption", "legend"}
_HEAD_CONTENT = {"title", "meta", "link", "style", "script", "base", "noscript", "template"}
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_SPACE = re.compile(r"[ \t\n\r\f\xa0]+")
_META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?\s*([\w.:-]+)", re.IGNORECASE)
# What browsers actually use for these labels (WHATWG Encoding Standard).
_ENCODING_ALIASES = {"iso-8859-1": "cp1252", "latin1": "cp1252", "us-ascii": "cp1252",
                     "ascii": "cp1252", "gb2312": "gb18030", "gbk": "gb18030"}
_FEED_CHARS = 1 << 20  # one guard check per megabyte of markup
# Classes of permalink anchors: Sphinx, markdown-it-anchor, AnchorJS, Docusaurus, Jupyter, Hugo...
_PERMALINK_CLASSES = {"headerlink", "header-anchor", "anchorjs-link", "hash-link", "anchor-link",
                      "heading-anchor", "permalink", "anchor", "zola-anchor", "heading-link"}
# What a permalink shows: a sign, a word, or nothing (an icon in an <svg>).
_PERMALINK_SYMBOLS = {"", "¶", "#", "§", "🔗", "🔗\ufe0f", "⚓", "⚓\ufe0f", "∞", "link",
                      "permalink"}
_TRAILING_PILCROW = re.compile(r"\s*[¶🔗]\ufe0f?$")


class _Table:
    """Rows of one table being read; a cell is open between <td>/<th> and its end."""

    def __init__(self) -> None:
        self.rows: list[list[str]] = []
        self.row: list[str] | None = None
        self.cell: list[str] | None = None

    def open_cell(self) -> None:
        self.close_cell()
        if self.row is None:
            self.row = []
        self.cell = []

    def close_cell(self) -> None:
        if self.cell is not None and self.row is not None:
            self.row.append(_SPACE.sub(" ", "".join(self.cell)).strip())
        self.cell = None

    def close_row(self) -> None:
        self.close_cell()
        if self.row is not None and any(self.row):
            self.rows.append(self.row)
        self.row = None

    def text(self) -> str:
        self.close_row()
        return "\n".join("\t".join(row) for row in self.rows)


class _TextExtractor(HTMLParser):
    """Collects blocks from parser events; never resolves or fetches anything."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[Block] = []
        self._skip: list[str] = []
        self._buffer: list[str] = []
        self._kind: BlockKind = "paragraph"
        self._level = 0
        self._lists = 0
        self._items: list[int] = []  # levels of the open <li> elements, outermost first
        self._pre = 0
        self._tables: list[_Table] = []
        self.regions = Regions()
        self.flags: list[tuple[bool, bool]] = []  # per block: (in main content, dropped)
        # An open link that may be a permalink: the text list it writes to, and where it began.
        self._link: tuple[list[str], int] | None = None

    def _emit(self, block: Block) -> None:
        self.blocks.append(block)
        self.flags.append((self.regions.in_main, self.regions.dropped))

    def flush(self) -> None:
        """Ends the block being collected (if it has any text) and goes back to paragraphs."""
        self._end_anchor()  # a link still open ends with its block
        text = "".join(self._buffer)
        self._buffer = []
        if self._kind == "code":
            text = text.strip("\n")
        else:
            lines = (_SPACE.sub(" ", line).strip() for line in text.split("\n"))
            text = "\n".join(line for line in lines if line)
            if self._kind == "heading":  # a permalink sign no anchor rule caught
                text = _TRAILING_PILCROW.sub("", text)
        if text.strip():
            self._emit(Block(self._kind, text, level=self._level))
        # Back to what the enclosing element makes of loose text: <li><p>x</p></li> is an item.
        if self._pre:
            self._kind, self._level = "code", 0
        elif self._items:
            self._kind, self._level = "list_item", self._items[-1]
        else:
            self._kind, self._level = "paragraph", 0

    def _start_block(self, kind: BlockKind, level: int = 0) -> None:
        self.flush()
        self._kind, self._level = kind, level

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._starttag(tag, attrs)
        if not self._skip:  # after the block before the element has ended
            self.regions.start(tag, attrs)

    def _anchor(self, attrs: list[tuple[str, str | None]]) -> None:
        """Notes a link that may be a permalink: by its class, or in a heading by its href."""
        self._end_anchor()  # links do not nest: a browser ends the open one here
        values = dict(attrs)
        in_heading = self._kind == "heading" and not self._tables
        if _PERMALINK_CLASSES.intersection((values.get("class") or "").split()) or (
                in_heading and (values.get("href") or "").startswith("#")):
            cell = self._tables[-1].cell if self._tables else None
            target = self._buffer if not self._tables else cell
            if target is not None:
                self._link = (target, len(target))

    def _end_anchor(self) -> None:
        """Drops a possible permalink's text when it is only a sign ("¶", "#", "🔗", none).

        Only then: some generators wrap the heading's own text in such a link.
        """
        if self._link is not None:
            target, start = self._link
            if "".join(target[start:]).strip().lower() in _PERMALINK_SYMBOLS:
                del target[start:]
        self._link = None

    def _starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._skip and self._skip[-1] == "head" and tag not in _HEAD_CONTENT:
            self._skip.pop()  # <head> is often never closed: browsers end it here
        if tag in _SKIPPED:
            self._skip.append(tag)
            return
        if self._skip:
            return
        if tag == "a":  # in a table cell too (Sphinx puts "¶" after constants in tables)
            self._anchor(attrs)
            return
        table = self._tables[-1] if self._tables else None
        if tag == "table":
            if table is None:
                self.flush()
            self._tables.append(_Table())
        elif table is not None:
            if tag == "tr":
                table.close_row()
            elif tag in ("td", "th"):
                table.open_cell()
            elif table.cell is not None and (tag in _BLOCKS or tag in ("br", "li")):
                table.cell.append(" ")  # cells hold one line; block breaks become spaces
        elif tag in _HEADINGS:
            self._start_block("heading", _HEADINGS[tag])
        elif tag == "li":
            level = max(self._lists - 1, 0)
            del self._items[level:]  # an unclosed <li> before this one ends here
            self._items.append(level)
            self._start_block("list_item", level)
        elif tag in ("ul", "ol"):
            self.flush()
            self._lists += 1
        elif tag == "pre":
            self.flush()
            self._pre += 1
            self._kind = "code"
        elif tag == "br":
            self._buffer.append("\n")
        elif tag in _BLOCKS:
            self.flush()

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _SKIPPED:  # <svg/> or <br/>: nothing to skip, nothing left open
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        skipping = bool(self._skip)
        self._endtag(tag)
        if not skipping:  # after the block inside the element has ended
            self.regions.end(tag)

    def _endtag(self, tag: str) -> None:
        if tag == "a":
            self._end_anchor()
            return
        if tag in self._skip:
            # The innermost one: an <svg> inside an <svg> ends before the outer one does.
            del self._skip[len(self._skip) - 1 - self._skip[::-1].index(tag):]
            return
        if self._skip:
            return
        if self._tables:
            table = self._tables[-1]
            if tag in ("td", "th"):
                table.close_cell()
            elif tag == "tr":
                table.close_row()
            elif tag == "table":
                self._tables.pop()
                text = table.text()
                if self._tables:  # a nested table becomes text in the outer cell
                    outer = self._tables[-1]
                    if outer.cell is None:
                        outer.open_cell()
                    assert outer.cell is not None
                    outer.cell.append(" " + _SPACE.sub(" ", text))
                elif text:
                    self._emit(Block("table", text))
            return
        if tag in ("ul", "ol"):
            self._lists = max(self._lists - 1, 0)
            del self._items[self._lists:]  # items left open inside the list end with it
            self.flush()
        elif tag == "li":
            if self._items:
                self._items.pop()
            self.flush()
        elif tag == "pre":
            self._pre = max(self._pre - 1, 0)
            self.flush()
        elif tag in _HEADINGS or tag in _BLOCKS:
            self.flush()

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._tables:
            table = self._tables[-1]
            if table.cell is None:
                if not data.strip():
                    return
                table.open_cell()  # text outside any cell (a caption, stray text) still counts
            assert table.cell is not None
            table.cell.append(data)
        elif self._kind == "code":
            self._buffer.append(data)
        else:
            self._buffer.append(_SPACE.sub(" ", data))

    def finish(self) -> list[Block]:
        """Closes everything left open (real pages often leave tags unclosed)."""
        self.close()
        while self._tables:
            self.handle_endtag("table")
        self.flush()
        blocks = []
        for index in main_blocks(self.flags):
            block = self.blocks[index]
            text = block.text if block.kind == "code" else fix_characters(block.text)
            blocks.append(block if text == block.text else dataclasses.replace(block, text=text))
        return blocks


def declared_encoding(data: bytes) -> str | None:
    """The encoding a ``<meta charset>`` near the start declares, if it is one Python knows."""
    match = _META_CHARSET.search(data[:4096])
    if match is None:
        return None
    label = match.group(1).decode("ascii", errors="replace").lower()
    label = _ENCODING_ALIASES.get(label, label)
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return None
    # An ASCII-readable <meta> cannot be in UTF-16/32; such a declaration is wrong by definition.
    return None if name.startswith(("utf-16", "utf-32")) else name


def read_html(data: bytes, guard: ReadGuard, limits: ReadLimits) -> list[Block]:
    """An HTML file's visible text as blocks in reading order."""
    text = decode_document(data, guard, limits, declared=declared_encoding(data))
    # html.parser rescans to the end of the text for every "<" that no ">" follows (quadratic on
    # "<a <a <a ..."); such a "<" can never start a tag, so it is handed over as text.
    last = text.rfind(">")
    text = text[:last + 1] + text[last + 1:].replace("<", "&lt;")
    extractor = _TextExtractor()
    for start in range(0, len(text), _FEED_CHARS):
        guard.check()
        extractor.feed(text[start : start + _FEED_CHARS])
    return extractor.finish()
