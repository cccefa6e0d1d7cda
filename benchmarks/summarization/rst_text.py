"""reStructuredText (the Python docs' Sphinx sources) to Markdown-flavoured plain text.

Good enough for the evaluation set, not a reST parser: it keeps what a reader of the rendered page
reads as prose and drops what a summary would never quote.

- Kept: section titles (as ``# Title`` lines), paragraphs, list items (``- item``), the bodies of
  admonitions (note, warning, versionadded, ...), definition-list terms and definitions.
- Dropped: code (literal blocks after ``::``, ``code-block``, doctest blocks and directives),
  tables, comments, labels and link targets, field lists (``:author:``), ``seealso`` boxes,
  footnotes, toctrees, images, index entries.
- Inline markup: roles become their text as Sphinx shows it (``:mod:`re``` -> ``re``,
  ``:func:`len``` -> ``len()``, ``:pep:`8``` -> ``PEP 8``, ``:ref:`text <label>``` -> ``text``),
  ````literal```` -> ``literal``, emphasis and link markup are removed.

Every output block (title, paragraph, list item) is one line; blocks are separated by a blank line.
"""

from __future__ import annotations

import re
import textwrap

# Directives whose body is prose a reader sees; anything not listed here is dropped.
_PROSE_DIRECTIVES = {
    "note", "warning", "important", "tip", "hint", "caution", "attention", "danger", "error",
    "admonition", "impl-detail", "versionadded", "versionchanged", "deprecated",
    "deprecated-removed", "topic", "sidebar", "rubric", "centered", "container", "only",
    "class", "function", "method", "attribute", "data", "exception", "decorator",
    "c:function", "c:type", "c:macro", "c:member", "c:var", "describe", "option", "envvar",
}
_VERSION_LABELS = {
    "versionadded": "New in version {}.",
    "versionchanged": "Changed in version {}.",
    "deprecated": "Deprecated since version {}.",
    "deprecated-removed": "Deprecated since version {}.",
}
_ADORNMENT = re.compile(r"""^([=\-~^*#"+`:.'_])\1{2,}\s*$""")
_DIRECTIVE = re.compile(r"^\.\.\s+([\w:-]+)::\s*(.*)$")
_EXPLICIT = re.compile(r"^\.\.(\s|$)")
_TARGET = re.compile(r"^\.\.\s+_([^:]+):\s*(\S*)")
_FIELD = re.compile(r"^:[\w .-]+:(\s|$)")
_BULLET = re.compile(r"^([-*+•]|\d+[.)]|#\.|\(?[a-zA-Z0-9]\))\s+")
_GRID_TABLE = re.compile(r"^\+[-=+]+\+\s*$")
_SIMPLE_TABLE = re.compile(r"^=+(\s+=+)+\s*$")

_INLINE = re.compile(
    r"(?P<literal>``(?P<lit>.+?)``)"
    r"|(?P<role>:(?P<rolename>[\w.+-]+(?::[\w.+-]+)?):`(?P<roletext>(?:[^`\\]|\\.)+?)`)"
    r"|(?P<link>`(?P<linktext>[^`]+?)`__?)"
    r"|(?P<interp>`(?P<interptext>[^`]+?)`)"
    r"|(?P<strong>\*\*(?P<strongtext>[^*]+?)\*\*)"
    r"|(?P<emph>(?<![\w*])\*(?P<emphtext>[^\s*](?:[^*]*?[^\s*\\])?)\*(?![\w*]))"
    r"|(?P<named>\b(?P<refname>[A-Za-z][\w.-]*[A-Za-z0-9])_(?!\w))"
    r"|(?P<footref>\s?\[(?:#[\w-]*|\d+|\*)\]_)"
    r"|(?P<subst>\|(?P<substname>[\w -]+)\|)"
    r"|(?P<escape>\\(?P<escaped>[\s\S]))"
)
_TITLE_TARGET = re.compile(r"^(.*?)\s*<([^<>]+)>$", re.DOTALL)
_PREFIXES = {"pep": "PEP ", "rfc": "RFC ", "issue": "bpo-", "gh": "gh-"}
_SUBSTITUTIONS = {"release": "3.11", "version": "3.11", "today": ""}


