"""DOCX: every paragraph translated in place, its runs' formatting kept, saved as a new file.

The archive goes through ``engine.documents.zipcheck`` first (zip bombs, DTDs, encryption), so
python-docx only parses XML without entities. Paragraphs of the body (tables and content controls
included), of text boxes, and of headers and footers are translated; everything else in the file
(styles, numbering, pictures, section settings) is written back untouched.

A paragraph is one unit. Runs of the formatting most of its text has are plain text; every other
run's formatting (bold, italic, a colour, any ``w:rPr``) is a protected span around its words, and
so is a hyperlink, so the translation brings the emphasis to the translated words wherever they
end up. Runs holding anything but text (pictures, fields, footnote marks), bookmarks and other
elements are protected atoms, put back as the very same XML. Tabs and line breaks inside runs are
atoms too. After translation the paragraph's children are rebuilt from these pieces (its
``w:pPr`` stays), so the paragraph count never changes.
"""

from __future__ import annotations

import copy
import os
import re
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from engine.documents.limits import ReadGuard, ReadLimits
from engine.documents.text import check_chars
from engine.documents.zipcheck import check_docx_archive
from engine.translate.protect import Parts, Rule, Token, new_pair
from engine.translate.rules import web_rules

RULES: list[Rule] = web_rules()
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_XML_SPACE = "{http://www.w3.org/XML/1998/namespace}space"
_RUN_TEXT = {f"{_W}t", f"{_W}rPr", f"{_W}tab", f"{_W}br", f"{_W}cr", f"{_W}noBreakHyphen",
             f"{_W}softHyphen", f"{_W}lastRenderedPageBreak"}
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_CHECK_EVERY = 200


def _key(properties: Any) -> bytes:
    from lxml import etree

    return b"" if properties is None else bytes(etree.tostring(properties))


def _is_text_run(element: Any) -> bool:
    return element.tag == f"{_W}r" and all(child.tag in _RUN_TEXT for child in element)


class DocxLayout:
    """A Word document opened for translation (after the archive safety checks).

    Args:
        path: the .docx file.
        limits: read limits (archive size, text size, time).
        should_stop: cancels the read.

    Raises:
        DocumentError: a file that is not a safe, readable Word document.
    """

    rules = RULES

    def __init__(self, path: Path, limits: ReadLimits | None = None,
                 should_stop: Callable[[], bool] | None = None) -> None:
        limits = limits or ReadLimits()
        guard = ReadGuard(path.name, limits.timeout_s, should_stop)
        check_docx_archive(path, guard, limits)
        import docx  # python-docx pulls in lxml: only when a DOCX is translated
        from docx.opc.constants import RELATIONSHIP_TYPE

        try:
            self.document = docx.Document(str(path))
        except Exception as error:  # python-docx raises KeyError, ValueError, lxml errors...
            detail = " ".join(str(error).split())[:200] or type(error).__name__
            raise guard.fail(f"not a readable Word document ({detail}); open it in Word and "
                             "save a new copy") from None
        roots = [self.document.element.body]
        for relation in self.document.part.rels.values():
            if relation.reltype in (RELATIONSHIP_TYPE.HEADER, RELATIONSHIP_TYPE.FOOTER) \
                    and not relation.is_external:
                roots.append(relation.target_part.element)
        self.paragraphs = [p for root in roots for p in root.iter(f"{_W}p")]
        # The body's own paragraphs (what ``text`` shows); rebuilding keeps these elements.
        self._body = [p._p for p in self.document.paragraphs]
        self._base: list[Any] = []
        self._applied = 0  # paragraphs rebuilt so far
        self.units: list[Parts] = []
        chars = 0
        for index, paragraph in enumerate(self.paragraphs):
            if index % _CHECK_EVERY == 0:
                guard.check()
            parts, base = self._read(paragraph)
            self.units.append(parts)
            self._base.append(base)
            chars += sum(len(p) for p in parts if isinstance(p, str))
            check_chars(chars, guard, limits)

    def _read(self, paragraph: Any) -> tuple[Parts, Any]:
        """The paragraph's parts, and the run properties of its plain text."""
        runs = [r for child in paragraph for r in (child if child.tag == f"{_W}hyperlink"
                                                   else [child]) if _is_text_run(r)]
        weight: Counter[bytes] = Counter()
        for run in runs:
            weight[_key(run.find(f"{_W}rPr"))] += sum(len(t.text or "")
                                                      for t in run.iter(f"{_W}t"))
        base_key = weight.most_common(1)[0][0] if weight else b""
        base = next((r.find(f"{_W}rPr") for r in runs
                     if _key(r.find(f"{_W}rPr")) == base_key), None)
        parts: Parts = []
        for child in paragraph:
            if child.tag == f"{_W}pPr":
                continue
            if child.tag == f"{_W}hyperlink" and len(child) and all(_is_text_run(r) or
                                                                    r.tag == f"{_W}proofErr"
                                                                    for r in child):
                opening, closing = new_pair(("link", child), ("link", child))
                parts.append(opening)
                self._runs([r for r in child if _is_text_run(r)], base_key, parts)
                parts.append(closing)
            elif _is_text_run(child):
                self._runs([child], base_key, parts)
            elif child.tag != f"{_W}proofErr":
                parts.append(Token(("element", child)))
        return _merge_spans(parts), base

    def _runs(self, runs: list[Any], base_key: bytes, parts: Parts) -> None:
        for run in runs:
            properties = run.find(f"{_W}rPr")
            content: Parts = []
            for child in run:
                if child.tag == f"{_W}t":
                    content.append(child.text or "")
                elif child.tag not in (f"{_W}rPr", f"{_W}lastRenderedPageBreak"):
                    content.append(Token(("inrun", child)))
            if _key(properties) == base_key:
                parts.extend(content)
            else:
                opening, closing = new_pair(("format", properties), ("format", properties))
                parts.extend([opening, *content, closing])

    def apply(self, translated: Sequence[Parts | None], count: int | None = None) -> None:
        """Rebuilds the translated paragraphs from their parts (None: left untouched), the
        first ``count`` of them (all when None); each paragraph is rebuilt only once, so a
        stream can apply finished paragraphs while the rest is translated."""
        stop = len(self.paragraphs) if count is None else min(count, len(self.paragraphs))
        for index in range(self._applied, stop):
            parts = translated[index]
            if parts is not None:
                _rebuild(self.paragraphs[index], self._base[index], parts)
        self._applied = max(self._applied, stop)

    @property
    def needs(self) -> list[int]:
        """For each body paragraph of ``text``, the last unit it shows: its own, or a text box
        paragraph inside it."""
        index = {id(p): i for i, p in enumerate(self.paragraphs)}
        return [max(index.get(id(q), -1) for q in p.iter(f"{_W}p")) for p in self._body]

    def piece(self, index: int, translated: Sequence[Parts | None] = ()) -> str:
        """Body paragraph ``index`` of ``text`` with the line break before it (read from the
        document: ``apply`` its units first)."""
        text = self._body[index].text
        return f"\n{text}" if index else text

    def save(self, path: Path) -> None:
        """Writes the document to ``path`` through a temporary file (never half-written)."""
        temporary = path.with_name(f".{path.name}.partial-{os.getpid()}")
        try:
            self.document.save(str(temporary))
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)

    def text(self) -> str:
        """The body's paragraphs as plain text, one per line."""
        return "".join(self.piece(i) for i in range(len(self._body)))


