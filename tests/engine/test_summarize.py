"""Summaries: sentence splitting, language detection, extractive ranking, parts, map-reduce with
a tiny model (coverage, progress, cancellation) and the ``nightlamp summarize`` command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import engine.summarize.abstractive as abstractive
from commands.main import main
from engine.documents import Block, Document, read_text
from engine.errors import ConfigError, OperationCancelledError
from engine.language import detect_language
from engine.model import Model, load_model
from engine.summarize import summarize
from engine.summarize.extractive import extractive_summary, select_to_fit
from engine.summarize.parts import split_parts
from engine.text.sentences import join_sentences, split_sentences

ARTICLE = """# Night lamps

A night lamp gives a soft light that helps people find their way in the dark. Night lamps use
very little power. Many night lamps turn on by themselves when the room gets dark.

## History

The first night lamps burned oil and needed care every evening. Electric night lamps became
common in the twentieth century. Today most night lamps use small LEDs that last for years.

## Safety

A night lamp near a bed prevents falls at night. Children often feel safer with a night lamp.
A cat walked past the window on Tuesday.
"""


def test_sentences_in_english_and_chinese() -> None:
    assert split_sentences("It works, e.g. here. Dr. Lee agreed! Did J. Smith? 3 cats ran.") == [
        "It works, e.g. here.", "Dr. Lee agreed!", "Did J. Smith?", "3 cats ran."]
    assert split_sentences("夜灯很亮。我们读书！你好吗？好的") == ["夜灯很亮。", "我们读书！",
                                                              "你好吗？", "好的"]
    assert split_sentences("One line\nwraps here.\n\nNew paragraph") == [
        "One line wraps here.", "New paragraph"]
    assert join_sentences(["夜灯很亮。", "我们读书！"]) == "夜灯很亮。我们读书！"
    assert join_sentences(["A b.", "C d."]) == "A b. C d."


@pytest.mark.parametrize(("text", "tag"), [
    ("The lamp is on the table and it is warm in the room.", "en"),
    # "a" and "o" are Portuguese articles too; plain English with few other function words.
    ("A soft warm light makes a dark room feel safe. Most lamps glow orange or red.", "en"),
    ("O gato dorme em cima da mesa e a casa está quente.", "pt"),
    ("夜灯放在窗边的桌子上，每天晚上它都是家里的第一盏灯。", "zh"),
    ("Le chat dort sur la table et il est content dans la maison.", "fr"),
    ("Die Lampe steht auf dem Tisch und sie ist nicht kalt.", "de"),
    ("La lámpara está en la mesa y es muy bonita para la casa.", "es"),
    ("日本語のテキストです。これはランプです。", "ja"),
    ("Лампа стоит на столе, и в комнате тепло.", "ru"),
    ("12345 !!!", "und"),
])
def test_language_detection(text: str, tag: str) -> None:
    assert detect_language(text) == tag


def test_extractive_picks_document_sentences_in_order_within_the_length() -> None:
    document = read_text(ARTICLE)
    sentences = split_sentences(" ".join(b.text for b in document.blocks if b.kind != "heading"))
    for length, most in (("short", 3), ("medium", 6)):
        summary = extractive_summary(document, length)
        picked = split_sentences(summary)
        assert 1 <= len(picked) <= most
        assert all(s in sentences for s in picked)
        assert [sentences.index(s) for s in picked] == sorted(sentences.index(s) for s in picked)
    short = extractive_summary(document, "short")
    assert short.startswith("A night lamp gives a soft light")  # the point comes first
    assert "cat walked past" not in short  # off-topic sentences rank low


def test_extractive_word_budget() -> None:
    document = read_text(ARTICLE)
    short = extractive_summary(document, max_words=15)
    longer = extractive_summary(document, max_words=60)
    assert 15 <= len(short.split()) < 15 + 25  # stops at the sentence that reaches the budget
    assert len(longer.split()) >= 60 > len(short.split())
    assert set(split_sentences(short)) <= set(split_sentences(longer))
    with pytest.raises(ConfigError, match="max_words"):
        summarize(ARTICLE, None, "extractive", max_words=0)


def test_extractive_long_keeps_sections_and_works_in_chinese() -> None:
    long = extractive_summary(read_text(ARTICLE), "long")
    assert "## History" in long and "## Safety" in long
    chinese = read_text("夜灯放在窗边的桌子上。每天晚上夜灯都是家里的第一盏灯。太阳落山后，"
                        "房间变得安静。读者坐下来，打开笔记本，开始写这一天。\n\n"
                        "她写了早上的市场，面包还是热的。夜灯照亮了笔记本。")
    summary = extractive_summary(chinese, "short")
    assert "夜灯" in summary and " " not in summary  # CJK sentences joined without spaces
    assert all(s in chinese.text() for s in split_sentences(summary))


def test_select_to_fit_respects_the_budget() -> None:
    document = read_text(ARTICLE * 5)
    selected = select_to_fit(document, lambda text: len(text.split()), budget=60)
    assert 0 < len(selected.split()) <= 60
    flat = " ".join(ARTICLE.split())  # the reader joins a paragraph's lines
    assert all(s in flat for s in split_sentences(selected))


def test_parts_follow_structure_cover_everything_and_fit() -> None:
    paragraphs = [f"Paragraph {i} says something about lamps number {i}." for i in range(40)]
    huge = " ".join(f"Sentence {i} of a very long paragraph." for i in range(200))
    blocks = [Block("heading", "Start", level=1)]
    blocks += [Block("paragraph", p) for p in paragraphs[:20]]
    blocks += [Block("heading", "Middle", level=2), Block("paragraph", huge)]
    blocks += [Block("paragraph", p) for p in paragraphs[20:]]
    count = lambda text: len(text.split())  # noqa: E731 (a word is a token here)
    parts = split_parts(Document("doc", "text", blocks), count, budget=120)
    assert all(part.tokens <= 120 for part in parts)
    joined = "\n\n".join(part.text for part in parts)
    for paragraph in paragraphs:
        assert joined.count(paragraph) == 1
    assert all(f"Sentence {i} of" in joined for i in range(200))
    assert parts[0].heading == "Start"
    assert any(part.heading == "Middle" for part in parts)


@pytest.mark.parametrize("batched", [True, False])
def test_map_reduce_reads_every_part_reports_progress_and_streams(
        roomy_model_dir: Path, monkeypatch: pytest.MonkeyPatch, batched: bool) -> None:
    model = load_model(roomy_model_dir, device="cpu", threads=1)
    prompts: list[str] = []
    real_generate, real_batch = abstractive.generate, abstractive.decode_batch

    def recording_generate(model: Any, prompt: Any, *args: Any) -> Any:
        prompts.append(prompt[-1]["content"])
        return real_generate(model, prompt, *args)

    def recording_batch(model: Any, requests: Any, **kwargs: Any) -> Any:
        prompts.extend(model.tokenizer.decode(list(r.prompt_ids)) for r in requests)
        return real_batch(model, requests, **kwargs)

    monkeypatch.setattr(abstractive, "generate", recording_generate)
    monkeypatch.setattr(abstractive, "decode_batch", recording_batch)
    if not batched:
        monkeypatch.setattr(abstractive, "batchable", lambda model: False)
    paragraphs = [f"the lamp {i} lights the page {i} at night ." for i in range(120)]
    progress: list[tuple[str, int, int]] = []
    streamed: list[str] = []
    result = summarize("\n\n".join(paragraphs), model, "abstractive", "short",
                       progress=lambda *update: progress.append(update),
                       on_text=streamed.append)
    assert result.method == "sectioned"
    assert result.chunks > 2 and len(result.sections) == result.chunks
    part_prompts = prompts[:result.chunks]
    for paragraph in paragraphs:  # every chunk of the document went to the model
        assert sum(paragraph in prompt for prompt in part_prompts) == 1
    assert ("summarizing", 0, result.chunks) in progress
    assert ("summarizing", result.chunks, result.chunks) in progress
    assert progress[-1] == ("combining", 1, 1)
    # Each part's checked summary streamed as it was done; the result is the overall summary.
    assert [s.title for s in result.sections] == [f"Part {n}"
                                                  for n in range(1, result.chunks + 1)]
    assert all(s.summary in "".join(streamed) for s in result.sections)
    assert result.input_tokens > 1000


def test_batched_parts_give_the_notes_one_at_a_time_gives(
        roomy_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The map step decodes its parts side by side; each note is the one the part gets alone
    (same prompt, same greedy choice, same end at enough sentences or the length)."""
    model = load_model(roomy_model_dir, device="cpu", threads=1)
    assert isinstance(model, Model) and abstractive.batchable(model)
    paragraphs = [f"the lamp {i} lights the page {i} at night ." for i in range(120)]
    document = read_text("\n\n".join(paragraphs))
    summarizer = abstractive.Summarizer(model, "short", "English", None, None, None)
    parts = split_parts(document, summarizer.count, summarizer.budget)
    assert len(parts) > 2
    asks = [abstractive.Ask(summarizer.instruction("this part"), part.text, 2) for part in parts]
    together = summarizer.ask_many(asks)
    monkeypatch.setattr(abstractive, "batchable", lambda model: False)
    alone = summarizer.ask_many(asks)
    assert together == alone and all(together)


