"""Records how many tokens each decoder forward pass runs (to check what prefill re-runs)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from engine.runner import DecoderRunner


def count_forwards(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Patches DecoderRunner.forward; the returned list gets each call's token count."""
    counts: list[int] = []
    original = DecoderRunner.forward

    def counting(self: DecoderRunner, token_ids: Sequence[int],
                 all_logits: bool = False) -> np.ndarray:
        counts.append(len(token_ids))
        return original(self, token_ids, all_logits)

    monkeypatch.setattr(DecoderRunner, "forward", counting)
    return counts
