"""Hostile ``nightlamp.json`` files (issue 28): each is built here, and each must be refused with
one ModelFormatError line naming nightlamp.json and the field, by ``load_model`` and by the CLI
(exit 2, no traceback), quickly and without allocating what the file asks for."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from commands.main import main
from engine.errors import ModelFormatError
from engine.manifest import (
    MAX_MANIFEST_BYTES,
    EncoderDecoderSpec,
    KVCacheSpec,
    layer_name,
    read_manifest,
    stop_token_id,
)
from engine.model import _stop_ids, load_model

Edit = Callable[[dict[str, Any]], Any]


def model_copy(source: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "tiny-transformer"
    shutil.copytree(source, folder)
    return folder


def edit_json(folder: Path, edit: Edit) -> Path:
    path = folder / "nightlamp.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    edit(data)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def setter(*keys: str, value: Any) -> Edit:
    """An edit that sets data[k1][k2]... = value."""

    def edit(data: dict[str, Any]) -> None:
        target = data
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return edit


@dataclass
class Case:
    id: str
    edit: Edit
    parts: tuple[str, ...]  # substrings the one-line message must have


CASES = [
    Case("io-input-ids-a-number", setter("io", "input_ids", value=5),
         ("field 'io.input_ids' must be a non-empty string, got 5",)),
    Case("io-logits-a-list", setter("io", "logits", value=["logits"]),
         ("field 'io.logits' must be a non-empty string, got ['logits']",)),
    Case("io-attention-mask-an-object", setter("io", "attention_mask", value={"a": 1}),
         ("field 'io.attention_mask' must be a string, got {'a': 1}",)),
    Case("stop-id-not-a-number", setter("stop_tokens", value=["<id:abc>"]),
         ("field 'stop_tokens' must be token strings or '<id:N>' with N a token id below "
          "vocab_size", "got '<id:abc>'")),
    Case("stop-id-huge", setter("stop_tokens", value=["<id:99999999999999999999>"]),
         ("field 'stop_tokens'", "got '<id:99999999999999999999>'")),
    Case("stop-id-negative", setter("stop_tokens", value=["<id:-1>"]),
         ("field 'stop_tokens'", "got '<id:-1>'")),
    Case("stop-id-unicode-digits", setter("stop_tokens", value=["<id:\u0663>"]),
         ("field 'stop_tokens'",)),
    Case("vocab-size-huge", setter("vocab_size", value=10**30),
         ("field 'vocab_size' must be a positive integer of at most 16,777,216",)),
    Case("context-huge", setter("context_length", value=2**40),
         ("field 'context_length' must be a positive integer of at most 16,777,216",)),
    Case("layers-huge", setter("kv_cache", "num_layers", value=10**9),
         ("field 'kv_cache.num_layers' must be a positive integer of at most 4,096",)),
    Case("head-dim-huge", setter("kv_cache", "head_dim", value=2**40),
         ("field 'kv_cache.head_dim' must be a positive integer of at most 65,536",)),
    Case("cache-name-without-layer", setter("kv_cache", "past_key", value="past.key"),
         ("field 'kv_cache.past_key' must be a name containing '{layer}'",)),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_field_is_one_line_naming_the_field(case: Case, transformer_model_dir: Path,
                                                    tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    folder = model_copy(transformer_model_dir, tmp_path)
    manifest = edit_json(folder, case.edit)

    started = time.perf_counter()
    with pytest.raises(ModelFormatError) as caught:
        load_model(folder, device="cpu", threads=1)
    message = str(caught.value)
    assert time.perf_counter() - started < 5
    assert message.startswith(f"{manifest}: ")
    assert "\n" not in message
    for part in case.parts:
        assert part in message

    code = main(["generate", "-m", str(folder), "The lamp", "--max-tokens", "2",
                 "--device", "cpu"])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err == f"nightlamp: error: {message}\n"


def test_a_stop_id_the_model_has_is_kept(transformer_model_dir: Path, tmp_path: Path) -> None:
    folder = model_copy(transformer_model_dir, tmp_path)
    vocab = read_manifest(folder).vocab_size
    edit_json(folder, setter("stop_tokens", value=[f"<id:{vocab - 1}>"]))
    assert vocab - 1 in load_model(folder, device="cpu", threads=1).stop_token_ids

    edit_json(folder, setter("stop_tokens", value=[f"<id:{vocab}>"]))  # one past the end
    with pytest.raises(ModelFormatError, match=rf"got '<id:{vocab}>'"):
        load_model(folder, device="cpu", threads=1)


def test_foreign_stop_ids_out_of_range_are_refused(transformer_model_dir: Path) -> None:
    """genai / Optimum configs add ``<id:N>`` after validation; the loader checks them too."""
    model = load_model(transformer_model_dir, device="cpu", threads=1)
    path = transformer_model_dir / "nightlamp.json"
    for token in ("<id:99999999999999999999>", f"<id:{model.manifest.vocab_size}>", "<id:x>"):
        manifest = replace(model.manifest, stop_tokens=(token,))
        with pytest.raises(ModelFormatError) as caught:
            _stop_ids(manifest, model.tokenizer, path)
        assert str(caught.value).startswith(f"{path}: field 'stop_tokens' has {token!r}")
    assert stop_token_id("<id:7>") == 7 and stop_token_id("<id:7") is None


def test_deeply_nested_manifest_is_refused(transformer_model_dir: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    folder = model_copy(transformer_model_dir, tmp_path)
    path = folder / "nightlamp.json"
    path.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")

    with pytest.raises(ModelFormatError) as caught:
        load_model(folder, device="cpu", threads=1)
    assert str(caught.value) == (f"{path}: its JSON is nested too deeply to be a manifest; fix it "
                                 "or re-export the model")

    assert main(["generate", "-m", str(folder), "hi", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err == f"nightlamp: error: {caught.value}\n"


def test_oversized_manifest_is_refused_before_reading(transformer_model_dir: Path,
                                                      tmp_path: Path) -> None:
    folder = model_copy(transformer_model_dir, tmp_path)
    path = folder / "nightlamp.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["source"] = {"padding": "x" * MAX_MANIFEST_BYTES}  # valid JSON, just too big
    path.write_text(json.dumps(data), encoding="utf-8")

    with pytest.raises(ModelFormatError) as caught:
        load_model(folder, device="cpu", threads=1)
    assert str(caught.value) == (f"{path}: is over 16 MB, too big for a manifest; this is not a "
                                 "Nightlamp model folder, or re-export the model")


def test_integer_with_thousands_of_digits_is_invalid_json(transformer_model_dir: Path,
                                                          tmp_path: Path) -> None:
    folder = model_copy(transformer_model_dir, tmp_path)
    path = folder / "nightlamp.json"
    text = path.read_text(encoding="utf-8")
    vocab = read_manifest(folder).vocab_size
    path.write_text(text.replace(f'"vocab_size": {vocab}', '"vocab_size": ' + "9" * 5000),
                    encoding="utf-8")
    with pytest.raises(ModelFormatError) as caught:
        load_model(folder, device="cpu", threads=1)
    assert str(caught.value) == (f"{path}: not valid JSON (a number with thousands of digits); "
                                 "fix it or re-export the model")


@pytest.mark.parametrize("pattern", ["past.{layer}.{layer.__class__.__mro__}",
                                     "past.{layer}.{layer:>999999999}", "past.{layer}.{0}"])
def test_cache_names_are_substituted_not_formatted(pattern: str, transformer_model_dir: Path,
                                                   tmp_path: Path) -> None:
    """str.format would reach attributes, build a gigabyte string or raise IndexError."""
    folder = model_copy(transformer_model_dir, tmp_path)
    path = edit_json(folder, setter("kv_cache", "past_key", value=pattern))
    literal = pattern.replace("{layer}", "0", 1)

    started = time.perf_counter()
    with pytest.raises(ModelFormatError) as caught:
        load_model(folder, device="cpu", threads=1)
    assert time.perf_counter() - started < 5
    assert str(caught.value).startswith(f"{path}: the manifest names inputs/outputs that "
                                        f"model.onnx does not have ({literal}")
    assert KVCacheSpec(1, 1, 1, past_key=pattern).past_names(0)[0] == literal
    assert EncoderDecoderSpec(1, 1, 1, cross_key=pattern).cross_names(0)[0] == literal


def test_ordinary_cache_names_still_work(transformer_model_dir: Path) -> None:
    cache = read_manifest(transformer_model_dir).kv_cache
    assert cache is not None
    assert cache.past_names(3) == (layer_name(cache.past_key, 3), layer_name(cache.past_value, 3))
    assert KVCacheSpec(2, 1, 1).past_names(1) == ("past_key_values.1.key",
                                                  "past_key_values.1.value")
    assert KVCacheSpec(2, 1, 1).present_names(12) == ("present.12.key", "present.12.value")
    load_model(transformer_model_dir, device="cpu", threads=1)  # the exported manifest loads
