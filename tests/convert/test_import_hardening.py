"""Hostile and damaged checkpoints (issue 28): every one is refused with a one-line error that
names the file and the value, before anything large is allocated, and a failed import leaves
nothing in the store: no model folder and no temporary folder.

Each input is built here: tiny Hugging Face folders (``tests/tiny_hf.py``), GGUF files written by
llama.cpp's own writer (``test_gguf_import.build_gguf``) and tiny Marian folders
(``tests/tiny_marian.py``), then changed the way an attacker would.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gguf import GGUFValueType
from safetensors.numpy import load_file, save_file
from test_gguf_import import (  # the GGUF writer and its vocabulary fixture
    Vocabulary,
    _config,
    build_gguf,
    vocabulary,  # noqa: F401
)
from tiny_hf import as_hub_snapshot, save_tiny_hf, write_raw_safetensors
from tiny_marian import save_tiny_marian

from commands.main import main
from convert.decoder_graph import MAX_POSITIONS
from convert.importers import service
from convert.importers.hf_model import read_safetensors
from convert.importers.reference import ImportCheck
from convert.importers.service import import_model
from engine.errors import ConfigError, EngineError, ModelFormatError
from engine.manifest import read_manifest
from engine.store import models_dir

V = GGUFValueType
OUTSIDE = "SECRET CONTENT FROM OUTSIDE THE MODEL FOLDER"


# Builders and checks --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hf_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hf-template") / "tiny-llama"
    save_tiny_hf(folder, "llama", True)
    return folder


@pytest.fixture
def hf(hf_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of a tiny Llama folder to damage."""
    return Path(shutil.copytree(hf_template, tmp_path / "tiny-llama"))


@pytest.fixture(scope="module")
def marian_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("marian-template") / "opus-mt-en-de"
    save_tiny_marian(folder)
    return folder


@pytest.fixture
def marian(marian_template: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(marian_template, tmp_path / "opus-mt-en-de"))


def edit_config(folder: Path, **changes: Any) -> None:
    path = folder / "config.json"
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))


def link_outside(folder: Path, name: str, content: str | None = None) -> Path:
    """Moves ``name`` out of the folder (or writes ``content`` outside) and leaves a link."""
    outside = folder.parent / "elsewhere" / name
    outside.parent.mkdir(exist_ok=True)
    if content is None:
        (folder / name).rename(outside)
    else:
        outside.write_text(content)
    (folder / name).symlink_to(outside)
    return outside


def store_entries() -> list[str]:
    """Everything in the models folder, hidden folders included."""
    store = models_dir()
    return sorted(p.name for p in store.iterdir()) if store.exists() else []


def refused(source: Path, pattern: str, error: type[EngineError] = ModelFormatError,
            **options: Any) -> str:
    """Imports ``source``, which must fail with one line matching ``pattern`` and leave the
    store as it was (empty)."""
    before = store_entries()
    options.setdefault("precision", "fp32")
    with pytest.raises(error, match=pattern) as caught:
        import_model(source, **options)
    message = str(caught.value)
    assert "\n" not in message
    assert store_entries() == before
    return message


# 1. Links out of the folder -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["chat_template.jinja", "tokenizer.json", "config.json",
                                  "tokenizer_config.json", "model.safetensors",
                                  "model.safetensors.index.json"])
def test_a_link_out_of_the_folder_is_refused(hf: Path, name: str) -> None:
    content = OUTSIDE if name == "chat_template.jinja" else \
        '{"weight_map": {}}' if name.endswith("index.json") else None
    outside = link_outside(hf, name, content)
    message = refused(hf, "is a link to a file outside the model folder")
    assert str(hf / name) in message and str(outside) in message
    assert "copy the real file into the folder" in message


def test_a_linked_weight_shard_is_refused(hf: Path) -> None:
    (hf / "model.safetensors").rename(hf / "model-00001-of-00002.safetensors")
    shard = load_file(hf / "model-00001-of-00002.safetensors")
    second = {k: shard.pop(k) for k in list(shard) if ".layers.1." in k}
    save_file(shard, hf / "model-00001-of-00002.safetensors")
    save_file(second, hf / "model-00002-of-00002.safetensors")
    link_outside(hf, "model-00002-of-00002.safetensors")
    refused(hf, r"model-00002-of-00002\.safetensors: is a link to a file outside")


