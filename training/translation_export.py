"""Exports a translation checkpoint to a verified encoder-decoder model folder.

The folder (``encoder.onnx``, ``decoder.onnx``, ``source.tokenizer.json``, optionally
``target.tokenizer.json``, ``nightlamp.json``, ``verify_report.json``) is written by the shared
``convert.seq2seq_folder`` writer into a temporary folder, verified there through the engine
exactly as the app will run it, and only then renamed into place. The checks, like the language
models' (``training.verify``):

1. logits of whole target sequences, ONNX Runtime vs PyTorch, on a padded batch;
2. the same logits one decoder step at a time with the self-attention cache;
3. greedy translations: ``engine.seq2seq.translate_batch`` vs PyTorch's greedy decode, which
   must give identical text.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer

from convert.seq2seq_config import Seq2SeqConfig
from convert.seq2seq_folder import write_seq2seq_folder
from engine.atomic import atomic_folder
from engine.model import load_model
from engine.seq2seq import Seq2SeqModel as EngineSeq2Seq
from engine.seq2seq import translate_batch
from engine.seq2seq_runner import NativeDecoder, native_encode, run_session
from training import checkpoint as ckpt
from training.export import ExportResult, ExportVerificationError
from training.seq2seq_model import Seq2SeqModel, greedy_decode
from training.verify import FP32_TOLERANCE, REPORT_FILE, TIE_MARGIN, GreedyCheck, VerifyReport

PRECISIONS = {"none": "fp32", "int8": "int8"}
VERIFY_TEXTS = ("Hello, world.", "The lamp is on and the night is quiet.", "你好，世界！",
                "Numbers 1, 2 and 3 🌙")


@dataclass
class TranslationVerifyReport(VerifyReport):
    translations: list[dict[str, str]] = field(default_factory=list)  # source, onnx, pytorch


def _source_ids(tokenizer: Tokenizer, text: str, config: Seq2SeqConfig) -> list[int]:
    """As the engine does: no special tokens from the tokenizer, truncated, </s> appended."""
    ids = tokenizer.encode(text, add_special_tokens=False).ids
    return [*ids[:config.max_position_embeddings - 1], config.eos_token_id]


def _padded(rows: list[list[int]], pad: int) -> tuple[np.ndarray, np.ndarray]:
    ids = np.full((len(rows), max(len(r) for r in rows)), pad, dtype=np.int64)
    mask = np.zeros_like(ids)
    for index, row in enumerate(rows):
        ids[index, :len(row)], mask[index, :len(row)] = row, 1
    return ids, mask


def _logit_checks(engine: EngineSeq2Seq, model: Seq2SeqModel, sources: list[list[int]],
                  outputs: list[list[int]]) -> tuple[float, float]:
    """Max |ONNX - PyTorch| over valid positions: whole sequences, then cached steps."""
    config = model.config
    ids, mask = _padded(sources, config.pad_token_id)
    decoder_ids, _ = _padded([[config.decoder_start_token_id, *o] for o in outputs],
                             config.pad_token_id)
    valid = np.array([[t <= len(o) for t in range(decoder_ids.shape[1])] for o in outputs])
    with torch.no_grad():
        reference = model(torch.from_numpy(ids), torch.from_numpy(mask),
                          torch.from_numpy(decoder_ids)).numpy()  # (B, T, V)
    cache, spec, what = engine.manifest.kv_cache, engine.spec, "verification"
    assert cache is not None
    encoded = native_encode(engine.encoder_session, spec, ids, mask, what)
    empty = {name: np.zeros((len(sources), cache.num_kv_heads, 0, cache.head_dim), np.float32)
             for layer in range(cache.num_layers) for name in cache.past_names(layer)}
    full = run_session(engine.decoder_session, ["logits"],
                       {"input_ids": decoder_ids, **encoded, **empty}, what)[0]
    whole = float(np.abs(full - reference)[valid].max())
    stepper = NativeDecoder(engine.decoder_session, cache, spec, encoded, what)
    steps = max(
        float(np.abs(stepper.step(decoder_ids[:, t]) - reference[:, t])[valid[:, t]].max())
        for t in range(decoder_ids.shape[1]))
    return whole, steps


def _at_tie(model: Seq2SeqModel, source: list[int], output: list[int]) -> bool:
    """Whether PyTorch's two best tokens were near-equal somewhere along its greedy path."""
    config = model.config
    decoder_ids = torch.tensor([[config.decoder_start_token_id, *output]])
    with torch.no_grad():
        logits = model(torch.tensor([source]), torch.ones(1, len(source), dtype=torch.long),
                       decoder_ids)[0]  # (T, V)
    logits[:, config.pad_token_id] = -torch.inf
    top_two = logits.topk(2, dim=-1).values
    return bool(((top_two[:, 0] - top_two[:, 1]) < TIE_MARGIN).any())


