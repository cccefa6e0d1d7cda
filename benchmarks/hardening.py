"""Hostile documents and the offline promise: time and peak memory per case, sockets per command.

    .venv/bin/python benchmarks/hardening.py                   # every document case, then strace
    .venv/bin/python benchmarks/hardening.py --cases html-100mb txt-nul --no-network
    NIGHTLAMP_HOME=/tmp/nlhome .venv/bin/python benchmarks/hardening.py --only-network

Documents: each case's file is built here in a temporary folder (as tests/engine/test_documents*
build theirs), then read by ``engine.documents.read_document`` with the default ``ReadLimits``
in a fresh child process, which reports its outcome (blocks and characters, or the one-line
DocumentError), its wall time and its peak resident memory: its own (``VmHWM``) and that of the
PDF reader's grandchild (``ru_maxrss`` of its children). Any other exception, a crash or the
harness's own timeout is a failure of the hardening, marked ``FAIL``.

Network: ``strace -f -e trace=network`` follows ``nightlamp summarize``, ``generate`` and
``translate`` and lists every socket address family they open; only AF_UNIX (and loopback
AF_INET/AF_INET6, checked by address in connect/bind/sendto) is allowed. ``generate`` and
``translate`` use the default model of ``$NIGHTLAMP_HOME`` (default /tmp/nlhome) when one is
installed, else the tiny model the harness exports itself (needs the train extra).

Not part of the test run; results go in RESULTS.md by hand.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.documents.minimal_pdf import make_pdf  # noqa: E402 (after the path set-up)

MB = 1024 * 1024
CASE_TIMEOUT_S = 300  # the reader's own timeout is 120 s; past this the harness kills the child

# The child: read one document with the default limits and say how it went, as one JSON line.
READER = r"""
import json, resource, sys, time
from pathlib import Path
started = time.perf_counter()
from engine.documents import DocumentError, read_document
imported = time.perf_counter()
try:
    document = read_document(Path(sys.argv[1]))
    outcome = {"result": "read", "blocks": len(document.blocks),
               "chars": sum(len(block.text) for block in document.blocks)}
except DocumentError as error:
    outcome = {"result": "refused", "message": str(error)}
except BaseException as error:  # anything else is a hardening failure
    outcome = {"result": "FAIL", "message": f"{type(error).__name__}: {str(error)[:200]}"}
