"""PDF reader: pypdfium2 (PDFium) against pypdf, for speed per page and paragraphs recovered.

    .venv/bin/python benchmarks/pdf_reader.py [--work /tmp/nightlamp-pdf-bench] [--repeat 3]
        [--json results.json]

Needs pypdf (the old reader: ``pip install pypdf``; only this benchmark and the tests use it),
pypdfium2, and for the corpus ghostscript's ``ps2pdf`` and ``groff`` (Debian: ``apt-get install
groff ghostscript``).

Speed corpus: the Debian manuals this machine has (``/usr/share/doc``): two PDFs as shipped and
three PostScript manuals converted with ``ps2pdf``, plus bash(1) typeset with ``groff -man``.
Each reader runs in this process (no child process, no limits), page after page, best of
``--repeat`` runs:

- ``pypdf``: ``PdfReader(path).pages[i].extract_text()`` (what the app ran before);
- ``pdfium text``: ``PdfDocument(path)[i].get_textpage().get_text_range()`` (text only);
- ``pdfium paragraphs``: glyph boxes and ``pdf_paragraphs.page_text`` (what the app runs now).

``read_document s`` is the app's whole read with the new reader, once: the child process's
start (about 0.3 s: a fresh interpreter), extraction, cleanup and blocks.

"Same words": the share of word occurrences (lowercased letters and digits) the two texts have
in common, ``sum(min(a, b)) / sum(max(a, b))`` over the word counts.

Paragraph corpus: documents with known paragraphs (sentences of the GPL-3 and Apache-2.0 texts in
``/usr/share/common-licenses``, 30 paragraphs of 1-7 sentences and a section heading every 6th
paragraph), typeset with ``groff -ms`` and ``ps2pdf`` in six layouts: justified or left-aligned,
indented first lines or a gap between paragraphs, one or two columns. Both readers run the app's
whole pipeline after extraction (``cleanup.clean_pages``, ``text.split_paragraphs``). A paragraph
counts as recovered when one block has exactly its letters and digits (case, spaces, hyphens and
punctuation ignored), or when it continues on the next page and the last block of one page and
the first of the next are exactly its two halves.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import random
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.documents import read_document  # noqa: E402 (after the path set-up)
from engine.documents.cleanup import clean_pages, fix_characters  # noqa: E402
from engine.documents.pdf_child import page_chars  # noqa: E402
from engine.documents.pdf_paragraphs import page_text  # noqa: E402
from engine.documents.text import normalise, split_paragraphs  # noqa: E402

DOC = Path("/usr/share/doc")
SHIPPED = [DOC / "libtasn1-doc/libtasn1.pdf", DOC / "shared-mime-info/shared-mime-info-spec.pdf"]
POSTSCRIPT = [DOC / "valgrind/valgrind_manual.ps.gz", DOC / "bzip2/manual.ps.gz",
              DOC / "gdb/refcard.ps.gz"]
MAN_PAGE = Path("/usr/share/man/man1/bash.1.gz")
LICENSES = [Path("/usr/share/common-licenses/GPL-3"), Path("/usr/share/common-licenses/Apache-2.0")]
# (name, justified, indented first lines, gap between paragraphs, two columns)
LAYOUTS = [("justified-gap", True, False, True, False),
           ("justified-indent", True, True, False, False),
           ("ragged-indent", False, True, False, False),
           ("ragged-gap", False, False, True, False),
           ("two-column-justified-indent", True, True, False, True),
           ("two-column-ragged-gap", False, False, True, True),
           # No indent and no gap: only a short last line shows where a paragraph ends.
           ("justified-flush", True, False, False, False),
           ("ragged-flush", False, False, False, False)]
PARAGRAPHS = 30
_PAGE_NUMBER = re.compile(r"\W*\d+\W*")


# --- corpus -------------------------------------------------------------------------------------

def _run(command: list[str], stdin: bytes | None = None) -> bytes:
    done = subprocess.run(command, input=stdin, capture_output=True, check=False)
    if done.returncode:
        sys.exit(f"{command[0]} failed: {done.stderr.decode(errors='replace')[-500:]}")
    return done.stdout


def speed_corpus(work: Path) -> list[Path]:
    """The Debian manuals as PDFs (converted once into ``work``)."""
    found = [path for path in SHIPPED if path.is_file()]
    for source in POSTSCRIPT:
        target = work / f"{source.parent.name}.pdf"
        if source.is_file() and not target.exists():
            (work / "in.ps").write_bytes(gzip.decompress(source.read_bytes()))
            _run(["ps2pdf", str(work / "in.ps"), str(target)])
        if target.exists():
            found.append(target)
    target = work / "bash.1.pdf"
    if MAN_PAGE.is_file() and not target.exists():
        postscript = _run(["groff", "-man", "-Tps"], gzip.decompress(MAN_PAGE.read_bytes()))
        (work / "in.ps").write_bytes(postscript)
        _run(["ps2pdf", str(work / "in.ps"), str(target)])
    if target.exists():
        found.append(target)
    return found


def _sentences() -> list[str]:
    text = " ".join(path.read_text(encoding="utf-8") for path in LICENSES if path.is_file())
    text = " ".join(text.split())
    found = re.split(r"(?<=[.;:])\s+(?=[A-Z])", text)
    return [sentence for sentence in found
            if 6 <= len(sentence.split()) <= 45 and sentence.isascii()
            and not re.search(r"[\\\"<>_]|^[.']|\d\.", sentence)]


def known_paragraphs(seed: int) -> list[tuple[str, str]]:
    """(kind, text) pairs: "heading" or "paragraph"."""
    rng = random.Random(seed)
    sentences = _sentences()
    found: list[tuple[str, str]] = []
    for index in range(PARAGRAPHS):
        if index % 6 == 3:
            found.append(("heading", f"Section {index // 6 + 1}: " + " ".join(
                rng.choice(sentences).split()[:4]).rstrip(".,;:")))
        count = rng.choice([1, 2, 3, 3, 4, 5, 7])
        found.append(("paragraph", " ".join(rng.choice(sentences) for _ in range(count))))
    return found


def troff(items: list[tuple[str, str]], justified: bool, indented: bool, gap: bool,
          columns: bool) -> str:
    """groff -ms source for the items in one layout (10 pt on 12 pt, US Letter)."""
    lines = [".nr PS 10", ".nr VS 12", f".nr PD {'0.5v' if gap else '0'}",
             f".nr PI {'3n' if indented else '0'}", ".nr HM 1i", ".nr FM 1i", ".nr LL 6.5i",
             ".nr PO 1i"]
    lines += [".TL", "A document with known paragraphs", ".LP"]
    if columns:
        lines.append(".2C")
    for kind, text in items:
        if kind == "heading":
            lines += [".SH", text]
        lines.append(".PP" if indented else ".LP")
        lines.append(".ad b" if justified else ".ad l")
        if kind == "paragraph":
            lines.append(text)
    return "\n".join(lines) + "\n"


def paragraph_corpus(work: Path, first_seed: int) -> list[tuple[str, Path, list[str]]]:
    """(layout, PDF, expected paragraphs, title and headings included) for each layout."""
    found = []
    for seed, (name, justified, indented, gap, columns) in enumerate(LAYOUTS, start=first_seed):
        items = known_paragraphs(seed)
        target = work / f"paragraphs-{name}.pdf"
        postscript = _run(["groff", "-ms", "-Tps"],
                          troff(items, justified, indented, gap, columns).encode())
        (work / "in.ps").write_bytes(postscript)
        _run(["ps2pdf", str(work / "in.ps"), str(target)])
        expected = ["A document with known paragraphs", *(text for _, text in items)]
        found.append((name, target, expected))
    return found


# --- readers ------------------------------------------------------------------------------------

def pypdf_pages(path: Path) -> list[str]:
    from pypdf import PdfReader

    logging.getLogger("pypdf").setLevel(logging.CRITICAL)  # as the old child process did

    return [page.extract_text() or "" for page in PdfReader(path).pages]


def pdfium_text_pages(path: Path) -> list[str]:
    import pypdfium2

    document = pypdfium2.PdfDocument(path)
    return [document[index].get_textpage().get_text_range().replace("\r\n", "\n")
            for index in range(len(document))]


def pdfium_paragraph_pages(path: Path) -> list[str]:
    import pypdfium2

    document = pypdfium2.PdfDocument(path)
    return [page_text(page_chars(document[index].get_textpage()))
            for index in range(len(document))]


READERS: dict[str, Callable[[Path], list[str]]] = {
    "pypdf": pypdf_pages, "pdfium text": pdfium_text_pages,
    "pdfium paragraphs": pdfium_paragraph_pages}


def timed(reader: Callable[[Path], list[str]], path: Path, repeat: int) -> tuple[float, list[str]]:
    best, pages = float("inf"), []
    for _ in range(repeat):
        started = time.perf_counter()
        pages = reader(path)
        best = min(best, time.perf_counter() - started)
    return best, pages


def words(pages: list[str]) -> Counter[str]:
    """Word counts after the app's character repair (ligature glyphs spelled out)."""
    return Counter(re.findall(r"[a-z0-9]+", fix_characters(" ".join(pages)).lower()))


