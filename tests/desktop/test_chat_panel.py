"""The Chat panel alone (no model, no worker): edit and resend, code copy links, settings."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QGuiApplication, QTextDocument
from PySide6.QtWidgets import QDialog

from desktop import chat_panel
from desktop.chat_markdown import add_copy_links, find_code_blocks
from desktop.chat_panel import ChatPanel
from desktop.chat_settings import ChatSettings, ChatSettingsDialog
from engine.conversation import CHAT_MAX_TOKENS
from engine.errors import ConfigError
from engine.sampling import SamplingSettings

TWO_EXCHANGES = [
    {"id": 1, "role": "user", "content": "first question", "status": "complete"},
    {"id": 2, "role": "assistant", "content": "first answer", "status": "complete"},
    {"id": 3, "role": "user", "content": "second question", "status": "complete"},
    {"id": 4, "role": "assistant", "content": "second answer", "status": "complete"},
]
CODE_ANSWER = ("Run this:\n\n```python\nprint('a')\n\n    indented()\n```\n"
               "and then:\n\n~~~\nls -l\n~~~\n")


@pytest.fixture
def panel(qtbot: Any) -> ChatPanel:
    made = ChatPanel()
    qtbot.addWidget(made)
    return made


# Edit and resend -------------------------------------------------------------------------


def test_edit_takes_the_last_exchange_back_and_resends_it(qtbot: Any, panel: ChatPanel) -> None:
    panel.set_messages(TWO_EXCHANGES)
    assert panel.edit_button.isEnabled() and panel.regenerate_button.isEnabled()
    with qtbot.waitSignal(panel.messages_removed) as removed:
        panel.edit_button.click()
    assert removed.args == [[3, 4]]
    assert [m["id"] for m in panel.messages] == [1, 2]
    assert panel.input.toPlainText() == "second question"
    assert "second question" not in panel.markdown()
    panel.input.setPlainText("second question, rephrased")
    with qtbot.waitSignal(panel.send_requested) as sent:
        panel.send_button.click()
    prompt = sent.args[0]
    assert [m["content"] for m in prompt] == ["first question", "first answer",
                                              "second question, rephrased"]
    assert prompt[-1]["role"] == "user"


def test_edit_after_an_unstored_failed_answer_emits_no_ids(qtbot: Any,
                                                           panel: ChatPanel) -> None:
    # No model yet: the main window fails the answer before storing anything.
    panel.set_messages([{"role": "user", "content": "hi", "status": "complete"},
                        {"role": "assistant", "content": "", "status": "failed"}])
    with qtbot.waitSignal(panel.messages_removed) as removed:
        panel.edit_last()
    assert removed.args == [[]]
    assert panel.messages == []
    assert not panel.edit_button.isEnabled()


def test_edit_keeps_a_draft_already_in_the_input(panel: ChatPanel) -> None:
    panel.set_messages(TWO_EXCHANGES)
    panel.input.setPlainText("half-written thought")
    panel.edit_last()
    assert panel.input.toPlainText() == "second question\n\nhalf-written thought"


def test_edit_is_off_while_generating_or_without_a_user_message(qtbot: Any,
                                                                panel: ChatPanel) -> None:
    assert not panel.edit_button.isEnabled()
    panel.set_messages(TWO_EXCHANGES)
    panel.set_generating(True)
    assert not panel.edit_button.isEnabled()
    with qtbot.assertNotEmitted(panel.messages_removed):
        panel.edit_last()
        qtbot.keyClick(panel.input, Qt.Key.Key_Up)
    assert len(panel.messages) == 4
    assert panel.input.toPlainText() == ""


def test_up_in_an_empty_input_edits_the_last_message(qtbot: Any, panel: ChatPanel) -> None:
    panel.set_messages(TWO_EXCHANGES)
    with qtbot.waitSignal(panel.messages_removed) as removed:
        qtbot.keyClick(panel.input, Qt.Key.Key_Up)
    assert removed.args == [[3, 4]]
    assert panel.input.toPlainText() == "second question"


def test_up_in_a_non_empty_input_only_moves_the_cursor(qtbot: Any, panel: ChatPanel) -> None:
    panel.set_messages(TWO_EXCHANGES)
    panel.input.setPlainText("line one\nline two")
    with qtbot.assertNotEmitted(panel.messages_removed):
        qtbot.keyClick(panel.input, Qt.Key.Key_Up)
    assert len(panel.messages) == 4
    assert panel.input.toPlainText() == "line one\nline two"


# Code blocks -----------------------------------------------------------------------------


def test_code_blocks_are_found_with_fences_languages_and_exact_text() -> None:
    blocks = find_code_blocks(CODE_ANSWER)
    assert [b.code for b in blocks] == ["print('a')\n\n    indented()", "ls -l"]
    assert [b.language for b in blocks] == ["python", ""]
    assert [b.fence for b in blocks] == ["```", "~~~"]
    assert all(b.closing_line is not None for b in blocks)


@pytest.mark.parametrize(("text", "codes"), [
    ("Use `x` or ``y`` inline.", []),
    ("```not a block```", []),  # backticks in a backtick info string: inline code
    ("~~~ rust `ok`\nfn main() {}\n~~~", ["fn main() {}"]),  # tildes may have them
    ("````md\n```\ninner\n```\n````", ["```\ninner\n```"]),  # a longer fence holds a shorter
    ("```\n~~~\nstill code\n```", ["~~~\nstill code"]),  # only the same character closes
    ("```\n```py\nstill code\n```", ["```py\nstill code"]),  # a closing fence has no info
    ("```\n\n```", [""]),
    ("1. Step:\n   ```sh\n   make\n     -j4\n   ```", ["make\n  -j4"]),  # list item indent
])
def test_fence_rules(text: str, codes: list[str]) -> None:
    assert [b.code for b in find_code_blocks(text)] == codes


def test_an_unterminated_block_runs_to_the_end_and_is_closed_before_its_link() -> None:
    streaming = "Here:\n```js\nconst a = 1;\nconst b"
    [block] = find_code_blocks(streaming)
    assert block.code == "const a = 1;\nconst b" and block.closing_line is None
    text, codes = add_copy_links(streaming, "Copy code", first=5)
    assert codes == ["const a = 1;\nconst b"]
    assert text.endswith("const b\n```\n[Copy code](copy:5)")
    assert [b.closing_line is not None for b in find_code_blocks(text)] == [True]


def test_every_block_gets_a_numbered_link_across_messages(panel: ChatPanel) -> None:
    panel.set_messages([
        {"role": "user", "content": "What does\n```\nx = 1\n```\ndo?", "status": "complete"},
        {"role": "assistant", "content": CODE_ANSWER, "status": "complete"},
        {"role": "assistant", "content": "```py\nunfinished", "status": "cancelled"},
        {"role": "user", "content": "next", "status": "complete"},
    ])
    markdown = panel.markdown()
    for number in (1, 2, 3, 4):
        assert f"[Copy code](copy:{number})" in markdown
    assert "copy:5" not in markdown
    html = panel.view.toHtml()
    assert all(f'href="copy:{n}"' in html for n in (1, 2, 3, 4))
    # The stopped answer's open block was closed: the next message is not shown as code.
    assert find_code_blocks(markdown)[-1].code == "unfinished"


def test_copy_link_puts_the_exact_code_on_the_clipboard(panel: ChatPanel) -> None:
    panel.set_messages([{"role": "assistant", "content": CODE_ANSWER, "status": "complete"}])
    QGuiApplication.clipboard().setText("before")
    panel.view.anchorClicked.emit(QUrl("copy:1"))
    assert QGuiApplication.clipboard().text() == "print('a')\n\n    indented()"
    assert panel.notice.text() == "Code copied"
    panel.view.anchorClicked.emit(QUrl("copy:2"))
    assert QGuiApplication.clipboard().text() == "ls -l"


def test_the_copied_notice_goes_away_unless_replaced(qtbot: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chat_panel, "NOTICE_MS", 20)
    made = ChatPanel()
    qtbot.addWidget(made)
    made.set_messages([{"role": "assistant", "content": CODE_ANSWER, "status": "complete"}])
    made.view.anchorClicked.emit(QUrl("copy:1"))
    assert made.notice.text() == "Code copied"
    qtbot.waitUntil(lambda: made.notice.text() == "", timeout=2000)
    made.view.anchorClicked.emit(QUrl("copy:1"))
    made.show_notice("The model is not ready yet.")
    qtbot.wait(80)
    assert made.notice.text() == "The model is not ready yet."


@pytest.mark.parametrize("link", ["copy:9", "copy:0", "copy:x", "https://example.com/",
                                  "file:///etc/passwd", "#top"])
def test_an_unknown_link_does_nothing(panel: ChatPanel, link: str) -> None:
    panel.set_messages([{"role": "assistant", "content": CODE_ANSWER, "status": "complete"}])
    QGuiApplication.clipboard().setText("before")
    shown = panel.view.toPlainText()
    panel.view.anchorClicked.emit(QUrl(link))
    assert QGuiApplication.clipboard().text() == "before"
    assert panel.notice.text() == ""
    assert panel.view.toPlainText() == shown


def _click_text(qtbot: Any, panel: ChatPanel, text: str) -> None:
    cursor = panel.view.document().find(text, 0, QTextDocument.FindFlag.FindCaseSensitively)
    assert not cursor.isNull()
    cursor.setPosition(cursor.selectionStart() + 1)
    point = panel.view.cursorRect(cursor).center()
    qtbot.mouseClick(panel.view.viewport(), Qt.MouseButton.LeftButton, pos=point)


def test_clicking_a_link_never_navigates(qtbot: Any, panel: ChatPanel) -> None:
    panel.resize(600, 400)
    panel.show()
    qtbot.waitExposed(panel)
    panel.set_messages([{"role": "assistant", "status": "complete",
                         "content": "See [the site](https://example.com/).\n\n```\nx = 1\n```"}])
    shown = panel.view.toPlainText()
    with qtbot.waitSignal(panel.view.anchorClicked) as clicked:
        _click_text(qtbot, panel, "the site")
    assert clicked.args[0].toString() == "https://example.com/"
    assert panel.view.source() == QUrl()  # a followed link would have become the source
    assert panel.view.toPlainText() == shown
    with qtbot.waitSignal(panel.view.anchorClicked):
        _click_text(qtbot, panel, "Copy code")
    assert QGuiApplication.clipboard().text() == "x = 1"
    assert panel.view.source() == QUrl()
    assert panel.view.toPlainText() == shown


# Settings --------------------------------------------------------------------------------


def test_chat_settings_round_trip_and_defaults() -> None:
    # repetition_penalty was 1.1 here and 1.0 in the engine; the engine's default is the one.
    assert ChatSettings() == ChatSettings(temperature=0.7, top_p=0.95, top_k=40, max_tokens=512,
                                          context_length=0, repetition_penalty=1.0)
    edited = ChatSettings(temperature=1.25, top_p=0.5, top_k=0, max_tokens=2048,
                          context_length=4096, repetition_penalty=1.3)
    assert ChatSettings.from_dict(edited.to_dict()) == edited
    assert ChatSettings.from_dict({}) == ChatSettings()


@pytest.mark.parametrize("stored", [
    {"temperature": "hot", "top_k": -3, "unknown": 1},
    {"temperature": float("nan"), "top_k": 40.5, "max_tokens": True},
    {"top_p": 0, "max_tokens": 10**9, "context_length": None, "repetition_penalty": 0.5},
    [1, 2, 3],
    None,
    "temperature=1",
])
def test_from_dict_falls_back_to_defaults_for_bad_fields(stored: Any) -> None:
    assert ChatSettings.from_dict(stored) == ChatSettings()


def test_from_dict_keeps_the_good_fields_next_to_bad_ones() -> None:
    read = ChatSettings.from_dict({"temperature": "hot", "top_k": 7, "top_p": 1,
                                   "max_tokens": 64})
    assert read == ChatSettings(top_k=7, top_p=1.0, max_tokens=64)
    assert isinstance(read.top_p, float)


def test_chat_settings_refuse_bad_values_when_made_directly() -> None:
    with pytest.raises(ConfigError, match="temperature"):
        ChatSettings(temperature=3.0)
    with pytest.raises(ConfigError, match="top_k"):
        ChatSettings(top_k=2.5)  # type: ignore[arg-type]


def test_defaults_and_validity_are_the_engines() -> None:
    """`nightlamp chat` and the Chat panel sample alike: both take SamplingSettings' defaults."""
    assert ChatSettings().sampling() == SamplingSettings()
    assert ChatSettings().max_tokens == CHAT_MAX_TOKENS
    # What the engine refuses, the app refuses with the engine's own message ...
    for field, value in (("top_p", 0.0), ("temperature", float("nan")), ("top_k", -1)):
        with pytest.raises(ConfigError) as caught:
            SamplingSettings(**{field: value})
        with pytest.raises(ConfigError) as app_caught:
            ChatSettings(**{field: value})
        assert str(app_caught.value) == str(caught.value)
    # ... and the app narrows the range to what its dialog offers.
    SamplingSettings(repetition_penalty=0.5)
    with pytest.raises(ConfigError, match="repetition_penalty must be a float from 1 to 2"):
        ChatSettings(repetition_penalty=0.5)


