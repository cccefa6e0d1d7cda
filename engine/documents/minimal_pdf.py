"""A minimal valid PDF written by hand: what the self-test reads through the PDF reader (and its
child process) in a bundle, and what the tests build their PDFs with."""

from __future__ import annotations

import zlib
from collections.abc import Sequence


def _pdf_string(text: str) -> str:
    # A PDF string ends at an unbalanced ")"; backslashes escape.
    return "(" + text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"


def placed_text(lines: Sequence[tuple[float, float, str]], size: float = 10) -> bytes:
    """A compressed content stream (a ``make_pdf`` page) with Helvetica text lines placed at
    (x, y) in points from the bottom left: paragraphs, indents and columns for the tests."""
    ops = [f"BT /F1 {size:g} Tf"]
    ops += [f"1 0 0 1 {x:g} {y:g} Tm {_pdf_string(text)} Tj" for x, y, text in lines]
    ops.append("ET")
    return zlib.compress("\n".join(ops).encode("latin-1"))


def _outline_objects(entries: Sequence[tuple[int, str, int]], page_ids: list[int],
                     first_id: int) -> dict[int, bytes]:
    """Bookmark objects for (level, title, 0-based page) entries, level 0 at the top; the root
    /Outlines dictionary is ``first_id``."""
    ids = [first_id + 1 + index for index in range(len(entries))]
    parents: list[int] = []
    parent_of: list[int] = []
    for level, _, _ in entries:
        del parents[level:]
        parent_of.append(parents[-1] if parents else first_id)
        parents.append(ids[len(parent_of) - 1])
    children: dict[int, list[int]] = {first_id: []}
    for own, parent in zip(ids, parent_of, strict=True):
        children.setdefault(parent, []).append(own)
        children.setdefault(own, [])
    objects = {}
    for own, (_, title, page), parent in zip(ids, entries, parent_of, strict=True):
        siblings = children[parent]
        at = siblings.index(own)
        links = [f"/Parent {parent} 0 R"]
        if at > 0:
            links.append(f"/Prev {siblings[at - 1]} 0 R")
        if at + 1 < len(siblings):
            links.append(f"/Next {siblings[at + 1]} 0 R")
        if children[own]:
            links.append(f"/First {children[own][0]} 0 R /Last {children[own][-1]} 0 R "
                         f"/Count {len(children[own])}")
        objects[own] = (f"<< /Title {_pdf_string(title)} {' '.join(links)} "
                        f"/Dest [{page_ids[page]} 0 R /XYZ null null null] >>").encode("latin-1")
    top = children[first_id]
    objects[first_id] = (f"<< /Type /Outlines /First {top[0]} 0 R /Last {top[-1]} 0 R "
                         f"/Count {len(top)} >>").encode()
    return objects


def make_pdf(pages: Sequence[str | bytes],
             outline: Sequence[tuple[int, str, int]] = ()) -> bytes:
    """A minimal valid PDF: one Helvetica text line per str page; a bytes page is used as an
    already FlateDecode-compressed content stream (for bombs and pages without text).
    ``outline``: bookmarks as (level, title, 0-based page), level 0 at the top."""
    page_ids = [4 + 2 * index for index in range(len(pages))]
    kids = " ".join(f"{page_id} 0 R" for page_id in page_ids)
    outlines_id = 4 + 2 * len(pages)
    catalog = f" /Outlines {outlines_id} 0 R" if outline else ""
    objects = {1: f"<< /Type /Catalog /Pages 2 0 R{catalog} >>".encode(),
               2: f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode(),
               3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"}
    for page_id, page in zip(page_ids, pages, strict=True):
        objects[page_id] = (f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources "
                            f"<< /Font << /F1 3 0 R >> >> /Contents {page_id + 1} 0 R >>").encode()
        if isinstance(page, str):
            content = f"BT /F1 12 Tf 72 720 Td {_pdf_string(page)} Tj ET".encode("latin-1")
            extra = ""
        else:
            content, extra = page, " /Filter /FlateDecode"
        objects[page_id + 1] = (f"<< /Length {len(content)}{extra} >>\nstream\n".encode()
                                + content + b"\nendstream")
    if outline:
        objects.update(_outline_objects(outline, page_ids, outlines_id))
    out = bytearray(b"%PDF-1.4\n")
    offsets = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += f"{number} 0 obj\n".encode() + objects[number] + b"\nendobj\n"
    xref, size = len(out), max(objects) + 1
    out += f"xref\n0 {size}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offsets[number]:010d} 00000 n \n".encode() for number in range(1, size))
    out += f"trailer\n<< /Size {size} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)
