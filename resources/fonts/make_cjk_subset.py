"""Builds resources/fonts/NightlampSansSC-Regular.otf: Noto Sans CJK SC cut down to GB2312.

Why: a machine without a CJK font (a fresh Linux, CI, the offscreen Qt platform) draws Chinese as
boxes. The app registers this font as the last fallback, so the Chinese UI and most Chinese text
render everywhere; rarer characters still come from the system's fonts when it has them.

The source is Noto Sans CJK (SIL Open Font License 1.1, see OFL.txt); the subset keeps every
character of GB2312 (6,763 hanzi plus symbols), ASCII and CJK punctuation, and is renamed, as the
licence asks of modified versions. Run once by a maintainer (needs fontTools and Debian's
fonts-noto-cjk):  python resources/fonts/make_cjk_subset.py
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTCollection

SOURCE = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
TARGET = Path(__file__).with_name("NightlampSansSC-Regular.otf")
FAMILY = "Nightlamp Sans SC"


def gb2312_characters() -> set[str]:
    found = set()
    for high in range(0xA1, 0xF8):
        for low in range(0xA1, 0xFF):
            with contextlib.suppress(UnicodeDecodeError):
                found.add(bytes([high, low]).decode("gb2312"))
    return found


def main() -> None:
    collection = TTCollection(str(SOURCE))
    font = next(f for f in collection.fonts
                if "SC" in f["name"].getDebugName(1) and "Mono" not in f["name"].getDebugName(1))
    text = gb2312_characters() | {chr(c) for c in range(0x20, 0x7F)}
    text |= {chr(c) for c in range(0x3000, 0x3040)} | {chr(c) for c in range(0xFF00, 0xFFF0)}
    options = subset.Options()
    options.name_IDs = ["*"]
    options.notdef_outline = True
    subsetter = subset.Subsetter(options)
    subsetter.populate(text="".join(sorted(text)))
    subsetter.subset(font)
    names = font["name"]
    for record in list(names.names):
        if record.nameID in (1, 16):
            names.setName(FAMILY, record.nameID, record.platformID, record.platEncID,
                          record.langID)
        elif record.nameID in (3, 4):
            names.setName(f"{FAMILY} Regular", record.nameID, record.platformID,
                          record.platEncID, record.langID)
        elif record.nameID == 6:
            names.setName("NightlampSansSC-Regular", record.nameID, record.platformID,
                          record.platEncID, record.langID)
    font.save(str(TARGET))
    print(f"{TARGET}: {TARGET.stat().st_size / 1e6:.1f} MB, {len(text)} characters")


if __name__ == "__main__":
    main()
