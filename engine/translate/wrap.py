"""Wrapping translated text to a width: at spaces, or between CJK characters, never inside
protected text (a URL, inline code), and never before closing CJK punctuation."""

from __future__ import annotations

import re
import unicodedata

from engine.text.scripts import CJK_WIDE, CJK_WIDE_CHAR
from engine.translate.protect import Parts, Token

_CJK = CJK_WIDE_CHAR
MIN_WIDTH = 20
_NO_BREAK_BEFORE = set("，。！？、；：」』）》】…,.!?;:)]%")
_WRAP_PIECES = re.compile(rf"\s+|[{CJK_WIDE}]|[^\s{CJK_WIDE}]+")


def width(text: str) -> int:
    """Display columns: East Asian wide characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def wrap(parts: Parts, first: int, rest: int) -> list[str]:
    """Translated parts as lines of at most ``first`` then ``rest`` columns (at least 20),
    broken at spaces or between CJK characters, never inside protected text."""
    first, rest = max(first, MIN_WIDTH), max(rest, MIN_WIDTH)
    words: list[list[str]] = [["", ""]]  # [separator before, text]
    for part in parts:
        if isinstance(part, Token):
            words[-1][1] += str(part.raw)
            continue
        for piece in _WRAP_PIECES.findall(part):
            if piece.isspace():
                if words[-1][1]:
                    words.append([" ", ""])
                continue
            previous = words[-1][1]
            breakable = previous and (_CJK.match(piece[0]) or _CJK.match(previous[-1])) \
                and piece[0] not in _NO_BREAK_BEFORE
            if breakable:
                words.append(["", piece])
            else:
                words[-1][1] += piece
    lines: list[str] = []
    current, limit = "", first
    for separator, text in words:
        if not text:
            continue
        candidate = current + (separator if current else "") + text
        if current and width(candidate) > limit:
            lines.append(current)
            current, limit = text, rest
        else:
            current = candidate
    lines.append(current)
    return lines
