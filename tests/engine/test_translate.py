"""Translation pipeline: segmentation (English, Chinese, caps), placeholders, chatter cleaning,
retries and flags, glossary, mixed languages, cancellation, huge input, and the translators
(instruct prompts with a scripted model, seq2seq against the contract with a fake module)."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from translate_fakes import (
    FakeInstructTranslator,
    FakeTranslator,
    fake_chat_model,
    scripted_generate,
    to_german,
)

import engine.seq2seq
import engine.translate.translators as translators
from engine.errors import ConfigError, OperationCancelledError
from engine.seq2seq import Seq2SeqModel
from engine.translate import load_glossary, translate_text
from engine.translate.answers import clean_answer, problem
from engine.translate.glossary import Glossary
from engine.translate.protect import (
    Token,
    append_tokens,
    intact,
    mark,
    new_pair,
    relabel,
    restore,
)
from engine.translate.segments import joiner, segment
from engine.translate.translators import InstructTranslator, Seq2SeqTranslator


def words(text: str) -> int:
    return len(text.split())


# --- segmentation -------------------------------------------------------------------------------

def test_english_and_chinese_sentences_become_segments() -> None:
    english = segment("It works, e.g. here. Dr. Lee agreed! Did J. Smith? 3 cats ran.", words, 50)
    assert [p.text for p in english] == ["It works, e.g. here.", "Dr. Lee agreed!",
                                         "Did J. Smith?", "3 cats ran."]
    assert [p.glue for p in english] == [None] * 4
    chinese = segment("夜灯很亮。我们读书！你好吗？好的", words, 50)
    assert [p.text for p in chinese] == ["夜灯很亮。", "我们读书！", "你好吗？", "好的"]
    # Joining: no space between CJK sentences, a space after Western ones.
    assert joiner("夜灯很亮。", "我们", None) == ""
    assert joiner("It works.", "Dr.", None) == " "
    assert joiner("abc", "def", "") == ""


def test_a_long_sentence_is_cut_to_the_budget_never_inside_a_placeholder() -> None:
    text = " ".join(f"w{i} ⟦{i + 1}⟧" if i % 7 == 0 else f"w{i}" for i in range(500))
    pieces = segment(text, words, 40)
    assert all(words(p.text) <= 40 for p in pieces)
    assert [p.glue for p in pieces[1:]] == [" "] * (len(pieces) - 1)
    assert " ".join(p.text for p in pieces) == text
    # No spaces at all: cut between characters, joined back without a separator.
    solid = "x" * 3000 + "⟦1⟧" + "y" * 3000
    cut = segment(solid, len, 500)
    assert all(len(p.text) <= 500 for p in cut)
    assert "".join(p.text for p in cut) == solid
    assert any("⟦1⟧" in p.text for p in cut)


# --- placeholders -------------------------------------------------------------------------------

def test_placeholders_round_trip_and_broken_ones_are_caught() -> None:
    opening, closing = new_pair("<b>", "</b>")
    marked, tokens = mark(["Click ", Token("`x()`"), " and ", opening, "here", closing, "."])
    assert marked == "Click ⟦1⟧ and ⟦2⟧here⟦3⟧."
    assert intact("Klicke ⟦2⟧hier⟦3⟧ und ⟦1⟧.", tokens)  # reordered but well nested
    assert intact("Klicke ⟦ 2 ⟧hier⟦3⟧ und ⟦1⟧.", tokens)  # spaces a model added
    assert not intact("Klicke hier ⟦3⟧ und ⟦1⟧.", tokens)  # lost
    assert not intact("Klicke ⟦2⟧⟦2⟧hier⟦3⟧ ⟦1⟧.", tokens)  # doubled
    assert not intact("Klicke ⟦3⟧hier⟦2⟧ und ⟦1⟧.", tokens)  # span closes before it opens
    assert not intact("⟦1⟧ ⟦2⟧ ⟦3⟧ ⟦4⟧", tokens)  # invented
    assert restore("Klicke ⟦2⟧hier⟦3⟧ und ⟦1⟧.", tokens) == [
        "Klicke ", opening, "hier", closing, " und ", tokens[0], "."]
    # A piece of a unit is renumbered from 1 with its own tokens.
    text, local = relabel("and ⟦2⟧here⟦3⟧.", tokens)
    assert (text, local) == ("and ⟦1⟧here⟦2⟧.", [opening, closing])
    # Fallback: protected parts at the end, before the closing punctuation, in order.
    assert append_tokens("Klicke hier.", tokens) == ["Klicke hier ", tokens[0], opening,
                                                     closing, "."]


# --- answers ------------------------------------------------------------------------------------

@pytest.mark.parametrize("answer", [
    "Die Lampe ist hell.",
    "Sure! Here is the translation:\n\nDie Lampe ist hell.",
    "Here's the German translation: Die Lampe ist hell.",
    "Translation: Die Lampe ist hell.",
    "German translation (formal): Die Lampe ist hell.",
    '"Die Lampe ist hell."',
    "“Die Lampe ist hell.”",
    "Die Lampe ist hell.\n\nNote: I translated 'lamp' as 'Lampe'.",
    "Die Lampe ist hell. (Note: literal translation)",
    "The lamp is bright.\nDie Lampe ist hell.",
    "Original: The lamp is bright.\nTranslation: Die Lampe ist hell.",
    "The lamp is bright. -> Die Lampe ist hell.",
    "```\nDie Lampe ist hell.\n```",
    "Okay\nDie Lampe ist hell.",
    "Die Lampe ist hell.\ufffd",  # cut at the length limit inside a character
])
def test_chatter_is_cleaned(answer: str) -> None:
    assert clean_answer(answer, "The lamp is bright.") == "Die Lampe ist hell."


def test_cleaning_leaves_real_translations_alone() -> None:
    assert clean_answer('"Hallo", sagte sie.', '"Hello", she said.') == '"Hallo", sagte sie.'
    assert clean_answer('"Licht"', '"Light"') == '"Licht"'  # the source is quoted too
    assert clean_answer("Sure.", "Bien sûr.") == "Sure."  # the whole answer is the translation
    assert clean_answer("Okay, wir gehen.", "Okay, let's go.") == "Okay, wir gehen."
    assert clean_answer("Lampe", "Lamp") == "Lampe"  # begins like the source: not an echo
    assert clean_answer("Python ist toll.", "Python is great.") == "Python ist toll."


def test_empty_and_untranslated_answers_are_problems() -> None:
    source = "The night lamp is very bright in this room."
    assert problem(source, "", "en", "de") == "empty"
    assert problem(source, "  ...  ", "en", "de") == "empty"
    assert problem(source, source, "en", "de") == "untranslated"
    assert problem(source, "The night lamp is so bright in that room.", "en", "de") == \
        "untranslated"  # still English by detection
    assert problem(source, "Die Nachtlampe ist in diesem Zimmer sehr hell.", "en", "de") is None
    # German without any of detect_language's German words reads as its "en" fallback: no flag.
    assert problem(source, "Computer übersetzen Briefe schnell.", "en", "de") is None
    assert problem("Nightlamp 2", "Nightlamp 2", "en", "de") is None  # names stay as they are
    assert problem(source, source, "en", "en") is None


# --- pipeline -----------------------------------------------------------------------------------

def test_chatter_from_the_translator_is_cleaned_in_the_pipeline() -> None:
    fake = FakeInstructTranslator(lambda s, strict: f"Sure! Here is the translation:\n\n"
                                                    f"\"{to_german(s)}\"\n\nNote: easy.")
    result = translate_text("The lamp is bright.\n\nThe room is dark.\n", fake, "de", "en")
    assert result.translation == "Die Lampe ist hell.\n\nDie Zimmer ist dunkel.\n"
    assert result.flagged == []


def test_empty_and_untranslated_are_retried_once_strictly_then_flagged() -> None:
    def answer(segment: str, strict: bool) -> str:
        if "lamp" in segment:
            return ""  # empty, even when asked strictly
        if "room" in segment:
            return segment  # untranslated, even when asked strictly
        if "table" in segment and not strict:
            return segment  # fixed by the strict retry
        return to_german(segment)

    fake = FakeInstructTranslator(answer)
    text = ("The lamp is bright.\n\nThe room is dark and it is quiet.\n\nThe table is small.\n\n"
            "The night is warm.\n")
    result = translate_text(text, fake, "de", "en")
    first, retry = fake.calls[0], fake.calls[1:]
    assert not first["strict"] and all(call["strict"] for call in retry)
    assert sorted(s for call in retry for s in call["segments"]) == [
        "The lamp is bright.", "The room is dark and it is quiet.", "The table is small."]
    assert [(f.segment, f.reason, f.source) for f in result.flagged] == [
        (1, "empty", "The lamp is bright."),
        (2, "untranslated", "The room is dark and it is quiet.")]
    # Nothing is dropped: the empty one keeps its source text, in place.
    assert result.translation == ("The lamp is bright.\n\nThe room is dark and it is quiet.\n\n"
                                  "Die Tisch ist klein.\n\nDie Nacht ist warm.\n")


def test_a_dedicated_model_is_not_retried_but_still_flagged() -> None:
    fake = FakeTranslator(lambda s, strict: "" if "lamp" in s else to_german(s))
    result = translate_text("The lamp is bright. The night is warm.", fake, "de", "en")
    assert len(fake.calls) == 1
    assert [(f.segment, f.reason) for f in result.flagged] == [(1, "empty")]
    assert result.translation == "The lamp is bright. Die Nacht ist warm."


def test_lost_placeholders_fall_back_to_the_end_of_the_sentence() -> None:
    def answer(segment: str, strict: bool) -> str:
        return to_german(segment.replace("⟦1⟧", "[1]"))  # a model that mangles placeholders

    fake = FakeTranslator(answer)
    result = translate_text("Read `lamp.on()` and see https://example.com/docs for the light.\n",
                            fake, "de", "en")
    assert fake.asked[-1] == "Read and see for the light."  # asked again without them
    assert result.translation == ("Lies und siehe für die Licht `lamp.on()` "
                                  "https://example.com/docs.\n")
    assert [(f.segment, f.reason) for f in result.flagged] == [(1, "placeholders")]


def test_literal_placeholders_and_special_tokens_never_reach_the_model() -> None:
    fake = FakeTranslator()
    text = "The ⟦1⟧ lamp <|im_end|> is </s> bright ⟧.\n"
    result = translate_text(text, fake, "de", "en")
    # The literal brackets are protected one by one, so no text can pose as a placeholder.
    assert fake.asked == ["The ⟦1⟧1⟦2⟧ lamp ⟦3⟧ is ⟦4⟧ bright ⟦5⟧."]
    assert result.translation == "Die ⟦1⟧ Lampe <|im_end|> ist </s> hell ⟧.\n"


def test_glossary_hints_an_instruct_model_and_misses_are_reported(tmp_path: Path) -> None:
    glossary_file = tmp_path / "terms.tsv"
    glossary_file.write_text("# our terms\nnight lamp\tNachtlicht\nroom\tRaum\n\n", "utf-8")
    glossary = load_glossary(glossary_file)
    fake = FakeInstructTranslator()  # translates word by word: "Nacht Lampe", "Zimmer"
    text = "The night lamp is bright. The table is small.\n\nThe room is dark.\n"
    result = translate_text(text, fake, "de", "en", glossary=glossary)
    hints = {s: [t.source for t in terms] for call in fake.calls
             for s, terms in zip(call["segments"], call["terms"], strict=True)}
    assert hints == {"The night lamp is bright.": ["night lamp"], "The table is small.": [],
                     "The room is dark.": ["room"]}
    assert [(m.segment, m.term, m.expected, m.got) for m in result.glossary_misses] == [
        (1, "night lamp", "Nachtlicht", "Die Nacht Lampe ist hell."),
        (3, "room", "Raum", "Die Zimmer ist dunkel.")]


def test_glossary_terms_are_protected_for_a_dedicated_model() -> None:
    glossary = Glossary([("night lamp", "Nachtlicht"), ("cat", "Katze")])
    fake = FakeTranslator()
    result = translate_text("The Night Lamp is bright. A category is not a cat.", fake, "de",
                            "en", glossary=glossary)
    assert fake.asked == ["The ⟦1⟧ is bright.", "A category is not a ⟦1⟧."]
    assert result.translation == "Die Nachtlicht ist hell. Ein CATEGORY ist nicht ein Katze."
    assert result.glossary_misses == []


def test_glossary_file_errors_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text("lamp\tLampe\nno tab here\n", "utf-8")
    with pytest.raises(ConfigError, match=r"bad.tsv line 2: expected 'source term<TAB>"):
        load_glossary(bad)
    with pytest.raises(ConfigError, match="file not found"):
        load_glossary(tmp_path / "missing.tsv")
    bad.write_text("lamp\tLampe\nLamp\tLeuchte\n", "utf-8")
    with pytest.raises(ConfigError, match="already on line 1"):
        load_glossary(bad)


def test_mixed_language_paragraph_keeps_sentences_already_in_the_target() -> None:
    fake = FakeInstructTranslator()
    text = ("The lamp is bright and it is on the table in the room.\n\n"
            "The night is dark. Die Lampe ist sehr hell und sie steht auf dem Tisch. "
            "La lampe est sur la table et elle est dans la chambre.\n\nEnd.\n")
    result = translate_text(text, fake, "de", "auto")
    assert result.source == "en"
    asked = {s: call["source"] for call in fake.calls for s in call["segments"]}
    assert "Die Lampe ist sehr hell und sie steht auf dem Tisch." not in asked
    assert asked["La lampe est sur la table et elle est dans la chambre."] == "fr"
    assert asked["The night is dark."] == "en"
    assert result.translation.count("\n\n") == text.count("\n\n")
    assert "Die Lampe ist sehr hell und sie steht auf dem Tisch." in result.translation


def test_same_language_and_undetectable_source_are_refused() -> None:
    with pytest.raises(ConfigError, match="both German"):
        translate_text("Die Lampe ist hell und sie steht auf dem Tisch.", FakeTranslator(), "de")
    with pytest.raises(ConfigError, match="not a language tag"):
        translate_text("The lamp.", FakeTranslator(), "german!")
    # No letters at all: nothing to translate, returned as it is (not an error).
    result = translate_text("\n\n   \n", FakeTranslator(), "de")
    assert (result.translation, result.segments) == ("\n\n   \n", 0)


def test_cancellation_between_batches() -> None:
    fake = FakeTranslator(batch_size=1)
    calls = {"n": 0}

    def should_stop() -> bool:
        calls["n"] += 1
        return calls["n"] > 2

    text = "\n\n".join(f"The lamp {i} is bright." for i in range(10))
    with pytest.raises(OperationCancelledError):
        translate_text(text, fake, "de", "en", should_stop=should_stop)
    assert len(fake.calls) == 2
    assert fake.calls[0]["should_stop"] is should_stop  # passed on to the translator too


@pytest.mark.slow
def test_ten_megabyte_single_line_is_handled_in_bounded_time() -> None:
    line = " ".join(f"lamp{i % 997} the light" for i in range(700_000))[:10 * 1024 * 1024]
    fake = FakeTranslator(max_segment_tokens=200, batch_size=64)
    started = time.perf_counter()
    result = translate_text(line + "\n", fake, "de", "en")
    elapsed = time.perf_counter() - started
    assert elapsed < 30, elapsed
    assert max(words(s) for s in fake.asked) <= 200  # no request over the model's budget
    assert result.translation.count("\n") == 1  # still one line
    assert words(result.translation) == words(line)
    assert result.flagged == []


@pytest.mark.slow
def test_ten_megabyte_line_without_spaces_is_cut_between_characters() -> None:
    line = "夜灯" * (5 * 1024 * 1024 // 2)  # 5 M characters, 10+ MB in UTF-8, no punctuation
    fake = FakeTranslator(lambda s, strict: s.replace("夜灯", "ab"), max_segment_tokens=4000,
                          batch_size=256)
    started = time.perf_counter()
    result = translate_text(line, fake, "en", "zh")
    assert time.perf_counter() - started < 30
    assert max(len(s) for s in fake.asked) <= 4000
    assert result.translation == "ab" * (len(line) // 2)


# --- translators --------------------------------------------------------------------------------

def test_instruct_translator_prompts_hints_and_strict_retries(
        monkeypatch: pytest.MonkeyPatch) -> None:
    log: list[dict[str, Any]] = []
    def reply(messages: list[dict[str, str]]) -> str:
        user = messages[-1]["content"]
        if "glows" in user:  # untranslated at first, translated when asked strictly
            return "Die Leuchte leuchtet." if "do not repeat" in user else "The lamp glows."
        return "Sure! Here is the translation:\n\nDie ⟦1⟧ ist hell."

    monkeypatch.setattr(translators, "generate", scripted_generate(reply, log))
    translator = InstructTranslator(fake_chat_model(context_length=512))
    glossary = Glossary([("lamp", "Leuchte")])
    result = translate_text("The `lamp` is bright. The lamp glows.", translator, "de", "en",
                            glossary=glossary)
    assert result.translation == "Die `lamp` ist hell. Die Leuchte leuchtet."
    assert result.flagged == [] and result.glossary_misses == []
    system, user = (m["content"] for m in log[0]["messages"])
    assert "from English into German" in system and "⟦1⟧ exactly" in system
    assert user == "Translate into German:\n\nThe ⟦1⟧ is bright."
    assert '"lamp" -> "Leuchte"' not in system  # the term is only inside protected code here
    second = log[1]["messages"][0]["content"]
    assert '"lamp" -> "Leuchte"' in second
    assert [("do not repeat" in call["messages"][1]["content"]) for call in log] == [
        False, False, True]
    for call in log:  # every request fits the context
        prompt = sum(len(m["content"].split()) for m in call["messages"])
        assert prompt + call["config"].max_new_tokens < 512


def test_instruct_translator_cancels_inside_generation(monkeypatch: pytest.MonkeyPatch) -> None:
    log: list[dict[str, Any]] = []
    monkeypatch.setattr(translators, "generate", scripted_generate(
        lambda messages: "Die Lampe ist sehr hell und warm.", log))
    translator = InstructTranslator(fake_chat_model())
    flag = {"stop": False}

    def should_stop() -> bool:
        return flag["stop"]

    assert translator.translate(["The lamp is bright."], "en", "de", should_stop) == [
        "Die Lampe ist sehr hell und warm."]
    assert log[0]["should_stop"] is should_stop
    flag["stop"] = True
    with pytest.raises(OperationCancelledError):
        translator.translate(["The lamp is bright."], "en", "de", should_stop)


def test_instruct_translator_refuses_a_model_without_room_or_template() -> None:
    with pytest.raises(ConfigError, match="too small for a translation prompt"):
        InstructTranslator(fake_chat_model(context_length=64))
    model = fake_chat_model()
    model.manifest.chat_template = None
    with pytest.raises(ConfigError, match="no chat template"):
        InstructTranslator(model)


def seq2seq_model(sources: list[str], targets: list[str]) -> Any:
    spec = SimpleNamespace(source_languages=sources, target_languages=targets,
                           max_source_length=64)
    manifest = SimpleNamespace(name="opus-en-de", architecture="encoder-decoder",
                               encoder_decoder=spec)
    tokenizer = SimpleNamespace(encode=lambda text: text.split())
    # A real Seq2SeqModel (the translator is chosen by type) holding stand-ins: no sessions run.
    return Seq2SeqModel(folder=Path("opus-en-de"), manifest=manifest, device="cpu",
                        source_tokenizer=tokenizer, target_tokenizer=tokenizer,
                        encoder_session=None, decoder_session=None,
                        decoder_with_past_session=None, decoder_start_token_id=0,
                        eos_token_id=1, pad_token_id=2)


@pytest.fixture
def fake_seq2seq(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """engine.seq2seq as the contract describes it, translating word by word."""
    calls: list[dict[str, Any]] = []

    def translate_batch(model: Any, texts: list[str], *, beam_size: int = 1,
                        length_penalty: float = 1.0, max_length_ratio: float = 2.0,
                        max_length: int | None = None,
                        should_stop: Any = None) -> list[str]:
        calls.append({"texts": texts, "beam_size": beam_size, "should_stop": should_stop})
        if should_stop is not None and should_stop():
            raise OperationCancelledError("cancelled")
        return [to_german(text) for text in texts]

    monkeypatch.setattr(engine.seq2seq, "translate_batch", translate_batch)
    return calls


def test_seq2seq_translator_uses_the_contract(fake_seq2seq: list[dict[str, Any]]) -> None:
    translator = translators.make_translator(seq2seq_model(["en"], ["de"]))
    assert isinstance(translator, Seq2SeqTranslator)
    assert translator.max_segment_tokens == 62
    text = "\n\n".join(f"The lamp {i} is bright." for i in range(10))
    result = translate_text(text, translator, "de", "auto")
    assert (result.source, result.segments) == ("en", 10)
    assert [len(call["texts"]) for call in fake_seq2seq] == [8, 2]
    assert result.translation.startswith("Die Lampe 0 ist hell.\n\nDie Lampe 1 ist hell.")


def test_seq2seq_translator_refuses_an_unsupported_pair(
        fake_seq2seq: list[dict[str, Any]]) -> None:
    translator = Seq2SeqTranslator(seq2seq_model(["en"], ["de", "nl"]))
    with pytest.raises(ConfigError) as error:
        translate_text("The lamp is bright.", translator, "fr", "en")
    message = str(error.value)
    assert message == ("opus-en-de cannot translate en->fr; it translates en->de, en->nl; "
                       "choose --from/--to accordingly or another model")
    assert "\n" not in message
    with pytest.raises(ConfigError, match="cannot translate fr->de"):  # detected source
        translate_text("Le chat dort sur la table et il est content dans la maison.",
                       translator, "de")
    assert fake_seq2seq == []  # refused before any segment was sent
    # Regions and scripts: pt-BR matches pt, zh-TW does not match zh (Simplified).
    assert translators.Seq2SeqTranslator(seq2seq_model(["pt"], ["zh"])).check_pair(
        "pt-BR", "zh-CN") is None
    with pytest.raises(ConfigError):
        Seq2SeqTranslator(seq2seq_model(["pt"], ["zh"])).check_pair("pt", "zh-TW")
