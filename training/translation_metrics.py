"""Translation quality metrics: corpus BLEU and chrF with sacrebleu.

BLEU depends on how text is split into words: sacrebleu's ``13a`` suits space-separated languages,
its ``zh`` tokenizer splits Chinese characters, and ``char`` is used for the other scripts that
are written without spaces. chrF works on characters and needs no choice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sacrebleu.metrics import BLEU, CHRF

_CHARACTER_LANGUAGES = ("ja", "th", "lo", "km", "my")


def bleu_tokenizer(target_language: str) -> str:
    """The sacrebleu tokenizer for a BCP-47 target tag ("" = unknown -> 13a)."""
    primary = target_language.split("-")[0].lower()
    if primary in ("zh", "yue"):
        return "zh"
    return "char" if primary in _CHARACTER_LANGUAGES else "13a"


@dataclass(frozen=True)
class Scores:
    bleu: float  # corpus BLEU, 0..100
    chrf: float  # corpus chrF (character 6-grams, beta 2), 0..100


def score(hypotheses: Sequence[str], references: Sequence[str],
          target_language: str = "") -> Scores:
    """Corpus BLEU and chrF of hypotheses against one reference each.

    Raises:
        ValueError: the two lists differ in length or are empty.
    """
    if len(hypotheses) != len(references) or not hypotheses:
        raise ValueError(f"need as many hypotheses as references, at least one (got "
                         f"{len(hypotheses)} and {len(references)})")
    hyps, refs = list(hypotheses), [list(references)]
    bleu = BLEU(tokenize=bleu_tokenizer(target_language)).corpus_score(hyps, refs)
    chrf = CHRF().corpus_score(hyps, refs)
    return Scores(bleu=float(bleu.score), chrf=float(chrf.score))