def test_a_link_to_etc_passwd_never_reaches_the_manifest(
        hf: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if not Path("/etc/passwd").is_file():
        pytest.skip("no /etc/passwd here")
    (hf / "chat_template.jinja").symlink_to("/etc/passwd")
    assert main(["models", "import", str(hf), "--precision", "fp32"]) == 2
    _, err = capsys.readouterr()
    [line] = [x for x in err.splitlines() if x.startswith("nightlamp: error:")]
    assert "outside the model folder (/etc/passwd)" in line and "Traceback" not in err
    assert store_entries() == []


def test_a_pipe_or_folder_in_place_of_a_file_is_refused(hf: Path) -> None:
    (hf / "config.json").unlink()
    os.mkfifo(hf / "config.json")  # reading it would block forever
    refused(hf, r"config\.json: is not a regular file")


def test_a_folder_named_like_weights_is_refused(hf: Path) -> None:
    (hf / "extra.safetensors").mkdir()
    refused(hf, r"extra\.safetensors: is not a regular file")


def test_a_link_that_stays_inside_the_folder_is_followed(hf: Path) -> None:
    (hf / "templates").mkdir()
    (hf / "templates" / "chat.jinja").write_text("{{ messages[0]['content'] }}")
    (hf / "chat_template.jinja").symlink_to(Path("templates") / "chat.jinja")
    result = import_model(hf, precision="fp32", check=False)
    assert read_manifest(result.folder).chat_template == "{{ messages[0]['content'] }}"


def test_a_hub_cache_snapshot_imports(hf: Path, tmp_path: Path) -> None:
    snapshot = as_hub_snapshot(hf, tmp_path / "hub")
    assert (snapshot / "config.json").is_symlink()
    result = import_model(snapshot, precision="fp32")
    assert result.check is not None and result.check.greedy_identical
    assert store_entries() == ["llama"]  # the repository's name, not the revision's hash
    assert not any(p.is_symlink() for p in result.folder.iterdir())


def test_a_hub_cache_snapshot_link_out_of_its_blobs_is_refused(hf: Path, tmp_path: Path) -> None:
    snapshot = as_hub_snapshot(hf, tmp_path / "hub")
    (tmp_path / "hub" / "models--tiny--llama" / "secret.jinja").write_text(OUTSIDE)
    (snapshot / "chat_template.jinja").symlink_to(Path("..") / ".." / "secret.jinja")
    refused(snapshot, r"chat_template\.jinja: is a link to a file outside the model folder")


def test_a_folder_beside_snapshots_is_not_a_hub_cache(hf: Path, tmp_path: Path) -> None:
    """Only a real snapshot (parent named snapshots, blobs beside it) may link into blobs."""
    fake = tmp_path / "repo" / "fake" / "tiny"
    (tmp_path / "repo" / "blobs").mkdir(parents=True)
    shutil.copytree(hf, fake)
    (tmp_path / "repo" / "blobs" / "t").write_text(OUTSIDE)
    (fake / "chat_template.jinja").symlink_to(tmp_path / "repo" / "blobs" / "t")
    refused(fake, "is a link to a file outside the model folder")


@pytest.mark.parametrize("name", ["source.spm", "vocab.json", "config.json", "model.safetensors",
                                  "tokenizer_config.json"])
def test_marian_links_out_of_the_folder_are_refused(marian: Path, name: str) -> None:
    link_outside(marian, name)
    refused(marian, f"{name}: is a link to a file outside the model folder")


# 2. Sizes taken from the file -----------------------------------------------------------------


HOSTILE_CONFIGS: dict[str, tuple[dict[str, Any], str]] = {
    "hidden_size 10**9": ({"hidden_size": 10**9},
                          r"'hidden_size' is 1000000000: more than the 65536 supported"),
    "layers 10**6": ({"num_hidden_layers": 10**6}, r"'num_hidden_layers' is 1000000: more than"),
    "heads 0": ({"num_attention_heads": 0}, r"'num_attention_heads' must be a positive integer"),
    "heads true": ({"num_attention_heads": True}, r"'num_attention_heads' must be a positive"),
    "kv heads 3 of 4": ({"num_key_value_heads": 3}, r"'num_key_value_heads' is 3: the 4 query "
                        r"heads can't be shared evenly among 3 key/value heads"),
    "kv heads a list": ({"num_key_value_heads": [2]}, r"'num_key_value_heads' must be a positive"),
    "head_dim -16": ({"head_dim": -16}, r"'head_dim' is -16: not a positive integer"),
    "head_dim 10**6": ({"head_dim": 10**6}, r"'head_dim' is 1000000: more than the 1024"),
    "head_dim odd": ({"head_dim": 15}, r"'head_dim' is 15: rotary embeddings rotate pairs"),
    "vocab 10**8": ({"vocab_size": 10**8}, r"'vocab_size' is 100000000: more than"),
    "intermediate 10**9": ({"intermediate_size": 10**9}, r"'intermediate_size' is 1000000000"),
    "no intermediate": ({"intermediate_size": None}, r"'intermediate_size' is missing"),
    "rope_theta text": ({"rope_theta": "big"}, r"'rope_theta' must be a finite number above 0"),
    "rope_theta NaN": ({"rope_theta": math.nan}, r"'rope_theta' must be a finite number"),
    "rope_theta -1": ({"rope_theta": -1.0}, r"'rope_theta' must be a finite number above 0"),
    "rms eps 0": ({"rms_norm_eps": 0}, r"'rms_norm_eps' must be a finite number above 0"),
    "rms eps 5": ({"rms_norm_eps": 5.0}, r"'rms_norm_eps' is 5\.0: not below 1"),
    "context 0": ({"max_position_embeddings": 0}, r"'max_position_embeddings' must be a positive"),
    "context text": ({"max_position_embeddings": "long"}, r"'max_position_embeddings' must be"),
    "rope_scaling a string": ({"rope_scaling": "yarn"},
                              r"'rope_scaling' must be an object .* or null, got 'yarn'"),
    "rope_scaling a list": ({"rope_scaling": [1, 2]}, r"'rope_scaling' must be an object"),
    "rope_scaling yarn": ({"rope_scaling": {"rope_type": "yarn", "factor": 4.0}},
                          r"rope_scaling 'yarn' is not supported yet"),
    "tie a string": ({"tie_word_embeddings": "no"}, r"'tie_word_embeddings' must be true or "
                     r"false"),
    "hidden 128 vs tensors of 64": ({"hidden_size": 128, "head_dim": 16},
                                    r"'embed_tokens\.weight' has shape \(\d+, 64\) but "
                                    r"config\.json implies \(\d+, 128\)"),
    "fewer layers than tensors": ({"num_hidden_layers": 1}, "more layers than num_hidden_layers"),
    "more layers than tensors": ({"num_hidden_layers": 3}, r"lack tensor 'layers\.2\."),
    "vocab below the tokenizer's": ({"vocab_size": 100}, r"'embed_tokens\.weight' has shape"),
}


@pytest.mark.parametrize("case", list(HOSTILE_CONFIGS))
def test_hostile_config_values_are_refused_before_reading(hf: Path, case: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    changes, pattern = HOSTILE_CONFIGS[case]
    edit_config(hf, **changes)
    if changes.get("intermediate_size", 0) is None:
        config = json.loads((hf / "config.json").read_text())
        del config["intermediate_size"]
        (hf / "config.json").write_text(json.dumps(config))

    def no_reading(path: Path) -> None:
        raise AssertionError(f"weights of {path} were read before the config was checked")

    monkeypatch.setattr("convert.importers.hf_model.read_safetensors", no_reading)
    message = refused(hf, pattern)
    assert str(hf) in message


def test_a_huge_declared_context_is_capped(hf: Path) -> None:
    edit_config(hf, max_position_embeddings=10**12)
    result = import_model(hf, precision="fp32")
    manifest = read_manifest(result.folder)
    assert manifest.context_length == MAX_POSITIONS
    assert manifest.source["declared_context_length"] == 10**12
    assert result.check is not None and result.check.greedy_identical


@pytest.mark.parametrize("context", [10**8, 2**32 - 1, 2**62])
def test_a_gguf_with_a_huge_context_is_capped(tmp_path: Path, vocabulary: Vocabulary,  # noqa: F811
                                              context: int) -> None:
    path = tmp_path / "long.gguf"
    build_gguf(path, _config("llama", "F32"), vocabulary, "F32",
               metadata={"llama.context_length": (context, V.UINT64)})
    result = import_model(path, precision="fp32")
    manifest = read_manifest(result.folder)
    assert manifest.context_length == MAX_POSITIONS
    assert manifest.source["declared_context_length"] == context
    # the rotary tables cover the capped context: 2 x 131,072 x 8 floats, not 10**8 x 8
    assert (result.folder / "model.onnx").stat().st_size < 20 * 1024**2


HOSTILE_GGUF: dict[str, tuple[dict[str, Any], str]] = {
    "block_count 2000": ({"llama.block_count": (2000, V.UINT32)},
                         r"'llama\.block_count' is 2000: more than the 1024 supported"),
    "embedding_length 10**9": ({"llama.embedding_length": (10**9, V.UINT64)},
                               r"'llama\.embedding_length' is 1000000000: more than the 65536"),
    "head_count 10**6": ({"llama.attention.head_count": (10**6, V.UINT32),
                          "llama.attention.head_count_kv": (10**6, V.UINT32)},
                         r"'llama\.attention\.head_count' is 1000000: more than the 1024"),
    "key_length 2**20": ({"llama.attention.key_length": (2**20, V.UINT32)},
                         r"'llama\.attention\.key_length' is 1048576: more than the 1024"),
}


@pytest.mark.parametrize("case", list(HOSTILE_GGUF))
def test_hostile_gguf_sizes_are_refused(tmp_path: Path, vocabulary: Vocabulary,  # noqa: F811
                                        case: str) -> None:
    changes, pattern = HOSTILE_GGUF[case]
    path = tmp_path / "hostile.gguf"
    build_gguf(path, _config("llama", "F32"), vocabulary, "F32", metadata=changes)
    message = refused(path, pattern)
    assert str(path) in message


@pytest.mark.parametrize(("key", "value", "pattern"), [
    ("d_model", 10**9, r"'d_model' is 1000000000: more than the 8192 supported"),
    ("max_position_embeddings", 10**12, r"'max_position_embeddings' is 1000000000000"),
    ("encoder_layers", -2, r"'encoder_layers' must be a positive integer, got -2"),
    ("decoder_ffn_dim", 1.5, r"'decoder_ffn_dim' must be a positive integer, got 1\.5"),
])
def test_hostile_marian_sizes_are_refused(marian: Path, key: str, value: object,
                                          pattern: str) -> None:
    edit_config(marian, **{key: value})
    refused(marian, pattern)


@pytest.mark.parametrize(("changes", "pattern"), [
    ({"d_model": 64}, r"'lm_head\.weight' has shape \(\d+, 32\) but config\.json implies "
     r"\(\d+, 64\)"),
    ({"encoder_ffn_dim": 128}, r"'model\.encoder\.layers\.0\.fc1\.\w+' has shape"),
    ({"encoder_layers": 1}, r"more encoder layers than encoder_layers \(1\)"),
])
def test_marian_weights_must_match_the_config(marian: Path, changes: dict[str, int],
                                              pattern: str) -> None:
    edit_config(marian, **changes)
    refused(marian, pattern)


# 3. A failed import leaves nothing behind -----------------------------------------------------


def _poison(folder: Path) -> None:
    """Makes the final norm's weights NaN: every logit becomes NaN."""
    tensors = load_file(folder / "model.safetensors")
    tensors["model.norm.weight"] = np.full_like(tensors["model.norm.weight"], np.nan)
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})


