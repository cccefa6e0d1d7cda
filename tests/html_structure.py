"""An HTML page's structure with its translatable text taken out, to check that a translated page
is structurally identical to its source (tests/engine/test_translate_integrity.py and
benchmarks/translation/real_docs.py)."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any


class Skeleton(HTMLParser):
    """Tags, attributes, comments and declarations in order (``items``); text only inside pre,
    code, script and style, which must come back as they were; the visible text apart
    (``text``)."""

    _VERBATIM = frozenset({"pre", "code", "script", "style"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.items: list[tuple[Any, ...]] = []
        self.inside: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.items.append(("start", tag, tuple(attrs)))
        if tag in self._VERBATIM:
            self.inside.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.items.append(("void", tag, tuple(attrs)))

    def handle_endtag(self, tag: str) -> None:
        self.items.append(("end", tag))
        if self.inside and self.inside[-1] == tag:
            self.inside.pop()

    def handle_data(self, data: str) -> None:
        if self.inside:
            self.items.append(("text", data))
        else:
            self.text.append(data)

    def handle_comment(self, data: str) -> None:
        self.items.append(("comment", data))

    def handle_decl(self, decl: str) -> None:
        self.items.append(("decl", decl))


def skeleton(page: str) -> Skeleton:
    parser = Skeleton()
    parser.feed(page)
    parser.close()
    return parser


def html_structure(page: str) -> list[tuple[Any, ...]]:
    """An HTML page's tag/attribute sequence with its text removed (code kept)."""
    return skeleton(page).items
