"""Greedy output pinned across engine optimizations.

The token ids below were produced by the engine before the speed work of issue 7 (the unfused
graph: separate q/k/v projections, attention from plain operators, the cache copied every step)
on tiny random Hugging Face checkpoints (Llama, and Qwen2 with q/k/v biases) imported at fp32.
The fused graph (GroupQueryAttention, SkipSimplifiedLayerNormalization, one q/k/v MatMul), the
shared cache buffer and the cache kept between calls must not change a single token. (Quantized
imports changed their weights on purpose in that work, their embedding table is now 8-bit too,
so they are not pinned here; tests/convert/test_gguf_import.py checks exact repacks.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_hf import save_tiny_hf

from convert.importers.hf_model import read_hf_model
from convert.importers.imported import write_model_folder
from engine.generation import GenerationConfig, Generator
from engine.model import load_model
from engine.sampling import SamplingSettings

PROMPTS = ([5, 17, 42, 99], list(range(3, 60)))
PINNED = {
    ("llama", "fp32"): [
        [157, 52, 52, 52, 52, 52, 52, 52, 131, 183, 183, 183, 183, 183, 183, 183, 183, 183, 183,
         183, 183, 183, 183, 183, 183, 160, 254, 160, 254, 160, 254, 160, 254, 160, 254, 160, 254,
         160, 254, 160],
        [14, 275, 196, 275, 196, 275, 196, 275, 196, 275, 196, 275, 196, 275, 196, 275, 196, 275,
         196, 275, 196, 275, 207, 275, 207, 275, 207, 275, 207, 275, 207, 275, 207, 275, 207, 275,
         207, 275, 207, 275]],
    ("qwen2", "fp32"): [
        [42, 213, 42, 213, 42, 213, 118, 213, 42, 251, 42, 251, 42, 251, 42, 213, 118, 213, 118,
         213, 118, 213, 118, 42, 70, 58, 70, 42, 251, 42, 251, 42, 251, 42, 251, 42, 251, 42, 251,
         42],
        [213] * 11],
}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folders = {}
    for kind in ("llama", "qwen2"):
        folder = tmp_path_factory.mktemp(kind)
        save_tiny_hf(folder, kind)
        folders[kind] = folder
    return folders


@pytest.mark.parametrize(("kind", "precision"), list(PINNED))
def test_greedy_tokens_are_the_pinned_ones(kind: str, precision: str,
                                           checkpoints: dict[str, Path], tmp_path: Path) -> None:
    folder = write_model_folder(read_hf_model(checkpoints[kind], precision), tmp_path / "m",
                                precision)
    model = load_model(folder, device="cpu", threads=1)
    config = GenerationConfig(max_new_tokens=40, sampling=SamplingSettings(temperature=0))
    # Both prompts twice: the second time the cache kept from the first run is reused.
    for _ in range(2):
        for prompt, expected in zip(PROMPTS, PINNED[(kind, precision)], strict=True):
            generator = Generator(model, config)
            generator.append_tokens(prompt)
            while not generator.is_done():
                generator.generate_next_token()
            assert generator.generated == expected
