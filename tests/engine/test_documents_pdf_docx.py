"""PDF and DOCX readers: real content with page numbers and structure, and hostile files (bombs,
encryption, entities, lies in the zip directory) that must end in one readable DocumentError
within the limits, with no child process left behind."""

from __future__ import annotations

import io
import multiprocessing
import os
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from collections.abc import Iterator
from multiprocessing import resource_tracker
from pathlib import Path

import docx
import pytest
from pypdf import PdfReader, PdfWriter  # writes the encrypted test PDFs; the app never uses it

from engine.documents import Block, DocumentError, ReadLimits, read_document
from engine.documents.minimal_pdf import make_pdf, placed_text
from engine.errors import OperationCancelledError

MB = 1024 * 1024


# --- helpers ------------------------------------------------------------------------------------

def zeros_deflated(megabytes: int) -> bytes:
    """``megabytes`` MB of zeros, zlib-compressed a chunk at a time (about 1 KB per MB)."""
    compressor = zlib.compressobj(9)
    chunk = bytes(MB)
    return b"".join([compressor.compress(chunk) for _ in range(megabytes)] + [compressor.flush()])


def encrypted_pdf(user_password: str, owner_password: str | None = None,
                  algorithm: str = "RC4-128") -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf(["Secret plans"]))))
    writer.encrypt(user_password, owner_password, algorithm=algorithm)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def child_pids() -> set[int]:
    """Live (non-zombie) child processes of this process, from /proc."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == os.getpid() and fields[0] != "Z":
                found.add(int(entry.name))
    return found


@pytest.fixture
def no_leftover_children() -> Iterator[None]:
    """Fails the test if it leaves a child process (alive or unreaped) behind."""
    before = child_pids() if Path("/proc").is_dir() else set()
    yield None
    assert multiprocessing.active_children() == []
    if Path("/proc").is_dir():
        # The first "spawn" also starts multiprocessing's resource tracker, which lives on.
        tracker = getattr(resource_tracker._resource_tracker, "_pid", None)
        assert child_pids() - {tracker} <= before


def read_error(path: Path, limits: ReadLimits | None = None, budget_s: float = 20.0) -> str:
    """The DocumentError message for ``path``, asserting it came within ``budget_s``."""
    start = time.monotonic()
    with pytest.raises(DocumentError) as caught:
        read_document(path, limits)
    assert time.monotonic() - start < budget_s
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    return message


# --- PDF ----------------------------------------------------------------------------------------

def test_pdf_pages_keep_their_numbers(tmp_path: Path, no_leftover_children: None) -> None:
    path = tmp_path / "report.pdf"
    path.write_bytes(make_pdf(["Hello page 1", "Hello page 2", "Goodbye (page 3)"]))
    document = read_document(path)
    assert (document.format, document.pages) == ("pdf", 3)
    assert document.blocks == [Block("paragraph", "Hello page 1", page=1),
                               Block("paragraph", "Hello page 2", page=2),
                               Block("paragraph", "Goodbye (page 3)", page=3)]


@pytest.mark.parametrize("algorithm", ["RC4-128", "AES-256"])
def test_pdf_owner_password_only_is_read(tmp_path: Path, algorithm: str) -> None:
    path = tmp_path / "restricted.pdf"
    path.write_bytes(encrypted_pdf("", "owner-secret", algorithm))
    assert [block.text for block in read_document(path).blocks] == ["Secret plans"]


@pytest.mark.parametrize("algorithm", ["RC4-128", "AES-256"])
def test_encrypted_pdf_is_refused(tmp_path: Path, algorithm: str,
                                  no_leftover_children: None) -> None:
    path = tmp_path / "locked.pdf"
    path.write_bytes(encrypted_pdf("user-secret", algorithm=algorithm))
    assert read_error(path) == ("locked.pdf: the PDF is encrypted; remove the password and try "
                                "again")


def test_pdf_reader_needs_neither_pypdf_nor_cryptography(tmp_path: Path) -> None:
    """The child's code, run in a fresh interpreter where both imports fail, opens an AES-256
    owner-locked PDF (PDFium decrypts it by itself)."""
    path = tmp_path / "restricted.pdf"
    path.write_bytes(encrypted_pdf("", "owner-secret", "AES-256"))
    script = (
        "import sys\n"
        "sys.modules.update(pypdf=None, cryptography=None)\n"
        "from multiprocessing import Pipe\n"
        "from engine.documents.pdf_child import extract\n"
        "receiver, sender = Pipe(duplex=False)\n"
        f"extract(sender, {str(path)!r}, 1024, 10)\n"
        "while receiver.poll(1):\n"
        "    try:\n"
        "        print(receiver.recv_bytes().decode())\n"
        "    except EOFError:\n"
        "        break\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=True, cwd=Path(__file__).resolve().parents[2])
    assert done.stdout.split("\n")[:3] == [
        '{"type": "pages", "count": 1}', '{"type": "page", "number": 1, "text": "Secret plans"}',
        '{"type": "done", "skipped": 0}']


def test_pdf_paragraphs_and_columns_are_recovered(tmp_path: Path) -> None:
    one_column = placed_text([
        (72, 720, "The lamp glows in the quiet room at night."),
        (72, 708, "Nobody reads in its light."),
        (72, 684, "A second paragraph follows a gap,"),  # a blank line's worth of space
        (72, 672, "as many documents set them."),
        (90, 660, "An indented first line starts the third,"),  # no gap, an indent
        (72, 648, "as books set them."),
    ])
    left = ["The left column is read first, from the", "top of the page to its bottom, before",
            "any line of the right column, even if", "the writer drew the page across."]
    right = ["The right column starts a new para-", "graph with its indented first line and",
             "goes on to the bottom of the page", "where this short test ends."]
    rows = [(72, 700 - 12 * index, text) for index, text in enumerate(left)]
    rows += [(335 if index == 0 else 320, 700 - 12 * index, text)
             for index, text in enumerate(right)]
    rows.sort(key=lambda row: -row[1])  # line by line across both columns
    path = tmp_path / "layout.pdf"
    path.write_bytes(make_pdf([one_column, placed_text([(220, 740, "Two columns"), *rows])]))
    document = read_document(path)
    assert document.blocks == [
        Block("paragraph", "The lamp glows in the quiet room at night.\nNobody reads in its "
                           "light.", page=1),
        Block("paragraph", "A second paragraph follows a gap,\nas many documents set them.",
              page=1),
        Block("paragraph", "An indented first line starts the third,\nas books set them.",
              page=1),
        Block("paragraph", "Two columns", page=2),
        Block("paragraph", "\n".join(left), page=2),
        Block("paragraph", "The right column starts a new paragraph\nwith its indented first "
                           "line and\ngoes on to the bottom of the page\nwhere this short test "
                           "ends.", page=2),
    ]


@pytest.mark.parametrize(("name", "data", "expected"), [
    ("cut.pdf", make_pdf(["Hello"])[:150], "cut.pdf: the PDF is damaged and cannot be read"),
    ("fake.pdf", b"Just some text, not a PDF.", "fake.pdf: not a PDF file (no %PDF header)"),
    ("zip.pdf", b"PK\x03\x04" + bytes(40), "zip.pdf: not a PDF file (it is a zip archive"),
])
def test_damaged_and_fake_pdfs(tmp_path: Path, name: str, data: bytes, expected: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    assert read_error(path).startswith(expected)


def test_pdf_without_text_says_it_needs_ocr(tmp_path: Path) -> None:
    path = tmp_path / "scan.pdf"
    path.write_bytes(make_pdf([zlib.compress(b"0 0 m 300 300 l S"), zlib.compress(b"")]))
    assert read_error(path) == "scan.pdf: no text found (a scanned PDF needs OCR first)"


def test_pdf_with_too_many_pages_is_refused_before_extraction(tmp_path: Path) -> None:
    path = tmp_path / "thick.pdf"
    path.write_bytes(make_pdf([f"page {index}" for index in range(5)]))
    assert read_error(path, ReadLimits(max_pages=3)).startswith(
        "thick.pdf: too many pages (5, limit 3); split the PDF")


def test_pdf_decompression_bomb_hits_the_memory_cap(tmp_path: Path,
                                                    no_leftover_children: None) -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("the address-space cap is measured from /proc (Linux); elsewhere only the "
                    "timeout applies")
    path = tmp_path / "bomb.pdf"
    path.write_bytes(make_pdf(["cover", zeros_deflated(60)]))  # 60 MB from 60 KB
    message = read_error(path, ReadLimits(memory_mb=32, timeout_s=30))
    assert message == ("bomb.pdf: refused: reading it needs more than 32 MB of memory (the "
                       "limit), which looks like a decompression bomb or a damaged file")


def test_pdf_decompression_bomb_of_200_mb_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bomb.pdf"
    path.write_bytes(make_pdf(["cover", zeros_deflated(200)]))  # 200 MB from 200 KB
    message = read_error(path, ReadLimits(memory_mb=150, timeout_s=30))
    # PDFium has no output limit of its own: it aborts when the cap refuses an allocation.
    assert message.startswith("bomb.pdf: refused: ")
    assert "decompression bomb" in message and "MemoryError" not in message


def test_pdf_timeout_kills_the_child(tmp_path: Path, no_leftover_children: None) -> None:
    path = tmp_path / "slow.pdf"
    path.write_bytes(make_pdf([f"page {index}" for index in range(400)]))
    message = read_error(path, ReadLimits(timeout_s=0.1), budget_s=5)
    assert message.startswith("slow.pdf: timed out after 0.1 s;")


def test_pdf_cancel_kills_the_child(tmp_path: Path, no_leftover_children: None) -> None:
    path = tmp_path / "long.pdf"
    path.write_bytes(make_pdf([f"page {index}" for index in range(400)]))
    polls = []

    def should_stop() -> bool:
        polls.append(time.monotonic())
        return len(polls) > 3  # the parent polls while the child works

    with pytest.raises(OperationCancelledError, match=r"^long\.pdf: reading was cancelled$"):
        read_document(path, should_stop=should_stop)
    assert len(polls) == 4


# --- DOCX ---------------------------------------------------------------------------------------

def make_docx(path: Path) -> Path:
    document = docx.Document()
    document.add_heading("Quarterly report", level=0)  # the Title style
    document.add_heading("Results", level=1)
    document.add_paragraph("Sales grew in every region.")
    document.add_paragraph("first point", style="List Bullet")
    document.add_paragraph("nested point", style="List Bullet 2")
    table = document.add_table(rows=2, cols=2)
    for row, values in zip(table.rows, [("Name", "Value"), ("Lamp", "42")], strict=True):
        for cell, value in zip(row.cells, values, strict=True):
            cell.text = value
    document.add_heading("中文部分", level=2)
    document.add_paragraph("夜灯照亮了房间。")
    document.add_paragraph("")  # empty paragraphs are skipped
    document.save(str(path))
    return path


def rewrite_zip(source: Path, target: Path, replace: dict[str, bytes]) -> Path:
    """A copy of a zip with some entries' contents replaced (or added)."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as new:
        for info in old.infolist():
            new.writestr(info.filename, replace.pop(info.filename, old.read(info)))
        for name, data in replace.items():
            new.writestr(name, data)
    return target


