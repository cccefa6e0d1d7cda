"""Finding a collection's passages for a question: by meaning, by keyword, or both (hybrid).

- vector: the question's embedding against every passage's, an exact cosine (one matrix-vector
  product over the memory-mapped matrix, in blocks, so memory stays flat at any size);
- keyword: SQLite FTS5's BM25 over the passages and their headings, the question's content words
  OR-ed (each quoted, so no word is read as FTS5 syntax);
- hybrid: both lists fused by reciprocal rank (each list's rank r adds weight / (RRF_K + r)),
  which needs no score calibration between two very different scales. The keyword list weighs
  less: on the Python docs' FAQ questions (benchmarks/retrieval/python_docs.py) equal weights
  with k=60 found the answer in the top 5 for 64% of questions, fewer than meaning alone (70%);
  keyword weight 0.3 with k=20 found 73%. Keywords still pull up exact names (a function, an
  error code) that embeddings blur.

Every hit carries its cosine to the question, which is what says whether anything relevant was
found at all (``RELEVANT_COSINE``): BM25 finds some passage for almost any question.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from engine.errors import ConfigError
from engine.retrieval.collection import Collection, Passage
from engine.retrieval.embedder import Embedder

MODES = ("hybrid", "vector", "keyword")
CANDIDATES = 50  # per list, before fusing
RRF_K = 20  # reciprocal rank fusion's constant (60 is usual; see the module docstring)
KEYWORD_WEIGHT = 0.3  # the keyword list's weight in the fusion; meaning's is 1
BLOCK_ROWS = 65_536  # vector rows scored per step (16 MB of float32 at 64 dimensions ... 96 MB)
# MiniLM's cosines: a passage that answers a question scores 0.4-0.8, an unrelated one under
# 0.15; a passage below this does not count as relevant to the question.
RELEVANT_COSINE = 0.25
_WORD = re.compile(r"\w+")
_STOPWORDS = frozenset([
    "a", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from", "has",
    "have", "how", "i", "if", "in", "is", "it", "its", "me", "my", "of", "on", "or", "so",
    "than", "that", "the", "their", "then", "there", "these", "this", "to", "was", "what",
    "when", "where", "which", "who", "why", "will", "with", "you", "your"
])


@dataclass(frozen=True)
class Hit:
    passage: Passage
    score: float  # the mode's own score (cosine, BM25, or fused rank score)
    cosine: float  # to the question, whatever the mode

    @property
    def relevant(self) -> bool:
        return self.cosine >= RELEVANT_COSINE


def keyword_query(question: str) -> str:
    """The FTS5 query for a question: its content words, quoted, OR-ed ("" when none)."""
    words = [w for w in dict.fromkeys(_WORD.findall(question.casefold()))
             if w not in _STOPWORDS and (len(w) > 1 or w.isdigit())]
    return " OR ".join(f'"{w}"' for w in words)


def _vector_ranking(collection: Collection, query: np.ndarray,
                    limit: int) -> tuple[list[int], dict[int, float]]:
    """The best passage ids by cosine, and every scored passage's cosine."""
    matrix = collection.vectors()
    if len(matrix) == 0:
        return [], {}
    best_rows: list[int] = []
    best_scores: list[float] = []
    for start in range(0, len(matrix), BLOCK_ROWS):
        scores = np.asarray(matrix[start:start + BLOCK_ROWS]) @ query
        # A few more than asked: rows of removed passages are skipped below.
        take = min(len(scores), 2 * limit)
        top = np.argpartition(-scores, take - 1)[:take]
        best_rows += [start + int(i) for i in top]
        best_scores += [float(scores[i]) for i in top]
    order = sorted(range(len(best_rows)), key=lambda i: -best_scores[i])
    ids = collection.ids_of_rows([best_rows[i] for i in order])
    ranked = [(ids[best_rows[i]], best_scores[i]) for i in order if best_rows[i] in ids]
    return [pid for pid, _ in ranked[:limit]], dict(ranked)


def _cosines(collection: Collection, ids: list[int], query: np.ndarray) -> dict[int, float]:
    rows = collection.rows_of_ids(ids)
    matrix = collection.vectors()
    return {pid: float(np.asarray(matrix[row]) @ query) for pid, row in rows.items()}


def search(collection: Collection, embedder: Embedder, question: str, k: int = 5,
           mode: str = "hybrid") -> list[Hit]:
    """The ``k`` best passages for ``question``, best first.

    Raises:
        ConfigError: an unknown mode, a bad ``k``, or an embedder other than the collection's.
    """
    if mode not in MODES:
        raise ConfigError(f"search mode must be one of {', '.join(MODES)} (got {mode!r})")
    if not 1 <= k <= 100:
        raise ConfigError(f"the number of passages must be between 1 and 100 (got {k})")
    if embedder.dimension != collection.dimension:
        raise ConfigError(f"collection {collection.name!r} was indexed with "
                          f"{collection.embedding_model!r} ({collection.dimension} dimensions); "
                          f"{embedder.name!r} has {embedder.dimension}")
    query = embedder.embed([question])[0]
    vector_ids, cosines = _vector_ranking(collection, query, max(CANDIDATES, k))
    keyword = collection.keyword_search(keyword_query(question), max(CANDIDATES, k)) \
        if keyword_query(question) else []
    if mode == "vector":
        ranked = [(pid, cosines[pid]) for pid in vector_ids]
    elif mode == "keyword":
        ranked = keyword
    else:
        fused: dict[int, float] = {}
        for weight, ranking in ((1.0, vector_ids), (KEYWORD_WEIGHT, [pid for pid, _ in keyword])):
            for rank, pid in enumerate(ranking):
                fused[pid] = fused.get(pid, 0.0) + weight / (RRF_K + rank + 1)
        ranked = sorted(fused.items(), key=lambda item: -item[1])
    ranked = ranked[:k]
    missing = [pid for pid, _ in ranked if pid not in cosines]
    cosines.update(_cosines(collection, missing, query))
    passages = {p.id: p for p in collection.passages([pid for pid, _ in ranked])}
    return [Hit(passages[pid], score, cosines.get(pid, 0.0)) for pid, score in ranked
            if pid in passages]
