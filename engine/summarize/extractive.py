"""Extractive summaries: the document's own most central sentences, in their original order.

Sentences are TF-IDF vectors; TextRank (PageRank over their cosine similarities) says how central
each one is, with a mild preference for the first sentences of the document and of each section
(where writers state their point). Sentences are then picked greedily by score, skipping ones too
similar to those already picked (maximal marginal relevance), until the length budget is met.
Works on any language the sentence splitter handles, English and Chinese included, with no model.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from engine.callbacks import ShouldStop
from engine.documents.model import Document
from engine.errors import OperationCancelledError
from engine.text.sentences import join_sentences, split_sentences, words

# Sentences per summary for each length ("long" adds up to LONG_PER_SECTION per section).
SENTENCES = {"short": 3, "medium": 6, "long": 12}
LONG_PER_SECTION = 3
REDUNDANCY = 0.6  # a sentence this similar (cosine) to a picked one is skipped
DAMPING = 0.85  # PageRank's usual damping factor
WINDOW = 1000  # sentences ranked together (see _central)
FULL_MARGIN = 8  # select_to_fit stops this close to its budget ...
MAX_TRIES = 2000  # ... or after trying this many sentences


@dataclass(frozen=True)
class Sentence:
    text: str
    section: str  # the heading it is under ("" before the first heading)
    position: float  # 0 for the first sentence of its section, growing towards 1
    index: int  # order in the document


def document_sentences(document: Document) -> list[Sentence]:
    """Sentences of the document's prose (paragraphs and list items), with their section."""
    sections: list[tuple[str, list[str]]] = [("", [])]
    for block in document.blocks:
        if block.kind == "heading":
            sections.append((block.text, []))
        elif block.kind in ("paragraph", "list_item"):
            sections[-1][1].extend(split_sentences(block.text))
    found: list[Sentence] = []
    for heading, texts in sections:
        for rank, text in enumerate(texts):
            found.append(Sentence(text, heading, rank / max(1, len(texts)), len(found)))
    return found


def _vectors(sentences: list[Sentence]) -> np.ndarray:
    """Unit-length TF-IDF rows, one per sentence (zero rows for sentences with no terms)."""
    terms = [Counter(words(s.text)) for s in sentences]
    document_frequency = Counter(t for counts in terms for t in counts)
    vocabulary = {term: i for i, term in enumerate(document_frequency)}
    matrix = np.zeros((len(sentences), max(1, len(vocabulary))), dtype=np.float32)
    total = len(sentences)
    for row, counts in enumerate(terms):
        for term, count in counts.items():
            idf = math.log((1 + total) / (1 + document_frequency[term])) + 1
            matrix[row, vocabulary[term]] = (1 + math.log(count)) * idf
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)


def textrank(similarity: np.ndarray, iterations: int = 60) -> np.ndarray:
    """PageRank scores over a weighted, undirected similarity graph."""
    count = similarity.shape[0]
    weights = similarity.copy()
    np.fill_diagonal(weights, 0.0)
    out_weight = weights.sum(axis=1, keepdims=True)
    # A sentence sharing no terms with any other links to all equally (no dangling mass lost).
    transition = np.where(out_weight > 0, weights / np.maximum(out_weight, 1e-12), 1.0 / count)
    scores = np.full(count, 1.0 / count)
    for _ in range(iterations):
        updated = (1 - DAMPING) / count + DAMPING * transition.T @ scores
        if np.abs(updated - scores).sum() < 1e-7:
            return updated
        scores = updated
    return scores


class PairSimilarity:
    """Cosine similarity of two sentences' TF-IDF vectors, computed when asked (indexed like the
    matrix, ``similarity[i, j]``): what a document too long for the n x n matrix uses."""

    def __init__(self, sentences: list[Sentence]) -> None:
        self.terms = [Counter(words(s.text)) for s in sentences]
        self.frequency = Counter(t for counts in self.terms for t in counts)
        self.total = len(sentences)
        self.cache: dict[int, tuple[dict[str, float], float]] = {}

    def _vector(self, index: int) -> tuple[dict[str, float], float]:
        if index not in self.cache:
            vector = {term: (1 + math.log(count)) *
                      (math.log((1 + self.total) / (1 + self.frequency[term])) + 1)
                      for term, count in self.terms[index].items()}
            self.cache[index] = vector, math.sqrt(sum(v * v for v in vector.values()))
        return self.cache[index]

    def __getitem__(self, pair: tuple[int, int]) -> float:
        (a, norm_a), (b, norm_b) = self._vector(pair[0]), self._vector(pair[1])
        if not norm_a or not norm_b:
            return 0.0
        if len(b) < len(a):
            a, b = b, a
        return min(1.0, sum(weight * b.get(term, 0.0) for term, weight in a.items())
                   / (norm_a * norm_b))