@pytest.mark.parametrize("batched", [True, False])
def test_a_summary_can_be_cancelled(roomy_model_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                    batched: bool) -> None:
    model = load_model(roomy_model_dir, device="cpu", threads=1)
    if not batched:
        monkeypatch.setattr(abstractive, "batchable", lambda model: False)
    progress: list[tuple[str, int, int]] = []
    text = "\n\n".join(f"the lamp {i} lights the page at night ." for i in range(200))
    # Parts decoded side by side are cancelled between two steps: right after the start.
    after = 1 if batched else 2
    with pytest.raises(OperationCancelledError, match="the summary was cancelled"):
        summarize(text, model, "abstractive", "medium",
                  should_stop=lambda: len(progress) >= after,
                  progress=lambda *update: progress.append(update))
    assert len(progress) == after  # it stopped early, not at the end
    assert progress[-1][1] < progress[-1][2]


def test_auto_without_a_chat_model_is_extractive(roomy_model_dir: Path) -> None:
    model = load_model(roomy_model_dir, device="cpu", threads=1)  # a completion model
    result = summarize(ARTICLE, model, "auto", "short")
    assert result.method == "extractive"
    assert result.summary == extractive_summary(read_text(ARTICLE), "short")
    with pytest.raises(ConfigError, match="abstractive summaries need"):
        summarize(ARTICLE, None, "abstractive")
    with pytest.raises(ConfigError, match="method must be one of"):
        summarize(ARTICLE, None, "magic")


