"""Trains a byte-level BPE tokenizer on the training text and saves it as ``tokenizer.json``.

Byte-level BPE can encode any text (every byte is in the base alphabet), so a model trained on
English still round-trips Chinese or emoji, just with more tokens.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

END_OF_TEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
PAD = "<|pad|>"
SPECIAL_TOKENS = (END_OF_TEXT, IM_START, IM_END, PAD)
MIN_VOCAB_SIZE = 256 + len(SPECIAL_TOKENS)


def train_tokenizer(texts: Iterable[str], vocab_size: int,
                    special_tokens: Sequence[str] = SPECIAL_TOKENS) -> Tokenizer:
    """Trains byte-level BPE with special tokens (ids 0..n-1) and at most vocab_size tokens.

    Args:
        texts: training text.
        vocab_size: largest vocabulary, special tokens included.
        special_tokens: the language models' chat tokens by default; translation models use
            Marian's ``<pad>``, ``</s>``, ``<unk>``.

    Raises:
        ValueError: vocab_size smaller than the byte alphabet plus special tokens.
    """
    minimum = 256 + len(special_tokens)
    if vocab_size < minimum:
        raise ValueError(f"vocab size must be at least {minimum} (got {vocab_size})")
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer
