"""The training loop, for one process or many under ``torchrun`` (DDP), and ``train_lm``.

Every process draws the same global batch from identically seeded generators and trains on its own
slice of it; DistributedDataParallel averages the gradients, so N processes compute the same update
as one process on the whole batch. ``run_steps`` (schedule, accumulation, clipping, AMP, progress,
evaluation and checkpoint cadence) is shared with the translation trainer, which only brings its
own batches, loss and evaluation.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from engine.errors import ConfigError
from training import checkpoint as ckpt
from training.data import eval_batches, random_batch, read_corpus, split_tokens
from training.distributed import DistributedContext, setup_distributed, teardown_distributed
from training.lstm import LSTMConfig
from training.presets import TrainConfig, check_choice, model_preset, train_preset
from training.tokenizer_train import END_OF_TEXT, train_tokenizer
from training.transformer import TransformerConfig

logger = logging.getLogger(__name__)


def learning_rate(step: int, config: TrainConfig) -> float:
    """Linear warm-up to ``lr``, then cosine decay to ``lr * min_lr_ratio`` at the last step."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    # The last step trained is steps - 1: it is the one that must reach the floor.
    span = max(1, config.steps - 1 - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / span)
    floor = config.lr * config.min_lr_ratio
    return floor + 0.5 * (config.lr - floor) * (1 + math.cos(math.pi * progress))


def make_optimizer(model: nn.Module, config: TrainConfig, device: torch.device,
                   ) -> torch.optim.AdamW:
    # Decay matrices only; norms and biases keep their scale (nanoGPT's grouping).
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.95),
                             fused=device.type == "cuda")


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager[Any]:
    if not enabled or device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def corpus_fingerprint(texts: list[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8"))
    return digest.hexdigest()


@contextlib.contextmanager
def cpu_threads(device: torch.device, threads: int) -> Iterator[None]:
    """PyTorch's intra-op threads set to ``threads`` for a CPU run (0: left as they are), and
    restored afterwards."""
    if device.type != "cpu" or threads <= 0:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def micro_batch_size(config: TrainConfig, world: int) -> int:
    """Sequences per process per micro-batch; the global batch must split evenly."""
    per_step = config.batch_size
    if per_step % (config.grad_accum * world):
        raise ConfigError(
            f"batch size {per_step} does not split into {config.grad_accum} micro-batches on "
            f"{world} processes; use a batch size divisible by {config.grad_accum * world}"
        )
    return per_step // config.grad_accum // world


@torch.no_grad()
def evaluate(model: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]],
             device: torch.device, amp: bool) -> float:
    """Mean held-out cross-entropy (nats per token)."""
    model.eval()
    total, count = 0.0, 0
    for x, y in batches:
        with autocast(device, amp):
            logits = model(x.to(device))
        total += F.cross_entropy(logits.float().flatten(0, 1), y.to(device).flatten(),
                                 reduction="sum").item()
        count += y.numel()
    model.train()
    return total / count


def resolve_device(requested: str | None, ctx: DistributedContext) -> torch.device:
    if requested == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but PyTorch sees no CUDA GPU; use cpu/auto")
    if requested == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", ctx.local_rank)


