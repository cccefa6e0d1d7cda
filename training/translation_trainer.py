"""``nightlamp train translation``: trains an encoder-decoder on a parallel corpus.

The loop itself is the language models' (``training.trainer.run_steps``: warm-up + cosine, AdamW,
clipping, accumulation, AMP, DDP, progress bar, checkpoints with exact resume); this module brings
the sentence-pair batches, label-smoothed cross-entropy and the evaluation (held-out loss, and
BLEU/chrF of greedy translations of up to ``eval_sentences`` held-out pairs).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer
from torch import nn

from convert.seq2seq_config import Seq2SeqConfig
from engine.errors import ConfigError
from training import checkpoint as ckpt
from training.distributed import DistributedContext, setup_distributed, teardown_distributed
from training.presets import PRESETS, TrainConfig, check_choice
from training.seq2seq_model import Seq2SeqModel, greedy_decode
from training.tokenizer_train import train_tokenizer
from training.trainer import (
    MicroBatch,
    autocast,
    corpus_fingerprint,
    cpu_threads,
    make_optimizer,
    micro_batch_size,
    prepare_out,
    resolve_device,
    run_steps,
)
from training.translation_data import ParallelCorpus, read_pairs, split_pairs
from training.translation_metrics import score

logger = logging.getLogger(__name__)
PAD, EOS, UNK = "<pad>", "</s>", "<unk>"
SPECIAL_TOKENS = (PAD, EOS, UNK)  # ids 0, 1, 2; the decoder starts from <pad>, as in Marian
IGNORE = -100  # label of padding positions


@dataclass
class TranslationTrainConfig(TrainConfig):
    batch_size: int = 32  # sentence pairs per optimizer step across processes and micro-batches
    val_fraction: float = 0.05  # share of pairs held out (at least 1, at most val_max_pairs)
    eval_batches: int = 8  # batches of held-out pairs in one held-out loss
    vocab_size: int = 400  # tokenizer size to train (each one, with separate vocabularies)
    val_max_pairs: int = 1000  # cap on held-out pairs
    eval_sentences: int = 200  # held-out pairs translated greedily for BLEU and chrF
    label_smoothing: float = 0.1  # probability mass spread over all tokens in the training loss
    dropout: float = 0.1  # dropout on embeddings, attention and feed-forward while training
    max_length: int = 64  # most tokens in a source or target (with </s>); longer pairs are left out
    separate_vocab: bool = False  # separate source and target tokenizers (and embeddings)


_MODEL_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"d_model": 64, "encoder_layers": 2, "decoder_layers": 2, "encoder_attention_heads": 4,
             "decoder_attention_heads": 4, "encoder_ffn_dim": 256, "decoder_ffn_dim": 256,
             "max_position_embeddings": 128},
    "small": {"d_model": 256, "encoder_layers": 4, "decoder_layers": 4,
              "encoder_attention_heads": 4, "decoder_attention_heads": 4,
              "encoder_ffn_dim": 1024, "decoder_ffn_dim": 1024, "max_position_embeddings": 256},
    "base": {"d_model": 512, "encoder_layers": 6, "decoder_layers": 6,
             "encoder_attention_heads": 8, "decoder_attention_heads": 8,
             "encoder_ffn_dim": 2048, "decoder_ffn_dim": 2048, "max_position_embeddings": 512},
}
_TRAIN_PRESETS: dict[str, TranslationTrainConfig] = {
    "tiny": TranslationTrainConfig(steps=300, lr=2e-3, warmup_steps=30, eval_every=100,
                                   threads=1),  # see presets.py
    "small": TranslationTrainConfig(steps=20000, batch_size=64, lr=1e-3, warmup_steps=1000,
                                    eval_every=1000, vocab_size=8000, max_length=128),
    "base": TranslationTrainConfig(steps=100000, batch_size=128, lr=5e-4, warmup_steps=4000,
                                   eval_every=2500, vocab_size=32000, max_length=256),
}


def model_preset(preset: str, vocab_size: int) -> Seq2SeqConfig:
    """Our translation models: Marian's layout, pre-norm, swish, special ids 0..2."""
    check_choice("preset", preset, PRESETS)
    return Seq2SeqConfig(**_MODEL_PRESETS[preset], vocab_size=vocab_size, activation="swish",
                         scale_embedding=True, normalize_before=True,
                         decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)