def test_nan_logits_fail_the_check_and_nothing_is_installed(hf: Path) -> None:
    _poison(hf)
    message = refused(hf, r"non-finite logits .* the file is damaged; nothing was installed",
                      precision="int8")
    assert str(hf) in message


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_fp16_overflow_fails_the_check_with_advice(hf: Path) -> None:
    """Weights beyond fp16's range (65,504) are inf in an fp16 graph but fine in float32."""
    tensors = load_file(hf / "model.safetensors")
    tensors["model.norm.weight"] = np.full_like(tensors["model.norm.weight"], 1e5)
    save_file(tensors, hf / "model.safetensors", metadata={"format": "pt"})
    refused(hf, r"the fp16 model gives non-finite logits .* where the float weights do not; "
            r"import it with --precision fp32 or int8", precision="fp16")


def test_a_failed_forced_import_keeps_the_installed_model(hf: Path, tmp_path: Path) -> None:
    first = import_model(hf, name="tiny", precision="fp32")
    manifest_before = (first.folder / "nightlamp.json").read_text()
    broken = Path(shutil.copytree(hf, tmp_path / "broken"))
    _poison(broken)
    refused(broken, "non-finite logits", name="tiny", overwrite=True)
    assert store_entries() == ["tiny"]
    assert (first.folder / "nightlamp.json").read_text() == manifest_before