def _role(name: str, text: str, labels: dict[str, str]) -> str:
    """A role's text as Sphinx renders it."""
    text = text.replace("\\", "")
    titled = _TITLE_TARGET.match(text)
    if titled and titled.group(1):
        return titled.group(1)
    if titled:  # `<target>` alone
        text = titled.group(2)
    name = name.split(":")[-1]
    if name in ("ref", "doc"):  # Sphinx shows the title of the section the label names
        return labels.get(text.lower(), text)
    if name in _PREFIXES:
        return _PREFIXES[name] + text
    if name == "samp":
        return text.replace("{", "").replace("}", "")
    if name == "abbr":
        return text.split(" (")[0]
    text = text.lstrip("!")
    if text.startswith("~"):
        text = text[1:].rsplit(".", 1)[-1]
    if name in ("func", "meth") and not text.endswith(")"):
        text += "()"
    return text


def inline(text: str, targets: set[str] | None = None, labels: dict[str, str] | None = None
           ) -> str:
    """Removes inline markup from one paragraph's text (already joined into one line).

    Args:
        text: the paragraph.
        targets: lower-cased names of hyperlink targets; ``Name_`` references to them lose
            the underscore.
        labels: lower-cased section labels and their titles, for ``:ref:`label``` roles.
    """
    targets = targets or set()
    labels = labels or {}

    def replace(match: re.Match[str]) -> str:
        kind = str(match.lastgroup)
        if kind == "literal":
            return match["lit"]
        if kind == "role":
            return _role(match["rolename"], match["roletext"], labels)
        if kind == "link":
            titled = _TITLE_TARGET.match(match["linktext"])
            return titled.group(1) if titled and titled.group(1) else match["linktext"]
        if kind == "named":
            name = match["refname"]
            return name if name.lower() in targets else match[0]
        if kind == "footref":
            return ""
        if kind == "subst":
            return _SUBSTITUTIONS.get(match["substname"], match["substname"])
        if kind == "escape":
            return "" if match["escaped"].isspace() else match["escaped"]
        return match[kind + "text"]  # interp, strong, emph

    return " ".join(_INLINE.sub(replace, text).split())


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _block_end(lines: list[str], start: int, indent: int) -> int:
    """Index after the indented block starting at ``start`` (lines blank or indented > indent)."""
    end = start
    while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > indent):
        end += 1
    return end


def _is_title(lines: list[str], i: int) -> int:
    """How many lines the section title at ``i`` spans (2 or 3), or 0 if there is none."""
    line = lines[i]
    nxt = lines[i + 1] if i + 1 < len(lines) else ""
    if (_ADORNMENT.match(line) and i + 2 < len(lines) and lines[i + 1].strip()
            and lines[i + 2].strip() == line.strip()):
        return 3
    if (line.strip() and _indent(line) == 0 and _ADORNMENT.match(nxt)
            and len(nxt.strip()) >= len(line.strip()) - 1 and not _ADORNMENT.match(line)):
        return 2
    return 0


