"""Sentence embeddings from an ``encoder`` model folder (all-MiniLM-L6-v2 by default).

The graph pools and normalises itself (``convert/encoder_graph.py``), so a row of ``embed``'s
result is a unit vector and a dot product of two rows is their cosine. Texts are embedded in
batches of similar length (sorted by token count), so short questions and long passages do not
pad each other; a text longer than the model's input is cut to it (MiniLM reads 256 tokens),
and the index embeds only a passage's first ``PASSAGE_TOKENS``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import onnxruntime as ort

from engine.callbacks import ShouldStop
from engine.device import device_of, physical_cores
from engine.errors import ConfigError, ModelNotFoundError, OperationCancelledError
from engine.formats import check_inside, read_model_folder
from engine.manifest import Manifest
from engine.retrieval import EMBEDDING_MODEL
from engine.session import check_tokenizer_fits, open_session
from engine.store import resolve_model
from engine.tokenizer import Tokenizer

logger = logging.getLogger(__name__)
OUTPUT = "embedding"  # the graph's output (convert/encoder_graph.py:EMBEDDING_OUTPUT)
# Texts per run: 16 passages of ~240 tokens ran 5-10% faster than 32 or 64 on 2 cores (the
# activations stay in cache), and pad less.
BATCH = 16
# What of a passage the index embeds: its heading path and first ~90 words. MiniLM was trained
# on 128-token inputs; on the Python docs benchmark 128 tokens gave the recall of 256 (hybrid
# recall@5 0.73 both, vector 0.69 against 0.70) and indexed 1.8x faster (220 s against 390 s
# for 530 pages). The whole passage is in the keyword index and is what the model is given.
PASSAGE_TOKENS = 128


class Embedder:
    """One loaded embedding model; use from one thread at a time."""

    def __init__(self, folder: Path, manifest: Manifest, tokenizer: Tokenizer,
                 session: ort.InferenceSession) -> None:
        self.folder, self.manifest, self.tokenizer = folder, manifest, tokenizer
        self._session = session
        self.name = folder.name
        self.max_tokens = manifest.context_length
        self.dimension = int(session.get_outputs()[0].shape[-1])
        self.device = device_of(session)

    def count_tokens(self, text: str) -> int:
        """How many tokens the model reads of ``text`` (special tokens included, uncut)."""
        return len(self.tokenizer.encode_many([text])[0])

    def embed(self, texts: list[str], should_stop: ShouldStop | None = None,
              max_tokens: int | None = None) -> np.ndarray:
        """Unit embeddings, (len(texts), dimension) float32, in the order given.

        Args:
            max_tokens: read at most this many tokens of each text (default: all the model
                takes); the indexer reads a passage's first ``PASSAGE_TOKENS``.

        Raises:
            OperationCancelledError: ``should_stop`` returned True (checked between batches).
        """
        out = np.zeros((len(texts), self.dimension), np.float32)
        if not texts:
            return out
        limit = min(self.max_tokens, max_tokens or self.max_tokens)
        encoded = [ids[:limit] for ids in self.tokenizer.encode_many(texts)]
        order = sorted(range(len(texts)), key=lambda i: len(encoded[i]))
        for start in range(0, len(order), BATCH):
            if should_stop is not None and should_stop():
                raise OperationCancelledError("embedding was cancelled")
            rows = order[start:start + BATCH]
            width = max(len(encoded[i]) for i in rows)
            ids = np.zeros((len(rows), width), np.int64)
            mask = np.zeros_like(ids)
            for row, index in enumerate(rows):
                tokens = encoded[index]
                ids[row, :len(tokens)], mask[row, :len(tokens)] = tokens, 1
            vectors = self._session.run(
                [OUTPUT], {"input_ids": ids, "attention_mask": mask})[0]
            out[rows] = vectors
        return out


def load_embedder(spec: str | os.PathLike[str], device: str = "cpu",
                  threads: int | None = None) -> Embedder:
    """Loads an embedding model (a store name or a folder).

    Raises:
        ConfigError: the model is not an embedding model, or the catalog's is not installed.
        EngineError: a subclass naming the file at fault.
    """
    try:
        folder = resolve_model(spec)
    except ModelNotFoundError:
        if str(spec) != EMBEDDING_MODEL:
            raise
        raise ConfigError(f"the embedding model {EMBEDDING_MODEL!r} is not installed",
                          hint=f"install it once with: nightlamp models pull {EMBEDDING_MODEL}",
                          app_hint="get the embedding model in Documents (about 60 MB)"
                          ) from None
    manifest = read_model_folder(folder)
    if manifest.architecture != "encoder":
        raise ConfigError(f"{folder.name} is a {manifest.architecture} model, not an embedding "
                          "model", hint="install one with: nightlamp models pull minilm",
                          app_hint="install the minilm embedding model in Models")
    tokenizer = Tokenizer(check_inside(folder, manifest.tokenizer_file, "files.tokenizer"))
    check_tokenizer_fits(tokenizer, manifest.vocab_size)
    session = open_session(check_inside(folder, manifest.decoder_file, "files.decoder"), device,
                           threads or physical_cores())
    if [o.name for o in session.get_outputs()] != [OUTPUT]:
        raise ConfigError(f"{folder}: its graph does not return '{OUTPUT}'; re-import the model")
    logger.info("loaded embedding model %s", folder)
    return Embedder(folder, manifest, tokenizer, session)
