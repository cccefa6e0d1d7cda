"""Sentences and words of running text, for English-like and Chinese/Japanese writing alike.

Western sentences end at . ! ? followed by a space and a capital, digit or quote (known
abbreviations such as "e.g." or "Dr." don't end one); CJK sentences end at 。！？ with no space
after. Words for ranking are lower-cased Latin words without the most common function words, and
overlapping pairs of Han/kana characters (CJK has no spaces, and character pairs are the usual
stand-in for words in retrieval).
"""

from __future__ import annotations

import re

_ABBREVIATIONS = {"e.g", "i.e", "etc", "vs", "mr", "mrs", "ms", "dr", "prof", "st", "no", "fig",
                  "cf", "al", "approx", "inc", "ltd", "jr", "sr", "u.s", "p", "pp", "vol"}
_WESTERN_END = re.compile(r"""([.!?…]+["'”’)\]]*)\s+(?=["'“‘(\[]?[A-Z0-9À-ÖØ-Þ])""")
_CJK_END = re.compile(r"([。！？!?；]+[”’」』）]*)")
_CJK_CHAR = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?", re.UNICODE)
_FUNCTION_WORDS = """a an the and or but if of to in on at by for with from as is are was were be
been being it its this that these those there here i you he she we they them his her our their
your my me us not no so than then too very can could would should will shall may might must do
does did done have has had having into over under about after before also just only such which
who whom whose what when where why how all any both each few more most other some own same"""
_STOP_WORDS = frozenset(_FUNCTION_WORDS.split())


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` in order; line breaks inside a paragraph are treated as spaces."""
    sentences: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        flat = " ".join(paragraph.split())
        if not flat:
            continue
        for piece in _CJK_END.sub(r"\1\n", flat).split("\n"):
            sentences.extend(_split_western(piece.strip()))
    return [s for s in sentences if s]


def _split_western(text: str) -> list[str]:
    pieces: list[str] = []
    start = 0
    for match in _WESTERN_END.finditer(text):
        before = text[start:match.start()].rsplit(None, 1)
        last_word = before[-1].lower().rstrip(".") if before else ""
        if match.group(1) == "." and (last_word in _ABBREVIATIONS or len(last_word) == 1):
            continue  # "e.g. Python" or an initial ("J. Smith") does not end a sentence
        pieces.append(text[start:match.end(1)].strip())
        start = match.end()
    pieces.append(text[start:].strip())
    return pieces


def words(sentence: str) -> list[str]:
    """Terms of a sentence for ranking: content words, and CJK character pairs."""
    terms: list[str] = []
    for run in re.findall(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+", sentence):
        terms.extend(run[i:i + 2] for i in range(max(1, len(run) - 1)))
    latin = _CJK_CHAR.sub(" ", sentence)
    terms.extend(w for w in (m.lower() for m in _LATIN_WORD.findall(latin))
                 if w not in _STOP_WORDS and not w.isdigit() and len(w) > 1)
    return terms


def join_sentences(sentences: list[str]) -> str:
    """Sentences back into running text: a space after Western ones, none after CJK ones."""
    text = ""
    for sentence in sentences:
        cjk_to_cjk = bool(_CJK_END.search(text[-1:]) and _CJK_CHAR.match(sentence[:1]))
        if text and not cjk_to_cjk:
            text += " "
        text += sentence
    return text
