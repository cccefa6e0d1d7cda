"""Writes an encoder-decoder model folder: graphs, tokenizers and manifest, atomically.

Used by the Marian importer and by the export of our own translation models. Folder layout
(contract): ``encoder.onnx``, ``decoder.onnx``, ``source.tokenizer.json``,
``target.tokenizer.json`` (optional) and ``nightlamp.json`` with ``architecture:
encoder-decoder``, ``kv_cache`` for the decoder's self-attention and an ``encoder_decoder``
object. The folder is built beside its destination and renamed into place.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from convert.onnx_graph import save_model
from convert.seq2seq_config import Seq2SeqConfig
from convert.seq2seq_graph import (
    CROSS_KEY,
    CROSS_VALUE,
    build_decoder_graph,
    build_encoder_graph,
    parameter_count,
)
from engine.atomic import atomic_folder
from engine.callbacks import Progress, no_progress
from engine.manifest import EncoderDecoderSpec, Manifest, write_manifest

ENCODER_FILE = "encoder.onnx"
DECODER_FILE = "decoder.onnx"
SOURCE_TOKENIZER = "source.tokenizer.json"
TARGET_TOKENIZER = "target.tokenizer.json"
CONFIG_FILE = "seq2seq_config.json"  # the Seq2SeqConfig, for tools; the engine reads the manifest
# precision -> MatMul weight bits (the output head and embeddings stay float32)
PRECISION_BITS: dict[str, int | None] = {"fp32": None, "int8": 8, "int4": 4}


def _token(tokenizer: Tokenizer, token_id: int, what: str) -> str:
    token = tokenizer.id_to_token(token_id)
    if token is None:
        raise ValueError(f"the {what} id {token_id} is not in the tokenizer")
    return str(token)


def write_seq2seq_folder(
    weights: Mapping[str, np.ndarray], config: Seq2SeqConfig, out: Path, *,
    source_tokenizer: Tokenizer, target_tokenizer: Tokenizer | None = None,
    source_languages: Sequence[str] = (), target_languages: Sequence[str] = (),
    precision: str = "fp32", context_length: int | None = None, license: str = "unknown",
    source: Mapping[str, Any] | None = None, overwrite: bool = False,
    progress: Progress = no_progress, extra_files: Mapping[str, str] | None = None,
    int8_activations: bool = True,
) -> Path:
    """Builds both graphs and writes the model folder ``out`` atomically.

    Args:
        weights: float arrays with MarianMTModel state_dict names (see seq2seq_config).
        config: the model's hyper-parameters.
        out: the folder to create (its name becomes the manifest's name).
        source_tokenizer: tokenizes the source side (no EOS added: the engine appends it).
        target_tokenizer: decodes the output ids; None when the source tokenizer serves both.
        source_languages, target_languages: BCP-47 tags (may be empty).
        precision: "fp32", or "int8"/"int4" for block-quantized MatMul weights.
        context_length: longest output in tokens (default: max_position_embeddings).
        license, source: copied into the manifest.
        overwrite: replace an existing folder (only once the new one is complete).
        extra_files: more text files to write into the folder (name -> content).
        int8_activations: int8 layers compute with int8-quantized activations (MatMulNBits
            accuracy_level 4): many times faster on CPUs; off for exact-weight comparisons.

    Returns:
        The folder's resolved path.
    """
    if precision not in PRECISION_BITS:
        raise ValueError(f"precision must be one of {', '.join(PRECISION_BITS)}, got "
                         f"{precision!r}")
    config.validate()
    bits = PRECISION_BITS[precision]
    target = target_tokenizer or source_tokenizer
    eos = _token(target, config.eos_token_id, "eos")
    pad = _token(source_tokenizer, config.pad_token_id, "pad")
    start = _token(target, config.decoder_start_token_id, "decoder start")
    progress("building graphs", 0, 2)
    level = 4 if int8_activations else 0
    encoder = build_encoder_graph(weights, config, weight_bits=bits, accuracy_level=level)
    progress("building graphs", 1, 2)
    decoder, cache = build_decoder_graph(weights, config, weight_bits=bits, accuracy_level=level)
    progress("building graphs", 2, 2)
    limit = min(context_length or config.max_position_embeddings, config.max_position_embeddings)
    manifest = Manifest(
        name=out.name,
        architecture="encoder-decoder",
        decoder_file=DECODER_FILE,
        tokenizer_file=SOURCE_TOKENIZER,
        vocab_size=config.vocab_size,
        context_length=limit,
        precision=precision,
        kv_cache=cache,
        eos_token=eos,
        pad_token=pad,
        tasks=("translate",),
        license=license,
        source={**(source or {}), "parameters": parameter_count(weights, config)},
        encoder_decoder=EncoderDecoderSpec(
            num_layers=config.decoder_layers,
            num_heads=config.decoder_attention_heads,
            head_dim=config.decoder_head_dim,
            encoder_file=ENCODER_FILE,
            target_tokenizer_file=TARGET_TOKENIZER if target_tokenizer is not None else None,
            decoder_start_token=start,
            cross_key=CROSS_KEY,
            cross_value=CROSS_VALUE,
            source_languages=tuple(source_languages),
            target_languages=tuple(target_languages),
            max_source_length=config.max_position_embeddings,
        ),
    )
    with atomic_folder(out, overwrite=overwrite) as folder:
        progress("writing", 0, 1)
        save_model(encoder, folder / ENCODER_FILE)
        save_model(decoder, folder / DECODER_FILE)
        source_tokenizer.save(str(folder / SOURCE_TOKENIZER))
        if target_tokenizer is not None:
            target_tokenizer.save(str(folder / TARGET_TOKENIZER))
        (folder / CONFIG_FILE).write_text(json.dumps(config.to_dict(), indent=2) + "\n",
                                          encoding="utf-8")
        for name, text in (extra_files or {}).items():
            (folder / name).write_text(text, encoding="utf-8")
        write_manifest(folder, manifest)
        progress("writing", 1, 1)
    return out.expanduser().resolve()
