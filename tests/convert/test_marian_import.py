"""Marian (OPUS-MT) import: random tiny MarianMTModels saved by transformers, with SentencePiece
models trained here, must come out of our graphs with transformers' logits, greedy and beam
tokens and MarianTokenizer's ids; unsafe or incomplete folders are refused with one line."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from optimum_layout import write_optimum_folder
from tiny_marian import (
    SOURCE_LINES,
    TARGET_LINES,
    import_tiny_marian,
    marian_tokenizer,
    numpy_state,
    save_tiny_marian,
)

from commands.main import main
from convert.importers.marian import languages, read_marian, write_marian_folder
from convert.importers.spm_tokenizer import parse_sentencepiece
from convert.seq2seq_config import Seq2SeqConfig, sinusoidal_positions
from convert.seq2seq_graph import build_decoder_graph, build_encoder_graph
from engine.errors import ModelFormatError
from engine.model import load_model
from engine.seq2seq import Seq2SeqModel, translate_batch, translate_ids
from engine.store import default_model_name

TEXTS = ["the lamp reads the page", "Is the night dark?", "we read",
         "a quiet room, a small map and a very long letter!", "books and maps at night"]
MAX_NEW = 24


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Seq2SeqModel, object]:
    checkpoint, folder, hf = import_tiny_marian(tmp_path_factory.mktemp("marian"))
    model = load_model(folder, device="cpu")
    assert isinstance(model, Seq2SeqModel)
    return checkpoint, model, hf


def _hf_tokenizer(folder: Path) -> object:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Recommended: pip install sacremoses."
        return marian_tokenizer(folder)


def _generate(hf: object, folder: Path, texts: list[str], **settings: object) -> list[list[int]]:
    """transformers' output ids without the start token, EOS and padding."""
    tokenizer = _hf_tokenizer(folder)
    batch = tokenizer(texts, return_tensors="pt", padding=True)  # type: ignore[operator]
    pad = hf.config.pad_token_id  # type: ignore[attr-defined]
    with torch.no_grad():
        out = hf.generate(**batch, do_sample=False, max_new_tokens=MAX_NEW,  # type: ignore
                          bad_words_ids=[[pad]], **settings)
    return [[t for t in row.tolist()[1:] if t not in (pad, hf.config.eos_token_id)]  # type: ignore
            for row in out]


def _sources(folder: Path, texts: list[str]) -> list[list[int]]:
    tokenizer = _hf_tokenizer(folder)
    return [tokenizer(t).input_ids for t in texts]  # type: ignore[operator]


# A numpy forward pass of the contract, independent of the graph builder: checked against
# transformers for post-norm, then the reference for the pre-norm graphs.

def _ln(x: np.ndarray, w: dict[str, np.ndarray], name: str) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-5) * w[f"{name}.weight"] + w[f"{name}.bias"]


def _lin(x: np.ndarray, w: dict[str, np.ndarray], name: str) -> np.ndarray:
    return x @ w[f"{name}.weight"].T + w[f"{name}.bias"]


def _attn(q_in: np.ndarray, kv_in: np.ndarray, w: dict[str, np.ndarray], name: str,
          heads: int, bias: np.ndarray) -> np.ndarray:
    def split(x: np.ndarray) -> np.ndarray:
        return x.reshape(*x.shape[:2], heads, -1).transpose(0, 2, 1, 3)
    q, k, v = (split(_lin(x, w, f"{name}.{p}_proj")) for x, p in
               ((q_in, "q"), (kv_in, "k"), (kv_in, "v")))
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(q.shape[-1]) + bias
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    out = (probs @ v).transpose(0, 2, 1, 3).reshape(q_in.shape)
    return _lin(out, w, f"{name}.out_proj")


