"""Exporting checkpoints to verified ONNX model folders.

The session fixtures export both tiny checkpoints once; tests that write export into their own
tmp_path. Besides the exporter's own report, the folder is checked independently here: PyTorch and
the engine's runner must produce the same greedy token ids, step by step with the cache.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from engine.errors import ConfigError
from engine.manifest import read_manifest
from engine.model import load_model
from engine.runner import DecoderRunner
from training import checkpoint as ckpt
from training import export as export_module
from training.export import ExportVerificationError, export_checkpoint
from training.verify import GreedyCheck, VerifyReport

FOLDER_FILES = ["model.onnx", "nightlamp.json", "tokenizer.json", "verify_report.json"]
ARCHS = ["transformer", "lstm"]


@pytest.fixture(params=ARCHS)
def exported(request: pytest.FixtureRequest) -> tuple[str, Path, Path]:
    """(arch, checkpoint folder, exported model folder) for both architectures."""
    arch = request.param
    return (arch, request.getfixturevalue(f"{arch}_checkpoint"),
            request.getfixturevalue(f"{arch}_model_dir"))


def _torch_model(checkpoint: Path) -> torch.nn.Module:
    info = ckpt.read_checkpoint_info(checkpoint)
    model = ckpt.build_model(info.arch, info.model_config())
    ckpt.load_weights(checkpoint, model)
    return model.eval()


def _leftovers(parent: Path, name: str) -> list[Path]:
    return sorted(parent.glob(f".{name}.*"))


def test_export_folder_has_the_model_files(exported: tuple[str, Path, Path]) -> None:
    _, checkpoint, folder = exported
    assert sorted(p.name for p in folder.iterdir()) == FOLDER_FILES
    assert (folder / "tokenizer.json").read_bytes() == \
        (checkpoint / ckpt.TOKENIZER_FILE).read_bytes()
    assert not _leftovers(folder.parent, folder.name)
    graph = onnx.load(str(folder / "model.onnx"))
    assert graph.ir_version == 10
    onnx.checker.check_model(graph)


def test_export_verification_report_passed(exported: tuple[str, Path, Path]) -> None:
    _, _, folder = exported
    report = json.loads((folder / "verify_report.json").read_text(encoding="utf-8"))
    assert report["passed"] is True
    assert report["precision"] == "fp32"
    assert report["max_abs_logit_diff"] < 1e-3
    assert report["cached_step_max_abs_diff"] < 1e-3
    assert len(report["greedy"]) == 5
    for check in report["greedy"]:
        assert check["identical"] is True, check
        assert check["first_difference"] is None
        assert check["steps"] > 0


def test_export_manifest_describes_the_model(exported: tuple[str, Path, Path]) -> None:
    arch, checkpoint, folder = exported
    info = ckpt.read_checkpoint_info(checkpoint)
    manifest = read_manifest(folder)
    assert manifest.vocab_size == info.model["vocab_size"]
    assert manifest.context_length == info.model["context_length"] == 64
    assert manifest.precision == "fp32"
    assert (manifest.decoder_file, manifest.tokenizer_file) == ("model.onnx", "tokenizer.json")
    assert manifest.bos_token == manifest.eos_token == "<|endoftext|>"
    assert manifest.source["arch"] == arch
    assert manifest.source["step"] == info.step == 80
    if arch == "transformer":
        assert manifest.architecture == "decoder-transformer"
        assert manifest.recurrent_state == ()
        cache = manifest.kv_cache
        assert cache is not None
        assert (cache.num_layers, cache.num_kv_heads, cache.head_dim, cache.dtype) == \
            (info.model["num_layers"], info.model["num_kv_heads"],
             info.model["hidden_size"] // info.model["num_heads"], "float32")
    else:
        assert manifest.architecture == "decoder-lstm"
        assert manifest.kv_cache is None
        assert [(s.input, s.output, s.num_layers, s.size) for s in manifest.recurrent_state] == [
            ("state_h", "state_h_out", info.model["num_layers"], info.model["hidden_size"]),
            ("state_c", "state_c_out", info.model["num_layers"], info.model["hidden_size"]),
        ]


@pytest.mark.parametrize("text", ["The lamp", "你好，世界"])
def test_exported_greedy_ids_equal_pytorch(exported: tuple[str, Path, Path], text: str) -> None:
    """Independent of the exporter's report: 20 greedy steps through the engine's runner (cache or
    state carried) give exactly PyTorch's ids (recomputed from scratch each step)."""
    _, checkpoint, folder = exported
    model = _torch_model(checkpoint)
    tokenizer = ckpt.load_tokenizer(checkpoint)
    prompt = [0, *tokenizer.encode(text, add_special_tokens=False).ids]
    engine_model = load_model(folder, device="cpu", threads=1)
    runner = DecoderRunner(engine_model.session, engine_model.manifest)
    onnx_ids, logits = list(prompt), runner.forward(prompt)
    for _ in range(20):
        onnx_ids.append(int(np.argmax(logits)))
        logits = runner.forward([onnx_ids[-1]])
    torch_ids = list(prompt)
    with torch.no_grad():
        for _ in range(20):
            torch_ids.append(int(model(torch.tensor([torch_ids]))[0, -1].argmax()))
    assert onnx_ids == torch_ids
    assert len(set(torch_ids[len(prompt):])) > 1  # a trained model, not one repeated token


