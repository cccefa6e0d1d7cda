"""HTML: text translated, every tag, attribute, comment and entity-free byte around it kept.

The standard library's ``html.parser`` (never fetches anything) reports each token with its
position, so the page is cut into its exact source slices and written back slice by slice: what
is not translated comes out byte for byte as it went in. Text between block boundaries is one
unit; inline elements inside it (``a``, ``b``, ``em``, ``span``...) are protected spans, so a
translator moves whole words around a link without breaking it, and ``code``/``kbd``/``samp``/
``var`` elements, images and line breaks are protected atoms. Nothing inside ``script``, ``style``,
``pre``, ``textarea``, ``svg``, ``math``, ``template`` or ``noscript`` is touched. Translated text
is escaped again (``&``, ``<``, ``>``; non-breaking spaces as ``&nbsp;``), so entities stay valid.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser

from engine.documents.limits import ReadGuard
from engine.translate.protect import Parts, Rule, Token, new_pair
from engine.translate.rules import web_rules

RULES: list[Rule] = web_rules()
_VERBATIM = {"script", "style", "pre", "textarea", "svg", "math", "template", "noscript",
             "xmp", "plaintext", "iframe", "object"}
_CODE = {"code", "kbd", "samp", "var"}
_INLINE = {"a", "abbr", "b", "bdi", "bdo", "big", "cite", "data", "del", "dfn", "em", "font",
           "i", "ins", "label", "mark", "q", "ruby", "rb", "rt", "rp", "s", "small", "span",
           "strike", "strong", "sub", "sup", "time", "tt", "u"}
_INLINE_VOID = {"br", "img", "wbr", "input"}
_FEED_CHARS = 1 << 20
_CHECK_EVERY = 16  # tokens between time checks


class _Tokenizer(HTMLParser):
    """Records where each token starts; the slices between starts are the exact source."""

    def __init__(self, text: str, guard: ReadGuard | None) -> None:
        super().__init__(convert_charrefs=False)
        self.guard = guard
        self.line_starts = [0]
        position = text.find("\n")
        while position >= 0:
            self.line_starts.append(position + 1)
            position = text.find("\n", position + 1)
        self.tokens: list[tuple[str, int, str]] = []  # (kind, start, tag)

    def _add(self, kind: str, tag: str = "") -> None:
        if self.guard is not None and len(self.tokens) % _CHECK_EVERY == 0:
            self.guard.check()  # html.parser can be slow on broken markup: stay in the time limit
        line, offset = self.getpos()
        self.tokens.append((kind, self.line_starts[line - 1] + offset, tag))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._add("start", tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._add("void", tag)

    def handle_endtag(self, tag: str) -> None:
        self._add("end", tag)

    def handle_data(self, data: str) -> None:
        self._add("text")

    def handle_entityref(self, name: str) -> None:
        self._add("text")

    def handle_charref(self, name: str) -> None:
        self._add("text")

    def handle_comment(self, data: str) -> None:
        self._add("other")

    def handle_decl(self, decl: str) -> None:
        self._add("other")

    def handle_pi(self, data: str) -> None:
        self._add("other")

    def unknown_decl(self, data: str) -> None:
        self._add("other")


def tokenize(text: str, guard: ReadGuard | None = None) -> list[tuple[str, str, str]]:
    """(kind, exact source slice, tag name) for every token; the slices join to ``text``.

    Raises:
        DocumentError: the guard's time limit passed, or its caller asked to stop.
    """
    parser = _Tokenizer(text, guard)
    # html.parser rescans to the end of the text for every "<" that no ">" follows (quadratic
    # on "<a <a <a ..."); such a "<" can never start a tag, so the parser sees a stand-in of the
    # same length there (positions stay exact; the slices still come from the real text).
    last = text.rfind(">")
    seen = text[:last + 1] + text[last + 1:].replace("<", "\x00")
    for start in range(0, len(seen), _FEED_CHARS):
        if guard is not None:
            guard.check()
        parser.feed(seen[start:start + _FEED_CHARS])
    parser.close()
    starts = [start for _, start, _ in parser.tokens] + [len(text)]
    if not parser.tokens or starts[0] != 0:
        starts.insert(0, 0)
        parser.tokens.insert(0, ("text", 0, ""))
    return [(kind, text[starts[i]:starts[i + 1]], tag)
            for i, (kind, _, tag) in enumerate(parser.tokens)]


@dataclass
class _Unit:
    parts: Parts = field(default_factory=list)
    raw: list[str] = field(default_factory=list)
    opened: list[tuple[str, Token]] = field(default_factory=list)  # open inline tags
    index: int = -1

    def add_text(self, raw: str) -> None:
        self.raw.append(raw)
        self.parts.append(html.unescape(raw))

    def add_token(self, raw: str, token: Token) -> None:
        self.raw.append(raw)
        self.parts.append(token)


class HtmlLayout:
    """An HTML page as exact source slices and translatable units of text."""

    rules = RULES

    def __init__(self, text: str, guard: ReadGuard | None = None) -> None:
        self.items: list[str | _Unit] = []
        self.units_: list[_Unit] = []
        self._unit: _Unit | None = None
        self._read(tokenize(text, guard))

    @property
    def units(self) -> list[Parts]:
        return [unit.parts for unit in self.units_]

    def _close(self) -> None:
        unit, self._unit = self._unit, None
        if unit is None:
            return
        if any(isinstance(p, str) and p.strip() for p in unit.parts):
            unit.index = len(self.units_)
            self.units_.append(unit)
            self.items.append(unit)
        else:
            self.items.extend(unit.raw)

    def _open(self) -> _Unit:
        if self._unit is None:
            self._unit = _Unit()
        return self._unit

    def _read(self, tokens: list[tuple[str, str, str]]) -> None:
        skip: list[str] = []  # the verbatim or code element being copied, and its nesting
        code: list[str] = []  # raw slices of an inline code element (one atom)
        for kind, raw, tag in tokens:
            if skip:
                if kind == "start" and tag == skip[0]:
                    skip.append(tag)
                elif kind == "end" and tag == skip[0]:
                    skip.pop()
                if code:
                    code.append(raw)
                    if not skip:
                        self._open().add_token("".join(code), Token("".join(code)))
                        code = []
                else:
                    self.items.append(raw)
                continue
            if kind == "text":
                if self._unit is None and not raw.strip():
                    self.items.append(raw)
                else:
                    self._open().add_text(raw)
            elif kind == "start" and tag in _CODE:
                skip, code = [tag], [raw]
            elif kind == "start" and tag in _VERBATIM:
                self._close()
                skip = [tag]
                self.items.append(raw)
            elif kind == "start" and tag in _INLINE:
                token = Token(raw)
                self._open().add_token(raw, token)
                self._open().opened.append((tag, token))
            elif kind == "end" and tag in _INLINE and self._unit is not None:
                self._end_inline(tag, raw)
            elif (kind in ("void", "start") and tag in _INLINE_VOID) or \
                    (kind == "void" and tag in _INLINE) or \
                    (kind == "other" and self._unit is not None):
                self._open().add_token(raw, Token(raw))
            else:  # block boundaries, unknown tags, stray end tags, declarations
                self._close()
                self.items.append(raw)
        if code:  # an unclosed <code> at the end of the page
            self._open().add_token("".join(code), Token("".join(code)))
        self._close()

    def _end_inline(self, tag: str, raw: str) -> None:
        unit = self._open()
        if unit.opened and unit.opened[-1][0] == tag:
            _, opening = unit.opened.pop()
            pair_open, closing = new_pair(opening.raw, raw)
            opening.role, opening.pair = "open", pair_open.pair
            unit.add_token(raw, closing)
        else:  # mismatched nesting: keep the tag where it is
            unit.add_token(raw, Token(raw))

    def render(self, translated: Sequence[Parts | None]) -> str:
        """The page with each unit's text replaced (None: the unit as it was, byte for byte)."""
        return "".join(self.piece(index, translated) for index in range(len(self.items)))

    @property
    def needs(self) -> list[int]:
        """For each piece of the output (``piece``), the unit it shows (-1: none)."""
        return [-1 if isinstance(item, str) else item.index for item in self.items]

    def piece(self, index: int, translated: Sequence[Parts | None]) -> str:
        """One source slice, or one unit's text: the pieces in order join to ``render``."""
        item = self.items[index]
        if isinstance(item, str):
            return item
        parts = translated[item.index]
        if parts is None:
            return "".join(item.raw)
        return "".join(escape(part) if isinstance(part, str) else str(part.raw)
                       for part in parts)


def escape(text: str) -> str:
    """Text for an HTML text node: markup characters and non-breaking spaces as entities."""
    return html.escape(text, quote=False).replace("\xa0", "&nbsp;")
