"""Exporting translation checkpoints to verified encoder-decoder model folders.

A tiny model is trained once on the number-words toy corpus and exported once; besides the
exporter's own report, the folder is checked independently: ``engine.seq2seq.translate_batch``
must give exactly the PyTorch greedy translations.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import onnx
import pytest

from commands.main import main
from engine.manifest import read_manifest
from engine.model import load_model
from engine.seq2seq import translate_batch
from training import checkpoint as ckpt
from training.export import ExportVerificationError, export_checkpoint
from training.seq2seq_model import Seq2SeqModel, greedy_decode
from training.translation_trainer import train_translation

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
FILES = ["decoder.onnx", "encoder.onnx", "nightlamp.json", "seq2seq_config.json",
         "source.tokenizer.json", "verify_report.json"]
QUICK = {"eval_every": 100, "eval_sentences": 8, "eval_batches": 1}


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = random.Random(1)
    lines = []
    for _ in range(600):
        digits = [rng.randrange(10) for _ in range(rng.randint(2, 4))]
        lines.append(" ".join(WORDS[d] for d in digits) + "\t" + " ".join(map(str, digits)))
    path = tmp_path_factory.mktemp("pairs") / "numbers.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def checkpoint(pairs_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ckpt") / "numbers"
    train_translation(pairs_file, out, source_language="en", target_language="de", steps=60,
                      device="cpu", progress=False, overrides=dict(QUICK))
    return out


@pytest.fixture(scope="module")
def model_dir(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_checkpoint(checkpoint, tmp_path_factory.mktemp("models") / "en-de").folder


def _torch_model(checkpoint: Path) -> Seq2SeqModel:
    info = ckpt.read_checkpoint_info(checkpoint)
    model = ckpt.build_model(info.arch, info.model_config())
    ckpt.load_weights(checkpoint, model)
    assert isinstance(model, Seq2SeqModel)
    return model.eval()


def test_export_folder_has_the_model_files(model_dir: Path) -> None:
    assert sorted(p.name for p in model_dir.iterdir()) == FILES
    assert not list(model_dir.parent.glob(f".{model_dir.name}.*"))  # no temporary folders left
    for name in ("encoder.onnx", "decoder.onnx"):
        graph = onnx.load(str(model_dir / name))
        assert graph.ir_version == 10
        onnx.checker.check_model(graph)


def test_export_manifest_describes_the_model(checkpoint: Path, model_dir: Path) -> None:
    info = ckpt.read_checkpoint_info(checkpoint)
    config = info.model_config()
    manifest = read_manifest(model_dir)
    assert manifest.architecture == "encoder-decoder"
    assert manifest.tasks == ("translate",)
    assert (manifest.decoder_file, manifest.tokenizer_file) == ("decoder.onnx",
                                                                "source.tokenizer.json")
    assert (manifest.eos_token, manifest.pad_token) == ("</s>", "<pad>")
    assert manifest.context_length == info.data["max_length"] == 64
    assert manifest.vocab_size == config.vocab_size
    assert manifest.source["step"] == 60 and manifest.source["arch"] == "seq2seq"
    spec = manifest.encoder_decoder
    assert spec is not None
    assert (spec.source_languages, spec.target_languages) == (("en",), ("de",))
    assert spec.decoder_start_token == "<pad>" and spec.target_tokenizer_file is None
    assert (spec.num_layers, spec.num_heads, spec.head_dim) == (
        config.decoder_layers, config.decoder_attention_heads, config.decoder_head_dim)
    assert manifest.kv_cache is not None and manifest.kv_cache.num_layers == config.decoder_layers


def test_export_verification_report_passed(model_dir: Path) -> None:
    report = json.loads((model_dir / "verify_report.json").read_text(encoding="utf-8"))
    assert report["passed"] is True and report["precision"] == "fp32"
    assert report["max_abs_logit_diff"] < 1e-3
    assert report["cached_step_max_abs_diff"] < 1e-3
    assert len(report["greedy"]) == len(report["translations"]) == 12  # 8 held out + 4 fixed
    assert all(check["identical"] for check in report["greedy"])
    assert all(t["onnx"] == t["pytorch"] for t in report["translations"])
    assert any(t["onnx"] for t in report["translations"])  # not all empty


def test_engine_translations_equal_pytorch_greedy(checkpoint: Path, model_dir: Path,
                                                  pairs_file: Path) -> None:
    """Independent of the exporter's report: the engine's greedy translations of corpus lines,
    batched with padding, are exactly PyTorch's (decoded with the same tokenizer)."""
    texts = [line.split("\t")[0] for line in pairs_file.read_text().splitlines()[:20]]
    texts += ["nine nine nine nine nine nine nine", "Ünïcödé ☕ 夜灯"]
    model = _torch_model(checkpoint)
    tokenizer = ckpt.load_tokenizer(checkpoint)
    sources = [[*tokenizer.encode(t, add_special_tokens=False).ids, 1] for t in texts]
    limits = [min(64, int(2.0 * len(s)) + 10) for s in sources]
    expected = [tokenizer.decode(ids) for ids in greedy_decode(model, sources, limits)]
    engine = load_model(model_dir, device="cpu", threads=1)
    assert translate_batch(engine, texts) == expected
    assert sum(e.replace(" ", "").isdigit() for e in expected) >= 10  # it learned something


def test_separate_vocabularies_export(pairs_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "separate"
    train_translation(pairs_file, out, steps=3, device="cpu", progress=False,
                      overrides={**QUICK, "separate_vocab": True})
    folder = export_checkpoint(out, tmp_path / "model").folder
    assert (folder / "target.tokenizer.json").is_file()
    spec = read_manifest(folder).encoder_decoder
    assert spec is not None and spec.target_tokenizer_file == "target.tokenizer.json"
    assert (spec.source_languages, spec.target_languages) == ((), ())
    report = json.loads((folder / "verify_report.json").read_text(encoding="utf-8"))
    assert report["passed"] is True


def test_int8_export_is_reported_not_judged(checkpoint: Path, tmp_path: Path) -> None:
    result = export_checkpoint(checkpoint, tmp_path / "int8", quantize="int8")
    assert read_manifest(result.folder).precision == "int8"
    assert result.report.passed and result.report.tolerance is None
    assert np.isfinite(result.report.max_abs_logit_diff)


def test_failed_verification_writes_nothing(checkpoint: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    original = Seq2SeqModel.marian_state_dict

    def broken(self: Seq2SeqModel) -> dict:
        weights = dict(original(self))
        name = "model.decoder.layers.0.fc1.weight"
        weights[name] = weights[name] + 0.5  # the graph no longer matches the model
        return weights

    monkeypatch.setattr(Seq2SeqModel, "marian_state_dict", broken)
    out = tmp_path / "broken"
    with pytest.raises(ExportVerificationError, match="does not reproduce the checkpoint"):
        export_checkpoint(checkpoint, out)
    assert not out.exists()
    assert not list(tmp_path.iterdir())


def test_cli_export(checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli-model"
    assert main(["export", str(checkpoint), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "verification PASSED (fp32)" in printed
    assert "greedy continuations identical: 12/12" in printed
    assert f"model folder: {out}" in printed
    assert f"| nightlamp translate - --from en --to de -m {out}" in printed
    assert main(["export", str(checkpoint), "--out", str(out)]) == 2  # exists, no --force
