"""Hugging Face folders: random tiny Llama / Mistral / Qwen2 models saved by transformers are
imported and must reproduce transformers' logits and greedy tokens; unsafe folders are refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_hf import CHATML, save_tiny_hf

from commands.main import main
from convert.importers.hf_model import read_hf_model, read_safetensors
from convert.importers.imported import write_model_folder
from engine.errors import ModelFormatError
from engine.generation import GenerationConfig, Generator
from engine.model import load_model
from engine.runner import DecoderRunner
from engine.sampling import SamplingSettings


def _import(source: Path, out: Path, precision: str = "fp32") -> Path:
    return write_model_folder(read_hf_model(source, precision), out, precision,
                              int8_activations=False)


@pytest.mark.parametrize(("kind", "tied"), [("llama", True), ("llama", False),
                                             ("mistral", False), ("qwen2", True)])
def test_import_reproduces_transformers(tmp_path: Path, kind: str, tied: bool) -> None:
    reference = save_tiny_hf(tmp_path / "hf", kind, tied)
    folder = _import(tmp_path / "hf", tmp_path / "model")
    model = load_model(folder, device="cpu", threads=1)
    prompt = [5, 17, 42, 8, 99, 3, 64]
    runner = DecoderRunner(model.session, model.manifest)
    ours = runner.forward(prompt, all_logits=True)
    with torch.no_grad():
        expected = reference(torch.tensor([prompt])).logits[0].numpy()
    # Summation order differs between ONNX Runtime and PyTorch: ~1e-4 on logits of size ~5.
    np.testing.assert_allclose(ours, expected, atol=2e-3, rtol=1e-3)
    # Greedy continuation through the engine's cache vs transformers recomputing every step.
    config = GenerationConfig(max_new_tokens=12,
                              sampling=SamplingSettings(temperature=0, repetition_penalty=1.0))
    generator = Generator(model, config)
    generator.append_tokens(prompt)
    while not generator.is_done():
        generator.generate_next_token()
    ids = list(prompt)
    with torch.no_grad():
        for _ in range(len(generator.generated)):
            ids.append(int(reference(torch.tensor([ids])).logits[0, -1].argmax()))
    assert generator.generated == ids[len(prompt):]


def test_int4_import_stays_close_to_fp32(tmp_path: Path) -> None:
    save_tiny_hf(tmp_path / "hf", "llama", True)
    fp32 = load_model(_import(tmp_path / "hf", tmp_path / "fp32"), device="cpu", threads=1)
    int4 = load_model(_import(tmp_path / "hf", tmp_path / "int4", "int4"), device="cpu",
                      threads=1)
    assert int4.manifest.precision == "int4"
    prompt = list(range(3, 40))
    a = DecoderRunner(fp32.session, fp32.manifest).forward(prompt, all_logits=True)
    b = DecoderRunner(int4.session, int4.manifest).forward(prompt, all_logits=True)
    # Random weights give flat distributions, so compare the logit vectors, not only the top-1.
    cosine = (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
    print(f"int4 vs fp32: cosine min {cosine.min():.4f}, top-1 agreement "
          f"{(a.argmax(-1) == b.argmax(-1)).mean():.2f}")
    assert cosine.min() > 0.97
    assert (tmp_path / "int4" / "model.onnx").stat().st_size < \
        (tmp_path / "fp32" / "model.onnx").stat().st_size / 2  # float embeddings stay


def test_manifest_carries_chat_template_and_stop_tokens(tmp_path: Path) -> None:
    save_tiny_hf(tmp_path / "hf", "qwen2", True)
    model = load_model(_import(tmp_path / "hf", tmp_path / "model"), device="cpu")
    assert model.manifest.chat_template == CHATML
    im_end = model.tokenizer.token_to_id("<|im_end|>")
    assert im_end in model.stop_token_ids
    assert "chat" in model.manifest.tasks


def test_pickle_checkpoints_are_refused(tmp_path: Path) -> None:
    save_tiny_hf(tmp_path / "hf", "llama", True)
    (tmp_path / "hf" / "model.safetensors").rename(tmp_path / "hf" / "pytorch_model.bin")
    with pytest.raises(ModelFormatError, match=r"pytorch_model\.bin.*safetensors"):
        read_hf_model(tmp_path / "hf")


def test_remote_code_is_never_needed_or_run(tmp_path: Path) -> None:
    save_tiny_hf(tmp_path / "hf", "llama", True)
    marker = tmp_path / "ran"
    (tmp_path / "hf" / "modeling_evil.py").write_text(
        f"open({str(marker)!r}, 'w').write('x')\n")
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.EvilModel"}
    (tmp_path / "hf" / "config.json").write_text(json.dumps(config))
    _import(tmp_path / "hf", tmp_path / "model")
    assert not marker.exists()


@pytest.mark.parametrize("architecture", ["GPT2LMHeadModel", "PhiForCausalLM"])
def test_unsupported_architecture_is_named(tmp_path: Path, architecture: str) -> None:
    save_tiny_hf(tmp_path / "hf", "llama", True)
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    config["architectures"] = [architecture]
    (tmp_path / "hf" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFormatError, match=architecture):
        read_hf_model(tmp_path / "hf")


def test_damaged_safetensors_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.safetensors"
    path.write_bytes((10**12).to_bytes(8, "little") + b"{}")
    with pytest.raises(ModelFormatError, match="header"):
        read_safetensors(path)


def test_cli_import_then_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    save_tiny_hf(tmp_path / "hf", "llama", True)
    assert main(["models", "import", str(tmp_path / "hf"), "--name", "tiny-llama",
                 "--precision", "int8"]) == 0
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "tiny-llama" in out and "int8" in out
    assert main(["generate", "-m", "tiny-llama", "--chat", "hi", "--max-tokens", "3"]) == 0


@pytest.mark.parametrize("kind", ["llama", "qwen2"])
def test_numpy_reference_matches_transformers(tmp_path: Path, kind: str) -> None:
    from convert.importers.reference import reference_logits

    reference = save_tiny_hf(tmp_path / "hf", kind, tied=kind == "qwen2")
    prompt = [5, 17, 42, 8, 99, 3]
    with torch.no_grad():
        expected = reference(torch.tensor([prompt])).logits[0].numpy()
    ours = reference_logits(read_hf_model(tmp_path / "hf", "fp32"), prompt)
    np.testing.assert_allclose(ours, expected, atol=2e-3, rtol=1e-3)
