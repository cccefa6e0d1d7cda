"""A tiny random sentence-transformers BERT folder, as ``SentenceTransformer.save`` lays it out
(config, safetensors, WordPiece tokenizer.json padded to 128 like the real files, pooling and
max_seq_length settings), for the encoder importer and document-search tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

WORDS = [
    "the", "lamp", "battery", "switch", "wire", "copper", "bulb", "light", "glass", "socket",
    "fuse", "volt", "amp", "watt", "circuit", "ground", "plug", "cable", "tool", "screw",
    "metal", "plastic", "bright", "dark", "warm", "cold", "red", "blue", "green", "river",
    "mountain", "forest", "ocean", "desert", "city", "village", "road", "bridge", "tower",
    "garden", "apple", "bread", "cheese", "water", "coffee", "music", "piano", "guitar", "drum",
    "song", "dance"
]


def make_tokenizer() -> Tokenizer:
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocab = {t: i for i, t in enumerate([*specials, *WORDS, *letters,
                                         *(f"##{c}" for c in letters), ".", ",", "?", "!"])}
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.BertProcessing(("[SEP]", 3), ("[CLS]", 2))
    # Like all-MiniLM-L6-v2's file: fixed padding and truncation that the importer must undo.
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]", length=128)
    tokenizer.enable_truncation(128)
    return tokenizer


def make_bert_folder(folder: Path, seed: int = 0, hidden: int = 32, layers: int = 2,
                     heads: int = 4, prefix: str = "") -> Path:
    """Writes the folder and returns it; ``prefix`` "bert." writes BertForX-style names."""
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = make_tokenizer()
    vocab = tokenizer.get_vocab_size()
    config = {"architectures": ["BertModel"], "model_type": "bert", "vocab_size": vocab,
              "hidden_size": hidden, "num_hidden_layers": layers,
              "num_attention_heads": heads, "intermediate_size": 2 * hidden,
              "max_position_embeddings": 64, "type_vocab_size": 2, "hidden_act": "gelu",
              "layer_norm_eps": 1e-12, "position_embedding_type": "absolute"}
    rng = np.random.default_rng(seed)

    def rand(*shape: int, scale: float = 0.3) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    weights = {
        "embeddings.word_embeddings.weight": rand(vocab, hidden),
        "embeddings.position_embeddings.weight": rand(64, hidden),
        "embeddings.token_type_embeddings.weight": rand(2, hidden),
        "embeddings.LayerNorm.weight": 1 + rand(hidden, scale=0.1),
        "embeddings.LayerNorm.bias": rand(hidden, scale=0.1),
        "embeddings.position_ids": np.arange(64, dtype=np.int64)[None],  # a buffer, not a weight
        "pooler.dense.weight": rand(hidden, hidden), "pooler.dense.bias": rand(hidden),
    }
    for layer in range(layers):
        p = f"encoder.layer.{layer}."
        for part in ("attention.self.query", "attention.self.key", "attention.self.value",
                     "attention.output.dense"):
            weights[f"{p}{part}.weight"], weights[f"{p}{part}.bias"] = rand(hidden, hidden), \
                rand(hidden, scale=0.1)
        weights[f"{p}intermediate.dense.weight"] = rand(2 * hidden, hidden)
        weights[f"{p}intermediate.dense.bias"] = rand(2 * hidden, scale=0.1)
        weights[f"{p}output.dense.weight"] = rand(hidden, 2 * hidden)
        weights[f"{p}output.dense.bias"] = rand(hidden, scale=0.1)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            weights[f"{p}{norm}.weight"] = 1 + rand(hidden, scale=0.1)
            weights[f"{p}{norm}.bias"] = rand(hidden, scale=0.1)
    save_file({f"{prefix}{k}": v for k, v in weights.items()}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    tokenizer.save(str(folder / "tokenizer.json"))
    (folder / "1_Pooling").mkdir(exist_ok=True)
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": hidden, "pooling_mode_cls_token": False,
         "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False}), encoding="utf-8")
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 48}),
                                                      encoding="utf-8")
    return folder


def install_tiny_minilm(scratch: Path) -> Path:
    """A tiny random encoder installed in the store under the catalog's embedding model name,
    as ``nightlamp models pull minilm`` would install the real one."""
    from convert.importers.bert_encoder import read_bert_encoder, write_encoder_folder
    from engine.retrieval import EMBEDDING_MODEL
    from engine.store import models_dir

    encoder = read_bert_encoder(make_bert_folder(scratch / "tiny-bert"))
    return write_encoder_folder(encoder, models_dir() / EMBEDDING_MODEL)