def test_docx_structure_in_document_order(tmp_path: Path) -> None:
    document = read_document(make_docx(tmp_path / "report.docx"))
    assert (document.format, document.pages) == ("docx", None)
    assert document.blocks == [
        Block("heading", "Quarterly report", level=1),
        Block("heading", "Results", level=1),
        Block("paragraph", "Sales grew in every region."),
        Block("list_item", "first point"),
        Block("list_item", "nested point", level=1),
        Block("table", "Name\tValue\nLamp\t42"),
        Block("heading", "中文部分", level=2),
        Block("paragraph", "夜灯照亮了房间。"),
    ]


def test_docx_billion_laughs_is_refused_before_parsing(tmp_path: Path) -> None:
    # Ten levels of ten references each: 10**9 "lol"s if an XML parser expanded them.
    entities = "".join(f'<!ENTITY lol{level} "' + (f"&lol{level - 1};" * 10 if level else "lol")
                       + '">' for level in range(10))
    laughs = (f'<?xml version="1.0"?>\n<!DOCTYPE lolz [{entities}]>\n<w:document xmlns:w='
              '"http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r>'
              "<w:t>&lol9;</w:t></w:r></w:p></w:body></w:document>").encode()
    path = rewrite_zip(make_docx(tmp_path / "ok.docx"), tmp_path / "lol.docx",
                       {"word/document.xml": laughs})
    assert read_error(path, budget_s=5).startswith(
        "lol.docx: refused: word/document.xml declares a DTD or XML entities")
    utf16 = rewrite_zip(make_docx(tmp_path / "ok2.docx"), tmp_path / "wide.docx",
                        {"word/styles.xml": laughs.decode().replace('"1.0"', '"1.0" encoding='
                                                                    '"UTF-16"').encode("utf-16")})
    assert "word/styles.xml declares a DTD" in read_error(utf16, budget_s=5)


