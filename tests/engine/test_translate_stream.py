"""A translation job's progress is one bar that only moves forward (retries and placeholder
fallbacks make it longer, never restart it), and ``on_text`` streams the output in document
order: the pieces join to exactly the final translation, which is the same with and without a
listener."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import docx
import pytest
from translate_fakes import FakeInstructTranslator, FakeTranslator, to_german

from engine.errors import OperationCancelledError
from engine.translate import translate_file, translate_text
from engine.translate.pipeline import GROUP_BATCHES

Call = tuple[str, int, int]


def page(paragraphs: int) -> str:
    """An HTML page with inline markup (spans in odd rows, only atoms in even ones), a code
    block and text that is never translated."""
    rows = [f'<p>The lamp {i} is <b>bright</b> and <a href="/x{i}">warm</a>.</p>' if i % 2
            else f'<p>The lamp {i} is <code>bright</code> and <img src="/x{i}.png"> warm.</p>'
            for i in range(paragraphs)]
    return ("<!DOCTYPE html>\n<html><body>\n<h1>The night</h1>\n" + "\n".join(rows)
            + "\n<pre>the lamp</pre>\n<p>12345</p>\n</body></html>\n")


def awkward(segment: str, strict: bool) -> str:
    """Empty for every third lamp until asked strictly (a retry), markers dropped for every
    fifth (a retry, then a fallback for atoms, the source kept for spans), else a faithful
    translation."""
    number = re.search(r"\d+", segment)
    n = int(number.group(0)) if number else -1
    if n % 3 == 0 and not strict:
        return ""
    if n % 5 == 0 and "⟦" in segment:
        return to_german(re.sub(r"⟦\d+⟧", "", segment))
    return to_german(segment)


def assert_one_forward_bar(calls: list[Call]) -> None:
    assert calls, "no progress was reported"
    for (_, done_before, total_before), (_, done, total) in itertools.pairwise(calls):
        assert done >= done_before and total >= total_before, calls
    assert all(0 <= done <= total for _, done, total in calls)
    assert calls[-1][1] == calls[-1][2]  # it ends full


def test_progress_never_goes_back_through_retries_and_fallbacks() -> None:
    calls: list[Call] = []
    fake = FakeInstructTranslator(awkward, batch_size=3)
    result = translate_text(page(20), fake, "de", "en", kind="html",
                            progress=lambda *call: calls.append(call))
    assert_one_forward_bar(calls)
    stages = [stage for stage, _, _ in calls]
    assert {"translating", "retrying", "placing protected text"} <= set(stages)
    # The first total is every distinct segment, known before the first request...
    assert calls[0] == ("translating", 0, result.segments)
    # ...and the last one adds each retry and fallback request, all of them done.
    asked = len(fake.asked)
    assert calls[-1][1:] == (asked, asked) and asked > result.segments
    # Lamp n is segment n + 2 (after the heading). Lamp 0 lost its markers in the retry and
    # came back empty without them; 5 and 15 hold spans, so their source is kept; 10's atoms
    # were put at its end; the other multiples of 3 were fixed by the retry.
    flags = {f.segment: f.reason for f in result.flagged}
    assert flags == {2: "empty", 7: "placeholders", 12: "placeholders", 17: "placeholders"}
    statuses = {r.index: r.status for r in result.records if r.status != "translated"}
    assert statuses == {2: "kept_source", 5: "retried", 7: "kept_source", 8: "retried",
                        11: "retried", 12: "retried", 14: "retried", 17: "kept_source",
                        20: "retried"}


def test_progress_of_a_plain_translator_and_of_a_docx(tmp_path: Path) -> None:
    calls: list[Call] = []
    translate_text(page(9), FakeTranslator(awkward, batch_size=2), "de", "en", kind="html",
                   progress=lambda *call: calls.append(call))
    assert_one_forward_bar(calls)
    assert "retrying" not in {stage for stage, _, _ in calls}  # plain models are not retried
    document = docx.Document()
    for i in range(12):
        document.add_paragraph(f"The lamp {i} is ").add_run("bright").bold = True
    document.save(str(tmp_path / "lamps.docx"))
    calls.clear()
    translate_file(tmp_path / "lamps.docx", FakeInstructTranslator(awkward, batch_size=2), "de",
                   "en", output=tmp_path / "out.docx", progress=lambda *call: calls.append(call))
    assert_one_forward_bar(calls)
    assert calls[0] == ("translating", 0, 12)


def test_nothing_to_translate_reports_an_empty_bar() -> None:
    calls: list[Call] = []
    result = translate_text("Die Lampe ist hell und sie steht auf dem Tisch im Zimmer.\n",
                            FakeTranslator(), "de", "en",
                            progress=lambda *call: calls.append(call))
    assert result.segments == 0 and result.translation.startswith("Die Lampe ist hell")
    assert calls == [("translating", 0, 0)]  # already German: passed through, no request


TEXTS = {
    "txt": "The lamp is bright.\n\n- first item\n- second item\n\n```\ncode\n```\n\nThe end.\n",
    "markdown": ("# The title\n\nThe lamp is bright. It is on the table.\n\n| Lamp | Light |\n"
                 "|---|---|\n| the lamp | the light |\n\n> a quote\n\nThe lamp is bright.\n"
                 "The room is dark and the night is quiet.\n"),
    "html": page(7),
}


@pytest.mark.parametrize("kind", TEXTS)
@pytest.mark.parametrize("batch_size", [1, 4])
def test_on_text_streams_exactly_the_translation_in_order(kind: str, batch_size: int) -> None:
    text = TEXTS[kind]
    plain = translate_text(text, FakeInstructTranslator(awkward, batch_size=batch_size), "de",
                           "en", kind=kind)
    pieces: list[str] = []
    fake = FakeInstructTranslator(awkward, batch_size=batch_size)
    seen_calls: list[int] = []

    def on_text(piece: str) -> None:
        pieces.append(piece)
        seen_calls.append(len(fake.calls))

    streamed = translate_text(text, fake, "de", "en", kind=kind, on_text=on_text)
    assert "".join(pieces) == streamed.translation
    assert all(pieces)  # never an empty call
    # The listener changes nothing about the translation.
    assert (streamed.translation, streamed.segments, streamed.flagged,
            streamed.glossary_misses) == (plain.translation, plain.segments, plain.flagged,
                                          plain.glossary_misses)
    # It really streams: text arrives while translation requests are still to come.
    if streamed.segments > GROUP_BATCHES * batch_size:
        assert len(pieces) > 1 and seen_calls[0] < len(fake.calls)


def test_on_text_with_nothing_to_translate_gets_the_text_once() -> None:
    for text in ("12345 !!!\n\n```\ncode\n```\n", "<p>42</p>"):
        pieces: list[str] = []
        result = translate_text(text, FakeTranslator(), "de", "en",
                                kind="html" if text.startswith("<") else "markdown",
                                on_text=pieces.append)
        assert pieces == [text] == [result.translation]
    pieces = []
    assert translate_text("", FakeTranslator(), "de", "en", on_text=pieces.append) \
        .translation == "" and pieces == []


def test_a_cancelled_stream_has_written_a_prefix_of_the_translation() -> None:
    text = "\n\n".join(f"The lamp {i} is bright." for i in range(10)) + "\n"
    full = translate_text(text, FakeTranslator(batch_size=1), "de", "en").translation
    pieces: list[str] = []
    stop = {"now": False}

    def on_text(piece: str) -> None:
        pieces.append(piece)
        stop["now"] = len(pieces) >= 2

    with pytest.raises(OperationCancelledError):
        translate_text(text, FakeTranslator(batch_size=1), "de", "en", on_text=on_text,
                       should_stop=lambda: stop["now"])
    assert len(pieces) == 2 and full.startswith("".join(pieces))


def test_on_text_for_files_streams_their_translation(tmp_path: Path) -> None:
    (tmp_path / "lamps.html").write_text(page(6), "utf-8")
    (tmp_path / "lamps.md").write_text(TEXTS["markdown"], "utf-8")
    document = docx.Document()
    document.add_heading("The lamp", 1)
    for i in range(6):
        paragraph = document.add_paragraph(f"The lamp {i} is ")
        paragraph.add_run("very bright").bold = True
        paragraph.add_run(". It glows every evening.")
    document.add_table(rows=1, cols=1).cell(0, 0).text = "the cell"
    document.add_paragraph("The end.")
    document.sections[0].header.paragraphs[0].text = "The header"
    document.save(str(tmp_path / "lamps.docx"))
    outputs = {"lamps.html": "out.html", "lamps.md": "out.md", "lamps.docx": "out.docx"}
    for name, output in outputs.items():
        pieces: list[str] = []
        result = translate_file(tmp_path / name, FakeTranslator(batch_size=1), "de", "en",
                                output=tmp_path / output, on_text=pieces.append)
        assert "".join(pieces) == result.translation, name
        assert len(pieces) > 1, name
        plain = translate_file(tmp_path / name, FakeTranslator(batch_size=1), "de", "en",
                               output=tmp_path / f"plain-{output}")
        assert plain.translation == result.translation
        assert (tmp_path / f"plain-{output}").read_bytes() == (tmp_path / output).read_bytes() \
            or name.endswith(".docx")  # a .docx zip differs in its timestamps
    translated = docx.Document(str(tmp_path / "out.docx"))
    assert translated.paragraphs[1].text == "Die Lampe 0 ist sehr hell. Es leuchtet jede Abend."
    assert translated.tables[0].cell(0, 0).text == "die Zelle"
    assert translated.sections[0].header.paragraphs[0].text == "Die Kopf"