def train_preset(preset: str) -> TranslationTrainConfig:
    check_choice("preset", preset, PRESETS)
    return TranslationTrainConfig(**vars(_TRAIN_PRESETS[preset]))


Pair = tuple[list[int], list[int]]  # (source ids + </s>, target ids + </s>)


@dataclass
class PairData:
    train: list[Pair]
    val: list[Pair]
    val_text: list[tuple[str, str]]  # the held-out pairs as text, for BLEU and chrF
    dropped: int  # pairs longer than max_length


def tokenize_pairs(corpus: ParallelCorpus, source: Tokenizer, target: Tokenizer,
                   config: TranslationTrainConfig) -> PairData:
    """Encodes every pair, appends </s>, drops over-long pairs, splits off the held-out part."""
    eos = source.token_to_id(EOS)
    assert eos is not None and eos == target.token_to_id(EOS)
    texts = corpus.pairs
    src_ids = [[*e.ids, eos] for e in source.encode_batch([s for s, _ in texts],
                                                          add_special_tokens=False)]
    tgt_ids = [[*e.ids, eos] for e in target.encode_batch([t for _, t in texts],
                                                          add_special_tokens=False)]
    keep = [i for i in range(len(texts))
            if len(src_ids[i]) <= config.max_length and len(tgt_ids[i]) <= config.max_length]
    train_index, val_index = split_pairs(len(keep), config.seed, config.val_fraction,
                                         config.val_max_pairs)
    pick = [(src_ids[keep[i]], tgt_ids[keep[i]]) for i in range(len(keep))]
    return PairData(train=[pick[i] for i in train_index], val=[pick[i] for i in val_index],
                    val_text=[texts[keep[i]] for i in val_index], dropped=len(texts) - len(keep))