def test_docx_zip_bomb_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bomb.docx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/media/zeros.bin", "w") as entry:
            for _ in range(50):
                entry.write(bytes(MB))
    assert path.stat().st_size < MB
    assert read_error(path, ReadLimits(max_total_uncompressed=20 * MB)) == (
        "bomb.docx: refused: the archive expands to 50 MB (limit 20 MB), which looks like a zip "
        "bomb")
    assert read_error(path).startswith(  # default sizes allow 50 MB; the ratio does not
        "bomb.docx: refused: word/media/zeros.bin is compressed ")


def test_docx_with_too_many_entries(tmp_path: Path) -> None:
    path = tmp_path / "many.docx"
    with zipfile.ZipFile(path, "w") as archive:
        for index in range(30):
            archive.writestr(f"part{index}.xml", "<x/>")
    assert read_error(path, ReadLimits(max_zip_entries=10)) == (
        "many.docx: refused: the archive has 30 entries (limit 10), which looks like a zip bomb")
    assert read_error(path) == ("many.docx: not a Word document (a zip archive without "
                                "[Content_Types].xml)")


def test_docx_svg_image_with_doctype_is_not_mistaken_for_an_attack(tmp_path: Path) -> None:
    source = make_docx(tmp_path / "ok.docx")
    with zipfile.ZipFile(source) as archive:
        types = archive.read("[Content_Types].xml").decode()
    types = types.replace("<Default ", '<Default Extension="svg" ContentType="image/svg+xml"/>'
                                       "<Default ", 1)
    svg = (b'<?xml version="1.0"?><!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
           b'"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd"><svg/>')
    path = rewrite_zip(source, tmp_path / "logo.docx",
                       {"[Content_Types].xml": types.encode(), "word/media/logo.svg": svg})
    assert read_document(path).blocks[0] == Block("heading", "Quarterly report", level=1)
    # The same bytes under a name parsed as XML are refused.
    sneaky = rewrite_zip(source, tmp_path / "sneaky.docx", {"word/media/logo.xml": svg})
    assert "word/media/logo.xml declares a DTD" in read_error(sneaky)


