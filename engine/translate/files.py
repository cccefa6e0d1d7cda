"""Which file formats go in and out of a translation, and reading and writing them safely.

The output format follows the output file's suffix (the input's format by default):

- txt and Markdown translate into txt or Markdown with their lines kept (``text``);
- HTML into HTML with its markup kept (``html``), DOCX into a new DOCX (``docx``);
- anything into txt/Markdown through ``engine.documents`` (``blocks``: a PDF, or an HTML or DOCX
  written out as text): the document's blocks as Markdown-flavoured text.

PDF and, from other inputs, HTML and DOCX are never written. Text files are read within the same
limits as ``engine.documents`` (size, binary refusal, encoding detection) and written through a
temporary file, so a failure never leaves half a translation under the output name.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.documents import SUFFIXES, ReadLimits, check_file, read_bytes
from engine.documents.html import declared_encoding
from engine.documents.limits import ReadGuard
from engine.documents.text import decode_document
from engine.errors import ConfigError, DocumentError

WRITABLE = {".txt": "txt", ".text": "txt", ".md": "markdown", ".markdown": "markdown",
            ".html": "html", ".htm": "html", ".docx": "docx"}


@dataclass(frozen=True)
class Plan:
    """How one file is translated.

    Attributes:
        input_kind: txt, markdown, html, pdf or docx (stdin reads as txt).
        output_kind: txt, markdown, html or docx.
        route: ``text``, ``html``, ``docx`` (format kept) or ``blocks`` (read as a document,
            written as Markdown-flavoured text).
    """

    input_kind: str
    output_kind: str
    route: str


def plan(source: Path | None, output: Path | None) -> Plan:
    """Checks that ``source`` (None: stdin) can be translated into ``output`` (None: stdout).

    Raises:
        ConfigError: a combination that cannot be written, or the output is the input.
        DocumentError: an input type that cannot be read.
    """
    if source is None:
        input_kind = "markdown" if output is not None and \
            WRITABLE.get(output.suffix.lower()) == "markdown" else "txt"
    else:
        found = SUFFIXES.get(source.suffix.lower())
        if found is None:
            supported = " ".join(sorted(SUFFIXES))
            raise DocumentError(f"{source.name}: unsupported file type "
                                f"'{source.suffix or '(none)'}'; supported: {supported}")
        input_kind = found
    if output is None:
        if input_kind == "docx":
            raise ConfigError("a translated Word document is a file: add -o NAME.docx (or "
                              "-o NAME.txt for plain text)")
        output_kind = "markdown" if input_kind == "pdf" else input_kind
    else:
        if output.suffix.lower() == ".pdf":
            raise ConfigError(f"-o {output.name}: PDF cannot be written; use -o NAME.md or "
                              "-o NAME.txt")
        kind = WRITABLE.get(output.suffix.lower())
        if kind is None:
            raise ConfigError(f"-o {output.name}: unknown output type "
                              f"'{output.suffix or '(none)'}'; use .txt, .md, .html or .docx")
        output_kind = kind
        if source is not None and _same_file(source, output):
            raise ConfigError(f"-o {output.name} is the input file; choose another name so the "
                              "original is kept")
    text_kinds = ("txt", "markdown")
    if output_kind in text_kinds:
        route = "text" if input_kind in text_kinds else "blocks"
    elif output_kind == input_kind:
        route = output_kind
    else:
        raise ConfigError(f"a {input_kind.upper()} input cannot be written as "
                          f"{output_kind.upper()}; use -o NAME.md or -o NAME.txt")
    return Plan(input_kind, output_kind, route)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (b.exists() and a.samefile(b))
    except OSError:
        return False


def read_text_file(path: Path, kind: str, limits: ReadLimits | None = None,
                   should_stop: Callable[[], bool] | None = None) -> tuple[str, str | None]:
    """A txt, Markdown or HTML file's text, and the encoding an HTML page declares.

    Raises:
        DocumentError: missing, empty, too large, binary or a folder (one line, naming it).
    """
    limits = limits or ReadLimits()
    guard = ReadGuard(path.name, limits.timeout_s, should_stop)
    check_file(path, guard, limits)
    data = read_bytes(path, guard, limits)
    declared = declared_encoding(data) if kind == "html" else None
    text = decode_document(data, guard, limits, declared=declared)
    guard.check()
    return text, declared


def write_text(path: Path, text: str, encoding: str | None = None) -> None:
    """Writes ``text`` through a temporary file; characters the encoding lacks become numeric
    character references (HTML only ever gets a non-UTF-8 encoding)."""
    data = text.encode(encoding or "utf-8", errors="xmlcharrefreplace")
    temporary = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    except OSError as error:
        raise ConfigError(f"cannot write {path} ({error.strerror}); check the folder") from None
    finally:
        temporary.unlink(missing_ok=True)