@pytest.mark.parametrize("arch", ARCHS)
def test_int8_export(arch: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    checkpoint = request.getfixturevalue(f"{arch}_checkpoint")
    fp32 = request.getfixturevalue(f"{arch}_model_dir")
    result = export_checkpoint(checkpoint, tmp_path / "int8", quantize="int8")
    folder = result.folder
    assert folder == (tmp_path / "int8").resolve()
    assert sorted(p.name for p in folder.iterdir()) == FOLDER_FILES
    assert read_manifest(folder).precision == "int8"
    assert (folder / "model.onnx").stat().st_size < (fp32 / "model.onnx").stat().st_size
    ops = [n.op_type for n in onnx.load(str(folder / "model.onnx")).graph.node]
    assert "MatMulNBits" in ops
    report = json.loads((folder / "verify_report.json").read_text(encoding="utf-8"))
    assert report["precision"] == "int8"
    assert report["passed"] is True
    assert report["tolerance"] is None
    assert 0 < report["max_abs_logit_diff"] < 0.5  # quantized: close, not exact
    assert result.report.precision == "int8"


def test_int8_export_of_the_transformer_is_much_smaller(transformer_checkpoint: Path,
                                                        transformer_model_dir: Path,
                                                        tmp_path: Path) -> None:
    folder = export_checkpoint(transformer_checkpoint, tmp_path / "q", quantize="int8").folder
    # Projections are ~half the weights; int8 stores them in about a quarter of fp32's bytes.
    assert (folder / "model.onnx").stat().st_size < \
        0.7 * (transformer_model_dir / "model.onnx").stat().st_size


def test_failed_verification_leaves_nothing(transformer_checkpoint: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(folder: Path, *_args: object, **_kwargs: object) -> VerifyReport:
        assert folder.name.startswith(".model.partial-")  # verified before the rename
        assert (folder / "model.onnx").is_file()
        return VerifyReport(precision="fp32", max_abs_logit_diff=0.5,
                            cached_step_max_abs_diff=0.5,
                            greedy=[GreedyCheck(3, 2, False, 1, False)], passed=False)

    monkeypatch.setattr(export_module, "verify_export", failing)
    parent = tmp_path / "models"
    with pytest.raises(ExportVerificationError, match="does not reproduce"):
        export_checkpoint(transformer_checkpoint, parent / "model")
    assert not (parent / "model").exists()
    assert not _leftovers(parent, "model")
    assert list(parent.iterdir()) == []


def test_failed_verification_keeps_the_old_folder_with_force(
        transformer_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "model"
    out.mkdir()
    (out / "keep.txt").write_text("old", encoding="utf-8")
    monkeypatch.setattr(export_module, "verify_export", lambda *_a, **_k: VerifyReport(
        precision="fp32", max_abs_logit_diff=float("nan"), cached_step_max_abs_diff=0.0))
    with pytest.raises(ExportVerificationError):
        export_checkpoint(transformer_checkpoint, out, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    assert not _leftovers(tmp_path, "model")


def test_existing_folder_needs_force(lstm_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "model"
    out.mkdir()
    (out / "old.txt").write_text("old", encoding="utf-8")
    with pytest.raises(ConfigError, match="already exists"):
        export_checkpoint(lstm_checkpoint, out)
    assert sorted(p.name for p in out.iterdir()) == ["old.txt"]

    result = export_checkpoint(lstm_checkpoint, out, overwrite=True)
    assert result.folder == out.resolve()
    assert sorted(p.name for p in out.iterdir()) == FOLDER_FILES
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_export_from_a_folder_that_is_not_a_checkpoint(tmp_path: Path) -> None:
    source = tmp_path / "not-a-checkpoint"
    source.mkdir()
    (source / "notes.txt").write_text("hello", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"config\.json"):
        export_checkpoint(source, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_export_rejects_unknown_quantization(lstm_checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="int4"):
        export_checkpoint(lstm_checkpoint, tmp_path / "out", quantize="int4")
    assert not (tmp_path / "out").exists()


def test_export_of_a_checkpoint_copy_without_optimizer_state(lstm_checkpoint: Path,
                                                             tmp_path: Path) -> None:
    """Export needs weights, config and tokenizer, not optimizer.pt (deleted to save space)."""
    copy = tmp_path / "ckpt"
    shutil.copytree(lstm_checkpoint, copy)
    (copy / ckpt.STATE_FILE).unlink()
    assert export_checkpoint(copy, tmp_path / "out").report.passed