def train_lm(arch: str, corpus: list[Path], out: Path, *, preset: str | None = None,
             steps: int | None = None, resume: bool = False, device: str | None = None,
             overrides: dict[str, Any] | None = None, progress: bool = True,
             ) -> ckpt.CheckpointInfo:
    """Trains a language model and leaves a checkpoint in ``out``.

    Args:
        arch: ``transformer`` or ``lstm``.
        corpus: UTF-8 text files.
        out: checkpoint folder (written at every evaluation and at the end).
        preset: ``tiny``, ``small`` or ``base`` (default tiny; on resume, the checkpoint's).
        steps: total optimizer steps (default: the preset's).
        resume: continue from the checkpoint in ``out`` exactly where it stopped.
        device: ``cpu``, ``cuda`` or None for automatic.
        overrides: TrainConfig fields to change (tests use this for tiny runs).
        progress: show a progress bar on the main process.

    Raises:
        ConfigError: bad corpus, preset, or a checkpoint that does not fit the request.
    """
    check_choice("architecture", arch, ("transformer", "lstm"))
    if steps is not None and steps < 1:
        raise ConfigError(f"--steps must be a positive integer (got {steps})")
    texts = read_corpus(corpus)
    fingerprint = corpus_fingerprint(texts)
    if resume:
        info = ckpt.read_checkpoint_info(out)
        if info.arch != arch or (preset is not None and preset != info.preset):
            raise ConfigError(
                f"{out}: the checkpoint was trained with --arch {info.arch} --preset "
                f"{info.preset}; resume with those settings or train into a new --out"
            )
        config = TrainConfig(**info.train)
        tokenizer = ckpt.load_tokenizer(out)
        if info.corpus_sha256 != fingerprint:
            logger.warning("the corpus differs from the one this checkpoint started with")
    else:
        prepare_out(out, resume)
        preset = preset or "tiny"
        config = train_preset(preset)
    for key, value in (overrides or {}).items():
        setattr(config, key, value)
    if steps is not None:
        config.steps = steps
    if not resume:
        tokenizer = train_tokenizer(texts, config.vocab_size)
        model_fields = {**model_preset(arch, preset), "vocab_size": tokenizer.get_vocab_size()}
        info = ckpt.CheckpointInfo(arch=arch, preset=preset, model=model_fields, train={},
                                   corpus_sha256=fingerprint)
    info.train = asdict(config)
    model_config = info.model_config()
    assert isinstance(model_config, (TransformerConfig, LSTMConfig))
    context = model_config.context_length
    separator = tokenizer.token_to_id(END_OF_TEXT)
    documents = [tokenizer.encode(text, add_special_tokens=False).ids for text in texts]
    data = split_tokens(documents, separator, config.val_fraction, context)

    ctx = setup_distributed()
    try:
        torch_device = resolve_device(device, ctx)
        with cpu_threads(torch_device, config.threads):
            return _run(arch, info, config, data, tokenizer, out, ctx, torch_device, resume,
                        progress)
    finally:
        teardown_distributed(ctx)


def prepare_out(out: Path, resume: bool) -> None:
    """Refuses to start a new run over a checkpoint or into a non-empty folder."""
    if resume:
        return
    if ckpt.has_checkpoint(out):
        raise ConfigError(f"{out} already holds a checkpoint; pass --resume to continue it "
                          "or choose another --out")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        # Saving swaps the whole folder in, which would delete whatever else is in it.
        raise ConfigError(f"{out} exists and is not an empty folder; choose a new or empty "
                          "--out (checkpoints replace their whole folder)")


@dataclass
class MicroBatch:
    """What one micro-batch contributes to an optimizer step."""

    loss: torch.Tensor  # scaled so that the micro-batches' gradients add up to the step's
    value: float  # its share of the step's training loss (for the log)
    tokens: int  # tokens it consumed, summed over all processes