def test_sampling_carries_the_values_to_the_engine() -> None:
    settings = ChatSettings(temperature=0.2, top_p=0.8, top_k=12, repetition_penalty=1.25)
    assert settings.sampling() == SamplingSettings(temperature=0.2, top_k=12, top_p=0.8,
                                                   repetition_penalty=1.25)


def test_the_dialog_returns_edited_values(qtbot: Any) -> None:
    dialog = ChatSettingsDialog(ChatSettings(top_k=10))
    qtbot.addWidget(dialog)
    assert dialog.value() == ChatSettings(top_k=10)
    dialog.temperature.setValue(1.35)
    dialog.top_p.setValue(0.9)
    dialog.top_k.setValue(0)
    dialog.max_tokens.setValue(1000)
    dialog.context_length.setValue(8192)
    dialog.repetition_penalty.setValue(5.0)  # clamped to the allowed 2.0
    assert dialog.top_k.text() == "Off"
    dialog.accept()
    assert dialog.result() == QDialog.DialogCode.Accepted
    assert dialog.value() == ChatSettings(temperature=1.35, top_p=0.9, top_k=0, max_tokens=1000,
                                          context_length=8192, repetition_penalty=2.0)


def test_the_dialog_resets_to_defaults(qtbot: Any) -> None:
    dialog = ChatSettingsDialog(ChatSettings(temperature=1.9, top_k=3, context_length=2048))
    qtbot.addWidget(dialog)
    assert dialog.context_length.text() != "Model default"
    dialog.reset_button.click()
    assert dialog.value() == ChatSettings()
    assert dialog.context_length.text() == "Model default"


