"""A random tiny Marian (OPUS-MT layout) folder written by transformers and sentencepiece
themselves, for translation import and engine tests (no downloads).

Two unigram SentencePiece models (English-like source, German-like target) are trained in memory,
``vocab.json`` is their union in Marian's order (``</s>`` 0, ``<unk>`` 1, pieces, ``<pad>``
last), and a random ``MarianMTModel`` of that vocabulary is saved with safetensors.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import torch

SOURCE_LINES = [
    "the lamp lights the page at night", "a small model reads the book",
    "the assistant answers every question", "my computer translates the letter",
    "the old map shows a quiet room", "we read the poem together tonight",
    "lights and pages, books and maps!", "Is the night dark? Yes, very dark.",
]
TARGET_LINES = [
    "die lampe beleuchtet die seite bei nacht", "ein kleines modell liest das buch",
    "der assistent beantwortet jede frage", "mein computer übersetzt den brief",
    "die alte karte zeigt einen ruhigen raum", "wir lesen heute abend das gedicht",
    "Lichter und Seiten, Bücher und Karten!", "Ist die Nacht dunkel? Ja, sehr dunkel.",
]


def train_spm(lines: list[str], vocab_size: int) -> bytes:
    """A serialized unigram SentencePiece model (nmt_nfkc normalization, like OPUS-MT)."""
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines * 4), model_writer=model, vocab_size=vocab_size,
        model_type="unigram", character_coverage=1.0, hard_vocab_limit=False,
        bos_id=-1, eos_id=2, unk_id=1, pad_id=-1, minloglevel=2, num_threads=1)
    return model.getvalue()


def _pieces(model: bytes) -> list[str]:
    import sentencepiece as spm

    processor = spm.SentencePieceProcessor(model_proto=model)
    return [processor.id_to_piece(i) for i in range(processor.get_piece_size())
            if not (processor.is_control(i) or processor.is_unknown(i))]


def marian_config(vocab_size: int, **overrides: object) -> dict[str, object]:
    config: dict[str, object] = {
        "vocab_size": vocab_size, "d_model": 32, "encoder_layers": 2, "decoder_layers": 2,
        "encoder_attention_heads": 4, "decoder_attention_heads": 4, "encoder_ffn_dim": 64,
        "decoder_ffn_dim": 64, "max_position_embeddings": 128, "pad_token_id": vocab_size - 1,
        "eos_token_id": 0, "decoder_start_token_id": vocab_size - 1,
        "activation_function": "swish", "scale_embedding": True,
        "share_encoder_decoder_embeddings": True, "forced_eos_token_id": None,
    }
    config.update(overrides)
    return config


def save_tiny_marian(folder: Path, seed: int = 2, eos_bias: float = 0.6, weight_std: float = 0.1,
                     embed_std: float = 1.0, tied: bool = False,
                     **config_overrides: object) -> torch.nn.Module:
    """Writes config.json, model.safetensors, source/target.spm, vocab.json and
    tokenizer_config.json into ``folder``; returns the transformers model (eval mode).

    The defaults give outputs of varied lengths and tokens (random models with tied output
    embeddings tend to repeat one token); ``tied=True`` ties lm_head like real OPUS-MT models.
    """
    import transformers

    folder.mkdir(parents=True, exist_ok=True)
    source, target = train_spm(SOURCE_LINES, 48), train_spm(TARGET_LINES, 52)
    vocab: dict[str, int] = {"</s>": 0, "<unk>": 1}
    for piece in _pieces(source) + _pieces(target):
        vocab.setdefault(piece, len(vocab))
    vocab["<pad>"] = len(vocab)
    (folder / "source.spm").write_bytes(source)
    (folder / "target.spm").write_bytes(target)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {"source_lang": "en", "target_lang": "de", "unk_token": "<unk>", "eos_token": "</s>",
         "pad_token": "<pad>", "model_max_length": 128, "separate_vocabs": False}))
    torch.manual_seed(seed)
    config = transformers.MarianConfig(**marian_config(len(vocab), tie_word_embeddings=tied,
                                                       **config_overrides))
    model = transformers.MarianMTModel(config).eval()
    with torch.no_grad():  # random but not tiny: make the logits distinguishable
        for name, parameter in model.named_parameters():
            if "embed_positions" in name:  # the fixed sinusoid table stays as it is
                continue
            if "layer_norm" in name and name.endswith("weight"):
                parameter.normal_(1.0, 0.2)
            elif "embed_tokens" in name or name.endswith("shared.weight"):
                parameter.normal_(0, embed_std)  # tokens must outweigh the cross-attention
            else:
                parameter.normal_(0, 0.1 if name.endswith("bias") else weight_std)
        model.final_logits_bias.normal_(0, 0.1)
        model.final_logits_bias[0, 0] += eos_bias  # sentences end at different lengths
    model.save_pretrained(folder, safe_serialization=True)
    return model


def marian_tokenizer(folder: Path) -> object:
    """transformers' (slow, SentencePiece) MarianTokenizer for the folder."""
    import transformers

    return transformers.MarianTokenizer(source_spm=str(folder / "source.spm"),
                                        target_spm=str(folder / "target.spm"),
                                        vocab=str(folder / "vocab.json"),
                                        source_lang="en", target_lang="de")


def numpy_state(model: torch.nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def import_tiny_marian(root: Path, **kwargs: object) -> tuple[Path, Path, torch.nn.Module]:
    """A tiny Marian checkpoint at ``root/opus-mt-en-de`` imported (fp32) to ``root/model``;
    returns (checkpoint folder, model folder, transformers model)."""
    from convert.importers.marian import read_marian, write_marian_folder

    checkpoint = root / "opus-mt-en-de"
    model = save_tiny_marian(checkpoint, **kwargs)  # type: ignore[arg-type]
    folder = write_marian_folder(read_marian(checkpoint), checkpoint, root / "model")
    return checkpoint, folder, model