def test_a_forced_import_replaces_only_once_it_passed(hf: Path) -> None:
    import_model(hf, name="tiny", precision="fp32")
    result = import_model(hf, name="tiny", precision="int8", overwrite=True)
    assert read_manifest(result.folder).precision == "int8"
    assert store_entries() == ["tiny"]


@pytest.mark.parametrize("stage", ["building graph", "writing"])
def test_an_interrupted_import_leaves_nothing(hf: Path, stage: str) -> None:
    def interrupt(current: str, done: int, total: int) -> None:
        if current == stage and done == total:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_model(hf, precision="fp32", progress=interrupt)
    assert store_entries() == []


@pytest.mark.parametrize("failure", [ModelFormatError("check failed"), KeyboardInterrupt()])
def test_a_failure_during_the_check_leaves_nothing(hf: Path, monkeypatch: pytest.MonkeyPatch,
                                                   failure: BaseException) -> None:
    seen: list[list[str]] = []

    def failing_check(model: object, folder: Path) -> None:
        seen.append(store_entries())  # the model is being checked in a hidden folder
        assert (folder / "nightlamp.json").is_file()
        raise failure

    monkeypatch.setattr(service, "verify_import", failing_check)
    with pytest.raises(type(failure)):
        import_model(hf, precision="fp32")
    assert store_entries() == []
    [entries] = seen
    assert len(entries) == 1 and entries[0].startswith(".importing-tiny-llama-")