def test_the_settings_button_applies_the_dialog_and_emits(
        qtbot: Any, panel: ChatPanel, monkeypatch: pytest.MonkeyPatch) -> None:
    def accept_with_edits(dialog: ChatSettingsDialog) -> int:
        assert dialog.value() == panel.settings  # it opened on the current settings
        dialog.temperature.setValue(1.2)
        dialog.context_length.setValue(2048)
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(ChatSettingsDialog, "exec", accept_with_edits)
    with qtbot.waitSignal(panel.settings_changed) as changed:
        panel.settings_button.click()
    expected = ChatSettings(temperature=1.2, context_length=2048)
    assert panel.settings == expected
    assert changed.args == [expected.to_dict()]
    assert "Temperature 1.2" in panel.settings_button.toolTip()
    assert "context 2048" in panel.settings_button.toolTip()


def test_cancelling_the_dialog_changes_nothing(qtbot: Any, panel: ChatPanel,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    def cancel_after_edits(dialog: ChatSettingsDialog) -> int:
        dialog.temperature.setValue(1.9)
        return QDialog.DialogCode.Rejected

    monkeypatch.setattr(ChatSettingsDialog, "exec", cancel_after_edits)
    with qtbot.assertNotEmitted(panel.settings_changed):
        panel.settings_button.click()
    assert panel.settings == ChatSettings()


def test_set_settings_shows_them_without_emitting(qtbot: Any, panel: ChatPanel) -> None:
    assert "context model default" in panel.settings_button.toolTip()
    with qtbot.assertNotEmitted(panel.settings_changed):
        panel.set_settings(ChatSettings(top_k=0, max_tokens=100))
    assert panel.settings == ChatSettings(top_k=0, max_tokens=100)
    assert "top-k off" in panel.settings_button.toolTip()
    assert "up to 100 tokens" in panel.settings_button.toolTip()


# Line breaks and titles -----------------------------------------------------------------


def test_single_line_breaks_of_an_answer_are_kept(panel: ChatPanel) -> None:
    haiku = "An old silent pond\nA frog jumps into the pond\nSplash! Silence again."
    panel.set_messages([{"role": "assistant", "content": haiku, "status": "complete"},
                        {"role": "user", "content": "one\ntwo", "status": "complete"}])
    shown = panel.view.toPlainText().replace("\u2028", "\n")
    assert "An old silent pond\nA frog jumps into the pond\nSplash!" in shown
    assert "one\ntwo" in shown


def test_code_keeps_its_lines_exactly_when_breaks_are_kept() -> None:
    from desktop.chat_markdown import keep_line_breaks

    text = "Steps:\nfirst\nsecond\n\n```sh\nls\npwd\n```\n| a | b |\n|---|---|\n| 1 | 2 |"
    kept = keep_line_breaks(text)
    assert "first  \nsecond" in kept and "Steps:  \nfirst" in kept
    assert "```sh\nls\npwd\n```" in kept  # code untouched: copies stay exact
    assert find_code_blocks(kept)[0].code == "ls\npwd"
    document = QTextDocument()
    document.setMarkdown(kept)
    assert "<table" in document.toHtml()  # a table is still a table


def test_a_line_break_inside_a_list_item_does_not_make_a_new_item() -> None:
    from desktop.chat_markdown import keep_line_breaks

    answer = "1. The answer is: [1]\nThe machine wants descaling.\n2. Next step\n- a\n  b\n\nEnd"
    document = QTextDocument()
    document.setMarkdown(keep_line_breaks(answer))
    items, block = [], document.begin()
    while block.isValid():
        if block.textList() is not None:
            items.append(block.text())
        block = block.next()
    assert items == ["The answer is: [1]\u2028The machine wants descaling.", "Next step",
                     "a\u2028b"]  # three items, each break kept as a break inside its item
    assert "End" in document.toPlainText()


def test_titles_are_cut_at_a_word_and_marked() -> None:
    from desktop.conversations import TITLE_CHARS, title_from

    long = "Write a haiku about the sea and the moon. Don't use rhymes, please, thanks."
    title = title_from(long)
    assert len(title) <= TITLE_CHARS and title.endswith("…")
    assert long.startswith(title[:-1]) and long[len(title) - 1] == " "  # a whole word last
    assert title_from("Short one\nsecond line") == "Short one"
    chinese = "给我写一首关于大海的诗" * 6
    assert title_from(chinese) == chinese[:TITLE_CHARS - 1] + "…"


def test_a_streaming_answer_re_renders_only_itself(panel: ChatPanel,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Re-rendering the whole chat every 50 ms cost more the longer the chat grew; while an
    answer streams, only that answer is rendered again, and it reads exactly as the full
    rendering does."""
    earlier = [{"role": role, "content": f"Turn {n}: **bold** and\n\n```\ncode {n}\n```",
                "status": "complete"} for n in range(6) for role in ("user", "assistant")]
    answer = {"role": "assistant", "content": "The lamp", "status": "streaming"}
    panel.set_messages([*earlier, answer])
    full_renders: list[str] = []
    render = panel.view.setMarkdown
    monkeypatch.setattr(panel.view, "setMarkdown",
                        lambda text: (full_renders.append(text), render(text))[1])
    for word in ("turned", "all", "night", "and", "the", "sea", "rolled."):
        panel.messages[-1]["content"] += f" {word}"
        panel.refresh()
    assert full_renders == []
    streamed = panel.view.toPlainText()
    assert streamed.endswith("The lamp turned all night and the sea rolled.")
    panel.messages[-1]["status"] = "complete"
    panel.refresh()
    assert len(full_renders) == 1 and panel.view.toPlainText() == streamed
    assert panel._code_blocks == [f"code {n}" for n in range(6) for _ in range(2)]
