"""Model folders: every kind of bad input gives the right EngineError naming the file and the
field, the CLI turns it into one line and exit status 2, manifests round-trip, and the model store
resolves names."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from tokenizers import Tokenizer as HFTokenizer

from commands.main import main
from engine import store
from engine.errors import (
    EngineError,
    InferenceError,
    ModelFormatError,
    ModelNotFoundError,
    TokenizerError,
)
from engine.generation import GenerationConfig, Generator
from engine.manifest import (
    IONames,
    KVCacheSpec,
    Manifest,
    RecurrentStateSpec,
    read_manifest,
    write_manifest,
)
from engine.model import load_model
from engine.runner import DecoderRunner

DELETE = object()  # marks a manifest key to remove


def edit_manifest(**changes: Any) -> Callable[[Path], None]:
    """A folder edit that changes top-level manifest keys; ``a__b`` means key b inside a."""

    def edit(folder: Path) -> None:
        path = folder / "nightlamp.json"
        data = json.loads(path.read_text(encoding="utf-8"))
        for dotted, value in changes.items():
            *parents, key = dotted.split("__")
            target = data
            for parent in parents:
                target = target[parent]
            if value is DELETE:
                del target[key]
            else:
                target[key] = value
        path.write_text(json.dumps(data), encoding="utf-8")

    return edit


def write(name: str, content: str | bytes) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")

    return edit


def remove(name: str) -> Callable[[Path], None]:
    return lambda folder: (folder / name).unlink()


def symlink_to_outside(name: str) -> Callable[[Path], None]:
    """Moves the file out of the folder and leaves a symlink to it in its place."""

    def edit(folder: Path) -> None:
        outside = folder.parent / f"outside-{name}"
        (folder / name).rename(outside)
        (folder / name).symlink_to(outside)

    return edit


def symlink_inside(name: str) -> Callable[[Path], None]:
    """A symlink that stays inside the folder is refused too: model files must be plain files."""

    def edit(folder: Path) -> None:
        (folder / name).rename(folder / f"real-{name}")
        (folder / name).symlink_to(folder / f"real-{name}")

    return edit


def decoder_outside(folder: Path) -> None:
    shutil.copyfile(folder / "model.onnx", folder.parent / "x.onnx")
    edit_manifest(files={"decoder": "../x.onnx", "tokenizer": "tokenizer.json"})(folder)


def bigger_tokenizer(folder: Path) -> None:
    tokenizer = HFTokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.add_tokens([f"<extra-{i}>" for i in range(50)])
    tokenizer.save(str(folder / "tokenizer.json"))


@dataclass
class Case:
    id: str
    edit: Callable[[Path], None]
    error: type[EngineError]
    parts: tuple[str, ...]  # substrings of the message; {folder} and {vocab} are filled in
    base: str = "transformer"
    spec: Callable[[Path], str] = field(default=lambda folder: str(folder))


CASES = [
    Case("missing-manifest", remove("nightlamp.json"), ModelNotFoundError,
         ("{folder}", "no nightlamp.json", "not a model folder")),
    Case("invalid-json", write("nightlamp.json", '{"format_version": 1,'), ModelFormatError,
         ("{folder}/nightlamp.json", "not valid JSON")),
    Case("not-utf8", write("nightlamp.json", b'{"name": "\xff"}'), ModelFormatError,
         ("{folder}/nightlamp.json", "not valid JSON")),
    Case("top-level-list", write("nightlamp.json", "[1, 2]"), ModelFormatError,
         ("{folder}/nightlamp.json", "the top level", "JSON object")),
    Case("format-version-2", edit_manifest(format_version=2), ModelFormatError,
         ("nightlamp.json", "field 'format_version' is 2", "reads version 1")),
    Case("format-version-missing", edit_manifest(format_version=DELETE), ModelFormatError,
         ("nightlamp.json", "field 'format_version' is None")),
    Case("architecture-missing", edit_manifest(architecture=DELETE), ModelFormatError,
         ("nightlamp.json", "field 'architecture'", "<missing>")),
    Case("architecture-unknown", edit_manifest(architecture="rnn"), ModelFormatError,
         ("nightlamp.json", "field 'architecture'", "'rnn'", "decoder-transformer")),
    Case("vocab-size-zero", edit_manifest(vocab_size=0), ModelFormatError,
         ("nightlamp.json", "field 'vocab_size'", "positive integer", "got 0")),
    Case("vocab-size-string", edit_manifest(vocab_size="470"), ModelFormatError,
         ("nightlamp.json", "field 'vocab_size'", "got '470'")),
    Case("vocab-size-bool", edit_manifest(vocab_size=True), ModelFormatError,
         ("nightlamp.json", "field 'vocab_size'", "got True")),
    Case("vocab-size-disagrees-with-onnx", edit_manifest(vocab_size=999), ModelFormatError,
         ("nightlamp.json", "field 'vocab_size' is 999", "model.onnx outputs {vocab} logits")),
    Case("context-length-negative", edit_manifest(context_length=-1), ModelFormatError,
         ("nightlamp.json", "field 'context_length'", "got -1")),
    Case("precision-unknown", edit_manifest(precision="fp8"), ModelFormatError,
         ("nightlamp.json", "field 'precision'", "'fp8'", "int4")),
    Case("io-not-an-object", edit_manifest(io="input_ids"), ModelFormatError,
         ("nightlamp.json", "field 'io'", "JSON object")),
    Case("kv-cache-missing", edit_manifest(kv_cache=DELETE), ModelFormatError,
         ("nightlamp.json", "field 'kv_cache'", "decoder-transformer")),
    Case("kv-cache-null", edit_manifest(kv_cache=None), ModelFormatError,
         ("nightlamp.json", "field 'kv_cache'")),
    Case("kv-cache-head-dim-missing", edit_manifest(kv_cache__head_dim=DELETE), ModelFormatError,
         ("nightlamp.json", "field 'kv_cache.head_dim'", "<missing>")),
    Case("kv-cache-name-without-layer", edit_manifest(kv_cache__past_key="past.key"),
         ModelFormatError, ("nightlamp.json", "field 'kv_cache.past_key'", "{{layer}}")),
    Case("kv-cache-dtype-unknown", edit_manifest(kv_cache__dtype="int8"), ModelFormatError,
         ("nightlamp.json", "field 'kv_cache.dtype'", "'int8'")),
    Case("kv-cache-too-many-layers", edit_manifest(kv_cache__num_layers=3), ModelFormatError,
         ("nightlamp.json", "model.onnx", "past_key_values.2.key", "past_key_values.2.value")),
    Case("kv-cache-too-few-layers", edit_manifest(kv_cache__num_layers=1), ModelFormatError,
         ("nightlamp.json", "model.onnx", "past_key_values.1.key", "past_key_values.1.value")),
    Case("kv-cache-head-dim-wrong", edit_manifest(kv_cache__head_dim=8), ModelFormatError,
         ("nightlamp.json", "field 'kv_cache.head_dim' is 8", "'past_key_values.0.key'",
          "model.onnx")),
    Case("kv-cache-heads-wrong", edit_manifest(kv_cache__num_kv_heads=4), ModelFormatError,
         ("nightlamp.json", "field 'kv_cache.num_kv_heads' is 4", "model.onnx")),
    Case("kv-cache-renamed", edit_manifest(kv_cache__present_key="cache.{layer}.k"),
         ModelFormatError, ("nightlamp.json", "model.onnx", "cache.0.k")),
    Case("logits-renamed", edit_manifest(io={"logits": "scores"}), ModelFormatError,
         ("nightlamp.json", "model.onnx", "scores")),
    Case("lstm-without-state", edit_manifest(recurrent_state=[]), ModelFormatError,
         ("nightlamp.json", "field 'recurrent_state'", "decoder-lstm"), base="lstm"),
    Case("lstm-state-size-missing", edit_manifest(recurrent_state=[{"input": "state_h",
                                                                    "output": "state_h_out",
                                                                    "num_layers": 2}]),
         ModelFormatError, ("nightlamp.json", "field 'recurrent_state[0].size'"), base="lstm"),
    Case("lstm-state-renamed", edit_manifest(recurrent_state=[
        {"input": "state_h", "output": "state_h_out", "num_layers": 2, "size": 128},
        {"input": "cell", "output": "state_c_out", "num_layers": 2, "size": 128}]),
         ModelFormatError, ("nightlamp.json", "model.onnx", "cell"), base="lstm"),
    Case("lstm-state-left-out", edit_manifest(recurrent_state=[
        {"input": "state_h", "output": "state_h_out", "num_layers": 2, "size": 128}]),
         ModelFormatError, ("nightlamp.json", "model.onnx", "state_c"), base="lstm"),
    Case("lstm-state-size-wrong", edit_manifest(recurrent_state=[
        {"input": "state_h", "output": "state_h_out", "num_layers": 2, "size": 64},
        {"input": "state_c", "output": "state_c_out", "num_layers": 2, "size": 128}]),
         ModelFormatError, ("nightlamp.json", "field 'recurrent_state[0].size' is 64",
                            "'state_h'", "model.onnx"), base="lstm"),
    Case("lstm-state-layers-wrong", edit_manifest(recurrent_state=[
        {"input": "state_h", "output": "state_h_out", "num_layers": 2, "size": 128},
        {"input": "state_c", "output": "state_c_out", "num_layers": 3, "size": 128}]),
         ModelFormatError, ("nightlamp.json", "field 'recurrent_state[1].num_layers' is 3",
                            "'state_c'"), base="lstm"),
    Case("files-decoder-missing", edit_manifest(files={"tokenizer": "tokenizer.json"}),
         ModelFormatError, ("nightlamp.json", "field 'files.decoder'", "<missing>")),
    Case("decoder-file-missing", remove("model.onnx"), ModelFormatError,
         ("{folder}/model.onnx", "ONNX file is missing")),
    Case("onnx-corrupt", write("model.onnx", bytes(range(256)) * 64), ModelFormatError,
         ("{folder}/model.onnx", "ONNX Runtime cannot load this file")),
    Case("onnx-empty", write("model.onnx", b""), ModelFormatError,
         ("{folder}/model.onnx", "ONNX Runtime cannot load this file")),
    Case("tokenizer-missing", remove("tokenizer.json"), TokenizerError,
         ("{folder}/tokenizer.json", "tokenizer file is missing")),
    Case("tokenizer-corrupt", write("tokenizer.json", '{"model": {"type": "BPE"'),
         TokenizerError, ("{folder}/tokenizer.json", "not a valid tokenizer.json")),
    Case("tokenizer-wrong-json", write("tokenizer.json", '{"hello": 1}'), TokenizerError,
         ("{folder}/tokenizer.json", "not a valid tokenizer.json")),
    Case("tokenizer-bigger-than-vocab", bigger_tokenizer, TokenizerError,
         ("{folder}/tokenizer.json", "has {vocab+50} tokens but the model has {vocab}")),
    Case("stop-token-unknown", edit_manifest(stop_tokens=["<|im_end|>", "<|nope|>"]),
         TokenizerError, ("nightlamp.json", "field 'stop_tokens' has '<|nope|>'",
                          "tokenizer.json")),
    Case("eos-token-unknown", edit_manifest(eos_token="</s>"), TokenizerError,
         ("nightlamp.json", "field 'eos_token' has '</s>'", "tokenizer.json")),
    Case("decoder-escapes-folder", decoder_outside, ModelFormatError,
         ("{folder}", "field 'files.decoder'", "'../x.onnx'", "outside the model folder")),
    Case("tokenizer-absolute-path",
         edit_manifest(files={"decoder": "model.onnx", "tokenizer": "/etc/hostname"}),
         ModelFormatError, ("field 'files.tokenizer'", "'/etc/hostname'", "outside")),
    Case("decoder-symlink-outside", symlink_to_outside("model.onnx"), ModelFormatError,
         ("{folder}", "field 'files.decoder'", "symlink")),
    Case("decoder-symlink-inside", symlink_inside("model.onnx"), ModelFormatError,
         ("{folder}", "field 'files.decoder'", "symlink")),
    Case("tokenizer-symlink", symlink_to_outside("tokenizer.json"), ModelFormatError,
         ("{folder}", "field 'files.tokenizer'", "symlink")),
    Case("name-not-in-store", lambda folder: None, ModelNotFoundError,
         ("'no-such-model' not found", "{models}", "installed: none"),
         spec=lambda folder: "no-such-model"),
    Case("folder-does-not-exist", lambda folder: None, ModelNotFoundError,
         ("{folder}/nope", "not found"), spec=lambda folder: str(folder / "nope")),
    Case("spec-is-a-file", lambda folder: None, ModelNotFoundError,
         ("{folder}/model.onnx is a file", "pass the folder"),
         spec=lambda folder: str(folder / "model.onnx")),
]


@pytest.fixture
def source_dirs(transformer_model_dir: Path, lstm_model_dir: Path) -> dict[str, Path]:
    return {"transformer": transformer_model_dir, "lstm": lstm_model_dir}


def prepare(case: Case, source_dirs: dict[str, Path], tmp_path: Path) -> tuple[str, list[str]]:
    """Copies the base model, applies the edit; returns the spec and the expected parts."""
    folder = tmp_path / "work" / f"tiny-{case.base}"
    shutil.copytree(source_dirs[case.base], folder)
    vocab = read_manifest(source_dirs[case.base]).vocab_size
    case.edit(folder)
    parts = [
        part.replace("{folder}", str(folder)).replace("{models}", str(store.models_dir()))
        .replace("{vocab+50}", str(vocab + 50)).replace("{vocab}", str(vocab))
        .replace("{{layer}}", "{layer}")
        for part in case.parts
    ]
    return case.spec(folder), parts


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_model_folder_raises_a_named_error(case: Case, source_dirs: dict[str, Path],
                                               tmp_path: Path) -> None:
    spec, parts = prepare(case, source_dirs, tmp_path)
    with pytest.raises(EngineError) as caught:
        load_model(spec, device="cpu", threads=1)

    assert type(caught.value) is case.error
    message = str(caught.value)
    assert "\n" not in message
    for part in parts:
        assert part in message


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_cli_reports_a_bad_model_folder_in_one_line(case: Case, source_dirs: dict[str, Path],
                                                    tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    spec, parts = prepare(case, source_dirs, tmp_path)
    code = main(["generate", "-m", spec, "The lamp", "--max-tokens", "2", "--device", "cpu"])
    out, err = capsys.readouterr()

    assert code == 2
    assert out == ""
    assert err.endswith("\n")
    assert err.count("\n") == 1
    assert err.startswith("nightlamp: error: ")
    assert "Traceback" not in err
    for part in parts:
        assert part in err


# --- manifests --------------------------------------------------------------------------------


def test_written_manifest_reads_back_equal(tmp_path: Path) -> None:
    manifest = Manifest(
        name="round-trip",
        architecture="decoder-transformer",
        decoder_file="onnx/decoder.onnx",
        tokenizer_file="tok.json",
        vocab_size=32000,
        context_length=4096,
        precision="int4",
        io=IONames(input_ids="ids", attention_mask="mask", position_ids="", logits="scores"),
        kv_cache=KVCacheSpec(num_layers=3, num_kv_heads=4, head_dim=64,
                             past_key="past.{layer}.k", past_value="past.{layer}.v",
                             present_key="present.{layer}.k", present_value="present.{layer}.v",
                             dtype="float16"),
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        stop_tokens=("<|im_end|>", "<|eot_id|>"),
        chat_template="{{ messages[0]['content'] }}夜灯",
        tasks=("complete", "chat", "summarize"),
        license="Apache-2.0",
        source={"format": "gguf", "sha256": "ab" * 32, "nested": {"list": [1, 2.5, None]}},
    )
    path = write_manifest(tmp_path, manifest)

    assert path == tmp_path / "nightlamp.json"
    assert "夜灯" in path.read_text(encoding="utf-8")  # written as UTF-8, not \u escapes
    assert read_manifest(tmp_path) == manifest


@pytest.mark.parametrize("base", ["transformer", "lstm"])
def test_exported_manifest_round_trips(base: str, source_dirs: dict[str, Path],
                                       tmp_path: Path) -> None:
    original = read_manifest(source_dirs[base])
    write_manifest(tmp_path, original)

    assert read_manifest(tmp_path) == original
    assert (tmp_path / "nightlamp.json").read_text(encoding="utf-8") == \
        (source_dirs[base] / "nightlamp.json").read_text(encoding="utf-8")
    if base == "lstm":
        assert original.recurrent_state == (
            RecurrentStateSpec("state_h", "state_h_out", 2, 128),
            RecurrentStateSpec("state_c", "state_c_out", 2, 128),
        )


# --- the model store --------------------------------------------------------------------------


def install(transformer_model_dir: Path, name: str) -> Path:
    folder = store.models_dir() / name
    shutil.copytree(transformer_model_dir, folder)
    return folder


def test_store_follows_nightlamp_home(_isolated_home: Path) -> None:
    assert store.home() == _isolated_home
    assert store.models_dir() == _isolated_home / "models"
    assert store.installed_models() == []
    assert not _isolated_home.exists()  # nothing is created by looking


def test_model_in_the_store_loads_by_name(transformer_model_dir: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    folder = install(transformer_model_dir, "tiny")
    (store.models_dir() / ".tiny.partial-123").mkdir()  # half-written folders are not models

    assert store.installed_models() == ["tiny"]
    model = load_model("tiny", device="cpu", threads=1)
    assert model.folder == folder
    assert model.name == "tiny-transformer"

    monkeypatch.chdir(tmp_path)  # a name is looked up in the store, not the working folder
    code = main(["generate", "-m", "tiny", "The lamp", "--max-tokens", "3", "--temperature", "0",
                 "--device", "cpu", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["completion_tokens"] == 3


def test_a_folder_path_wins_over_a_store_name(transformer_model_dir: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    install(transformer_model_dir, "tiny")
    local = tmp_path / "here" / "tiny"
    shutil.copytree(transformer_model_dir, local)
    monkeypatch.chdir(local.parent)
    assert load_model("tiny", device="cpu", threads=1).folder == Path("tiny")


def test_no_model_and_no_default_exits_2_with_a_helpful_message(
        capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["generate", "The lamp"])
    out, err = capsys.readouterr()

    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"nightlamp: error: no model installed in {store.models_dir()}")
    assert "run 'nightlamp models pull'" in err and "-m MODEL_FOLDER" in err


def test_models_but_no_default_names_the_installed_ones(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (store.models_dir() / "some-model").mkdir(parents=True)
    (store.models_dir() / "some-model" / "nightlamp.json").write_text("{}", encoding="utf-8")
    assert main(["generate", "The lamp"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no default model" in err
    assert "installed: some-model" in err


def test_default_model_is_used_without_m(transformer_model_dir: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    install(transformer_model_dir, "mine")
    with pytest.raises(ModelNotFoundError):  # installed but not chosen as the default
        load_model(None)
    store.set_default_model("mine")
    assert store.default_model_name() == "mine"

    code = main(["generate", "The lamp", "--max-tokens", "2", "--device", "cpu", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["model"] == "tiny-transformer"


def test_default_marker_naming_a_removed_model_is_ignored(transformer_model_dir: Path) -> None:
    store.set_default_model("gone")
    assert store.default_model_name() is None
    install(transformer_model_dir, store.DEFAULT_MODEL_NAME)
    assert store.default_model_name() == store.DEFAULT_MODEL_NAME
    assert load_model(None, device="cpu", threads=1).folder == \
        store.models_dir() / store.DEFAULT_MODEL_NAME


def test_a_failing_run_is_an_inference_error_with_the_reason(transformer_model_dir: Path) -> None:
    model = load_model(transformer_model_dir, device="cpu", threads=1)
    generator = Generator(model, GenerationConfig())
    with pytest.raises(InferenceError) as caught:
        generator.append_tokens([5, model.manifest.vocab_size + 100])  # not a token of this model
    message = str(caught.value)
    assert message.startswith("model 'tiny-transformer' failed to run: ")
    assert str(model.manifest.vocab_size + 100) in message
    assert "\n" not in message


def test_inference_error_keeps_the_detail_of_a_multi_line_reason(
        transformer_model_dir: Path) -> None:
    model = load_model(transformer_model_dir, device="cpu", threads=1)
    assert model.manifest.kv_cache is not None
    # A manifest that load_model would refuse, handed to the runner directly.
    wrong = replace(model.manifest, kv_cache=replace(model.manifest.kv_cache, head_dim=8))
    with pytest.raises(InferenceError) as caught:
        DecoderRunner(model.session, wrong).forward([1, 2, 3])
    message = str(caught.value)
    assert re.search(r"input: past_key_values\.\d\.key", message)  # ORT: on separate lines
    assert "Got: 8 Expected: 16" in message
    assert "\n" not in message