def reference_logits(w: dict[str, np.ndarray], c: Seq2SeqConfig, src: np.ndarray,
                     mask: np.ndarray, tgt: np.ndarray) -> np.ndarray:
    act = {"swish": lambda x: x / (1 + np.exp(-x)), "relu": lambda x: np.maximum(x, 0)}[
        c.activation]
    scale = np.sqrt(c.d_model) if c.scale_embedding else 1.0
    table = sinusoidal_positions(c.max_position_embeddings, c.d_model)

    def block(x: np.ndarray, norm: str, sub: object) -> np.ndarray:
        assert callable(sub)
        if c.normalize_before:
            return x + sub(_ln(x, w, norm))
        return _ln(x + sub(x), w, norm)

    def ffn(p: str) -> object:
        return lambda h: _lin(act(_lin(h, w, f"{p}.fc1")), w, f"{p}.fc2")

    shared = w["model.shared.weight"]  # untied models have their own copies per stack
    x = w.get("model.encoder.embed_tokens.weight", shared)[src] * scale + table[:src.shape[1]]
    pad_bias = np.where(mask[:, None, None, :] > 0, 0.0, -1e9)
    for i in range(c.encoder_layers):
        p = f"model.encoder.layers.{i}"
        x = block(x, f"{p}.self_attn_layer_norm",
                  lambda h, p=p: _attn(h, h, w, f"{p}.self_attn", c.encoder_attention_heads,
                                       pad_bias))
        x = block(x, f"{p}.final_layer_norm", ffn(p))
    memory = _ln(x, w, "model.encoder.layer_norm") if c.normalize_before else x
    y = w.get("model.decoder.embed_tokens.weight", shared)[tgt] * scale + table[:tgt.shape[1]]
    causal = np.triu(np.full((tgt.shape[1],) * 2, -1e9), 1)
    for i in range(c.decoder_layers):
        p = f"model.decoder.layers.{i}"
        y = block(y, f"{p}.self_attn_layer_norm",
                  lambda h, p=p: _attn(h, h, w, f"{p}.self_attn", c.decoder_attention_heads,
                                       causal))
        y = block(y, f"{p}.encoder_attn_layer_norm",
                  lambda h, p=p: _attn(h, memory, w, f"{p}.encoder_attn",
                                       c.decoder_attention_heads, pad_bias))
        y = block(y, f"{p}.final_layer_norm", ffn(p))
    if c.normalize_before:
        y = _ln(y, w, "model.decoder.layer_norm")
    head = shared if c.share_embeddings else w["lm_head.weight"]
    return y @ head.T + w["final_logits_bias"].reshape(-1)


def _run_graphs(w: dict[str, np.ndarray], c: Seq2SeqConfig, src: np.ndarray,
                mask: np.ndarray, tgt: np.ndarray, split: int) -> tuple[np.ndarray, np.ndarray,
                                                                        np.ndarray]:
    """(encoder hidden states, full-sequence logits, logits of tgt[:, split:] after a cached
    prefix) from our two graphs."""
    encoder = ort.InferenceSession(build_encoder_graph(w, c).SerializeToString())
    decoder = ort.InferenceSession(build_decoder_graph(w, c)[0].SerializeToString())
    names = [o.name for o in encoder.get_outputs()]
    enc = dict(zip(names, encoder.run(None, {"input_ids": src, "attention_mask": mask}),
                   strict=True))
    feeds = {"encoder_attention_mask": mask,
             **{n: v for n, v in enc.items() if n.startswith("cross.")}}
    empty = np.zeros((len(src), c.decoder_attention_heads, 0, c.decoder_head_dim), np.float32)
    for layer in range(c.decoder_layers):
        feeds[f"past_key_values.{layer}.key"] = feeds[f"past_key_values.{layer}.value"] = empty
    full = decoder.run(["logits"], {**feeds, "input_ids": tgt})[0]
    out_names = [o.name for o in decoder.get_outputs()]
    first = dict(zip(out_names, decoder.run(None, {**feeds, "input_ids": tgt[:, :split]}),
                     strict=True))
    for layer in range(c.decoder_layers):
        for kind in ("key", "value"):
            feeds[f"past_key_values.{layer}.{kind}"] = first[f"present.{layer}.{kind}"]
    rest = decoder.run(["logits"], {**feeds, "input_ids": tgt[:, split:]})[0]
    return enc["encoder_hidden_states"], full, rest