def test_a_tiny_context_is_refused_with_advice(transformer_model_dir: Path) -> None:
    model = load_model(transformer_model_dir, device="cpu", threads=1)  # 64 tokens
    with pytest.raises(ConfigError, match="too small to summarize"):
        summarize(ARTICLE, model, "abstractive")


def test_cli_summarizes_files_and_stdin(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    article = tmp_path / "lamps.md"
    article.write_text(ARTICLE, encoding="utf-8")
    assert main(["summarize", str(article), "--method", "extractive", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"summary", "method", "chunks", "seconds", "input_tokens"}
    assert out["method"] == "extractive" and out["summary"].startswith("A night lamp")
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(ARTICLE))
    assert main(["summarize", "-", "--length", "short"]) == 0  # no model installed: extractive
    captured = capsys.readouterr()
    assert captured.out.startswith("A night lamp") and "extractive" in captured.err
    assert main(["summarize", str(tmp_path / "missing.pdf")]) == 2
    assert "missing.pdf" in capsys.readouterr().err


def test_a_document_longer_than_a_ranking_window_is_ranked_in_windows(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The similarity matrix grows with the square of the sentences: past WINDOW sentences
    they are ranked window by window and compared pair by pair, with the same kind of result."""
    import engine.summarize.extractive as extractive

    nouns = ["lamp", "battery", "switch", "wire", "bulb", "socket", "plug", "fuse", "cable",
             "timer", "sensor", "shade", "stand", "hook", "clip"]
    text = "\n\n".join(f"The {nouns[i % 15]} works with the {nouns[(i * 7 + 3) % 15]} and "
                       f"the {nouns[(i * 4 + 1) % 15]} in room {i} at night." for i in range(60))
    document = read_text(text)
    sentences = extractive.document_sentences(document)
    _, matrix = extractive.rank(sentences)
    monkeypatch.setattr(extractive, "WINDOW", 16)
    scores, pairs = extractive.rank(sentences)
    assert isinstance(pairs, extractive.PairSimilarity) and len(scores) == len(sentences)
    for i, j in [(0, 1), (0, 3), (5, 40), (7, 7)]:
        assert pairs[i, j] == pytest.approx(float(matrix[i, j]), abs=1e-5)
    summary = extractive_summary(document, "short")
    assert len(split_sentences(summary)) == 3 and all(s in text for s in split_sentences(summary))
    assert select_to_fit(document, lambda t: len(t.split()), budget=40)
