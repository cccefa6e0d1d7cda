"""Exports a training checkpoint to a verified ONNX model folder.

The folder (``nightlamp.json``, ``model.onnx``, ``tokenizer.json``, ``verify_report.json``) is
built in a temporary folder, verified against PyTorch there, and only then renamed into place: a
failed export or verification leaves nothing behind.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from convert.decoder_graph import DecoderShape, build_decoder_graph
from convert.lstm_graph import LSTMShape, build_lstm_graph
from convert.onnx_graph import save_model
from engine.atomic import atomic_folder
from engine.chat_template import CHATML_TEMPLATE
from engine.errors import ConfigError, EngineError
from engine.manifest import Manifest, write_manifest
from training import checkpoint as ckpt
from training.lstm import LSTMConfig
from training.tokenizer_train import END_OF_TEXT, IM_END
from training.transformer import TransformerConfig
from training.verify import VerifyReport, verify_export

logger = logging.getLogger(__name__)
QUANTIZATIONS = ("none", "int8")
MODEL_FILE = "model.onnx"
VERIFY_TEXTS = ("The ", "Once upon a time", "A quiet night, and the lamp", "你好，世界")


class ExportVerificationError(EngineError):
    """The exported graph does not reproduce the PyTorch model."""


@dataclass
class ExportResult:
    folder: Path
    report: VerifyReport
    example: str = ""  # a command that tries the exported model


def _numpy_weights(model: nn.Module) -> dict[str, np.ndarray]:
    return {name: tensor.detach().float().cpu().numpy() for name, tensor in
            model.state_dict().items()}


def _build_graph(info: ckpt.CheckpointInfo, model: nn.Module, weight_bits: int | None,
                 ) -> tuple[object, dict[str, object]]:
    """The ONNX model and the manifest fields that describe its inputs and outputs."""
    config = info.model_config()
    weights = _numpy_weights(model)
    if isinstance(config, TransformerConfig):
        shape = DecoderShape(config.vocab_size, config.hidden_size, config.num_layers,
                             config.num_heads, config.num_kv_heads, config.head_dim,
                             config.rope_theta, config.rms_eps, config.tie_embeddings)
        graph, cache = build_decoder_graph(weights, shape, weight_bits=weight_bits,
                                           accuracy_level=4 if weight_bits else 0,
                                           max_positions=config.context_length)
        return graph, {"architecture": "decoder-transformer", "kv_cache": cache}
    assert isinstance(config, LSTMConfig)
    graph, states = build_lstm_graph(weights, LSTMShape(config.vocab_size, config.embed_size,
                                                        config.hidden_size, config.num_layers),
                                     weight_bits)
    return graph, {"architecture": "decoder-lstm", "recurrent_state": states}


def _verify_prompts(tokenizer, bos_id: int) -> list[list[int]]:
    prompts = [[bos_id, *tokenizer.encode(text, add_special_tokens=False).ids]
               for text in VERIFY_TEXTS]
    generator = torch.Generator().manual_seed(0)
    random_ids = torch.randint(4, tokenizer.get_vocab_size(), (12,), generator=generator)
    return [*prompts, [bos_id, *random_ids.tolist()]]


def export_checkpoint(checkpoint: Path, out: Path, quantize: str = "none",
                      overwrite: bool = False) -> ExportResult:
    """Exports and verifies; returns the final folder and the verification report.

    Raises:
        ConfigError: bad checkpoint, bad option, or ``out`` exists.
        ExportVerificationError: the ONNX model does not reproduce PyTorch (nothing is written).
    """
    if quantize not in QUANTIZATIONS:
        raise ConfigError(f"unknown --quantize {quantize!r}; choose one of: "
                          f"{', '.join(QUANTIZATIONS)}")
    info = ckpt.read_checkpoint_info(checkpoint)
    if info.arch == ckpt.SEQ2SEQ:
        # Imported here: translation_export builds on this module's result and error types.
        from training.translation_export import export_translation

        return export_translation(checkpoint, out, quantize, overwrite)
    model = ckpt.build_model(info.arch, info.model_config())
    ckpt.load_weights(checkpoint, model)
    model.eval()
    tokenizer = ckpt.load_tokenizer(checkpoint)
    graph, io_fields = _build_graph(info, model, 8 if quantize == "int8" else None)
    precision = "fp32" if quantize == "none" else quantize
    with atomic_folder(out, overwrite=overwrite) as folder:
        save_model(graph, folder / MODEL_FILE)  # type: ignore[arg-type]
        shutil.copyfile(checkpoint / ckpt.TOKENIZER_FILE, folder / "tokenizer.json")
        manifest = Manifest(
            name=out.name,
            decoder_file=MODEL_FILE,
            tokenizer_file="tokenizer.json",
            vocab_size=info.model["vocab_size"],
            context_length=info.model["context_length"],
            precision=precision,
            bos_token=END_OF_TEXT,  # training joined documents with it: it marks a fresh start
            eos_token=END_OF_TEXT,
            stop_tokens=(IM_END,),
            chat_template=CHATML_TEMPLATE,
            tasks=("complete",),
            license="as the training corpus",
            source={"format": "nightlamp-checkpoint", "arch": info.arch, "preset": info.preset,
                    "step": info.step, "checkpoint": str(checkpoint.resolve())},
            **io_fields,  # type: ignore[arg-type]
        )
        write_manifest(folder, manifest)
        report = verify_export(folder, model, _verify_prompts(tokenizer,
                                                              tokenizer.token_to_id(END_OF_TEXT)),
                               precision)
        if not report.passed:
            raise ExportVerificationError(
                f"{out}: the exported model does not reproduce the checkpoint "
                f"(max logit diff {report.max_abs_logit_diff:.3g}); nothing was written; "
                "please report this with the checkpoint"
            )
    folder = out.expanduser().resolve()
    return ExportResult(folder, report, f'nightlamp generate -m {folder} "Once upon a time"')