class _Converter:
    def __init__(self, targets: set[str], labels: dict[str, str]) -> None:
        self.targets = targets
        self.labels = labels
        self.blocks: list[str] = []

    def add(self, text: str, prefix: str = "") -> None:
        text = inline(text, self.targets, self.labels)
        if text:
            self.blocks.append(prefix + text)

    def run(self, lines: list[str]) -> None:
        i = 0
        while i < len(lines):
            line = lines[i]
            stripped = line.strip()
            indent = _indent(line)
            if not stripped:
                i += 1
                continue
            title = _is_title(lines, i)
            if title:
                self.add(lines[i + 1] if title == 3 else line, "# ")
                i += title
                continue
            directive = _DIRECTIVE.match(stripped)
            if directive:
                end = _block_end(lines, i + 1, indent)
                self.directive(directive[1], directive[2], lines[i + 1 : end])
                i = end
                continue
            if _EXPLICIT.match(stripped):  # comment, target, footnote, substitution definition
                i = _block_end(lines, i + 1, indent)
                continue
            if _FIELD.match(stripped):  # :author: and other field lists
                i = _block_end(lines, i + 1, indent)
                continue
            if _GRID_TABLE.match(stripped):  # a grid table runs to the next blank line
                while i < len(lines) and lines[i].strip():
                    i += 1
                continue
            if _SIMPLE_TABLE.match(stripped):
                i = self.skip_simple_table(lines, i)
                continue
            if stripped == "|" or stripped.startswith("| "):  # line block: one block a line
                i = self.line_block(lines, i)
                continue
            if stripped.startswith(">>>"):  # doctest block: up to the next blank line
                while i < len(lines) and lines[i].strip():
                    i += 1
                continue
            i = self.paragraph(lines, i)

    def line_block(self, lines: list[str], i: int) -> int:
        current: list[str] = []
        while i < len(lines) and lines[i].strip():
            stripped = lines[i].strip()
            if stripped == "|" or stripped.startswith("| "):
                self.add(" ".join(current))
                current = [stripped[1:]]
            else:
                current.append(stripped)
            i += 1
        self.add(" ".join(current))
        return i

    def skip_simple_table(self, lines: list[str], i: int) -> int:
        i += 1
        while i < len(lines):
            if _SIMPLE_TABLE.match(lines[i].strip()) and (
                    i + 1 >= len(lines) or not lines[i + 1].strip()):
                return i + 1
            i += 1
        return i

    def paragraph(self, lines: list[str], i: int) -> int:
        """One paragraph or list item; a literal block after ``::`` is skipped with it."""
        first = lines[i]
        indent = _indent(first)
        bullet = _BULLET.match(first.strip())
        text_indent = indent + (bullet.end() if bullet else 0)
        parts = [first.strip()[bullet.end():] if bullet else first.strip()]
        i += 1
        while i < len(lines) and lines[i].strip():
            nxt = lines[i]
            if _indent(nxt) < text_indent or (_indent(nxt) == indent and
                                               _BULLET.match(nxt.strip())):
                break
            if not bullet and len(parts) == 1 and _indent(nxt) > indent:
                break  # a definition-list term: its definition is the next block
            parts.append(nxt.strip())
            i += 1
        text = " ".join(parts)
        literal = text.endswith("::")
        if literal:  # "Text::" shows as "Text:", "Text ::" and a lone "::" show nothing
            text = text[:-1] if text[-3:-2] not in ("", " ") else text[:-2].rstrip()
        self.add(text, "- " if bullet else "")
        if literal:
            while i < len(lines) and not lines[i].strip():
                i += 1
            if i < len(lines) and _indent(lines[i]) > text_indent:
                i = _block_end(lines, i, text_indent)
        return i

    def directive(self, name: str, argument: str, body: list[str]) -> None:
        if name not in _PROSE_DIRECTIVES:
            return
        body = textwrap.dedent("\n".join(body)).splitlines()
        while body and (_FIELD.match(body[0].strip()) or not body[0].strip()):
            body.pop(0)  # directive options
        if name in _VERSION_LABELS:
            version, _, rest = argument.partition(" ")
            self.add(f"{_VERSION_LABELS[name].format(version)} {rest}")
        elif name in ("rubric", "topic", "sidebar", "admonition") and argument:
            self.add(argument, "# ")
        elif name in ("centered",):
            self.add(argument)
        self.run(body)


def link_targets(source: str) -> set[str]:
    """Lower-cased names of the hyperlink targets (``.. _Cython: https://...``) in ``source``."""
    found = (_TARGET.match(line.strip()) for line in source.splitlines())
    return {match[1].strip().lower() for match in found if match and match[2]}


def section_labels(source: str) -> dict[str, str]:
    """Lower-cased section labels (``.. _pep-405:`` before a title) and their titles' text."""
    lines = source.expandtabs(8).splitlines()
    labels: dict[str, str] = {}
    pending: list[str] = []
    for i, line in enumerate(lines):
        target = _TARGET.match(line)
        if target and not target[2]:
            pending.append(target[1].strip().lower())
        elif line.strip() and pending:
            title = _is_title(lines, i)
            if title:
                text = inline(lines[i + 1] if title == 3 else line)
                labels.update(dict.fromkeys(pending, text))
            pending = []
    return labels


def rst_to_text(source: str, targets: set[str] | None = None,
                labels: dict[str, str] | None = None) -> str:
    """Converts reST source to plain text: one line per block, blocks separated by blank lines.

    Args:
        source: the reST text (may be a fragment; it is dedented first).
        targets: hyperlink target names (see ``link_targets``); by default those in ``source``.
        labels: section labels and titles for ``:ref:`` (see ``section_labels``); by default
            those in ``source``.
    """
    source = textwrap.dedent(source.expandtabs(8))
    converter = _Converter(link_targets(source) if targets is None else targets,
                           section_labels(source) if labels is None else labels)
    converter.run(source.splitlines())
    return "\n\n".join(converter.blocks) + "\n"
