"""HTML page regions: is the parser inside the page's main content, or inside page chrome?

A web page carries navigation, sidebars, banners and footers around its content, and all of it
would reach a summary. The HTML reader asks ``Regions`` at every block it emits and keeps the
main content afterwards (``main_blocks``):

- main content: ``<main>``, ``<article>``, ``role="main"``, and Sphinx's ``div.body`` and
  ``div.document``;
- always dropped: ``<nav>``, ``role`` navigation or search, the classes sphinxsidebar,
  breadcrumb(s), skip-link and navigation, Sphinx's ``div.related`` and ``div.footer``, cookie
  and consent banners, elements marked ``hidden``;
- dropped outside main content only: ``<header>``, ``<footer>``, ``<aside>``, the roles
  banner, contentinfo and complementary, the classes sidebar and toc (inside an article a
  header holds its title, and docutils writes footnotes and sidebars as ``<aside>``).

Only open region elements are tracked (a stack, with a count of open elements per tag name so
nested ``<div>``s close the right one, and each tag's stack positions so an end tag finds its
region at once), so the cost stays linear in the markup whatever its nesting. An end tag
closes the region elements left open inside it, as a browser would.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Literal

RegionKind = Literal["main", "chrome", "page"]

# Block-level elements that can open a region (the reader ends a block at each of them, so a
# block never straddles a region's edge).
REGION_TAGS = frozenset({"div", "section", "article", "main", "nav", "aside", "header", "footer",
                         "form", "ul", "ol", "dl", "details", "figure", "blockquote", "center"})
_MAIN_TAGS = {"main", "article"}
_CHROME_TAGS = {"nav"}
_PAGE_TAGS = {"header", "footer", "aside"}
_MAIN_ROLES = {"main"}
_CHROME_ROLES = {"navigation", "search"}
_PAGE_ROLES = {"banner", "contentinfo", "complementary"}
_MAIN_CLASSES = {"body", "document"}  # Sphinx, on a div
_CHROME_CLASSES = {"sphinxsidebar", "breadcrumb", "breadcrumbs", "skip-link", "navigation"}
_CHROME_DIV_CLASSES = {"related", "footer"}  # Sphinx; too common a word on other elements
_PAGE_CLASSES = {"sidebar", "toc"}
_BANNER_WORDS = ("banner", "notice", "bar", "popup", "dialog", "modal", "message", "law",
                 "policy", "warning", "alert", "overlay")


def _is_cookie_banner(names: Sequence[str]) -> bool:
    """A cookie or consent banner by its class or id ("cookie-notice", "onetrust-consent")."""
    for name in names:
        name = name.lower()
        if "consent" in name or "gdpr" in name:
            return True
        if "cookie" in name and any(word in name for word in _BANNER_WORDS):
            return True
    return False


def region_kind(tag: str, attrs: list[tuple[str, str | None]]) -> RegionKind | None:
    """What an element with these attributes makes of its content, if anything."""
    values = {name: value or "" for name, value in attrs}
    role = values.get("role", "").strip().lower()
    classes = values.get("class", "").split()
    if "hidden" in values or role in _CHROME_ROLES or tag in _CHROME_TAGS:
        return "chrome"
    if _CHROME_CLASSES.intersection(classes) or (tag == "div" and
                                                 _CHROME_DIV_CLASSES.intersection(classes)):
        return "chrome"
    if _is_cookie_banner([*classes, values.get("id", "")]):
        return "chrome"
    if role in _MAIN_ROLES or tag in _MAIN_TAGS or (tag == "div" and
                                                    _MAIN_CLASSES.intersection(classes)):
        return "main"
    if role in _PAGE_ROLES or tag in _PAGE_TAGS or _PAGE_CLASSES.intersection(classes):
        return "page"
    return None


class Regions:
    """The region elements open at the parser's position."""

    def __init__(self) -> None:
        self._open: Counter[str] = Counter()  # open elements per region tag name
        self._stack: list[tuple[str, int, RegionKind]] = []  # (tag, its depth, kind)
        self._positions: dict[str, list[int]] = {}  # stack positions of each tag's regions
        self._kinds: Counter[RegionKind] = Counter()

    @property
    def in_main(self) -> bool:
        """Inside main content."""
        return self._kinds["main"] > 0

    @property
    def dropped(self) -> bool:
        """Inside chrome, or inside a page-level header, footer or aside."""
        return self._kinds["chrome"] > 0 or self._kinds["page"] > 0

    def start(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """An element opened (call after the reader has ended the block before it)."""
        if tag not in REGION_TAGS:
            return
        self._open[tag] += 1
        kind = region_kind(tag, attrs)
        if kind == "page" and self.in_main:
            return  # an article's own header or footer is part of it
        if kind is not None:
            self._positions.setdefault(tag, []).append(len(self._stack))
            self._stack.append((tag, self._open[tag], kind))
            self._kinds[kind] += 1

    def end(self, tag: str) -> None:
        """An element closed (call after the reader has ended the block inside it)."""
        if tag not in REGION_TAGS or self._open[tag] == 0:
            return
        depth = self._open[tag]
        self._open[tag] -= 1
        positions = self._positions.get(tag)
        if not positions or self._stack[positions[-1]][1] != depth:
            return  # this element opened no region
        # Regions opened inside this one and left open end with it. Each removed entry is the
        # newest of its tag, and every entry is removed once: linear overall, however nested.
        start = positions[-1]
        for open_tag, _, kind in reversed(self._stack[start:]):
            self._positions[open_tag].pop()
            self._kinds[kind] -= 1
        del self._stack[start:]


def main_blocks(flags: Sequence[tuple[bool, bool]]) -> list[int]:
    """Indexes of the blocks to keep, given each block's (in main content, dropped) flags.

    The main content's blocks when the page marks any; else every block outside chrome; else
    (a page that is all navigation) every block, so the page still reads as something.
    """
    main = [index for index, (in_main, dropped) in enumerate(flags) if in_main and not dropped]
    if main:
        return main
    kept = [index for index, (_, dropped) in enumerate(flags) if not dropped]
    return kept or list(range(len(flags)))