def same_words(first: Counter[str], second: Counter[str]) -> float:
    union = sum((first | second).values())
    return sum((first & second).values()) / union if union else 1.0


def blocks(pages: list[str]) -> list[tuple[int, str]]:
    """(page, paragraph) as the app makes them from page texts."""
    cleaned = clean_pages([normalise(text) for text in pages])
    return [(number, paragraph) for number, text in enumerate(cleaned, start=1)
            for paragraph in split_paragraphs(text)]


def _key(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def recovered(expected: list[str], found: list[tuple[int, str]]) -> tuple[int, int]:
    """(paragraphs recovered, blocks that are no expected paragraph nor half of one).

    Page numbers are left out first: cleanup drops them only when three pages have one at the
    same place, and these documents have three to five pages, the first without a number.
    """
    found = [(page, text) for page, text in found if not _PAGE_NUMBER.fullmatch(text)]
    keys = {_key(text) for _, text in found}
    joined = {_key(first) + _key(second): (first, second)
              for (page, first), (next_page, second) in pairwise(found)
              if next_page == page + 1}
    hits, used = 0, set()
    for text in expected:
        key = _key(text)
        if key in keys:
            hits += 1
            used.add(key)
        elif key in joined:
            hits += 1
            used.update(_key(half) for half in joined[key])
    return hits, sum(_key(text) not in used for _, text in found)


# --- main ---------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/nightlamp-pdf-bench"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--seed", type=int, default=0,
                        help="first seed of the paragraph documents (another: other sentences)")
    args = parser.parse_args()
    if not (shutil.which("ps2pdf") and shutil.which("groff")):
        sys.exit("needs ps2pdf and groff (apt-get install groff ghostscript)")
    args.work.mkdir(parents=True, exist_ok=True)
    results: dict[str, list[dict[str, Any]]] = {"speed": [], "paragraphs": []}

    print("| PDF | pages | pypdf ms/page | pdfium text ms/page | pdfium paragraphs ms/page "
          "| same words | read_document s |")
    print("|---|---|---|---|---|---|---|")
    for path in speed_corpus(args.work):
        row: dict[str, Any] = {"pdf": path.name}
        texts = {}
        for name, reader in READERS.items():
            seconds, texts[name] = timed(reader, path, args.repeat)
            row[name] = 1000 * seconds / max(len(texts[name]), 1)
        row["pages"] = len(texts["pypdf"])
        row["same words"] = same_words(words(texts["pypdf"]), words(texts["pdfium text"]))
        started = time.perf_counter()
        read_document(path)
        row["read_document s"] = time.perf_counter() - started
        results["speed"].append(row)
        print(f"| {path.name} | {row['pages']} | {row['pypdf']:.1f} | {row['pdfium text']:.1f} "
              f"| {row['pdfium paragraphs']:.1f} | {100 * row['same words']:.1f}% "
              f"| {row['read_document s']:.2f} |")

    print("\n| layout | pages | paragraphs | pypdf recovered | pdfium recovered "
          "| pdfium extra blocks | pdfium paragraphs ms/page |")
    print("|---|---|---|---|---|---|---|")
    for name, path, expected in paragraph_corpus(args.work, args.seed):
        old = blocks(pypdf_pages(path))
        seconds, pages = timed(pdfium_paragraph_pages, path, args.repeat)
        new = blocks(pages)
        (old_hits, _), (new_hits, extra) = recovered(expected, old), recovered(expected, new)
        row = {"layout": name, "pages": len(pages), "paragraphs": len(expected),
               "pypdf": old_hits, "pdfium": new_hits, "extra": extra,
               "ms/page": 1000 * seconds / len(pages)}
        results["paragraphs"].append(row)
        print(f"| {name} | {len(pages)} | {len(expected)} | {old_hits} | {new_hits} | {extra} "
              f"| {row['ms/page']:.1f} |")
    total = sum(row["paragraphs"] for row in results["paragraphs"])
    for name in ("pypdf", "pdfium"):
        hits = sum(row[name] for row in results["paragraphs"])
        print(f"{name}: {hits}/{total} paragraphs recovered")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
