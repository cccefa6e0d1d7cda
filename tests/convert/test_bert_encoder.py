"""The sentence-transformers BERT importer: parity with numpy and transformers, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from convert.importers.bert_encoder import (
    read_bert_encoder,
    reference_embeddings,
    verify_encoder,
    write_encoder_folder,
)
from engine.errors import ConfigError, ModelFormatError
from engine.model import load_model
from engine.retrieval.embedder import load_embedder
from tests.tiny_bert import make_bert_folder

SENTENCES = ["the lamp and the battery", "copper wire, glass bulb!", "a song about the ocean",
             "bread"]


@pytest.mark.parametrize("prefix", ["", "bert."])
def test_the_encoder_matches_numpy_and_transformers(tmp_path: Path, prefix: str) -> None:
    source = make_bert_folder(tmp_path / "bert", prefix=prefix)
    encoder = read_bert_encoder(source)
    assert encoder.max_tokens == 48  # sentence_bert_config's max_seq_length
    folder = write_encoder_folder(encoder, tmp_path / "tiny-embed", "fp32")
    check = verify_encoder(encoder, folder)
    assert check.passed and check.min_cosine > 0.99999
    report = json.loads((folder / "import_report.json").read_text())
    assert report["check"]["passed"] is True
    embedder = load_embedder(folder)
    got = embedder.embed(SENTENCES)  # one padded batch
    ids = [embedder.tokenizer.encode_many([s])[0] for s in SENTENCES]
    assert ids[3][0] == 2 and ids[3][-1] == 3 and len(ids[3]) == 3  # [CLS] bread [SEP], no pads
    want = reference_embeddings(encoder, ids)
    np.testing.assert_allclose(got, want, atol=2e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1, atol=1e-5)

    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    model = transformers.BertModel.from_pretrained(str(source)).eval()
    for text, vector in zip(SENTENCES, got, strict=True):
        tokens = torch.tensor([embedder.tokenizer.encode_many([text])[0]])
        with torch.no_grad():
            hidden = model(input_ids=tokens).last_hidden_state[0]
        mean = hidden.mean(0).numpy()
        np.testing.assert_allclose(vector, mean / np.linalg.norm(mean), atol=2e-5)


def test_int8_stays_close_and_a_long_text_is_cut_to_the_input(tmp_path: Path) -> None:
    encoder = read_bert_encoder(make_bert_folder(tmp_path / "bert"))
    folder = write_encoder_folder(encoder, tmp_path / "tiny-int8", "int8")
    assert verify_encoder(encoder, folder).min_cosine > 0.99
    embedder = load_embedder(folder)
    long = " ".join(["lamp"] * 500)
    [vector] = embedder.embed([long])
    cut = embedder.tokenizer.encode_many([long])[0][:48]
    np.testing.assert_allclose(vector, reference_embeddings(encoder, [cut])[0], atol=0.02)
    # Asked to read less (as the indexer reads a passage's start), it reads that much.
    [start] = embedder.embed([long], max_tokens=10)
    np.testing.assert_allclose(start, reference_embeddings(encoder, [cut[:10]])[0], atol=0.02)
    assert not np.allclose(start, vector, atol=0.02)


def test_refusals_name_the_file(tmp_path: Path) -> None:
    source = make_bert_folder(tmp_path / "bert")
    pooling = source / "1_Pooling" / "config.json"
    pooling.write_text(json.dumps({"pooling_mode_cls_token": True}))
    with pytest.raises(ModelFormatError, match="pooling_mode_cls_token is not supported"):
        read_bert_encoder(source)
    pooling.unlink()
    (source / "model.safetensors").rename(source / "pytorch_model.bin")
    with pytest.raises(ModelFormatError, match="pickle files"):
        read_bert_encoder(source)
    config = json.loads((source / "config.json").read_text())
    (source / "config.json").write_text(json.dumps({**config, "model_type": "llama"}))
    with pytest.raises(ModelFormatError, match="model_type 'bert'"):
        read_bert_encoder(source)


def test_an_embedding_model_is_not_loaded_as_a_chat_model_and_vice_versa(
        tmp_path: Path, tiny_chat_model_dir: Path) -> None:
    folder = write_encoder_folder(read_bert_encoder(make_bert_folder(tmp_path / "bert")),
                                  tmp_path / "tiny-embed")
    with pytest.raises(ConfigError, match="is an embedding model"):
        load_model(folder)
    with pytest.raises(ConfigError, match="not an embedding model"):
        load_embedder(tiny_chat_model_dir)
