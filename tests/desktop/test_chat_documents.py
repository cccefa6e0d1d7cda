"""Chat with documents in the app: the Documents window (indexing in a child process, skipped
files, cancel, remove), the per-conversation Documents picker, and cited answers whose passages
open beside the chat and are kept in the history."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from notes_corpus import write_notes

from desktop.chat_panel import ChatPanel
from desktop.citations import link_citations, parse_cite_target, sources_footer
from desktop.documents_dialog import DocumentsDialog
from desktop.main_window import MainWindow
from engine.retrieval.collection import Collection, list_collections
from engine.retrieval.embedder import load_embedder
from engine.retrieval.indexer import update_collection

SOURCES = [{"number": 1, "where": "lamp.md, Lamp", "path": "/docs/lamp.md", "page_start": None,
            "page_end": None, "heading": "Lamp", "cited": True, "text": "The lamp has a wire."},
           {"number": 2, "where": "manual.pdf, pp. 3-4", "path": "/docs/manual.pdf",
            "page_start": 3, "page_end": 4, "heading": "Setup", "cited": False,
            "text": "Plug the cable in."}]



def _notes(folder: Path) -> Path:
    return write_notes(folder, "broken.pdf", b"%PDF-1.4 this is not really a PDF")


def _window(qtbot: Any, windows: list[MainWindow], model: Path, history: Path) -> MainWindow:
    window = MainWindow(model=str(model), device="cpu", history_path=history)
    windows.append(window)
    qtbot.addWidget(window)
    if window.model_info is None:
        with qtbot.waitSignal(window.model_ready, timeout=30_000):
            pass
    return window


def _indexed(name: str, folder: Path) -> None:
    embedder = load_embedder("minilm")
    with Collection.create(name, [folder], embedder.name, embedder.dimension) as collection:
        update_collection(collection, embedder)


def test_citations_become_links_only_for_passages_given() -> None:
    text = link_citations("Wire [1]. Cable [2][3]. A list [x] and [1](not mine).", 4, SOURCES)
    assert "[\\[1\\]](cite:4.1)" in text and "[\\[2\\]](cite:4.2)" in text
    assert "[3]" in text and "cite:4.3" not in text  # no passage 3: left as plain text
    assert "[1](not mine)" in text  # an existing link is not touched
    assert parse_cite_target("4.2") == (4, 2) and parse_cite_target("x.2") is None
    footer = sources_footer(4, SOURCES, True, "Sources:", "nothing")
    assert footer.startswith("*Sources:* ")
    assert "**[\\[1\\] lamp.md, Lamp](cite:4.1)**" in footer  # cited: bold
    assert "[\\[2\\] manual.pdf, pp. 3-4](cite:4.2)" in footer
    assert sources_footer(4, [], False, "Sources:", "Not from your documents") \
        == "*Not from your documents*"


def test_the_picker_is_the_conversations_setting_and_opens_the_documents_window(
        qtbot: Any) -> None:
    panel = ChatPanel()
    qtbot.addWidget(panel)
    panel.show_collections(["manuals", "notes"])
    labels = [panel.documents.itemText(i) for i in range(panel.documents.count())]
    assert labels[:3] == ["No documents", "Documents: manuals", "Documents: notes"]
    assert labels[-1] == "Manage documents…"
    with qtbot.waitSignal(panel.settings_changed) as changed:
        panel.documents.activated.emit(2)
    assert changed.args[0]["documents"] == "notes" and panel.settings.documents == "notes"
    with qtbot.waitSignal(panel.manage_documents_requested):
        panel.documents.activated.emit(panel.documents.count() - 1)
    assert panel.documents.currentData() == "notes"  # "Manage…" is not a choice
    panel.show_collections(["manuals"])  # notes was removed: still shown, marked
    assert panel.documents.currentText() == "Documents: notes (missing)"


def test_a_cited_passage_opens_beside_the_conversation(qtbot: Any) -> None:
    panel = ChatPanel()
    qtbot.addWidget(panel)
    panel.set_messages([{"role": "user", "content": "What has a wire?", "status": "complete"},
                        {"role": "assistant", "content": "The lamp [1].", "status": "complete",
                         "documents": {"collection": "notes", "relevant": True,
                                       "sources": SOURCES}}])
    assert "cite:1.1" in panel.markdown() and "Sources from notes:" in panel.markdown()
    assert not panel.citation.isVisibleTo(panel)
    assert panel.show_citation("1.2")
    assert panel.citation.isVisibleTo(panel)
    assert panel.citation.title.text() == "[2] manual.pdf, pp. 3-4"
    assert "Pages 3-4" in panel.citation.location.text()
    assert "Setup" in panel.citation.location.text()
    assert panel.citation.text.toPlainText() == "Plug the cable in."
    assert panel.show_citation("1.1")  # the heading is in the title: not said twice
    assert panel.citation.title.text() == "[1] lamp.md, Lamp"
    assert panel.citation.location.text() == "/docs/lamp.md"
    assert not panel.show_citation("1.7") and not panel.show_citation("0.1")
    panel.set_messages([])  # another conversation: the passage view closes
    assert not panel.citation.isVisibleTo(panel)


def test_nothing_relevant_is_said_under_the_answer(qtbot: Any) -> None:
    panel = ChatPanel()
    qtbot.addWidget(panel)
    panel.set_messages([{"role": "assistant", "content": "I do not know.", "status": "complete",
                         "documents": {"collection": "notes", "relevant": False,
                                       "sources": []}}])
    assert "Nothing in notes matched this question" in panel.markdown()


def test_a_documents_answer_streams_with_its_sources_and_is_kept(
        qtbot: Any, windows: list[MainWindow], tmp_path: Path, minilm: Path,
        tiny_chat_model_dir: Path) -> None:
    _indexed("notes", _notes(tmp_path / "notes"))
    window = _window(qtbot, windows, tiny_chat_model_dir, tmp_path / "history.db")
    chat = window.chat
    chat.documents.activated.emit(chat.documents.findData("notes"))
    chat.input.setPlainText("copper wire lamp")
    with qtbot.waitSignal(window.answer_finished, timeout=60_000) as finished:
        chat.send()
    assert finished.args == ["complete"]
    answer = chat.messages[-1]
    documents = answer["documents"]
    assert documents["collection"] == "notes"
    wheres = [s["where"] for s in documents["sources"]]
    assert wheres and set(wheres) <= {"lamp.md, Lamp", "river.md, River"}
    for number in [int(n) for n in re.findall(r"\[(\d+)\]", answer["content"])]:
        assert 1 <= number <= len(wheres)  # a citation is always one of the passages given
    assert chat.show_citation("1.1")
    assert chat.citation.text.toPlainText() in {s["text"] for s in documents["sources"]}

    # Kept: the conversation reopened shows the same sources; the export lists them.
    conversation = window.history.conversation_id
    assert conversation is not None
    window.history.new_conversation()
    assert chat.settings.documents == ""  # a new chat starts without documents
    window.history.open_conversation(conversation)
    assert chat.settings.documents == "notes"
    assert chat.messages[-1]["documents"]["sources"] == documents["sources"]
    exported = window.history.store.export_markdown(conversation)
    assert "Sources:" in exported and f"[1] {wheres[0]}" in exported


def test_asking_a_removed_collection_says_so(qtbot: Any, windows: list[MainWindow],
                                             tmp_path: Path, minilm: Path,
                                             tiny_chat_model_dir: Path) -> None:
    _indexed("notes", _notes(tmp_path / "notes"))
    window = _window(qtbot, windows, tiny_chat_model_dir, tmp_path / "history.db")
    chat = window.chat
    chat.documents.activated.emit(chat.documents.findData("notes"))
    assert window.show_documents().remove("notes")  # removed while the picker shows it
    chat.input.setPlainText("copper wire lamp")
    with qtbot.waitSignal(window.answer_finished, timeout=60_000) as finished:
        chat.send()
    assert finished.args == ["failed"]
    assert "no collection named 'notes'" in chat.notice.text()


def test_the_documents_window_reads_a_folder_lists_skipped_files_and_removes(
        qtbot: Any, tmp_path: Path, minilm: Path) -> None:
    folder = _notes(tmp_path / "notes")
    dialog = DocumentsDialog()
    qtbot.addWidget(dialog)
    assert not dialog.model_button.isVisibleTo(dialog)  # the embedding model is there
    with qtbot.waitSignal(dialog.job.finished, timeout=120_000) as finished:
        assert dialog.create_collection("notes", [folder])
        assert not dialog.new_button.isEnabled()  # one job at a time
    ok, message = finished.args
    assert ok, message
    assert "notes: 2 added" in message and "1 skipped" in message
    assert dialog.table.rowCount() == 1
    row = [dialog.table.item(0, c).text() for c in range(dialog.table.columnCount())]
    assert row[:4] == ["notes", "2", "2", "1"] and str(folder) in row[4]
    assert "broken.pdf" in dialog.skipped.toPlainText()

    more = tmp_path / "more"
    more.mkdir()
    (more / "bread.txt").write_text("Bread and cheese for the village.", encoding="utf-8")
    with qtbot.waitSignal(dialog.job.finished, timeout=120_000) as finished:
        assert dialog.add_folder("notes", more)
    assert finished.args[0], finished.args[1]
    assert "1 added" in finished.args[1] and "3 unchanged" in finished.args[1]
    assert dialog.table.item(0, 1).text() == "3"

    assert not dialog.create_collection("notes", [folder])  # the name is taken
    assert "already" in dialog.status.text()
    assert not dialog.create_collection("bad/name", [folder])
    assert "not usable" in dialog.status.text()
    with qtbot.waitSignal(dialog.collections_changed) as changed:
        assert dialog.remove("notes")
    assert changed.args == [[]] and list_collections() == []
    assert (folder / "lamp.md").exists()  # the documents themselves stay


def test_cancelled_indexing_leaves_a_collection_that_works(qtbot: Any, tmp_path: Path,
                                                          minilm: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for index in range(400):
        (folder / f"note{index:03}.md").write_text(
            f"# Note {index}\n\n" + "The lamp and the river and the copper wire. " * 40,
            encoding="utf-8")
    dialog = DocumentsDialog()
    qtbot.addWidget(dialog)
    stages: list[str] = []
    with qtbot.waitSignal(dialog.job.finished, timeout=120_000) as finished:
        assert dialog.create_collection("many", [folder])
        assert dialog.job.job is not None
        dialog.job.job.progress.connect(lambda stage, done, total: stages.append(stage))
        qtbot.waitUntil(lambda: any(s.startswith("reading note01") for s in stages),
                        timeout=60_000)
        dialog.cancel()
    assert finished.args == [False, "Cancelled."]
    with Collection.open("many") as collection:  # consistent: every file whole or absent
        files = collection.files()
        assert 0 < len(files) < 400
        assert collection.passage_count() == sum(f.chunks for f in files)
        rows = collection.rows_of_ids(list(range(1, collection.passage_count() + 200)))
        assert all(row < len(collection.vectors()) for row in rows.values())
    with qtbot.waitSignal(dialog.job.finished, timeout=300_000) as finished:
        assert dialog.update_collection("many")
    assert finished.args[0], finished.args[1]
    with Collection.open("many") as collection:
        assert len(collection.files()) == 400
