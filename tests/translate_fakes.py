"""Fakes shared by the translation tests (no tests here): a word-by-word English-to-German
translator that records what it was asked and can answer badly on purpose (``DAMAGES``: the
ways small models break answers), an English-to-Chinese word list, and a chat model stand-in
for InstructTranslator (the real engine's generate is replaced in those tests)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from engine.chat_template import CHATML_TEMPLATE
from engine.generation import TextChunk

GERMAN = {
    "the": "die", "a": "ein", "an": "ein", "is": "ist", "are": "sind", "and": "und",
    "of": "von", "with": "mit", "in": "in", "on": "auf", "for": "für", "it": "es", "this": "dies",
    "not": "nicht", "to": "zu", "we": "wir", "see": "siehe", "read": "lies", "lamp": "Lampe",
    "lamps": "Lampen", "night": "Nacht", "bright": "hell", "table": "Tisch", "room": "Zimmer",
    "light": "Licht", "hello": "hallo", "world": "Welt", "item": "Punkt", "text": "Text",
    "first": "erste", "second": "zweite", "title": "Titel", "list": "Liste", "cell": "Zelle",
    "one": "eins", "two": "zwei", "click": "klicke", "here": "hier", "now": "jetzt",
    "bold": "fett", "italic": "kursiv", "code": "Code", "link": "Verweis", "docs": "Doku",
    "quiet": "still", "small": "klein", "big": "groß", "dark": "dunkel", "run": "starte",
    "very": "sehr", "also": "auch", "more": "mehr", "page": "Seite", "header": "Kopf",
    "glows": "leuchtet", "warm": "warm", "soft": "sanft", "every": "jede", "evening": "Abend",
}
CHINESE = {
    "the": "", "a": "一个", "is": "是", "are": "是", "and": "和", "of": "的", "lamp": "灯",
    "night": "夜", "bright": "亮", "room": "房间", "dark": "暗", "light": "光", "read": "读",
    "docs": "文档", "here": "这里", "click": "点击", "page": "页", "first": "第一",
    "next": "下一页",
    "index": "索引", "list": "列表", "title": "标题", "quiet": "安静", "warm": "温暖",
    "small": "小", "table": "桌子", "cell": "格", "see": "见", "now": "现在", "it": "它",
    "with": "和", "on": "在", "in": "在", "to": "到", "we": "我们", "this": "这",
}
_WORD = re.compile(r"[A-Za-z]+")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")
_MARKER = re.compile(r"⟦(\d+)⟧")


def to_german(text: str) -> str:
    """Known words translated (keeping a capital), unknown words upper-cased; anything else
    (placeholders, punctuation, CJK) left as it is."""
    def swap(match: re.Match[str]) -> str:
        word = match.group(0)
        german = GERMAN.get(word.lower())
        if german is None:
            return word.upper()
        return german[0].upper() + german[1:] if word[0].isupper() else german

    return _WORD.sub(swap, text)


def to_chinese(text: str) -> str:
    """Known words as Chinese characters (no spaces between them), the rest as it is."""
    text = _WORD.sub(lambda m: CHINESE.get(m.group(0).lower(), m.group(0)), text)
    return re.sub(r"(?<=[\u4e00-\u9fff]) +(?=[\u4e00-\u9fff])", "", text)


ENGLISH = {german.lower(): english for english, german in reversed(GERMAN.items())}


def to_english(text: str) -> str:
    """``to_german`` undone as far as the word list allows (for round trips)."""
    return _WORD.sub(lambda m: ENGLISH.get(m.group(0).lower(), m.group(0).lower()), text)


# How small models damage answers, each a (segment -> answer) for a German target.
DAMAGES: dict[str, Callable[[str], str]] = {
    # placeholders: partial brackets left, dropped, doubled, one invented
    "mangles placeholders": lambda s: to_german(_MARKER.sub(r"\1⟧ ", s)),
    "drops placeholders": lambda s: to_german(_MARKER.sub("", s)),
    "duplicates placeholders": lambda s: to_german(_MARKER.sub(r"⟦\1⟧⟦\1⟧", s)),
    "invents a placeholder": lambda s: to_german(s) + " ⟦9⟧",
    # look-alike markers of the model's own
    "hourglass markers": lambda s: to_german(_MARKER.sub(r"⌛\1⟧", s)),
    "telephone markers": lambda s: to_german(_MARKER.sub(r"☎\1 ", s)),
    # a label that cannot be stripped (no colon)
    "unstrippable label": lambda s: "German " + to_german(s),
    # another language, another script, ten times too long
    "wrong language": lambda s: "La lampe est dans la chambre et elle est très claire ce soir.",
    "wrong script": lambda s: "夜灯很亮，房间很暗，我们在这里读书。",
    "ten times too long": lambda s: " ".join([to_german(s)] * 10),
}
# The reason each damage is flagged with (placeholder damage: "placeholders", or "markers"
# when the fallback itself is damaged).
DAMAGE_REASONS = {
    "mangles placeholders": {"markers"}, "drops placeholders": {"placeholders"},
    "duplicates placeholders": {"placeholders"},
    "invents a placeholder": {"placeholders", "markers"}, "hourglass markers": {"markers"},
    "telephone markers": {"markers"}, "unstrippable label": {"label"},
    "wrong language": {"language"}, "wrong script": {"script"},
    "ten times too long": {"length"},
}


def damaging(damage: str, trigger: str = "lamp") -> Callable[[str, bool], str]:
    """An answer function that damages every segment holding ``trigger`` (strict or not) the
    way ``DAMAGES[damage]`` says and translates the others faithfully into German."""
    hurt = DAMAGES[damage]
    return lambda segment, strict: hurt(segment) if trigger in segment.lower() \
        else to_german(segment)


Answer = Callable[[str, bool], str]  # (segment, strict) -> answer


class FakeTranslator:
    """A dedicated-model stand-in: no instructions, translates whatever it is given."""

    name = "fake-mt"

    def __init__(self, answer: Answer | None = None, max_segment_tokens: int = 60,
                 batch_size: int = 4, back: Answer | None = None) -> None:
        self.answer = answer or (lambda segment, strict: to_german(segment))
        # When given, requests into English (a round trip's way back) are answered by it.
        self.back = back
        self.max_segment_tokens = max_segment_tokens
        self.batch_size = batch_size
        self.calls: list[dict[str, Any]] = []

    def count_tokens(self, text: str) -> int:
        return len(text.split()) + len(_CJK.findall(text))

    @property
    def asked(self) -> list[str]:
        return [segment for call in self.calls for segment in call["segments"]]

    def translate(self, segments: list[str], source: str, target: str,
                  should_stop: Callable[[], bool] | None = None) -> list[str]:
        self.calls.append({"segments": list(segments), "source": source, "target": target,
                           "strict": False, "terms": None, "should_stop": should_stop})
        return [self._answer(segment, target, False) for segment in segments]

    def _answer(self, segment: str, target: str, strict: bool) -> str:
        if target == "en" and self.back is not None:
            return self.back(segment, strict)
        return self.answer(segment, strict)


class FakeInstructTranslator(FakeTranslator):
    """An instruct-model stand-in: also takes glossary hints and strict retries."""

    name = "fake-chat"

    def translate_with(self, segments: list[str], source: str, target: str,
                       should_stop: Callable[[], bool] | None = None, *,
                       terms: Sequence[Sequence[Any]] | None = None,
                       strict: bool = False) -> list[str]:
        self.calls.append({"segments": list(segments), "source": source, "target": target,
                           "strict": strict, "terms": [list(t) for t in terms or []],
                           "should_stop": should_stop})
        return [self._answer(segment, target, strict) for segment in segments]


class WordTokenizer:
    """One token per whitespace-separated word and per CJK character."""

    def encode(self, text: str) -> list[int]:
        return [0] * (len(text.split()) + len(_CJK.findall(text)))


def fake_chat_model(context_length: int = 4096, name: str = "fake-chat") -> Any:
    """Just enough of engine.model.Model for prompt_ids and InstructTranslator."""
    manifest = SimpleNamespace(name=name, chat_template=CHATML_TEMPLATE, bos_token=None,
                               eos_token="<|im_end|>", context_length=context_length,
                               source={}, architecture="decoder-transformer")
    return SimpleNamespace(name=name, folder=Path(name), manifest=manifest,
                           tokenizer=WordTokenizer(), device="cpu")


def scripted_generate(reply: Callable[[list[dict[str, str]]], str],
                      log: list[dict[str, Any]]) -> Callable[..., Iterator[TextChunk]]:
    """A stand-in for engine.generation.generate: answers with ``reply(messages)`` word by
    word, checking ``should_stop`` before every word, and records each call."""
    def generate(model: Any, messages: list[dict[str, str]], config: Any,
                 should_stop: Callable[[], bool] | None = None) -> Iterator[TextChunk]:
        log.append({"messages": messages, "config": config, "should_stop": should_stop})
        for word in re.findall(r"\S+\s*", reply(messages)):
            if should_stop is not None and should_stop():
                yield TextChunk("", finish_reason="cancelled")
                return
            yield TextChunk(word)
        yield TextChunk("", finish_reason="stop")

    return generate