def run_steps(model: nn.Module, wrapped: nn.Module, optimizer: torch.optim.Optimizer,
              config: TrainConfig, info: ckpt.CheckpointInfo, ctx: DistributedContext,
              device: torch.device, *, micro_batch: Callable[[nn.Module, int], MicroBatch],
              evaluate: Callable[[], tuple[dict[str, float], str]], save: Callable[[], None],
              progress: bool) -> None:
    """Trains from ``info.step`` to ``config.steps``, evaluating and saving every eval_every.

    Args:
        model: the bare model (clipping, evaluation); wrapped: the DDP-wrapped one (training).
        micro_batch: (wrapped model, micro-batch index) -> its loss; runs under autocast.
        evaluate: -> (metrics to record, their one-line description); runs on every process.
        save: writes the checkpoint; called on the main process only.
    """
    amp = config.amp
    scaler = torch.amp.GradScaler("cuda", enabled=amp and device.type == "cuda"
                                  and not torch.cuda.is_bf16_supported())
    bar = tqdm(total=config.steps, initial=info.step, unit="step", file=sys.stderr,
               disable=not (progress and ctx.is_main), dynamic_ncols=True, mininterval=0.5)
    started, tokens_at_start = time.perf_counter(), info.tokens_seen
    for step in range(info.step, config.steps):
        # 1. Learning rate for this step (warm-up, then cosine).
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, config)
        # 2. Accumulate gradients over micro-batches; DDP syncs only on the last one.
        train_loss = 0.0
        for micro in range(config.grad_accum):
            sync = micro == config.grad_accum - 1
            with ctx.no_sync(wrapped, sync), autocast(device, amp):
                part = micro_batch(wrapped, micro)
            scaler.scale(part.loss).backward()
            train_loss += part.value
            info.tokens_seen += part.tokens
        # 3. Clip, step, reset.
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        info.step = step + 1
        elapsed = max(time.perf_counter() - started, 1e-9)
        bar.set_postfix(loss=f"{train_loss:.3f}",
                        tok_s=f"{(info.tokens_seen - tokens_at_start) / elapsed:,.0f}")
        bar.update(1)
        # 4. Evaluate on held-out data and checkpoint.
        if info.step % config.eval_every == 0 or info.step == config.steps:
            metrics, described = evaluate()
            info.metrics.append({"step": info.step, "train_loss": round(train_loss, 5),
                                 **metrics})
            bar.write(f"step {info.step}: train loss {train_loss:.3f}, {described}")
            if ctx.is_main:
                save()
            ctx.barrier()
    bar.close()


def _run(arch: str, info: ckpt.CheckpointInfo, config: TrainConfig, data: Any, tokenizer: Any,
         out: Path, ctx: DistributedContext, device: torch.device, resume: bool,
         progress: bool) -> ckpt.CheckpointInfo:
    model_config = info.model_config()
    assert isinstance(model_config, (TransformerConfig, LSTMConfig))
    context = model_config.context_length
    micro_batch = micro_batch_size(config, ctx.world_size)

    # Model, optimizer and data order, all seeded; on resume overwritten from the checkpoint.
    torch.manual_seed(config.seed)
    model = ckpt.build_model(arch, model_config).to(device)
    optimizer = make_optimizer(model, config, device)
    data_generator = torch.Generator().manual_seed(config.seed + 1)
    if resume:
        ckpt.load_weights(out, model)
        ckpt.load_training_state(out, optimizer, data_generator)
    held_out = eval_batches(data.val, max(1, config.batch_size // config.grad_accum), context,
                            config.eval_batches)

    def lm_micro_batch(wrapped: nn.Module, micro: int) -> MicroBatch:
        x, y = random_batch(data.train, micro_batch * ctx.world_size, context, data_generator)
        x, y = ctx.shard(x).to(device), ctx.shard(y).to(device)
        logits = wrapped(x)  # (B, T, V)
        loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
        return MicroBatch(loss / config.grad_accum, loss.item() / config.grad_accum,
                          micro_batch * ctx.world_size * context)

    def lm_evaluate() -> tuple[dict[str, float], str]:
        val_loss = evaluate(model, held_out, device, config.amp)
        perplexity = math.exp(min(val_loss, 50))
        return ({"val_loss": round(val_loss, 5), "val_perplexity": round(perplexity, 3)},
                f"held-out loss {val_loss:.3f}, perplexity {perplexity:.2f}")

    run_steps(model, ctx.wrap(model), optimizer, config, info, ctx, device,
              micro_batch=lm_micro_batch, evaluate=lm_evaluate,
              save=lambda: ckpt.save_checkpoint(out, info, model, optimizer, data_generator,
                                                tokenizer),
              progress=progress)
    return info