def _merge_spans(parts: Parts) -> Parts:
    """Adjacent spans of the same formatting become one (Word splits runs for spell checking and
    revisions), and adjacent strings are joined."""
    merged: Parts = []
    for part in parts:
        previous = merged[-1] if merged else None
        if isinstance(part, Token) and part.role == "open" and isinstance(previous, Token) \
                and previous.role == "close" and _same_format(previous, part):
            merged.pop()
            closing = next(p for p in reversed(parts) if isinstance(p, Token)
                           and p.pair == part.pair and p.role == "close")
            closing.pair = previous.pair  # the earlier span now ends where this one ends
            continue
        if isinstance(part, str) and isinstance(previous, str):
            merged[-1] = previous + part
            continue
        merged.append(part)
    return [p for p in merged if not isinstance(p, str) or p]


def _same_format(closing: Token, opening: Token) -> bool:
    a, b = closing.raw, opening.raw
    return isinstance(a, tuple) and isinstance(b, tuple) and a[0] == b[0] == "format" \
        and _key(a[1]) == _key(b[1])


def _run(properties: Any, text: str | None = None) -> Any:
    from docx.oxml import OxmlElement

    run = OxmlElement("w:r")
    if properties is not None:
        run.append(copy.deepcopy(properties))
    if text is not None:
        element = OxmlElement("w:t")
        element.text = _NOT_XML.sub("", text)
        element.set(_XML_SPACE, "preserve")
        run.append(element)
    return run


def _rebuild(paragraph: Any, base: Any, parts: Parts) -> None:
    for child in list(paragraph):
        if child.tag != f"{_W}pPr":
            paragraph.remove(child)
    containers: list[tuple[int | None, Any]] = [(None, paragraph)]
    formats: list[tuple[int | None, Any]] = [(None, base)]
    used: set[int] = set()
    for part in parts:
        container, properties = containers[-1][1], formats[-1][1]
        if isinstance(part, str) or not isinstance(part.raw, tuple):
            text = part if isinstance(part, str) else str(part.raw)
            if text:
                container.append(_run(properties, text))
            continue
        kind, element = part.raw
        if part.role == "open" and kind == "format":
            formats.append((part.pair, element))
        elif part.role == "open":  # a hyperlink: a copy without its old runs
            link = copy.copy(element)
            for child in list(link):
                link.remove(child)
            container.append(link)
            containers.append((part.pair, link))
        elif part.role == "close":
            stack = formats if kind == "format" else containers
            if any(pair == part.pair for pair, _ in stack[1:]):
                while stack[-1][0] != part.pair:
                    stack.pop()
                stack.pop()
        else:
            if id(element) in used:  # never move one element twice
                element = copy.deepcopy(element)
            used.add(id(element))
            if kind == "inrun":
                run = _run(properties)
                run.append(element)
                container.append(run)
            else:
                container.append(element)