def collate(pairs: list[Pair], pad: int, start: int
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Source ids and mask (B, S), decoder inputs and labels (B, T); labels IGNORE on padding."""
    width_s = max(len(s) for s, _ in pairs)
    width_t = max(len(t) for _, t in pairs)
    source = torch.full((len(pairs), width_s), pad, dtype=torch.long)
    mask = torch.zeros_like(source)
    decoder_input = torch.full((len(pairs), width_t), pad, dtype=torch.long)
    labels = torch.full((len(pairs), width_t), IGNORE, dtype=torch.long)
    for row, (src, tgt) in enumerate(pairs):
        source[row, :len(src)] = torch.tensor(src)
        mask[row, :len(src)] = 1
        decoder_input[row, :len(tgt)] = torch.tensor([start, *tgt[:-1]])  # shifted right
        labels[row, :len(tgt)] = torch.tensor(tgt)
    return source, mask, decoder_input, labels


@torch.no_grad()
def evaluate(model: Seq2SeqModel, data: PairData, target: Tokenizer, config: TranslationTrainConfig,
             target_language: str, device: torch.device) -> tuple[dict[str, float], str]:
    """Held-out loss (nats per target token, no smoothing), BLEU and chrF."""
    model.eval()
    c, total, count = model.config, 0.0, 0
    size = max(1, config.batch_size // config.grad_accum)
    for first in range(0, min(len(data.val), size * config.eval_batches), size):
        source, mask, decoder_input, labels = (
            t.to(device) for t in collate(data.val[first:first + size], c.pad_token_id,
                                          c.decoder_start_token_id))
        with autocast(device, config.amp):
            logits = model(source, mask, decoder_input)  # (B, T, V)
        total += F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(),
                                 ignore_index=IGNORE, reduction="sum").item()
        count += int((labels != IGNORE).sum())
    sample = data.val[:config.eval_sentences]
    order = sorted(range(len(sample)), key=lambda i: len(sample[i][0]))  # less padding
    hypotheses = [""] * len(sample)
    for first in range(0, len(order), 64):
        rows = order[first:first + 64]
        sources = [sample[i][0] for i in rows]
        limits = [min(config.max_length, int(2.0 * len(s)) + 10) for s in sources]
        for row, ids in zip(rows, greedy_decode(model, sources, limits), strict=True):
            hypotheses[row] = target.decode(ids, skip_special_tokens=True)
    scores = score(hypotheses, [t for _, t in data.val_text[:len(sample)]], target_language)
    model.train()
    loss = total / max(count, 1)
    return ({"val_loss": round(loss, 5), "bleu": round(scores.bleu, 3),
             "chrf": round(scores.chrf, 3)},
            f"held-out loss {loss:.3f}, BLEU {scores.bleu:.1f}, chrF {scores.chrf:.1f}")


def _pairs_fingerprint(corpus: ParallelCorpus) -> str:
    return corpus_fingerprint([f"{s}\t{t}\n" for s, t in corpus.pairs])


def train_translation(pairs: Path, out: Path, *, source_language: str | None = None,
                      target_language: str | None = None, preset: str | None = None,
                      steps: int | None = None, resume: bool = False, device: str | None = None,
                      overrides: dict[str, Any] | None = None, progress: bool = True,
                      ) -> ckpt.CheckpointInfo:
    """Trains a translation model on a TSV or TMX file and leaves a checkpoint in ``out``.

    Args:
        pairs: TSV (source<TAB>target) or TMX file.
        out: checkpoint folder (written at every evaluation and at the end).
        source_language, target_language: BCP-47 tags (TMX: which variants to pair).
        preset: ``tiny``, ``small`` or ``base`` (default tiny; on resume, the checkpoint's).
        steps: total optimizer steps (default: the preset's).
        resume: continue from the checkpoint in ``out`` exactly where it stopped.
        device: ``cpu``, ``cuda`` or None for automatic.
        overrides: TranslationTrainConfig fields to change.
        progress: show a progress bar on the main process.

    Raises:
        ConfigError: bad corpus, option, or a checkpoint that does not fit the request.
    """
    if steps is not None and steps < 1:
        raise ConfigError(f"--steps must be a positive integer (got {steps})")
    if resume:
        info = ckpt.read_checkpoint_info(out)
        if info.arch != ckpt.SEQ2SEQ or (preset is not None and preset != info.preset):
            raise ConfigError(f"{out}: the checkpoint is a {info.arch} {info.preset} model; "
                              "resume it with its own command and preset or use a new --out")
        source_language = source_language or info.data["source_language"] or None
        target_language = target_language or info.data["target_language"] or None
    else:
        prepare_out(out, resume)
    corpus = read_pairs(pairs, source_language, target_language)
    if corpus.skipped_empty or corpus.skipped_incomplete:
        logger.warning("%s", corpus.describe())
    if resume:
        recorded = (info.data["source_language"], info.data["target_language"])
        if recorded != (corpus.source_language, corpus.target_language):
            raise ConfigError(f"{out}: the checkpoint translates {recorded[0] or '?'} -> "
                              f"{recorded[1] or '?'}; resume with those languages")
        config = TranslationTrainConfig(**info.train)
        source = ckpt.load_tokenizer(out)
        target = (ckpt.load_tokenizer(out, ckpt.TARGET_TOKENIZER_FILE)
                  if config.separate_vocab else source)
        if info.corpus_sha256 != _pairs_fingerprint(corpus):
            logger.warning("the corpus differs from the one this checkpoint started with")
    else:
        preset = preset or "tiny"
        config = train_preset(preset)
    for key, value in (overrides or {}).items():
        if not hasattr(config, key):
            raise ConfigError(f"unknown training setting {key!r}")
        setattr(config, key, value)
    if steps is not None:
        config.steps = steps
    if not resume:
        assert preset is not None
        source, target = _train_tokenizers(corpus, config)
        vocab = max(source.get_vocab_size(), target.get_vocab_size())
        model_config = model_preset(preset, vocab)
        model_config.share_embeddings = not config.separate_vocab
        if config.max_length > model_config.max_position_embeddings:
            raise ConfigError(f"max_length {config.max_length} exceeds the {preset} preset's "
                              f"{model_config.max_position_embeddings} positions")
        info = ckpt.CheckpointInfo(
            arch=ckpt.SEQ2SEQ, preset=preset, model=model_config.to_dict(), train={},
            corpus_sha256=_pairs_fingerprint(corpus),
            data={"source_language": corpus.source_language,
                  "target_language": corpus.target_language,
                  "separate_vocab": config.separate_vocab, "max_length": config.max_length})
    info.train = asdict(config)
    data = tokenize_pairs(corpus, source, target, config)
    if data.dropped:
        logger.warning("left out %d pairs longer than %d tokens", data.dropped, config.max_length)
    info.data.update(pairs=len(corpus.pairs), skipped_empty=corpus.skipped_empty,
                     skipped_incomplete=corpus.skipped_incomplete, too_long=data.dropped,
                     held_out=len(data.val),
                     samples=[list(pair) for pair in data.val_text[:8]])  # export verifies on them

    ctx = setup_distributed()
    try:
        torch_device = resolve_device(device, ctx)
        with cpu_threads(torch_device, config.threads):
            return _run(info, config, data, source, target, out, ctx, torch_device, resume,
                        progress)
    finally:
        teardown_distributed(ctx)


def _train_tokenizers(corpus: ParallelCorpus, config: TranslationTrainConfig,
                      ) -> tuple[Tokenizer, Tokenizer]:
    sources = [s for s, _ in corpus.pairs]
    targets = [t for _, t in corpus.pairs]
    if config.separate_vocab:
        return (train_tokenizer(sources, config.vocab_size, SPECIAL_TOKENS),
                train_tokenizer(targets, config.vocab_size, SPECIAL_TOKENS))
    shared = train_tokenizer(sources + targets, config.vocab_size, SPECIAL_TOKENS)
    return shared, shared


def _run(info: ckpt.CheckpointInfo, config: TranslationTrainConfig, data: PairData,
         source: Tokenizer, target: Tokenizer, out: Path, ctx: DistributedContext,
         device: torch.device, resume: bool, progress: bool) -> ckpt.CheckpointInfo:
    model_config = info.model_config()
    assert isinstance(model_config, Seq2SeqConfig)
    per_micro = micro_batch_size(config, ctx.world_size) * ctx.world_size  # global micro-batch

    # Model, optimizer and data order, all seeded; on resume overwritten from the checkpoint.
    torch.manual_seed(config.seed)
    model = Seq2SeqModel(model_config, dropout=config.dropout).to(device)
    optimizer = make_optimizer(model, config, device)
    data_generator = torch.Generator().manual_seed(config.seed + 1)
    if resume:
        ckpt.load_weights(out, model)
        ckpt.load_training_state(out, optimizer, data_generator)
    step_batch: list[list[Pair]] = []
    step_tokens = [0]

    def micro_batch(wrapped: nn.Module, micro: int) -> MicroBatch:
        if micro == 0:
            # Dropout masks depend only on (seed, step, process): a resumed run draws the same.
            torch.manual_seed((config.seed * 1_000_003 + info.step) * 65_536 + ctx.rank)
            indices = torch.randint(len(data.train), (config.batch_size,),
                                    generator=data_generator).tolist()
            step_batch[:] = [[data.train[i] for i in indices[k:k + per_micro]]
                             for k in range(0, config.batch_size, per_micro)]
            # Normalize by the whole step's target tokens, so accumulation and DDP give the
            # update of one big batch (DDP averages over processes, hence * world_size).
            step_tokens[0] = sum(len(t) for chunk in step_batch for _, t in chunk)
        pairs = step_batch[micro]
        mine = pairs[ctx.rank * len(pairs) // ctx.world_size:
                     (ctx.rank + 1) * len(pairs) // ctx.world_size]
        src, mask, decoder_input, labels = (t.to(device) for t in collate(
            mine, model_config.pad_token_id, model_config.decoder_start_token_id))
        logits = wrapped(src, mask, decoder_input)  # (B, T, V)
        loss = F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(),
                               ignore_index=IGNORE, label_smoothing=config.label_smoothing,
                               reduction="sum") * (ctx.world_size / step_tokens[0])
        # The logged value is this process's estimate of the step's loss (exact on one process).
        return MicroBatch(loss, loss.item(), sum(len(s) + len(t) for s, t in pairs))

    def save() -> None:
        ckpt.save_checkpoint(out, info, model, optimizer, data_generator, source,
                             target if config.separate_vocab else None)

    run_steps(model, ctx.wrap(model), optimizer, config, info, ctx, device,
              micro_batch=micro_batch,
              evaluate=lambda: evaluate(model, data, target, config,
                                        info.data["target_language"], device),
              save=save, progress=progress)
    return info
