"""chrF: how alike two texts are by their character n-grams (Popović 2015), without sacrebleu.

The engine cannot depend on the training package's metrics (sacrebleu), and the round-trip check
needs only the sentence-level score, so it is computed here: the same definition as sacrebleu's
``CHRF()`` default (character orders 1..6, beta 2, whitespace ignored, precision and recall
averaged over the orders both texts have, then combined).
"""

from __future__ import annotations

from collections import Counter

ORDER = 6
BETA = 2.0


def _ngrams(text: str, n: int) -> Counter[str]:
    return Counter(text[i:i + n] for i in range(len(text) - n + 1))


def chrf(hypothesis: str, reference: str, order: int = ORDER, beta: float = BETA) -> float:
    """The chrF score of ``hypothesis`` against ``reference``, from 0 (nothing shared) to 1.

    For each n in 1..``order``, precision is the share of the hypothesis's character n-grams
    found in the reference (counts clipped) and recall the share of the reference's found in the
    hypothesis; both are averaged over the orders that both texts are long enough to have, and
    combined as F-beta = (1 + beta²)·P·R / (beta²·P + R), so recall weighs ``beta`` times as much
    as precision. Whitespace is removed first; two empty texts score 1.

    Args:
        hypothesis: the text to score (a round trip's back-translation).
        reference: the text it should match (the source segment).
        order: the longest n-gram.
        beta: the weight of recall against precision.
    """
    hyp, ref = "".join(hypothesis.split()), "".join(reference.split())
    if not hyp and not ref:
        return 1.0
    precision = recall = 0.0
    orders = 0
    for n in range(1, order + 1):
        got, wanted = _ngrams(hyp, n), _ngrams(ref, n)
        if not got or not wanted:
            continue
        matches = sum((got & wanted).values())
        precision += matches / sum(got.values())
        recall += matches / sum(wanted.values())
        orders += 1
    if not orders:
        return 0.0
    precision, recall = precision / orders, recall / orders
    if not precision + recall:
        return 0.0
    factor = beta * beta
    return (1 + factor) * precision * recall / (factor * precision + recall)
