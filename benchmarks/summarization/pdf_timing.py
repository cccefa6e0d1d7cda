"""Times ``nightlamp summarize`` on a 50-page PDF made from the evaluation texts.

    NIGHTLAMP_HOME=/tmp/nlbench python benchmarks/summarization/pdf_timing.py \
        [--pages 50] [--methods auto,extractive] [--threads 2] [--length short|medium|long]

The PDF is written by ``write_pdf`` below (standard library only): Helvetica 10 pt, 45 lines a
page, the evaluation documents one after another (HOWTOs first) until the pages are full. Each
method runs the real CLI in a child process (``--json --device cpu --threads N``, and pinned to
N cores with ``taskset`` when the machine has more); the wall time includes start-up, reading
the PDF (PDFium, in the engine's child process) and loading the model.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
LINES_PER_PAGE = 45
CHARS_PER_LINE = 95  # Helvetica 10 pt averages about 5 pt a character on a 504 pt wide column
PAGE_WIDTH, PAGE_HEIGHT, MARGIN, LEADING = 612, 792, 54, 14  # US Letter, points


def _escape(line: str) -> bytes:
    """A PDF literal string in WinAnsi (cp1252); characters it lacks become '?'."""
    raw = line.encode("cp1252", errors="replace")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def layout(texts: list[str], pages: int) -> list[list[str]]:
    """Wraps the texts into ``pages`` pages of lines (blank lines between paragraphs)."""
    lines: list[str] = []
    for text in texts:
        for block in text.split("\n\n"):
            block = block.strip().removeprefix("# ")
            if block:
                lines.extend([*textwrap.wrap(block, CHARS_PER_LINE), ""])
        if len(lines) >= pages * LINES_PER_PAGE:
            break
    if len(lines) < pages * LINES_PER_PAGE:
        raise ValueError(f"not enough text for {pages} pages")
    return [lines[page * LINES_PER_PAGE : (page + 1) * LINES_PER_PAGE] for page in range(pages)]


def write_pdf(path: Path, page_lines: list[list[str]]) -> None:
    """Writes a minimal PDF 1.4: one Helvetica text object per page, uncompressed streams."""
    objects: list[bytes] = []  # object n is objects[n - 1]
    page_ids = [4 + 2 * index for index in range(len(page_lines))]
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = b" ".join(b"%d 0 R" % page_id for page_id in page_ids)
    objects.append(b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(page_ids)))
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica "
                   b"/Encoding /WinAnsiEncoding >>")
    for page_id, lines in zip(page_ids, page_lines, strict=True):
        body = [b"BT /F1 10 Tf %d TL %d %d Td" % (LEADING, MARGIN, PAGE_HEIGHT - MARGIN)]
        body += [b"(%s) Tj T*" % _escape(line) for line in lines]
        stream = b"\n".join([*body, b"ET"])
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Resources "
                       b"<< /Font << /F1 3 0 R >> >> /Contents %d 0 R >>"
                       % (PAGE_WIDTH, PAGE_HEIGHT, page_id + 1))
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, content in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, content)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    path.write_bytes(bytes(out))


def build_pdf(data: Path, path: Path, pages: int) -> dict[str, object]:
    """Writes the PDF from the evaluation set in ``data``; returns what went into it."""
    names = sorted(p.name.removesuffix(".txt") for p in data.glob("*.txt")
                   if not p.name.endswith(".ref.txt"))
    names.sort(key=lambda name: not name.startswith("howto-"))  # HOWTOs first: varied prose
    texts = [(data / f"{name}.txt").read_text(encoding="utf-8") for name in names]
    page_lines = layout(texts, pages)
    write_pdf(path, page_lines)
    words = sum(len(line.split()) for lines in page_lines for line in lines)
    return {"pages": pages, "lines_per_page": LINES_PER_PAGE, "words": words,
            "bytes": path.stat().st_size}


def time_cli(pdf: Path, method: str, threads: int, length: str | None = None,
             model: str | None = None) -> dict[str, object]:
    """Runs ``nightlamp summarize PDF --method M --json`` once; its JSON plus the wall time."""
    cli = Path(sys.executable).with_name("nightlamp")
    command = [str(cli) if cli.exists() else "nightlamp", "summarize", str(pdf),
               "--method", method, "--device", "cpu", "--threads", str(threads), "--json"]
    if length:  # else the CLI's default (medium)
        command += ["--length", length]
    if model:
        command += ["-m", model]
    if shutil.which("taskset") and (os.cpu_count() or 1) > threads:
        command = ["taskset", "-c", ",".join(map(str, range(threads))), *command]
    load = os.getloadavg()[0]  # other work on the machine slows the run; say how much there was
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}: "
                           f"{done.stderr.strip()[-500:]}")
    result = json.loads(done.stdout)
    return {"method": method, "load_average_before": round(load, 2),
            "wall_s": round(wall, 2), "seconds": result.get("seconds"),
            "engine_method": result.get("method"), "chunks": result.get("chunks"),
            "input_tokens": result.get("input_tokens"),
            "summary_words": len(str(result.get("summary", "")).split()),
            "summary": result.get("summary")}


def run(data: Path, out_dir: Path, pages: int, methods: list[str], threads: int,
        length: str | None = None, model: str | None = None) -> dict[str, object]:
    """Builds the PDF, checks the engine reads all its pages, and times each method."""
    from engine.documents import read_document

    out_dir.mkdir(parents=True, exist_ok=True)
    pdf = out_dir / f"eval-{pages}-pages.pdf"
    info = build_pdf(data, pdf, pages)
    document = read_document(pdf)
    info["pages_read"] = document.pages
    info["words_read"] = len(document.text().split())
    runs = []
    for method in methods:
        print(f"pdf: {method} ...", file=sys.stderr, flush=True)
        runs.append(time_cli(pdf, method, threads, length, model))
    return {"pdf": str(pdf), **info, "threads": threads, "length": length or "CLI default",
            "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=50)
    parser.add_argument("--methods", default="auto,extractive")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--length", default=None, help="default: the CLI's (medium)")
    parser.add_argument("-m", "--model", default=None)
    args = parser.parse_args()
    from prepare import prepare

    data = prepare()
    result = run(data, HERE / "results", args.pages, args.methods.split(","), args.threads,
                 args.length, args.model)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
