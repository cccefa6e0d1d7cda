"""``nightlamp train lm`` and ``nightlamp export`` on bad input: one line, exit 2, nothing left.

Every expected failure must print exactly one ``nightlamp: error: ...`` line that names the file
or value at fault, exit with status 2, show no traceback, and leave no checkpoint or model folder
behind. The end-to-end tests at the bottom run the real ``nightlamp`` executable.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from commands.main import main
from training import checkpoint as ckpt
from training import export as export_module
from training.verify import VerifyReport


def _train(corpus: Path | list[Path], out: Path, *extra: str) -> list[str]:
    files = corpus if isinstance(corpus, list) else [corpus]
    return ["train", "lm", "--arch", "transformer", "--corpus", *map(str, files),
            "--out", str(out), "--steps", "2", "--device", "cpu", "--no-progress", *extra]


def _fails(argv: list[str], capsys: pytest.CaptureFixture[str], *fragments: str) -> str:
    """Runs main(argv); asserts exit 2 and one error line containing every fragment."""
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2, captured
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("nightlamp: error: "), lines[0]
    assert "Traceback" not in captured.err + captured.out
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# Corpus errors ----------------------------------------------------------------------------------

CORPUS_CASES: dict[str, tuple[Callable[[Path], Path], tuple[str, ...]]] = {
    "empty": (lambda d: _write(d / "empty.txt", b""), ("empty.txt", "empty")),
    "whitespace-only": (lambda d: _write(d / "blank.txt", b"  \n\n\t \n"), ("blank.txt", "empty")),
    "latin-1": (lambda d: _write(d / "latin.txt", "caf\xe9 au lait\n".encode("latin-1")),
                ("latin.txt", "not UTF-8", "offset 3")),
    "binary": (lambda d: _write(d / "image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 20),
               ("image.txt", "binary")),
    "missing": (lambda d: d / "nowhere.txt", ("nowhere.txt", "not found")),
    "directory": (lambda d: (d / "folder.txt").mkdir() or d / "folder.txt",
                  ("folder.txt", "not found")),
    "too-small": (lambda d: _write(d / "tiny.txt", b"A few words only.\n"),
                  ("too small", "tokens")),
}


@pytest.mark.parametrize("case", list(CORPUS_CASES))
def test_bad_corpus(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make, fragments = CORPUS_CASES[case]
    corpus = make(tmp_path)
    out = tmp_path / "ckpt"
    _fails(_train(corpus, out), capsys, *fragments)
    assert not out.exists()
    assert not list(tmp_path.glob(".ckpt*"))


def test_second_corpus_file_is_named(corpus_file: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    bad = _write(tmp_path / "second.txt", b"fine start \xff\xfe then garbage\n")
    line = _fails(_train([corpus_file, bad], tmp_path / "ckpt"), capsys, "second.txt",
                  "not UTF-8")
    assert corpus_file.name not in line
    assert not (tmp_path / "ckpt").exists()


# Option errors ----------------------------------------------------------------------------------


def test_unknown_preset_is_an_argparse_error(corpus_file: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(_train(corpus_file, tmp_path / "ckpt", "--preset", "huge"))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "preset" in err and "huge" in err
    assert "Traceback" not in err
    assert not (tmp_path / "ckpt").exists()


@pytest.mark.parametrize(
    ("option", "value", "fragment"),
    [
        ("--steps", "0", "--steps must be a positive integer (got 0)"),
        ("--steps", "-3", "--steps must be a positive integer (got -3)"),
        ("--batch-size", "0", "--batch-size must be >= 1 (got 0)"),
        ("--grad-accum", "0", "--grad-accum must be >= 1 (got 0)"),
        ("--lr", "0", "--lr must be > 0 (got 0.0)"),
        ("--lr", "nan", "--lr must be > 0 (got nan)"),
        ("--grad-accum", "3", "batch size 8 does not split into 3 micro-batches"),
    ],
)
def test_bad_training_values(option: str, value: str, fragment: str, corpus_file: Path,
                             tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = _train(corpus_file, tmp_path / "ckpt")
    if option == "--steps":
        argv = argv[:argv.index("--steps")] + argv[argv.index("--steps") + 2:]
    _fails([*argv, option, value], capsys, fragment)
    assert not (tmp_path / "ckpt").exists()


def test_unknown_quantization_is_an_argparse_error(transformer_checkpoint: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(transformer_checkpoint), "--out", str(tmp_path / "m"),
              "--quantize", "int4"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "quantize" in err and "int4" in err
    assert not (tmp_path / "m").exists()


# Checkpoint errors ------------------------------------------------------------------------------


def test_resume_without_a_checkpoint(corpus_file: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ckpt"
    _fails(_train(corpus_file, out, "--resume"), capsys, str(out), "config.json", "no checkpoint")
    assert not out.exists()


def test_resume_with_the_other_architecture(corpus_file: Path, lstm_checkpoint: Path,
                                            tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ckpt"
    shutil.copytree(lstm_checkpoint, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    _fails(_train(corpus_file, out, "--resume"), capsys, str(out), "--arch lstm",
           "--preset tiny")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_resume_with_another_preset(corpus_file: Path, transformer_checkpoint: Path,
                                    tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ckpt"
    shutil.copytree(transformer_checkpoint, out)
    _fails(_train(corpus_file, out, "--resume", "--preset", "small"), capsys,
           "--arch transformer", "--preset tiny")


def test_training_into_an_existing_checkpoint_needs_resume(
        corpus_file: Path, transformer_checkpoint: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ckpt"
    shutil.copytree(transformer_checkpoint, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    _fails(_train(corpus_file, out), capsys, str(out), "already holds a checkpoint", "--resume")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


@pytest.mark.parametrize("kind", ["folder-with-files", "file"])
def test_training_never_replaces_a_folder_of_other_files(kind: str, corpus_file: Path,
                                                         tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str],
                                                         ) -> None:
    """Checkpoints are written by swapping the whole --out folder; a folder of the user's own
    files (or a file) given as --out must be refused, not silently deleted."""
    out = tmp_path / "documents"
    if kind == "file":
        out.write_text("my notes", encoding="utf-8")
    else:
        out.mkdir()
        (out / "notes.txt").write_text("my notes", encoding="utf-8")
    _fails(_train(corpus_file, out), capsys, str(out), "--out")
    if kind == "file":
        assert out.read_text(encoding="utf-8") == "my notes"
    else:
        assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_training_into_an_empty_existing_folder(corpus_file: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ckpt"
    out.mkdir()
    assert main(_train(corpus_file, out)) == 0
    assert f"checkpoint: {out} (step 2" in capsys.readouterr().out
    assert ckpt.read_checkpoint_info(out).step == 2


def _damaged_copy(checkpoint: Path, tmp_path: Path, damage: str) -> Path:
    copy = tmp_path / "ckpt"
    shutil.copytree(checkpoint, copy)
    if damage == "corrupt-config":
        (copy / ckpt.CONFIG_FILE).write_text('{"format": "nightlamp-checkpoint", ',
                                             encoding="utf-8")
    elif damage == "not-a-checkpoint-config":
        (copy / ckpt.CONFIG_FILE).write_text('{"architectures": ["LlamaForCausalLM"]}',
                                             encoding="utf-8")
    elif damage == "no-weights":
        (copy / ckpt.WEIGHTS_FILE).unlink()
    elif damage == "garbage-weights":
        (copy / ckpt.WEIGHTS_FILE).write_bytes(b"\x00" * 64)
    elif damage == "no-tokenizer":
        (copy / ckpt.TOKENIZER_FILE).unlink()
    elif damage == "wrong-shape":
        config = json.loads((copy / ckpt.CONFIG_FILE).read_text(encoding="utf-8"))
        config["model"]["hidden_size"] = 32
        (copy / ckpt.CONFIG_FILE).write_text(json.dumps(config), encoding="utf-8")
    return copy


@pytest.mark.parametrize(
    ("damage", "fragments"),
    [
        ("corrupt-config", ("config.json", "not valid JSON")),
        ("not-a-checkpoint-config", ("config.json", "not a Nightlamp training checkpoint")),
        ("no-weights", ("model.safetensors", "missing")),
        ("garbage-weights", ("model.safetensors", "cannot read weights")),
        ("no-tokenizer", ("tokenizer.json", "missing")),
        ("wrong-shape", ("model.safetensors", "do not match")),
    ],
)
def test_export_of_a_damaged_checkpoint(damage: str, fragments: tuple[str, ...],
                                        transformer_checkpoint: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    copy = _damaged_copy(transformer_checkpoint, tmp_path, damage)
    out = tmp_path / "model"
    _fails(["export", str(copy), "--out", str(out)], capsys, str(copy), *fragments)
    assert not out.exists()
    assert not list(tmp_path.glob(".model*"))


def test_export_of_a_folder_without_config(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "random-folder"
    source.mkdir()
    _fails(["export", str(source), "--out", str(tmp_path / "model")], capsys, "config.json",
           str(source))
    assert not (tmp_path / "model").exists()


def test_export_onto_an_existing_folder(transformer_checkpoint: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "model"
    out.mkdir()
    _fails(["export", str(transformer_checkpoint), "--out", str(out)], capsys, str(out),
           "already exists")
    assert list(out.iterdir()) == []
    assert main(["export", str(transformer_checkpoint), "--out", str(out), "--force"]) == 0
    captured = capsys.readouterr()
    assert "verification PASSED (fp32)" in captured.out
    assert (out / "nightlamp.json").is_file()


def test_export_verification_failure_is_one_line(transformer_checkpoint: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export_module, "verify_export", lambda *_a, **_k: VerifyReport(
        precision="fp32", max_abs_logit_diff=0.25, cached_step_max_abs_diff=0.0))
    out = tmp_path / "model"
    _fails(["export", str(transformer_checkpoint), "--out", str(out)], capsys, str(out),
           "does not reproduce", "0.25", "nothing was written")
    assert not out.exists()
    assert not list(tmp_path.glob(".model*"))


# End to end through the installed executable ----------------------------------------------------


def _nightlamp(*args: str) -> subprocess.CompletedProcess[str]:
    executable = Path(sys.executable).parent / "nightlamp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([str(executable), *args], capture_output=True, text=True,
                            timeout=300, env=env)
    assert result.returncode == 0, (
        f"nightlamp {' '.join(args)} exited {result.returncode}\n--- stdout\n{result.stdout}\n"
        f"--- stderr\n{result.stderr}"
    )
    assert "Traceback" not in result.stderr
    return result


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["transformer", "lstm"])
def test_train_export_generate_end_to_end(arch: str, corpus_file: Path, tmp_path: Path) -> None:
    checkpoint, model_dir = tmp_path / "ckpt", tmp_path / "model"
    trained = _nightlamp("train", "lm", "--arch", arch, "--corpus", str(corpus_file), "--out",
                         str(checkpoint), "--steps", "30", "--device", "cpu", "--no-progress")
    assert f"checkpoint: {checkpoint} (step 30" in trained.stdout
    assert ckpt.read_checkpoint_info(checkpoint).step == 30

    exported = _nightlamp("export", str(checkpoint), "--out", str(model_dir))
    assert "verification PASSED (fp32)" in exported.stdout
    assert (model_dir / "nightlamp.json").is_file()

    generated = _nightlamp("generate", "-m", str(model_dir), "The lamp", "--temperature", "0",
                           "--repetition-penalty", "1", "--max-tokens", "12", "--json",
                           "--device", "cpu")
    result = json.loads(generated.stdout.strip().splitlines()[-1])
    assert set(result) >= {"text", "finish_reason", "prompt_tokens", "completion_tokens",
                           "ttft_s", "tokens_per_s", "device", "model"}
    assert result["completion_tokens"] > 0
    assert result["prompt_tokens"] > 1
    assert result["device"] == "cpu"
    assert result["model"] == "model"
    assert result["finish_reason"] in ("stop", "length")

    # The CLI's greedy text is exactly PyTorch's greedy continuation of the same prompt.
    info = ckpt.read_checkpoint_info(checkpoint)
    model = ckpt.build_model(arch, info.model_config())
    ckpt.load_weights(checkpoint, model)
    model.eval()
    tokenizer = ckpt.load_tokenizer(checkpoint)
    ids = [0, *tokenizer.encode("The lamp", add_special_tokens=False).ids]
    assert result["prompt_tokens"] == len(ids)
    with torch.no_grad():
        for _ in range(result["completion_tokens"]):
            ids.append(int(model(torch.tensor([ids]))[0, -1].argmax()))
    expected = tokenizer.decode(ids[result["prompt_tokens"]:])
    assert result["text"] == expected