def _batch(vocab: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    src = np.array([[5, 6, 7, 8, 9, 0], [10, 11, 0, vocab - 1, vocab - 1, vocab - 1]], np.int64)
    mask = (src != vocab - 1).astype(np.int64)
    tgt = np.array([[vocab - 1, 3, 4, 5, 6], [vocab - 1, 7, 8, 9, 10]], np.int64)
    return src, mask, tgt


@pytest.mark.parametrize(("tied", "activation"), [(True, "swish"), (False, "gelu"),
                                                  (False, "relu")])
def test_graph_logits_match_transformers(tmp_path: Path, tied: bool, activation: str) -> None:
    hf = save_tiny_marian(tmp_path / "m", tied=tied, activation_function=activation,
                          weight_std=0.3)
    w = numpy_state(hf)
    config = Seq2SeqConfig.from_marian(json.loads((tmp_path / "m" / "config.json").read_text()))
    assert config.share_embeddings is tied and config.activation == activation
    src, mask, tgt = _batch(config.vocab_size)
    hidden, full, rest = _run_graphs(w, config, src, mask, tgt, split=2)
    with torch.no_grad():
        ref = hf(input_ids=torch.tensor(src), attention_mask=torch.tensor(mask),
                 decoder_input_ids=torch.tensor(tgt), output_hidden_states=False)
        ref_hidden = hf.model.encoder(input_ids=torch.tensor(src),
                                      attention_mask=torch.tensor(mask)).last_hidden_state
    valid = mask.astype(bool)
    np.testing.assert_allclose(hidden[valid], ref_hidden.numpy()[valid], atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(full, ref.logits.numpy(), atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(rest, ref.logits.numpy()[:, 2:], atol=1e-4, rtol=1e-4)
    if activation != "gelu":  # the numpy reference itself agrees with transformers
        np.testing.assert_allclose(reference_logits(w, config, src, mask, tgt),
                                   ref.logits.numpy(), atol=1e-4, rtol=1e-4)


def test_pre_norm_graphs_match_the_reference(tmp_path: Path) -> None:
    hf = save_tiny_marian(tmp_path / "m", tied=True, weight_std=0.3)
    w = numpy_state(hf)
    rng = np.random.default_rng(0)
    for stack in ("encoder", "decoder"):  # the final norms of a pre-norm stack
        w[f"model.{stack}.layer_norm.weight"] = rng.normal(1, 0.2, 32).astype(np.float32)
        w[f"model.{stack}.layer_norm.bias"] = rng.normal(0, 0.1, 32).astype(np.float32)
    marian = Seq2SeqConfig.from_marian(json.loads((tmp_path / "m" / "config.json").read_text()))
    config = Seq2SeqConfig.from_dict({**marian.to_dict(), "normalize_before": True,
                                      "activation": "relu", "scale_embedding": False})
    src, mask, tgt = _batch(config.vocab_size)
    _, full, rest = _run_graphs(w, config, src, mask, tgt, split=3)
    ref = reference_logits(w, config, src, mask, tgt)
    np.testing.assert_allclose(full, ref, atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(rest, ref[:, 3:], atol=1e-4, rtol=1e-4)
    post = reference_logits(w, marian, src, mask, tgt)
    assert np.abs(post - ref).max() > 0.1  # the norms' placement really changes the result


def test_greedy_matches_transformers(imported: tuple[Path, Seq2SeqModel, object]) -> None:
    checkpoint, model, hf = imported
    expected = _generate(hf, checkpoint, TEXTS, num_beams=1)
    got = translate_ids(model, _sources(checkpoint, TEXTS), max_length=MAX_NEW)
    assert got == expected
    assert len({len(ids) for ids in got}) > 1  # some sentences end on EOS, some at the limit


@pytest.mark.parametrize(("early_stopping", "length_penalty"), [(True, 1.0), (False, 1.0),
                                                                (True, 2.0)])
def test_beam_search_matches_transformers(imported: tuple[Path, Seq2SeqModel, object],
                                          early_stopping: bool, length_penalty: float) -> None:
    checkpoint, model, hf = imported
    expected = _generate(hf, checkpoint, TEXTS, num_beams=3, early_stopping=early_stopping,
                         length_penalty=length_penalty)
    got = translate_ids(model, _sources(checkpoint, TEXTS), beam_size=3, max_length=MAX_NEW,
                        early_stopping=early_stopping, length_penalty=length_penalty)
    assert got == expected
    greedy = translate_ids(model, _sources(checkpoint, TEXTS), max_length=MAX_NEW)
    assert got != greedy  # the beams really searched


def test_tokenizers_match_marian_tokenizer(imported: tuple[Path, Seq2SeqModel, object]) -> None:
    checkpoint, model, _ = imported
    tokenizer = _hf_tokenizer(checkpoint)
    # Full-width letters test the NFKC map. Runs of letters only the target side knows are a
    # documented difference (see convert/importers/spm_tokenizer.py), so none are here.
    texts = [*SOURCE_LINES, "  spaces   everywhere  ", "the  lamp", "Tabs\tand\nnewlines",
             "ｔｈｅ ｌａｍｐ", "unknown 🌙 characters"]
    for text in texts:
        expected = tokenizer(text).input_ids  # type: ignore[operator]
        assert [*model.source_tokenizer.encode(text), model.eos_token_id] == expected, text
    for text in [*TARGET_LINES, "Die Nacht ist dunkel."]:
        expected = tokenizer(text_target=text).input_ids  # type: ignore[operator]
        assert [*model.target_tokenizer.encode(text), model.eos_token_id] == expected, text
        ids = expected[:-1]
        assert model.target_tokenizer.decode(ids) == tokenizer.decode(  # type: ignore[attr-defined]
            ids, skip_special_tokens=True)


def test_spm_reader_refuses_damaged_files() -> None:
    with pytest.raises(ValueError, match="SentencePiece"):
        parse_sentencepiece(b"\x0a\xff\xff\xff\xff\x0f")  # a length far past the end
    with pytest.raises(ValueError, match="no pieces"):
        parse_sentencepiece(b"")


def test_manifest_and_languages(imported: tuple[Path, Seq2SeqModel, object],
                                tmp_path: Path) -> None:
    _checkpoint, model, _ = imported
    spec = model.spec
    assert model.manifest.architecture == "encoder-decoder"
    assert model.manifest.tasks == ("translate",)
    assert (spec.source_languages, spec.target_languages) == (("en",), ("de",))
    assert spec.decoder_start_token == "<pad>" and model.manifest.eos_token == "</s>"
    assert model.manifest.kv_cache is not None and model.manifest.kv_cache.num_layers == 2
    folder = tmp_path / "opus-mt-fr-es"
    folder.mkdir()
    assert languages(folder, {}) == (["fr"], ["es"])
    assert languages(tmp_path, {}) == ([], [])
    assert languages(folder, {"source_lang": "zh", "target_lang": "en"}) == (["zh"], ["en"])


def test_pickle_marian_is_refused(tmp_path: Path) -> None:
    save_tiny_marian(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").rename(tmp_path / "m" / "pytorch_model.bin")
    with pytest.raises(ModelFormatError, match=r"pytorch_model\.bin.*safetensors"):
        read_marian(tmp_path / "m")


@pytest.mark.parametrize("missing", ["source.spm", "target.spm", "vocab.json"])
def test_missing_tokenizer_file_is_named(tmp_path: Path, missing: str) -> None:
    save_tiny_marian(tmp_path / "m")
    (tmp_path / "m" / missing).unlink()
    with pytest.raises(ModelFormatError, match=missing.replace(".", r"\.")) as error:
        read_marian(tmp_path / "m")
    assert "\n" not in str(error.value)


def test_int8_import_stays_close(imported: tuple[Path, Seq2SeqModel, object],
                                 tmp_path: Path) -> None:
    checkpoint, model, _ = imported
    folder = write_marian_folder(read_marian(checkpoint), checkpoint, tmp_path / "q", "int8")
    quantized = load_model(folder, device="cpu")
    assert quantized.manifest.precision == "int8"
    sources = _sources(checkpoint, TEXTS[:2])
    assert translate_ids(quantized, sources, max_length=4) == \
        translate_ids(model, sources, max_length=4)


def test_cli_import_installs_a_translation_model(
        imported: tuple[Path, Seq2SeqModel, object], capsys: pytest.CaptureFixture[str]) -> None:
    checkpoint, _, _ = imported
    assert main(["models", "import", str(checkpoint), "--precision", "fp32"]) == 0
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "opus-mt-en-de" in out and "encoder-decoder" in out
    assert default_model_name() != "opus-mt-en-de"  # a translation model never becomes default
    model = load_model("opus-mt-en-de", device="cpu")
    assert translate_batch(model, ["the lamp"], max_length=3) != [""]


@pytest.mark.parametrize("merged", [False, True])
def test_optimum_export_imports_and_matches(imported: tuple[Path, Seq2SeqModel, object],
                                            tmp_path: Path, merged: bool) -> None:
    checkpoint, model, hf = imported
    config = Seq2SeqConfig.from_marian(json.loads((checkpoint / "config.json").read_text()))
    optimum = write_optimum_folder(checkpoint, tmp_path / "optimum", numpy_state(hf), config,
                                   merged=merged)
    with pytest.raises(ModelFormatError, match="models import"):
        load_model(optimum, device="cpu")  # no tokenizer.json: Marian ships .spm files only
    folder = write_marian_folder(read_marian(optimum), optimum, tmp_path / "model")
    assert not list(folder.glob("*.safetensors"))
    converted = load_model(folder, device="cpu")
    assert isinstance(converted, Seq2SeqModel) and converted.spec.layout == "optimum"
    sources = _sources(checkpoint, TEXTS)
    for beams in (1, 3):
        expected = _generate(hf, checkpoint, TEXTS, num_beams=beams, early_stopping=False)
        assert translate_ids(converted, sources, beam_size=beams, max_length=MAX_NEW) == expected
    # Loaded in place (no import) when the export carries a tokenizer.json.
    shutil.copyfile(folder / "source.tokenizer.json", optimum / "tokenizer.json")
    direct = load_model(optimum, device="cpu")
    assert isinstance(direct, Seq2SeqModel)
    assert translate_batch(direct, TEXTS[:2], max_length=MAX_NEW) == \
        translate_batch(model, TEXTS[:2], max_length=MAX_NEW)
