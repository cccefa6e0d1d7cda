"""Tests for engine.detokenize with real byte-level BPE and Metaspace tokenizers built here."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from engine.detokenize import IncrementalDetokenizer, StopStringFilter
from engine.errors import ConfigError

CORPUS = [
    "the night lamp glows softly on the desk",
    "hello world, this is nightlamp speaking",
    "an offline assistant that never phones home",
    "summarize, translate and chat with local models",
]
# Nothing but ASCII in the corpus, so CJK and emoji are split into single-byte tokens.
MIXED = "你好\uff0c世界 🌙 nightlamp 夜灯 👍🏽 hello world"


@pytest.fixture(scope="module")
def byte_level() -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(CORPUS * 5, trainer=trainer)
    return tok


@pytest.fixture(scope="module")
def metaspace() -> Tokenizer:
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=200, special_tokens=["<unk>"], show_progress=False)
    tok.train_from_iterator(CORPUS * 5, trainer=trainer)
    return tok


def stream(
    decode: Callable[[list[int]], str], ids: list[int], prompt_ids: list[int] | None = None
) -> tuple[list[str], str]:
    detok = IncrementalDetokenizer(decode, prompt_ids or [])
    return [detok.push(i) for i in ids], detok.flush()


# --- IncrementalDetokenizer -------------------------------------------------------------------


def test_byte_level_streams_whole_characters(byte_level: Tokenizer) -> None:
    ids = byte_level.encode(MIXED).ids
    # Precondition: some characters really are split over several byte tokens.
    assert any(byte_level.decode([i]) == "\ufffd" for i in ids)

    pieces, rest = stream(byte_level.decode, ids)

    assert "".join(pieces) + rest == byte_level.decode(ids) == MIXED
    assert rest == ""
    assert not any("\ufffd" in piece for piece in pieces)
    assert "" in pieces  # bytes were held until their character was complete
    assert "夜灯" in pieces or "夜" in pieces  # CJK characters come out whole


def test_byte_level_with_prompt(byte_level: Tokenizer) -> None:
    prompt = byte_level.encode("hello world, ").ids
    generated = byte_level.encode("夜灯 glows 🌙!").ids

    pieces, rest = stream(byte_level.decode, generated, prompt)

    full = byte_level.decode(prompt + generated)
    assert "".join(pieces) + rest == full[len(byte_level.decode(prompt)) :]
    assert not any("\ufffd" in piece for piece in pieces)


def test_every_split_point_of_an_emoji(byte_level: Tokenizer) -> None:
    # Feed the 4 bytes of an emoji one token at a time: nothing, nothing, nothing, the emoji.
    ids = byte_level.encode("🌙").ids
    assert len(ids) == 4
    pieces, _ = stream(byte_level.decode, ids)
    assert pieces == ["", "", "", "🌙"]


def test_flush_releases_incomplete_bytes(byte_level: Tokenizer) -> None:
    first_byte = byte_level.encode("你").ids[0]
    detok = IncrementalDetokenizer(byte_level.decode)
    assert detok.push(first_byte) == ""
    assert detok.flush() == "\ufffd"
    assert detok.flush() == ""


def test_garbage_bytes_are_not_held_forever(byte_level: Tokenizer) -> None:
    # A lone UTF-8 continuation byte can never start a character; a model stuck emitting them
    # must not make the window (and every push) grow without bound.
    continuation = byte_level.encode("你").ids[1]
    assert byte_level.decode([continuation]) == "\ufffd"
    ids = [continuation] * 40 + byte_level.encode(" hello").ids

    pieces, rest = stream(byte_level.decode, ids)

    assert "".join(pieces) + rest == byte_level.decode(ids)
    assert any("\ufffd" in piece for piece in pieces[:40])


def test_decode_window_stays_small(byte_level: Tokenizer) -> None:
    seen_lengths: list[int] = []

    def decode(ids: list[int]) -> str:
        seen_lengths.append(len(ids))
        return byte_level.decode(ids)

    ids = byte_level.encode(MIXED * 20).ids
    prompt = byte_level.encode(" ".join(CORPUS)).ids
    pieces, rest = stream(decode, ids, prompt)

    assert (
        "".join(pieces) + rest == byte_level.decode(prompt + ids)[len(byte_level.decode(prompt)) :]
    )
    # Cost per token is O(window), not O(output length).
    assert len(ids) > 300
    assert max(seen_lengths) <= 12


def test_metaspace_keeps_the_leading_space_of_the_first_token(metaspace: Tokenizer) -> None:
    prompt = metaspace.encode("hello").ids
    generated = metaspace.encode("world nightlamp").ids
    # Precondition: decoded on its own, the first token loses its leading space.
    assert metaspace.decode(generated[:1])[:1] != " "

    pieces, rest = stream(metaspace.decode, generated, prompt)

    assert "".join(pieces) + rest == " world nightlamp"
    assert metaspace.decode(prompt + generated) == "hello world nightlamp"


def test_metaspace_without_prompt_starts_without_space(metaspace: Tokenizer) -> None:
    ids = metaspace.encode("the night lamp").ids
    pieces, rest = stream(metaspace.decode, ids)
    assert "".join(pieces) + rest == "the night lamp"


def test_empty_stream() -> None:
    detok = IncrementalDetokenizer(lambda ids: "x" * len(ids), [1, 2, 3])
    assert detok.flush() == ""


# --- StopStringFilter -------------------------------------------------------------------------


def test_stop_string_split_across_feeds() -> None:
    stops = StopStringFilter(["\nUser:"])
    assert stops.feed("Hello\nUs") == ("Hello", False)
    assert stops.feed("er: hi") == ("", True)
    assert stops.stopped
    assert stops.feed("more") == ("", True)
    assert stops.flush() == ""


def test_partial_prefix_that_is_not_a_stop_is_released() -> None:
    stops = StopStringFilter(["\nUser:"])
    assert stops.feed("a\nU") == ("a", False)
    assert stops.feed("nder the lamp") == ("\nUnder the lamp", False)
    assert not stops.stopped


def test_flush_returns_held_text() -> None:
    stops = StopStringFilter(["\nUser:"])
    assert stops.feed("done\n") == ("done", False)
    assert stops.flush() == "\n"
    assert stops.flush() == ""


def test_stop_inside_one_piece() -> None:
    stops = StopStringFilter(["</s>"])
    assert stops.feed("hi</s>ignored") == ("hi", True)


def test_empty_stop_list_passes_everything_through() -> None:
    stops = StopStringFilter([])
    assert stops.feed("x\nUser:") == ("x\nUser:", False)
    assert stops.flush() == ""


@pytest.mark.parametrize(
    ("stops", "text", "expected"),
    [
        (["\nUser:"], "Hello\nUser: hi", "Hello"),
        (["\n\n", "\nUser:"], "one\nUser: two\n\nthree", "one"),
        (["\n\n", "\nUser:"], "one\n\nUser: two", "one"),
        (["aab"], "aaab", "a"),  # a stop that overlaps itself
        (["<|im_end|>", "<|endoftext|>"], "ok<|endoftext|>", "ok"),
        (["STOP"], "no stop here, ST", "no stop here, ST"),
    ],
)
def test_character_by_character(stops: list[str], text: str, expected: str) -> None:
    f = StopStringFilter(stops)
    out = []
    stopped = False
    for ch in text:
        safe, stopped = f.feed(ch)
        out.append(safe)
        if stopped:
            break
    if not stopped:
        out.append(f.flush())
    assert "".join(out) == expected


def test_detokenizer_and_stop_filter_together(byte_level: Tokenizer) -> None:
    ids = byte_level.encode("夜灯 says hi\nUser: more text").ids
    detok = IncrementalDetokenizer(byte_level.decode)
    stops = StopStringFilter(["\nUser:"])
    shown = []
    for token_id in ids:
        safe, stopped = stops.feed(detok.push(token_id))
        shown.append(safe)
        if stopped:
            break
    assert "".join(shown) == "夜灯 says hi"


@pytest.mark.parametrize("bad", [[""], ["ok", ""]])
def test_empty_stop_string_is_rejected(bad: list[str]) -> None:
    with pytest.raises(ConfigError, match="stop string #"):
        StopStringFilter(bad)
