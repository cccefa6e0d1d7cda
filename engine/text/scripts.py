"""Unicode ranges of the East Asian scripts, written once.

Each constant is the inside of a regex character class (``[...]``), so a caller composes the
set it means: CJK text is spaced differently (no space between two ideographs), wraps between
any two characters and ends sentences with full-width marks.
"""

from __future__ import annotations

import re

HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # ideographs: extension A, unified, compatibility
KANA = "\u3040-\u30ff\u31f0-\u31ff"  # hiragana, katakana and its phonetic extensions
HANGUL = "\uac00-\ud7af\u1100-\u11ff"  # syllables and jamo
CJK_PUNCTUATION = "\u3000-\u303f\uff00-\uffef"  # ideographic marks and full-width forms

# Characters with no space between them in running text: Chinese and Japanese letters.
CJK_LETTERS = KANA + HAN
# What a line may be broken between, and what joins without a space: letters and their marks.
CJK_WIDE = CJK_LETTERS + CJK_PUNCTUATION

CJK_LETTER = re.compile(f"[{CJK_LETTERS}]")
CJK_WIDE_CHAR = re.compile(f"[{CJK_WIDE}]")
EAST_ASIAN_LETTER = re.compile(f"[{CJK_LETTERS}{HANGUL}]")  # words not split by spaces


def in_ranges(char: str, ranges: str) -> bool:
    """Whether one character falls in ``ranges`` (one of the constants above)."""
    return re.fullmatch(f"[{ranges}]", char) is not None
