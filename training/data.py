"""Training data: reads corpus files, tokenizes them, splits off a held-out part, draws batches.

Batches are random windows drawn with a ``torch.Generator`` whose state goes into checkpoints, so
a resumed run sees exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from engine.errors import ConfigError

MAX_CORPUS_BYTES = 2 * 1024**3


def read_corpus(paths: Sequence[Path]) -> list[str]:
    """Reads UTF-8 text files; each error names the file and what to do.

    Raises:
        ConfigError: missing, empty, binary or non-UTF-8 file.
    """
    if not paths:
        raise ConfigError("no corpus files given; pass --corpus FILE [FILE ...]")
    texts = []
    for path in paths:
        if not path.is_file():
            raise ConfigError(f"{path}: corpus file not found")
        if path.stat().st_size > MAX_CORPUS_BYTES:
            raise ConfigError(f"{path}: corpus file is over 2 GiB; split it into smaller files")
        raw = path.read_bytes()
        if b"\x00" in raw:
            raise ConfigError(f"{path}: looks like a binary file, not text; pass UTF-8 text files")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise ConfigError(
                f"{path}: not UTF-8 text (bad byte at offset {error.start}); convert it to UTF-8, "
                "e.g. iconv -f LATIN1 -t UTF-8"
            ) from None
        if not text.strip():
            raise ConfigError(f"{path}: corpus file is empty; give it some text")
        texts.append(text)
    return texts


@dataclass
class TokenData:
    """Token ids of the training and held-out parts, as 1-D int64 tensors."""

    train: torch.Tensor
    val: torch.Tensor


def split_tokens(documents: Sequence[list[int]], separator: int, val_fraction: float,
                 context_length: int) -> TokenData:
    """Joins documents with a separator token and holds out the last ``val_fraction``.

    Raises:
        ConfigError: too few tokens for one training window and one held-out window.
    """
    ids: list[int] = []
    for document in documents:
        ids.extend(document)
        ids.append(separator)
    tokens = torch.tensor(ids, dtype=torch.int64)
    window = context_length + 1
    val_size = max(int(len(tokens) * val_fraction), window)
    needed = window + val_size
    if len(tokens) < needed:
        raise ConfigError(
            f"the corpus is too small: {len(tokens)} tokens, at least {needed} are needed for one "
            f"training and one held-out window of {context_length} tokens; add text or pick a "
            "smaller preset"
        )
    return TokenData(train=tokens[:-val_size], val=tokens[-val_size:])


def random_batch(tokens: torch.Tensor, batch_size: int, context_length: int,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random windows: inputs (B, T) and next-token targets (B, T)."""
    starts = torch.randint(0, len(tokens) - context_length, (batch_size,), generator=generator)
    windows = torch.stack([tokens[s:s + context_length + 1] for s in starts.tolist()])
    return windows[:, :-1], windows[:, 1:]


def eval_batches(tokens: torch.Tensor, batch_size: int, context_length: int,
                 max_batches: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Fixed, evenly spread held-out windows, so every evaluation measures the same text."""
    count = min(max_batches * batch_size, max(1, (len(tokens) - 1) // context_length))
    last_start = len(tokens) - context_length - 1
    starts = torch.linspace(0, last_start, count).long().tolist()
    windows = torch.stack([tokens[s:s + context_length + 1] for s in starts])
    return [(w[:, :-1], w[:, 1:]) for w in windows.split(batch_size)]