def test_docx_whose_directory_understates_a_size(tmp_path: Path) -> None:
    data = bytearray(make_docx(tmp_path / "ok.docx").read_bytes())
    name = b"word/document.xml"
    # Claim 100 bytes in the local header and in the central directory record of the entry.
    local = data.index(name) - 30
    assert data[local:local + 4] == b"PK\x03\x04"
    central = data.rindex(name) - 46
    assert data[central:central + 4] == b"PK\x01\x02"
    struct.pack_into("<I", data, local + 22, 100)
    struct.pack_into("<I", data, central + 24, 100)
    path = tmp_path / "liar.docx"
    path.write_bytes(bytes(data))
    message = read_error(path)
    # zipfile stops at the declared size and then finds the CRC wrong; the scan would stop too.
    assert message.startswith("liar.docx: the document is damaged (Bad CRC-32 for file "
                              "'word/document.xml')")


@pytest.mark.parametrize(("name", "data", "expected"), [
    ("old.docx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(100),
     "old.docx: this is an old Word (.doc) file or a password-protected document"),
    ("text.docx", b"hello, not a zip", "text.docx: not a Word document (not a zip archive)"),
    ("cut.docx", b"PK\x03\x04" + bytes(60), "cut.docx: the document is damaged"),
])
def test_non_docx_files_named_docx(tmp_path: Path, name: str, data: bytes, expected: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    assert read_error(path).startswith(expected)


def test_written_pdf_keeps_parentheses_and_backslashes(tmp_path: Path) -> None:
    """The self-test's PDF writer escapes what would end or bend a PDF string."""
    path = tmp_path / "marks.pdf"
    path.write_bytes(make_pdf(["Lamps (LEDs) use a back\\slash) here"]))
    assert read_document(path).text() == "Lamps (LEDs) use a back\\slash) here"