def test_an_interrupted_marian_import_leaves_nothing(marian: Path) -> None:
    def interrupt(stage: str, done: int, total: int) -> None:
        if stage == "building graphs" and done == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_model(marian, precision="fp32", progress=interrupt)
    assert store_entries() == []


def test_a_marian_import_lands_in_place(marian: Path) -> None:
    result = import_model(marian, precision="fp32")
    assert store_entries() == ["opus-mt-en-de"]
    assert read_manifest(result.folder).name == "opus-mt-en-de"


# 4. The check's report ------------------------------------------------------------------------


def test_a_greedy_difference_says_what_was_compared_and_whether_it_is_expected() -> None:
    check = ImportCheck("the imported weights in float32 (numpy)", 0.8, 0.9, 4, False, "int4", 3)
    summary = check.summary()
    assert "greedy tokens: 4 steps compared with the float reference, differ from step 3 " \
        "(expected at int4: quantization changes near-tie choices)" in summary
    assert "DIFFERENT" not in summary
    fp32 = ImportCheck("ref", 0.8, 0.9, 4, False, "fp32", 1).summary()
    assert "differ from step 1 (not expected at fp32" in fp32
    same = ImportCheck("ref", 0.0, 1.0, 4, True, "int8").summary()
    assert same.endswith("4 steps compared with the float reference, identical")


def test_the_check_records_the_precision_and_first_difference(hf: Path) -> None:
    result = import_model(hf, precision="int4")
    check = result.check
    assert check is not None and check.precision == "int4"
    assert check.greedy_identical == (check.first_difference is None)
    report = json.loads((result.folder / "import_report.json").read_text())
    assert report["check"]["precision"] == "int4"


# 5. Damaged safetensors headers and names: one line, no traceback -----------------------------


