"""DOCX: headings, list items, paragraphs and tables in document order, via python-docx.

The archive is checked by ``zipcheck`` first (zip bombs, DTDs), so python-docx only ever parses
XML that has no entities. The body's children are walked in order, paragraphs and tables
interleaved, including those wrapped in content controls (``w:sdt``). Headers, footers, footnotes,
comments and text boxes are left out: they rarely belong in a summary.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.documents.limits import ReadGuard, ReadLimits
from engine.documents.model import Block
from engine.documents.text import check_chars
from engine.documents.zipcheck import check_docx_archive

_HEADING_STYLE = re.compile(r"^heading\s+(\d+)$", re.IGNORECASE)
_TRAILING_NUMBER = re.compile(r"(\d+)$")
_CHECK_EVERY = 200  # body items between guard checks
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def _body_elements(container: Any) -> Iterator[Any]:
    """The ``w:p`` and ``w:tbl`` children in order, looking inside content controls."""
    for child in container.iterchildren():
        if child.tag in (f"{_W}p", f"{_W}tbl"):
            yield child
        elif child.tag == f"{_W}sdt":
            content = child.find(f"{_W}sdtContent")
            if content is not None:
                yield from _body_elements(content)


def _list_level(paragraph: Any, style_name: str) -> int | None:
    """The nesting depth of a list paragraph (0 = top), or None when it is not one."""
    properties = paragraph._p.pPr
    numbering = properties.numPr if properties is not None else None
    if numbering is not None and numbering.numId is not None and numbering.numId.val != 0:
        return int(numbering.ilvl.val) if numbering.ilvl is not None else 0
    if style_name.lower().startswith("list"):  # "List Bullet 2" is one level deeper
        number = _TRAILING_NUMBER.search(style_name)
        return max(int(number.group(1)) - 1, 0) if number else 0
    return None


class _StyleNames:
    """Style id -> style name, looked up once per style (python-docx searches the XML)."""

    def __init__(self) -> None:
        self._names: dict[str | None, str] = {}

    def of(self, paragraph: Any) -> str:
        style_id = paragraph._p.style
        if style_id not in self._names:
            style = paragraph.style
            self._names[style_id] = (style.name or "") if style is not None else ""
        return self._names[style_id]


def _paragraph_block(paragraph: Any, styles: _StyleNames) -> Block | None:
    text = paragraph.text.strip()
    if not text:
        return None
    name = styles.of(paragraph)
    if name.lower() == "title":
        return Block("heading", text, level=1)
    heading = _HEADING_STYLE.match(name)
    if heading:
        return Block("heading", text, level=min(max(int(heading.group(1)), 1), 6))
    level = _list_level(paragraph, name)
    if level is not None:
        return Block("list_item", text, level=min(level, 10))
    return Block("paragraph", text)


def _table_block(table: Any) -> Block | None:
    """A table as tab-separated rows; a merged cell appears once per row."""
    rows: list[str] = []
    for row in table.rows:
        cells: list[str] = []
        previous = None
        for cell in row.cells:
            if cell._tc is previous:  # horizontally merged: python-docx repeats the cell
                continue
            previous = cell._tc
            cells.append(" ".join(cell.text.split()))
        if any(cells):
            rows.append("\t".join(cells))
    return Block("table", "\n".join(rows)) if rows else None


def read_docx(path: Path, guard: ReadGuard, limits: ReadLimits) -> list[Block]:
    """A Word document's body as blocks in document order.

    Raises:
        DocumentError: not a DOCX, zip bomb, DTD/entities, encrypted, damaged, too much text.
    """
    check_docx_archive(path, guard, limits)
    import docx  # python-docx: imported only when a DOCX is read (it pulls in lxml)
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(str(path))
    except Exception as error:  # python-docx raises KeyError, ValueError, lxml errors...
        detail = " ".join(str(error).split())[:200] or type(error).__name__
        raise guard.fail(f"not a readable Word document ({detail}); open it in Word and save "
                         "a new copy") from None
    blocks: list[Block] = []
    styles = _StyleNames()
    chars = 0
    for index, element in enumerate(_body_elements(document.element.body)):
        if index % _CHECK_EVERY == 0:
            guard.check()
        if element.tag == f"{_W}p":
            block = _paragraph_block(Paragraph(element, document), styles)
        else:
            block = _table_block(Table(element, document))
        if block is not None:
            blocks.append(block)
            chars += len(block.text)
            check_chars(chars, guard, limits)
    return blocks