def verify_translation(folder: Path, model: Seq2SeqModel, source: Tokenizer, target: Tokenizer,
                       texts: list[str], precision: str) -> TranslationVerifyReport:
    """Runs the three checks on ``folder`` and writes ``verify_report.json`` into it."""
    engine = load_model(folder, device="cpu", threads=1)
    assert isinstance(engine, EngineSeq2Seq)
    context = engine.manifest.context_length
    sources = [_source_ids(source, text, model.config) for text in texts]
    limits = [min(context, int(2.0 * len(s)) + 10) for s in sources]
    outputs = greedy_decode(model, sources, limits)
    expected = [target.decode(ids, skip_special_tokens=True) for ids in outputs]
    got = translate_batch(engine, texts)
    whole, steps = _logit_checks(engine, model, sources, outputs)
    report = TranslationVerifyReport(precision=precision, max_abs_logit_diff=whole,
                                     cached_step_max_abs_diff=steps,
                                     tolerance=FP32_TOLERANCE if precision == "fp32" else None)
    for text, ids, src, theirs, ours in zip(texts, outputs, sources, got, expected, strict=True):
        same = theirs == ours
        report.greedy.append(GreedyCheck(len(src), len(ids), same, None if same else 0,
                                         not same and _at_tie(model, src, ids)))
        report.translations.append({"source": text, "onnx": theirs, "pytorch": ours})
    finite = bool(np.isfinite(whole) and np.isfinite(steps))
    report.passed = finite and (precision != "fp32" or (
        whole <= FP32_TOLERANCE and steps <= FP32_TOLERANCE
        and all(g.identical or g.at_tie for g in report.greedy)))
    (folder / REPORT_FILE).write_text(json.dumps(asdict(report), indent=2, ensure_ascii=False)
                                      + "\n", encoding="utf-8")
    return report


def export_translation(checkpoint: Path, out: Path, quantize: str = "none",
                       overwrite: bool = False) -> ExportResult:
    """Exports and verifies a ``seq2seq`` checkpoint (called by ``export_checkpoint``).

    Raises:
        ConfigError: bad checkpoint, or ``out`` exists.
        ExportVerificationError: the ONNX model does not reproduce PyTorch (nothing is written).
    """
    info = ckpt.read_checkpoint_info(checkpoint)
    model = ckpt.build_model(info.arch, info.model_config())
    assert isinstance(model, Seq2SeqModel)
    ckpt.load_weights(checkpoint, model)
    model.eval()
    source = ckpt.load_tokenizer(checkpoint)
    target = (ckpt.load_tokenizer(checkpoint, ckpt.TARGET_TOKENIZER_FILE)
              if info.data.get("separate_vocab") else None)
    weights = {name: t.float().numpy() for name, t in model.marian_state_dict().items()}
    languages = [(info.data.get(k) or "") for k in ("source_language", "target_language")]
    precision = PRECISIONS[quantize]
    texts = [s for s, _ in info.data.get("samples", [])] + list(VERIFY_TEXTS)
    with atomic_folder(out, overwrite=overwrite) as temporary:
        staged = write_seq2seq_folder(
            weights, model.config, temporary / out.name, source_tokenizer=source,
            target_tokenizer=target, source_languages=[languages[0]] if languages[0] else [],
            target_languages=[languages[1]] if languages[1] else [], precision=precision,
            context_length=info.data.get("max_length"), license="as the training corpus",
            source={"format": "nightlamp-checkpoint", "arch": info.arch, "preset": info.preset,
                    "step": info.step, "checkpoint": str(checkpoint.resolve())})
        report = verify_translation(staged, model, source, target or source, texts, precision)
        if not report.passed:
            raise ExportVerificationError(
                f"{out}: the exported model does not reproduce the checkpoint (max logit diff "
                f"{report.max_abs_logit_diff:.3g}); nothing was written; please report this "
                "with the checkpoint")
        for item in staged.iterdir():
            item.rename(temporary / item.name)
        staged.rmdir()
    folder = out.expanduser().resolve()
    sample = texts[0].replace('"', "") if texts else "Hello"
    if all(languages):
        example = (f'echo "{sample}" | nightlamp translate - --from {languages[0]} '
                   f"--to {languages[1]} -m {folder}")
    else:
        example = ("python -c \"from engine.model import load_model; from engine.seq2seq "
                   "import translate_batch; print(translate_batch(load_model("
                   f"'{folder}'), ['{sample}']))\"")
    return ExportResult(folder, report, example)
