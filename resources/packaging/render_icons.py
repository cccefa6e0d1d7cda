"""Renders resources/icons/nightlamp.svg into the raster icons the packages need.

Run after editing the SVG and commit the results:

    .venv/bin/python resources/packaging/render_icons.py

Writes hicolor PNGs (Linux), nightlamp.ico (Windows) and nightlamp.icns (macOS). The ICO and
ICNS containers are written by hand rather than with Qt's image plugins: Qt's writers store one
image per file, and both formats are a small header plus a table of payloads.
"""

from __future__ import annotations

import os
import struct
import sys
from pathlib import Path

# No display is needed: the SVG is rendered into an off-screen image.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
from PySide6.QtGui import QGuiApplication, QImage, QImageWriter, QPainter
from PySide6.QtSvg import QSvgRenderer

ICONS = Path(__file__).resolve().parents[1] / "icons"
SVG = ICONS / "nightlamp.svg"
HICOLOR_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
# ICNS entry types that hold a PNG, with the pixel size each expects (the @2x types repeat sizes).
ICNS_TYPES = (
    (b"ic11", 32), (b"ic12", 64), (b"ic07", 128), (b"ic13", 256),
    (b"ic08", 256), (b"ic14", 512), (b"ic09", 512), (b"ic10", 1024),
)


def render(renderer: QSvgRenderer, size: int) -> QImage:
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    return image


def png_bytes(image: QImage) -> bytes:
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    writer = QImageWriter(buffer, QByteArray(b"png"))
    if not writer.write(image):
        raise RuntimeError(f"Qt could not encode a PNG: {writer.errorString()}")
    buffer.close()
    return bytes(data.data())


def ico_dib(image: QImage) -> bytes:
    """One ICO payload in the classic DIB form: a BITMAPINFOHEADER whose height counts the colour
    rows and the AND mask, 32-bit BGRA rows bottom-up, then an all-zero AND mask (alpha decides
    transparency). Small sizes use this because some Windows components still expect it."""
    size = image.width()
    argb = image.convertToFormat(QImage.Format.Format_ARGB32)
    stride = size * 4
    raw = bytes(argb.constBits())
    rows = [raw[y * argb.bytesPerLine():y * argb.bytesPerLine() + stride] for y in range(size)]
    if sys.byteorder != "little":  # Format_ARGB32 is 0xAARRGGBB words; ICO wants B,G,R,A bytes.
        rows = [bytes(b for i in range(0, stride, 4) for b in reversed(r[i:i + 4])) for r in rows]
    mask_row = ((size + 31) // 32) * 4
    header = struct.pack("<IiiHHIIiiII", 40, size, size * 2, 1, 32, 0, 0, 0, 0, 0, 0)
    return header + b"".join(reversed(rows)) + bytes(mask_row * size)


def write_ico(path: Path, images: dict[int, QImage]) -> None:
    # 256 px goes in as PNG (what Windows Vista and later expect at that size, and far smaller).
    payloads = [(s, png_bytes(images[s]) if s >= 256 else ico_dib(images[s])) for s in ICO_SIZES]
    header = struct.pack("<HHH", 0, 1, len(payloads))
    offset = len(header) + 16 * len(payloads)
    entries = b""
    for size, data in payloads:
        side = 0 if size >= 256 else size  # a 0 byte means 256
        entries += struct.pack("<BBBBHHII", side, side, 0, 0, 1, 32, len(data), offset)
        offset += len(data)
    path.write_bytes(header + entries + b"".join(data for _, data in payloads))


def write_icns(path: Path, images: dict[int, QImage]) -> None:
    body = b""
    for kind, size in ICNS_TYPES:
        data = png_bytes(images[size])
        body += kind + struct.pack(">I", 8 + len(data)) + data
    path.write_bytes(b"icns" + struct.pack(">I", 8 + len(body)) + body)


def main() -> int:
    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841 (keeps Qt up)
    renderer = QSvgRenderer(str(SVG))
    if not renderer.isValid():
        print(f"{SVG}: QtSvg could not parse the file", file=sys.stderr)
        return 1
    sizes = sorted(set(HICOLOR_SIZES) | set(ICO_SIZES) | {s for _, s in ICNS_TYPES})
    images = {size: render(renderer, size) for size in sizes}
    for size in HICOLOR_SIZES:
        out = ICONS / "hicolor" / f"{size}x{size}" / "apps" / "nightlamp.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(png_bytes(images[size]))
    write_ico(ICONS / "nightlamp.ico", images)
    write_icns(ICONS / "nightlamp.icns", images)
    print(f"wrote {len(HICOLOR_SIZES)} PNGs, nightlamp.ico and nightlamp.icns under {ICONS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