outcome["read_s"] = time.perf_counter() - imported
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
outcome["self_peak_mb"] = hwm / 1024
outcome["child_peak_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps(outcome), flush=True)
"""


# --- the hostile files --------------------------------------------------------------------------

def zeros_deflated(megabytes: int) -> bytes:
    """``megabytes`` MB of zeros, zlib-compressed a chunk at a time (about 1 KB per MB)."""
    compressor = zlib.compressobj(9)
    chunk = bytes(MB)
    return b"".join([compressor.compress(chunk) for _ in range(megabytes)] + [compressor.flush()])


def _pdf_bomb(path: Path) -> None:
    path.write_bytes(make_pdf(["cover", zeros_deflated(2048)]))  # 2 GB of zeros in ~2 MB


def _pdf_pages(path: Path) -> None:
    path.write_bytes(make_pdf([f"page {index}" for index in range(10_000)]))


def _pdf_encrypted(path: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf(["Secret plans"]))))
    writer.encrypt("user-secret", algorithm="AES-256")
    buffer = io.BytesIO()
    writer.write(buffer)
    path.write_bytes(buffer.getvalue())


def _minimal_docx(path: Path, document_xml: bytes, extra: dict[str, bytes] | None = None) -> None:
    types = (b'<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
             b'content-types"><Default Extension="xml" ContentType="application/xml"/>'
             b'<Override PartName="/word/document.xml" ContentType="application/vnd.openxml'
             b'formats-officedocument.wordprocessingml.document.main+xml"/></Types>')
    rels = (b'<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/'
            b'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.open'
            b'xmlformats.org/officeDocument/2006/relationships/officeDocument" '
            b'Target="word/document.xml"/></Relationships>')
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", types)
        archive.writestr("_rels/.rels", rels)
        archive.writestr("word/document.xml", document_xml)
        for name, data in (extra or {}).items():
            archive.writestr(name, data)


_BODY = (b'<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/'
         b'wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>Hello</w:t></w:r></w:p></w:body>'
         b'</w:document>')


def _docx_zip_bomb(path: Path) -> None:
    _minimal_docx(path, _BODY)
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED, compresslevel=1) as archive, \
            archive.open("word/media/zeros.bin", "w", force_zip64=True) as entry:
        for _ in range(1024):  # 1 GB of zeros in about 4 MB
            entry.write(bytes(MB))


def _docx_laughs(path: Path) -> None:
    entities = "".join(f'<!ENTITY lol{level} "' + (f"&lol{level - 1};" * 10 if level else "lol")
                       + '">' for level in range(10))
    laughs = (f'<?xml version="1.0"?>\n<!DOCTYPE lolz [{entities}]>\n<w:document xmlns:w='
              '"http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r>'
              "<w:t>&lol9;</w:t></w:r></w:p></w:body></w:document>").encode()
    _minimal_docx(path, laughs)


def _html_100mb(path: Path) -> None:
    paragraph = (b"<p>The lamp glowed softly in the quiet room, and the reader turned another "
                 b"page of the long report about regional sales.</p>\n")
    count = (100 * MB - 200) // len(paragraph)  # just under the 100 MB file limit
    with path.open("wb") as out:
        out.write(b"<!doctype html><html><head><title>big</title></head><body>\n")
        for _ in range(count // 1000):
            out.write(paragraph * 1000)
        out.write(b"</body></html>\n")


def _html_under_char_limit(path: Path) -> None:
    """About 19.5 million characters of text: the largest HTML the reader accepts."""
    paragraph = (b"<p>The lamp glowed softly in the quiet room, and the reader turned another "
                 b"page of the long report about regional sales.</p>\n")
    with path.open("wb") as out:
        out.write(b"<!doctype html><html><head><title>big</title></head><body>\n")
        for _ in range(150):
            out.write(paragraph * 1000)
        out.write(b"</body></html>\n")


def _html_nested(path: Path) -> None:
    depth = 100_000
    path.write_bytes(b"<html><body>" + b"<div>" * depth + b"deep text" + b"</div>" * depth
                     + b"</body></html>")


def _txt_bad_utf8(path: Path) -> None:
    path.write_bytes(b"Valid start. " + bytes(range(0x80, 0x100)) * 40 + b"\xc3\x28 \xed\xa0\x80"
                     + b" end.\n")


def _txt_utf16(path: Path) -> None:
    path.write_bytes("\ufeffThe lamp reads. 夜灯照亮了房间。 Ünïcödé.\n".encode("utf-16-le"))


def _txt_nul(path: Path) -> None:
    path.write_bytes(b"Before\x00\x00 the NULs\x00.\n" * 1000)


def _directory(path: Path) -> None:
    path.mkdir()
    (path / "inside.txt").write_text("a file inside the folder\n", encoding="utf-8")


CASES: dict[str, tuple[str, Callable[[Path], None]]] = {
    "pdf-zlib-bomb": ("bomb.pdf", _pdf_bomb),
    "pdf-10000-pages": ("thick.pdf", _pdf_pages),
    "pdf-encrypted": ("locked.pdf", _pdf_encrypted),
    "docx-zip-bomb": ("bomb.docx", _docx_zip_bomb),
    "docx-billion-laughs": ("lol.docx", _docx_laughs),
    "html-100mb": ("big.html", _html_100mb),
    "html-19m-chars": ("large.html", _html_under_char_limit),
    "html-100k-nested": ("deep.html", _html_nested),
    "txt-invalid-utf8": ("bad.txt", _txt_bad_utf8),
    "txt-utf16-bom": ("wide.txt", _txt_utf16),
    "txt-nul-bytes": ("nul.txt", _txt_nul),
    "directory-as-file": ("folder.txt", _directory),
}


def run_case(name: str, folder: Path) -> dict[str, object]:
    file_name, build = CASES[name]
    path = folder / file_name
    build(path)
    size = path.stat().st_size if path.is_file() else 0
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    started = time.perf_counter()
    try:
        child = subprocess.run([sys.executable, "-c", READER, str(path)], capture_output=True,
                               text=True, timeout=CASE_TIMEOUT_S, env=env, cwd=REPO)
    except subprocess.TimeoutExpired:
        return {"case": name, "size_mb": size / MB, "wall_s": CASE_TIMEOUT_S, "result": "FAIL",
                "message": f"no answer within {CASE_TIMEOUT_S} s"}
    wall = time.perf_counter() - started
    lines = [line for line in child.stdout.splitlines() if line.startswith("{")]
    if child.returncode != 0 or not lines:
        outcome: dict[str, object] = {"result": "FAIL", "message": f"exit {child.returncode}: "
                                                                  f"{child.stderr[-300:]}"}
    else:
        outcome = json.loads(lines[-1])
    shutil.rmtree(path) if path.is_dir() else path.unlink()
    return {"case": name, "size_mb": size / MB, "wall_s": wall, **outcome}


def print_cases(rows: list[dict[str, object]]) -> None:
    print(f"{'case':<22}{'file MB':>9}{'read s':>8}{'wall s':>8}{'peak MB':>9}{'child MB':>9}"
          "  outcome")
    for row in rows:
        if row["result"] == "read":
            what = f"read: {row['blocks']} blocks, {row['chars']} chars"
        else:
            what = f"{row['result']}: {row.get('message', '')}"
        print(f"{row['case']:<22}{row['size_mb']:>9.2f}{row.get('read_s', 0):>8.2f}"
              f"{row['wall_s']:>8.2f}{row.get('self_peak_mb', 0):>9.0f}"
              f"{row.get('child_peak_mb', 0):>9.0f}  {what}")


# --- the network check --------------------------------------------------------------------------

_FAMILY = re.compile(r"\b(AF_[A-Z0-9]+|PF_[A-Z0-9]+)\b")
_INET = re.compile(r'sin_addr=inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)"')
_LOOPBACK = ("127.", "::1", "0.0.0.0", "::")


def trace_network(label: str, command: list[str], env: dict[str, str],
                  stdin: str | None = None) -> dict[str, object]:
    """Runs ``command`` under strace; the socket families and non-loopback addresses seen."""
    with tempfile.NamedTemporaryFile("r", suffix=".strace") as log:
        started = time.perf_counter()
        child = subprocess.run(["strace", "-f", "-qq", "-e", "trace=network", "-o", log.name,
                                *command], input=stdin, capture_output=True, text=True,
                               env=env, timeout=600, check=False)
        wall = time.perf_counter() - started
        trace = Path(log.name).read_text(errors="replace")
    families: dict[str, int] = {}
    for line in trace.splitlines():
        if "socket(" in line or "socketpair(" in line:
            for family in _FAMILY.findall(line)[:1]:
                families[family] = families.get(family, 0) + 1
    addresses = {a or b for a, b in _INET.findall(trace)}
    outside = sorted(a for a in addresses if not a.startswith(_LOOPBACK))
    allowed = {"AF_UNIX", "PF_UNIX", "AF_LOCAL", "PF_LOCAL"}
    inet = {"AF_INET", "AF_INET6", "PF_INET", "PF_INET6"}
    verdict = "ok" if set(families) <= allowed | inet and not outside else "FAIL"
    if set(families) & inet and verdict == "ok":
        verdict = "ok (inet sockets, loopback addresses only)"
    return {"command": label, "exit": child.returncode, "wall_s": wall, "families": families,
            "non_loopback_addresses": outside, "syscalls": len(trace.splitlines()),
            "verdict": verdict, "stderr_tail": child.stderr.strip().splitlines()[-1:]}


def _default_model(home: Path) -> str | None:
    env = {**os.environ, "NIGHTLAMP_HOME": str(home)}
    listing = subprocess.run([sys.executable, "-m", "commands", "models", "list"],
                             capture_output=True, text=True, env=env, cwd=REPO, check=False)
    names = [line.split()[0] for line in listing.stdout.splitlines()[1:] if line.strip()]
    return names[0] if listing.returncode == 0 and names else None


def _tiny_model(folder: Path) -> str:
    """A tiny Transformer trained for a few steps and exported (needs the train extra)."""
    import importlib

    from training.export import export_checkpoint
    from training.trainer import train_lm

    sys.path.insert(0, str(REPO / "tests"))
    make_corpus_text = importlib.import_module("conftest").make_corpus_text
    corpus = folder / "corpus.txt"
    corpus.write_text(make_corpus_text(), encoding="utf-8")
    train_lm("transformer", [corpus], folder / "ckpt", steps=40, device="cpu",
             overrides={"eval_every": 40, "eval_batches": 2}, progress=False)
    return str(export_checkpoint(folder / "ckpt", folder / "tiny").folder)


def network_checks(home: Path, scratch: Path) -> list[dict[str, object]]:
    if shutil.which("strace") is None:
        sys.exit("strace is missing: apt-get install -y strace")
    nightlamp = shutil.which("nightlamp", path=str(Path(sys.executable).parent)) or "nightlamp"
    env = {**os.environ, "NIGHTLAMP_HOME": str(home)}
    model = _default_model(home) if home.exists() else None
    if model is None:
        model = _tiny_model(scratch)
        print(f"no model in {home}; using a tiny exported one: {model}")
    else:
        print(f"model: {model} (from {home})")
    document = scratch / "report.txt"
    document.write_text("The lamp glowed in the quiet room. Sales grew in every region this "
                        "quarter. The reader turned another page of the long report.\n" * 20,
                        encoding="utf-8")
    pdf = scratch / "report.pdf"
    pdf.write_bytes(make_pdf(["The lamp glowed in the quiet room.", "Sales grew in every "
                                                                    "region this quarter."]))
    return [
        trace_network("summarize report.txt (extractive)", [nightlamp, "summarize",
                                                              str(document)], env),
        trace_network("summarize report.pdf (extractive, PDF child)",
                      [nightlamp, "summarize", str(pdf)], env),
        trace_network(f"summarize --method abstractive -m {model}",
                      [nightlamp, "summarize", "--method", "abstractive", "-m", model,
                       "--length", "short", str(document)], env),
        trace_network(f"generate -m {model} hi", [nightlamp, "generate", "-m", model,
                                                  "--max-tokens", "16", "hi"], env),
        trace_network(f"translate -m {model} --to de -", [nightlamp, "translate", "-m", model,
                                                           "--to", "de", "-"], env,
                      stdin="The lamp is on.\n"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="*", choices=sorted(CASES), help="default: all")
    parser.add_argument("--no-network", action="store_true", help="skip the strace check")
    parser.add_argument("--only-network", action="store_true", help="skip the documents")
    parser.add_argument("--home", type=Path,
                        default=Path(os.environ.get("NIGHTLAMP_HOME", "/tmp/nlhome")))
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args()
    report: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="nightlamp-hardening-") as scratch:
        if not args.only_network:
            rows = []
            for name in args.cases or CASES:
                rows.append(run_case(name, Path(scratch)))
                print(f"  {name}: {rows[-1]['result']} in {rows[-1]['wall_s']:.1f} s",
                      file=sys.stderr, flush=True)
            print_cases(rows)
            report["documents"] = rows
        if not args.no_network:
            checks = network_checks(args.home, Path(scratch))
            print("\nnetwork (strace -f -e trace=network): socket families per command")
            for check in checks:
                print(f"  {check['command']}: exit {check['exit']}, {check['wall_s']:.1f} s, "
                      f"families {check['families'] or '{} (no socket at all)'}, non-loopback "
                      f"addresses {check['non_loopback_addresses']} -> {check['verdict']}")
                if check["exit"] != 0:
                    print(f"    stderr: {check['stderr_tail']}")
            report["network"] = checks
    if args.json:
        args.json.write_text(json.dumps(report, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