Similarity = np.ndarray | PairSimilarity


def _central(sentences: list[Sentence],
             should_stop: ShouldStop | None = None) -> tuple[np.ndarray, Similarity]:
    """TextRank centrality (max 1) and the similarities the picking step needs. A document of
    more than WINDOW sentences is ranked window by window: the matrix grows with the square of
    the sentences (a 2,400-page manual has ~100,000: 40 GB), a window's is 4 MB."""
    if len(sentences) <= WINDOW:
        vectors = _vectors(sentences)
        similarity = np.clip(vectors @ vectors.T, 0.0, 1.0)
        central = textrank(similarity)
        return (central / central.max() if central.max() > 0 else central), similarity
    parts = []
    for start in range(0, len(sentences), WINDOW):
        if should_stop is not None and should_stop():
            raise OperationCancelledError("the summary was cancelled")
        parts.append(_central(sentences[start:start + WINDOW])[0])
    return np.concatenate(parts), PairSimilarity(sentences)


def rank(sentences: list[Sentence],
         should_stop: ShouldStop | None = None) -> tuple[np.ndarray, Similarity]:
    """Each sentence's score, and the sentence-by-sentence cosine similarities (``should_stop``
    is asked between windows of a long document)."""
    central, similarity = _central(sentences, should_stop)
    # Lead bias: the opening of the document and of each section states the point.
    lead = np.array([1.0 + 0.6 * (1 - s.position) ** 4 + (0.6 if s.index < 2 else 0.0)
                     for s in sentences])
    too_short = np.array([len(words(s.text)) < 3 for s in sentences])
    return np.where(too_short, 0.05, central * lead), similarity


def _ranked_distinct(scores: np.ndarray, similarity: Similarity,
                     chosen: list[int]) -> Iterator[int]:
    """Sentence indices best first, skipping any too similar to one already in ``chosen``
    (which the caller fills as it accepts sentences)."""
    for index in np.argsort(-scores, kind="stable"):
        if not any(similarity[index, other] > REDUNDANCY for other in chosen):
            yield int(index)


def pick(scores: np.ndarray, similarity: Similarity, count: int,
         allowed: Callable[[int], bool] = lambda _i: True) -> list[int]:
    """Indices of up to ``count`` high-scoring sentences that don't repeat each other."""
    chosen: list[int] = []
    for index in _ranked_distinct(scores, similarity, chosen):
        if len(chosen) == count:
            break
        if allowed(index):
            chosen.append(index)
    return sorted(chosen)


def extractive_summary(document: Document, length: str = "medium",
                       max_words: int | None = None) -> str:
    """The summary as plain text; "long" keeps section headings (Markdown ``##``).

    ``max_words`` replaces the length's sentence count with a word budget: sentences are taken
    by rank until the summary reaches it.
    """
    sentences = document_sentences(document)
    if not sentences:
        return ""
    scores, similarity = rank(sentences)
    if max_words is not None:
        return join_sentences([sentences[i].text for i in
                               _until_words(sentences, scores, similarity, max_words)])
    if length != "long":
        return join_sentences([sentences[i].text
                               for i in pick(scores, similarity, SENTENCES[length])])
    lines: list[str] = []
    for heading in dict.fromkeys(s.section for s in sentences):
        members = {s.index for s in sentences if s.section == heading}
        picked = pick(scores, similarity, LONG_PER_SECTION, members.__contains__)
        if picked:
            if heading:
                lines.append(f"## {heading}")
            lines.append(join_sentences([sentences[i].text for i in picked]))
    return "\n\n".join(lines)


def _until_words(sentences: list[Sentence], scores: np.ndarray, similarity: Similarity,
                 max_words: int) -> list[int]:
    chosen: list[int] = []
    used = 0
    for index in _ranked_distinct(scores, similarity, chosen):
        if used >= max_words:
            break
        chosen.append(index)
        used += len(sentences[index].text.split())
    return sorted(chosen)


def select_to_fit(document: Document, count_tokens: Callable[[str], int], budget: int,
                  should_stop: ShouldStop | None = None) -> str:
    """The most central sentences, in document order, that fit ``budget`` tokens (used to fit a
    long document into a model's context for one abstractive pass)."""
    sentences = document_sentences(document)
    if not sentences:
        return ""
    scores, similarity = rank(sentences, should_stop)
    chosen: list[int] = []
    used = 0
    for tried, index in enumerate(_ranked_distinct(scores, similarity, chosen)):
        if used >= budget - FULL_MARGIN or tried >= MAX_TRIES:
            break  # full: the rest of a long document's sentences would each be counted
        cost = count_tokens(sentences[index].text) + 1
        if used + cost <= budget:
            chosen.append(index)
            used += cost
    return join_sentences([sentences[i].text for i in sorted(chosen)])
