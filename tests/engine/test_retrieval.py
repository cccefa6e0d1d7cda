"""Document collections: passages with their places, incremental updates, search, citations,
and a cancel that leaves a consistent collection."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import numpy as np
import pytest

from engine.documents.model import Block, Document
from engine.errors import ConfigError
from engine.retrieval import indexer
from engine.retrieval.answer import CitationFilter, passages_prompt
from engine.retrieval.chunks import MAX_WORDS, chunk_document
from engine.retrieval.collection import Collection, list_collections, remove_collection
from engine.retrieval.search import Hit, keyword_query, search

TOPICS = {  # file stem: (a sentence with its fact, a question only that file answers)
    "lamps": ("The brass lamp glows amber because its filament is tungsten.",
              "Why does the brass lamp glow amber?"),
    "rivers": ("The Ostrava river floods every April after the snow melts.",
               "When does the Ostrava river flood?"),
    "bread": ("Sourdough bread rises overnight with a rye starter.",
              "What makes sourdough bread rise?"),
    "pianos": ("A grand piano has two hundred and thirty strings under tension.",
               "How many strings does a grand piano have?"),
    "bridges": ("The Kestrel suspension bridge spans nine hundred metres of estuary.",
                "How long is the Kestrel suspension bridge?"),
}
FILLER = ("This chapter continues with general remarks about care, storage and cleaning. "
          "Readers should keep the manual nearby. ")


class WordEmbedder:
    """A stand-in embedding model: hashed bags of words, unit length (similar words, similar
    vectors), so ranking by meaning is testable without a real model."""

    name, dimension = "words", 256

    def __init__(self) -> None:
        self.calls = 0
        self.stop_after: int | None = None
        self.max_tokens: list[int | None] = []  # what each call asked to read of each text

    def embed(self, texts: list[str], should_stop: object = None,
              max_tokens: int | None = None) -> np.ndarray:
        self.calls += 1
        self.max_tokens.append(max_tokens)
        out = np.zeros((len(texts), self.dimension), np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                if len(word) > 3:
                    out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % 256] += 1
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)


def _write_corpus(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for stem, (fact, _) in TOPICS.items():
        (folder / f"{stem}.md").write_text(
            f"# {stem.title()}\n\n{FILLER * 3}\n\n## Details\n\n{fact} {FILLER}\n",
            encoding="utf-8")
    return folder


def _collection(folder: Path, embedder: WordEmbedder) -> Collection:
    return Collection.create("test", [folder], embedder.name, embedder.dimension)


def test_passages_know_their_heading_pages_and_offsets() -> None:
    long = " ".join(f"Sentence {i} is about wiring the lamp." for i in range(80))
    document = Document("manual.pdf", "pdf", [
        Block("heading", "Wiring", 1, page=3), Block("paragraph", long, page=3),
        Block("paragraph", "The fuse sits under the base.", page=4),
        Block("heading", "Safety", 2, page=5), Block("paragraph", FILLER * 4, page=5)])
    text = document.text()
    chunks = chunk_document(document)
    assert len(chunks) >= 4
    for chunk in chunks:
        assert len(chunk.text.split()) <= MAX_WORDS
        # The offsets point at the passage's own words in the document's text.
        assert text[chunk.char_start:chunk.char_end].split()[:3] == chunk.text.split()[:3]
        assert text[chunk.char_start:chunk.char_end].split()[-3:] == chunk.text.split()[-3:]
    assert chunks[0].heading == "Wiring" and chunks[0].where() == "p. 3"
    assert [c.where() for c in chunks if "fuse" in c.text] == ["pp. 3-4"]
    assert chunks[-1].heading == "Wiring › Safety" and chunks[-1].where() == "p. 5"
    assert chunks[-1].embedding_text().startswith("Wiring › Safety\n")
    # Every sentence is in exactly one passage, in order.
    joined = " ".join(c.text for c in chunks if c.heading == "Wiring")
    assert joined.count("Sentence 79 is") == 1 and joined.index("Sentence 5 ") < joined.index(
        "Sentence 60 ")


def test_an_update_reads_only_new_or_changed_files(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _write_corpus(tmp_path / "docs")
    (folder / "broken.docx").write_bytes(b"not a zip at all")
    (folder / ".hidden.md").write_text("# Hidden\n\nsecret", encoding="utf-8")
    read: list[str] = []
    real_read = indexer.read_document
    monkeypatch.setattr(indexer, "read_document",
                        lambda path, **kw: read.append(Path(path).name) or real_read(path, **kw))
    embedder = WordEmbedder()
    with _collection(folder, embedder) as collection:
        first = indexer.update_collection(collection, embedder)
        assert (first.added, first.unchanged, len(first.skipped)) == (5, 0, 1)
        assert "broken.docx" in first.skipped[0][0] and first.skipped[0][1]
        assert sorted(read) == sorted(["broken.docx", *(f"{s}.md" for s in TOPICS)])
        passages = collection.passage_count()
        read.clear()
        again = indexer.update_collection(collection, embedder)
        assert (again.added, again.updated, again.unchanged, read) == (0, 0, 6, [])
        # A new time with the same content is not read again; changed content is.
        os.utime(folder / "bread.md", ns=(1, 1))
        (folder / "lamps.md").write_text("# Lamps\n\nThe lamp is now green.", encoding="utf-8")
        (folder / "rivers.md").unlink()
        (folder / "new.txt").write_text("A new note about copper wire gauges.", encoding="utf-8")
        third = indexer.update_collection(collection, embedder)
        assert sorted(read) == ["lamps.md", "new.txt"]
        assert (third.added, third.updated, third.removed) == (1, 1, 1)
        files = {Path(r.path).name: r for r in collection.files()}
        assert "rivers.md" not in files and files["broken.docx"].status == "skipped"
        assert collection.passage_count() < passages + 2
        hits = search(collection, embedder, "What colour is the lamp now?", 3)
        assert "green" in hits[0].passage.text
    # Passages are embedded by their start (PASSAGE_TOKENS), questions whole.
    assert set(embedder.max_tokens) == {indexer.PASSAGE_TOKENS, None}


@pytest.mark.parametrize("mode", ["hybrid", "keyword", "vector"])
def test_each_question_finds_its_own_file(tmp_path: Path, mode: str) -> None:
    embedder = WordEmbedder()
    with _collection(_write_corpus(tmp_path / "docs"), embedder) as collection:
        indexer.update_collection(collection, embedder)
        for stem, (fact, question) in TOPICS.items():
            hits = search(collection, embedder, question, 3, mode)
            assert Path(hits[0].passage.path).stem == stem, (mode, question)
            assert fact in hits[0].passage.text and hits[0].passage.heading.endswith("Details")


def test_search_refuses_bad_settings_and_quotes_fts_syntax(tmp_path: Path) -> None:
    embedder = WordEmbedder()
    with _collection(_write_corpus(tmp_path / "docs"), embedder) as collection:
        indexer.update_collection(collection, embedder)
        with pytest.raises(ConfigError, match="search mode"):
            search(collection, embedder, "lamp", mode="fuzzy")
        with pytest.raises(ConfigError, match="between 1 and 100"):
            search(collection, embedder, "lamp", k=0)
        assert keyword_query('lamp" OR NEAR(x) * 42') == '"lamp" OR "near" OR "42"'
        assert search(collection, embedder, 'NOT AND "" * (', 3, "keyword") == []


def test_citations_only_point_at_given_passages() -> None:
    citations = CitationFilter(passages=3)
    pieces = ["The lamp is amber [", "1]. It floods in April [2][7", "]. See [4, 2] and [x] ",
              "or arrays[i], [ ] and [3"]
    shown = "".join(citations.feed(piece) for piece in pieces) + citations.flush()
    assert shown == ("The lamp is amber [1]. It floods in April [2]. See [2] and [x] "
                     "or arrays[i], [ ] and [3")
    assert citations.cited == [1, 2] and citations.dropped == ["[7]", "[4, 2]"]


def test_the_model_is_told_when_nothing_is_relevant(tmp_path: Path) -> None:
    embedder = WordEmbedder()
    with _collection(_write_corpus(tmp_path / "docs"), embedder) as collection:
        indexer.update_collection(collection, embedder)
        hits = search(collection, embedder, "quantum chromodynamics lattice gauge", 3)
        assert hits == [] or not any(hit.relevant for hit in hits)
        nothing = passages_prompt("quantum chromodynamics?", hits)
        assert "No passage" in nothing[1]["content"] and "[1]" not in nothing[1]["content"]
        question = "Sourdough bread rises overnight with which starter?"
        found = search(collection, embedder, question, 2)
        assert found[0].relevant
        prompt = passages_prompt(question, found)[1]["content"]
        assert prompt.startswith("Passages:\n\n[1] (bread.md, Bread › Details)")


def test_a_cancel_mid_update_leaves_a_consistent_collection(tmp_path: Path) -> None:
    folder = _write_corpus(tmp_path / "docs")
    embedder = WordEmbedder()
    with _collection(folder, embedder) as collection:
        calls = iter(range(100))
        # Stops while the third file's passages are embedded (after two files were written).
        stopped = indexer.update_collection(collection, embedder,
                                            should_stop=lambda: next(calls) >= 5)
        assert stopped.cancelled and 0 < stopped.added < len(TOPICS)
        written = {Path(r.path).name for r in collection.files()}
        assert len(written) == stopped.added
        for record in collection.files():  # each written file is whole: all its passages
            document = indexer.read_document(Path(record.path))
            assert record.chunks == len(chunk_document(document))
        # Vectors appended for a file whose transaction never came are unused and dropped.
        collection._append_vectors(np.ones((3, embedder.dimension), np.float32))
        rest = indexer.update_collection(collection, embedder)
        assert not rest.cancelled and rest.added == len(TOPICS) - stopped.added
        collection.compact()
        assert len(collection.vectors()) == collection.passage_count()
        for stem, (_, question) in TOPICS.items():
            assert Path(search(collection, embedder, question, 1)[0].passage.path).stem == stem


def test_collections_are_listed_and_removed_without_touching_documents(tmp_path: Path) -> None:
    folder = _write_corpus(tmp_path / "docs")
    embedder = WordEmbedder()
    _collection(folder, embedder).close()
    with pytest.raises(ConfigError, match="exists already"):
        _collection(folder, embedder)
    with pytest.raises(ConfigError, match="not usable"):
        Collection.create("../escape", [folder], "words", 8)
    assert list_collections() == ["test"]
    remove_collection("test")
    assert list_collections() == [] and len(list(folder.iterdir())) == len(TOPICS)
    with pytest.raises(ConfigError, match="no collection named 'test'"):
        Collection.open("test")


def test_hits_carry_the_cosine_for_every_mode(tmp_path: Path) -> None:
    embedder = WordEmbedder()
    with _collection(_write_corpus(tmp_path / "docs"), embedder) as collection:
        indexer.update_collection(collection, embedder)
        for mode in ("keyword", "vector", "hybrid"):
            hits: list[Hit] = search(collection, embedder, TOPICS["pianos"][1], 2, mode)
            query = embedder.embed([TOPICS["pianos"][1]])[0]
            vector = embedder.embed([f"{hits[0].passage.heading}\n{hits[0].passage.text}"])[0]
            assert hits[0].cosine == pytest.approx(float(vector @ query), abs=1e-5)
