"""The engine side of encoder-decoder models: manifest, loading checks, translate_batch (batching,
limits, cancellation, bad arguments) and the search algorithms on a scripted decoder."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from tiny_marian import import_tiny_marian

from engine.beam_search import SearchSettings, beam_search, greedy_search
from engine.errors import ConfigError, ModelFormatError, OperationCancelledError
from engine.manifest import EncoderDecoderSpec, read_manifest
from engine.model import Model, load_model
from engine.seq2seq import BATCH_SIZE, Seq2SeqModel, translate_batch, translate_ids

TEXTS = ["the lamp reads the page", "Is the night dark?", "we read",
         "a quiet room, a small map and a very long letter!", "books and maps at night"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return import_tiny_marian(tmp_path_factory.mktemp("seq2seq"))[1]


@pytest.fixture(scope="module")
def model(folder: Path) -> Seq2SeqModel:
    loaded = load_model(folder, device="cpu")
    assert isinstance(loaded, Seq2SeqModel) and not isinstance(loaded, Model)
    return loaded


def test_manifest_round_trip(folder: Path) -> None:
    data = json.loads((folder / "nightlamp.json").read_text())
    assert data["architecture"] == "encoder-decoder"
    assert data["files"] == {"decoder": "decoder.onnx", "tokenizer": "source.tokenizer.json"}
    assert set(data["encoder_decoder"]) == {
        "encoder_file", "target_tokenizer_file", "decoder_start_token", "num_layers",
        "num_heads", "head_dim", "cross_key", "cross_value", "source_languages",
        "target_languages", "max_source_length"}  # the contract's fields, no more
    spec = read_manifest(folder).encoder_decoder
    assert spec == EncoderDecoderSpec(num_layers=2, num_heads=4, head_dim=8,
                                      target_tokenizer_file="target.tokenizer.json",
                                      source_languages=("en",), target_languages=("de",),
                                      max_source_length=128)


def _copy_with_manifest(folder: Path, tmp_path: Path, **changes: object) -> Path:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    data = json.loads((copy / "nightlamp.json").read_text())
    for key, value in changes.items():
        if value is None:
            data["encoder_decoder"].pop(key, None) if key != "encoder_decoder" else \
                data.pop(key)
        else:
            data["encoder_decoder"][key] = value
    (copy / "nightlamp.json").write_text(json.dumps(data))
    return copy


def test_missing_encoder_decoder_object_is_named(folder: Path, tmp_path: Path) -> None:
    copy = _copy_with_manifest(folder, tmp_path, encoder_decoder=None)
    with pytest.raises(ModelFormatError, match="'encoder_decoder'"):
        load_model(copy, device="cpu")


def test_manifest_that_does_not_fit_the_graphs_is_refused(folder: Path, tmp_path: Path) -> None:
    copy = _copy_with_manifest(folder, tmp_path, num_heads=2, head_dim=16)
    with pytest.raises(ModelFormatError, match="num_heads"):
        load_model(copy, device="cpu")


def test_missing_encoder_file_is_named(folder: Path, tmp_path: Path) -> None:
    copy = _copy_with_manifest(folder, tmp_path)
    (copy / "encoder.onnx").unlink()
    with pytest.raises(ModelFormatError, match=r"encoder\.onnx"):
        load_model(copy, device="cpu")


@pytest.mark.parametrize(("field", "token"), [
    ("eos_token", "<id:72>"),  # vocab_size is 72: one past the end
    ("eos_token", "<id:\u00b2>"),  # "²" passes str.isdigit()
    ("decoder_start_token", "<id:99999999999>"),
])
def test_special_tokens_named_by_id_must_be_ids_of_the_model(
        folder: Path, tmp_path: Path, field: str, token: str) -> None:
    copy = _copy_with_manifest(folder, tmp_path)
    data = json.loads((copy / "nightlamp.json").read_text())
    (data if field == "eos_token" else data["encoder_decoder"])[field] = token
    (copy / "nightlamp.json").write_text(json.dumps(data))
    where = field if field == "eos_token" else f"encoder_decoder.{field}"
    with pytest.raises(ModelFormatError, match=rf"field '{where}' has .*below vocab_size \(72\)"):
        load_model(copy, device="cpu")
    (data if field == "eos_token" else data["encoder_decoder"])[field] = "<id:2>"
    (copy / "nightlamp.json").write_text(json.dumps(data))
    loaded = load_model(copy, device="cpu")
    assert isinstance(loaded, Seq2SeqModel)
    assert (loaded.eos_token_id if field == "eos_token" else loaded.decoder_start_token_id) == 2


def test_translate_batch_returns_one_string_per_text(model: Seq2SeqModel) -> None:
    out = translate_batch(model, ["", *TEXTS, "   "], beam_size=2, max_length=12)
    assert len(out) == len(TEXTS) + 2
    assert out[0] == "" and out[-1] == ""
    assert all(isinstance(text, str) for text in out)
    assert any(out[1:-1])


def test_batching_and_padding_do_not_change_results(model: Seq2SeqModel) -> None:
    many = (TEXTS * 4)[:BATCH_SIZE + 3]  # more than one batch, in a shuffled length order
    for beams in (1, 3):
        batched = translate_batch(model, many, beam_size=beams, max_length=16)
        alone = [translate_batch(model, [text], beam_size=beams, max_length=16)[0]
                 for text in TEXTS]
        assert batched == [alone[TEXTS.index(text)] for text in many]


def test_length_limit_follows_the_source(model: Seq2SeqModel) -> None:
    sources = [[5, 0], [5, 6, 7, 8, 9, 10, 11, 12, 0]]
    out = translate_ids(model, sources, max_length_ratio=0.5)
    for source, ids in zip(sources, out, strict=True):
        assert len(ids) <= int(0.5 * len(source)) + 10
    assert [len(ids) for ids in translate_ids(model, sources, max_length=2)] <= [2, 2]


def test_cancellation_raises_quickly(model: Seq2SeqModel) -> None:
    calls = []

    def stop_after_three() -> bool:
        calls.append(time.perf_counter())
        return len(calls) > 3

    for beams in (1, 3):
        calls.clear()
        started = time.perf_counter()
        with pytest.raises(OperationCancelledError):
            translate_batch(model, TEXTS * 4, beam_size=beams, max_length=100,
                            should_stop=stop_after_three)
        assert len(calls) == 4  # checked every step; stopped at the first True
        assert time.perf_counter() - started < 2.0
    with pytest.raises(OperationCancelledError):
        translate_batch(model, TEXTS, should_stop=lambda: True)


@pytest.mark.parametrize("kwargs", [{"beam_size": 0}, {"beam_size": 2.5},
                                    {"length_penalty": float("nan")},
                                    {"max_length_ratio": 0}, {"max_length": 0}])
def test_bad_arguments_are_config_errors(model: Seq2SeqModel, kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        translate_batch(model, TEXTS, **kwargs)  # type: ignore[arg-type]


def test_texts_must_be_a_list(model: Seq2SeqModel) -> None:
    with pytest.raises(ConfigError, match="list of strings"):
        translate_batch(model, "the lamp")


def test_decoder_only_models_are_refused(tiny_hf_folder: Path) -> None:
    decoder_only = load_model(tiny_hf_folder, device="cpu")
    assert not isinstance(decoder_only, Seq2SeqModel)
    with pytest.raises(ConfigError, match="not a translation"):
        translate_batch(decoder_only, ["hello"])


@pytest.fixture
def tiny_hf_folder(tmp_path: Path) -> Path:
    from tiny_hf import save_tiny_hf

    from convert.importers.hf_model import read_hf_model
    from convert.importers.imported import write_model_folder

    save_tiny_hf(tmp_path / "hf", "llama", True)
    return write_model_folder(read_hf_model(tmp_path / "hf", "fp32"), tmp_path / "llama", "fp32")


# The searches on a scripted decoder -------------------------------------------------------

class _Scripted:
    """Logits from a table indexed by (row's last token); tracks row selections."""

    def __init__(self, table: np.ndarray, rows: int) -> None:
        self.table, self.rows, self.selections = table, rows, 0

    def step(self, tokens: np.ndarray) -> np.ndarray:
        assert tokens.shape == (self.rows,)
        return self.table[tokens]

    def select(self, rows: np.ndarray) -> None:
        self.rows = len(rows)
        self.selections += 1


def _table() -> np.ndarray:
    # tokens: 0 = start, 1 = EOS, 2..4 words. From the start, 2 is likelier than 3, but 2 leads
    # to a long low-probability tail while 3 ends at once.
    t = np.full((5, 5), -5.0, dtype=np.float32)
    t[0, 2], t[0, 3] = 1.0, 0.8
    t[2] = t[4] = [0.0, 0.0, 0.0, 0.0, 0.01]  # after 2 or 4: nearly flat, 4 slightly ahead
    t[3, 1] = 5.0  # after 3: EOS, almost certainly
    return t


def test_greedy_takes_the_locally_best_token() -> None:
    settings = SearchSettings(start_token_id=0, eos_token_id=1)
    decoder = _Scripted(_table(), rows=2)
    assert greedy_search(decoder, [4, 2], settings) == [[2, 4, 4, 4], [2, 4]]


def test_beam_search_finds_the_better_whole_sentence() -> None:
    settings = SearchSettings(start_token_id=0, eos_token_id=1, beam_size=2)
    decoder = _Scripted(_table(), rows=1)
    assert beam_search(decoder, [6], settings) == [[3]]
    assert decoder.selections >= 1


def test_banned_tokens_are_never_generated() -> None:
    settings = SearchSettings(start_token_id=0, eos_token_id=1, banned_token_ids=(2,))
    assert greedy_search(_Scripted(_table(), rows=1), [3], settings) == [[3]]


def test_chat_generation_refuses_a_translation_model(model: Seq2SeqModel) -> None:
    from engine.errors import ConfigError
    from engine.generation import generate

    with pytest.raises(ConfigError, match=r"translation \(encoder-decoder\) model"):
        list(generate(model, "hello"))