DAMAGED_HEADERS: dict[str, tuple[object, bytes, str]] = {
    "header a JSON array": ([1, 2], b"", r"header is a JSON list, not an object"),
    "entry not an object": ({"w": 5}, b"", r"tensor 'w' is described by a int"),
    "no shape": ({"w": {"dtype": "F32", "data_offsets": [0, 4]}}, b"\0" * 4,
                 r"tensor 'w' has shape None"),
    "shape of strings": ({"w": {"dtype": "F32", "shape": ["2"], "data_offsets": [0, 8]}},
                         b"\0" * 8, r"tensor 'w' has shape \['2'\]"),
    "unknown dtype": ({"w": {"dtype": "Q4", "shape": [2], "data_offsets": [0, 1]}}, b"\0",
                      r"tensor 'w' has dtype 'Q4'"),
    "no dtype": ({"w": {"shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8,
                 r"tensor 'w' has dtype None"),
    "offsets outside the file": ({"w": {"dtype": "F32", "shape": [1024],
                                        "data_offsets": [0, 4096]}}, b"\0" * 16,
                                 r"offsets 0\.\.4096 .* lie outside the file"),
    "shape overflowing int64": ({"w": {"dtype": "F32", "shape": [2**40, 2**40],
                                       "data_offsets": [0, 4]}}, b"\0" * 4,
                                r"do not match its shape"),
    "offsets not a pair": ({"w": {"dtype": "F32", "shape": [1], "data_offsets": "0-4"}},
                           b"\0" * 4, r"has data_offsets '0-4'"),
    "deeply nested": ("[" * 100000 + "]" * 100000, b"", r"header is not valid JSON"),
}


@pytest.mark.parametrize("case", list(DAMAGED_HEADERS))
def test_damaged_safetensors_headers_are_one_line_errors(tmp_path: Path, case: str) -> None:
    header, data, pattern = DAMAGED_HEADERS[case]
    path = write_raw_safetensors(tmp_path / "bad.safetensors", header, data)
    with pytest.raises(ModelFormatError, match=pattern) as error:
        read_safetensors(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_a_damaged_header_in_a_folder_is_refused_by_the_import(hf: Path) -> None:
    write_raw_safetensors(hf / "model.safetensors", {"w": {"dtype": "F32"}})
    refused(hf, r"model\.safetensors: tensor 'w' has shape None")


def test_a_bad_tokenizer_file_is_one_line(hf: Path) -> None:
    (hf / "tokenizer.json").write_text('{"model": "not a tokenizer"}')
    refused(hf, r"tokenizer\.json: cannot read the tokenizer")


@pytest.mark.parametrize("name", ["a/b", "..", ".hidden", "", "x" * 101, "tab\tname"])
def test_a_bad_name_is_refused_before_reading(hf: Path, name: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[Path] = []
    real: Callable[..., object] = service.read_checkpoint
    monkeypatch.setattr(service, "read_checkpoint",
                        lambda source, *a, **k: reads.append(source) or real(source, *a, **k))
    refused(hf, "is not usable as a folder name", ConfigError, name=name)
    assert reads == []


def test_a_taken_name_is_refused_before_reading(hf: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import_model(hf, name="tiny", precision="fp32", check=False)
    monkeypatch.setattr(service, "read_checkpoint",
                        lambda *a, **k: pytest.fail("the checkpoint was read"))
    refused(hf, r"'tiny' is already installed.*--force", ConfigError, name="tiny")
    assert store_entries() == ["tiny"]


def test_cli_bad_name_exits_2(hf: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "import", str(hf), "--name", "../escape"]) == 2
    _, err = capsys.readouterr()
    [line] = [x for x in err.splitlines() if x.startswith("nightlamp: error:")]
    assert "'../escape'" in line and "--name" in line and "Traceback" not in err
    assert store_entries() == []


@pytest.mark.parametrize("template", [
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{% for i in range(100000) %}{{ 'x' * 10000 }}{% endfor %}",
    "{{ 10 ** 100000 }}",
], ids=["ten billion loop steps", "a gigabyte of output", "a huge integer"])
def test_a_template_past_the_resource_limits_is_refused_with_the_model(
        hf: Path, template: str) -> None:
    (hf / "chat_template.jinja").write_text(template, encoding="utf-8")
    refused(hf, r"chat template goes past a safety limit .*; the model was not imported")
