"""Text generation: a step API (like onnxruntime-genai's) and the streaming ``generate`` iterator.

``Generator`` exposes ``append_tokens`` / ``generate_next_token`` / ``is_done``; ``generate`` wraps
it into an iterator of ``TextChunk``s that tasks, the CLI and the GUI consume. Cancellation is a
callable checked before every token and between prefill chunks.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from engine.callbacks import ShouldStop
from engine.chat_template import render_chat, validate_messages
from engine.detokenize import TextAssembler
from engine.errors import ConfigError
from engine.model import Model, require_decoder
from engine.runner import DecoderRunner
from engine.sampling import SamplingSettings, build_chain
from engine.seq2seq import Seq2SeqModel
from engine.speculation import DRAFT_TOKENS, PromptLookup, SpeculationGate

# A prompt longer than this many characters per context token is probed before it is tokenized:
# ordinary text has 2 to 5 characters per token.
_PROBE_CHARS_PER_TOKEN = 8
_CUT_MARGIN = 16


def _never() -> bool:
    return False


@dataclass(frozen=True)
class GenerationConfig:
    """How much to generate and how to pick tokens."""

    max_new_tokens: int = 256  # upper bound on generated tokens
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    stop_strings: tuple[str, ...] = ()  # generation ends before any of these strings
    prefill_chunk: int = 256  # prompt tokens per forward pass (cancellation is checked between)
    # Greedy decoding may guess tokens from the text so far and check them in one pass
    # (engine.speculation); off by default: not yet bit-exact with the one-token step.
    speculate: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.max_new_tokens, bool) or not isinstance(self.max_new_tokens, int) \
                or self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be a positive integer (got "
                              f"{self.max_new_tokens!r}); e.g. 256")
        if self.prefill_chunk < 1:
            raise ConfigError(f"prefill_chunk must be >= 1 (got {self.prefill_chunk})")


@dataclass(frozen=True)
class GenerationStats:
    prompt_tokens: int
    completion_tokens: int
    ttft_s: float  # from the call until the first token was chosen (prefill included)
    tokens_per_s: float  # decode speed: tokens after the first over the time they took
    total_s: float
    device: str
    cached_prompt_tokens: int = 0  # prompt tokens whose cache was kept from the previous call


@dataclass(frozen=True)
class TextChunk:
    """A piece of streamed text; the last chunk carries the finish reason and the stats."""

    text: str
    finish_reason: str | None = None
    stats: GenerationStats | None = None


class Generator:
    """Step-wise generation over one model (batch of one).

    Usage: ``append_tokens(prompt_ids)`` then ``while not is_done(): generate_next_token()``.

    A generator uses the model's long-lived runner (`Model.decoder_runner`): the first
    ``append_tokens`` keeps the cache of whatever prefix the previous generation on this model
    shares with the new prompt. One generator at a time per model: starting another one ends
    this one's use of the cache.
    """

    def __init__(self, model: Model | Seq2SeqModel, config: GenerationConfig,
                 should_stop: ShouldStop | None = None) -> None:
        self.model = require_decoder(model)
        self.config = config
        self.should_stop = should_stop or _never
        self.runner: DecoderRunner = self.model.decoder_runner()
        self.runner.owner = self
        self.chain = build_chain(config.sampling)
        self.history: list[int] = []
        self.generated: list[int] = []
        self.finish_reason: str | None = None
        self.cached_prompt_tokens = 0
        self._logits: np.ndarray | None = None
        # Speculation: only for greedy decoding (exact) on a cache that can be rewound.
        self.gate = SpeculationGate()
        self._speculate = (config.speculate and config.sampling.temperature == 0
                           and not self.model.manifest.recurrent_state)
        self._lookup: PromptLookup | None = None
        self._draft: list[int] = []  # guessed tokens already in the cache, not yet confirmed
        self._rows: list[np.ndarray] = []  # the logits after each of them
        self._check: tuple[int, float] | None = None  # (guesses, seconds) of the last check
        self._accepted = 0

    def _check_owner(self) -> None:
        if self.runner.owner is not self:
            raise ConfigError(f"another generation on {self.model.name!r} started and took its "
                              "cache; run one generation per model at a time")

    @property
    def context_length(self) -> int:
        return self.model.manifest.context_length

    def append_tokens(self, token_ids: Sequence[int]) -> None:
        """Feeds prompt (or follow-up) tokens, in chunks, checking cancellation between them.

        Raises:
            ConfigError: the tokens don't fit the model's context.
        """
        if not token_ids:
            raise ConfigError("the prompt is empty; give some text to continue")
        self._check_owner()
        context = len(self.history) + len(token_ids)
        if context >= self.context_length:
            raise ConfigError(
                f"the prompt is {context} tokens but {self.model.name!r} has a context of "
                f"{self.context_length}; shorten the prompt"
            )
        self._settle()  # guesses still in the cache are dropped by keep_prefix below
        self._lookup = None  # rebuilt from the whole history when next needed
        self.history.extend(token_ids)
        # The first call keeps what the cache shares with the prompt (an earlier generation's
        # prefix); later calls find the cache holding the history so far.
        kept = self.runner.keep_prefix(self.history)
        chunk = self.config.prefill_chunk
        if self._logits is None and kept == len(self.history) - 1 and kept % chunk:
            # The same prompt again (a regenerate, a second summary): its last token alone
            # would get logits summed in another order than inside the chunk a fresh run
            # computed it in, and greedy output could differ at a near-tie. Rerunning from
            # the chunk's start gives the fresh run's arithmetic, so the same answer.
            kept = self.runner.keep_prefix(self.history[:kept - kept % chunk + 1])
        if self._logits is None:
            self.cached_prompt_tokens = kept
        pending = self.history[self.runner.past_length:]
        for start in range(0, len(pending), chunk):
            if self.should_stop():
                self.finish_reason = "cancelled"
                return
            self._logits = self.runner.forward(pending[start:start + chunk])

    def is_done(self) -> bool:
        return self.finish_reason is not None

    def generate_next_token(self) -> int | None:
        """Picks the next token and runs it through the model; None once generation has ended."""
        if self.finish_reason is not None:
            return None
        if self._logits is None:
            raise ConfigError("append_tokens must be called before generate_next_token")
        if self.should_stop():
            self.finish_reason = "cancelled"
            return None
        self._check_owner()
        token = self.chain.sample(self._logits, self.history)
        if token in self.model.stop_token_ids:
            self.finish_reason = "stop"
            self._settle()
            return None
        self.history.append(token)
        self.generated.append(token)
        if self._lookup is not None:
            self._lookup.extend([token])
        if len(self.generated) >= self.config.max_new_tokens \
                or len(self.history) >= self.context_length:
            self.finish_reason = "length"
            self._settle()
        elif self._draft and token == self._draft[0]:  # the guess was right: already run
            self._draft.pop(0)
            self._logits = self._rows.pop(0)
            self._accepted += 1
            if not self._draft:
                self._settle()
        else:
            if self._draft:  # a wrong guess: its cache entries go
                self.runner.keep_prefix(self.history)
            self._settle()
            self._logits = self._advance(token)
        return token

    def _advance(self, token: int) -> np.ndarray:
        """Runs ``token`` (with a draft after it when speculation pays); its logits."""
        if not self._speculate:  # the plain step, untimed: nothing would read the time
            return self.runner.forward([token])
        room = min(self.config.max_new_tokens - len(self.generated),
                   self.context_length - len(self.history)) - 1
        draft: list[int] = []
        if room > 0 and self.gate.allow():
            if self._lookup is None:
                self._lookup = PromptLookup(self.history)
            draft = self._lookup.propose(min(DRAFT_TOKENS, room))
        started = time.perf_counter()
        if not draft:
            logits = self.runner.forward([token])
            self.gate.plain(time.perf_counter() - started)
            return logits
        rows = self.runner.forward([token, *draft], all_logits=True)
        self._check = (len(draft), time.perf_counter() - started)
        self._draft, self._rows, self._accepted = draft, list(rows[1:]), 0
        return rows[0]

    def _settle(self) -> None:
        """Books the last check's outcome with the gate and forgets its guesses."""
        if self._check is not None:
            self.gate.checked(self._check[0], self._accepted, self._check[1])
        self._check, self._draft, self._rows = None, [], []


def prompt_ids(model: Model, prompt: str | Sequence[Mapping[str, str]], *,
               within_context: bool = False) -> list[int]:
    """Token ids for a plain prompt (BOS prepended when the model has one) or chat messages
    (rendered with the model's chat template, which places its own special tokens).

    Args:
        within_context: refuse (ConfigError) a prompt that cannot fit the model's context,
            without tokenizing all of a huge one (see `_check_fits_context`).
    """
    manifest = model.manifest
    if isinstance(prompt, str):
        if within_context:
            _check_fits_context(model, prompt)
        ids = model.tokenizer.encode(prompt)
        if model.bos_token_id is not None and (not ids or ids[0] != model.bos_token_id):
            ids.insert(0, model.bos_token_id)
        return ids
    validate_messages(prompt)
    if not manifest.chat_template:
        raise ConfigError(
            f"model {manifest.name!r} has no chat template; use a chat model or a plain prompt"
        )
    text = render_chat(manifest.chat_template, prompt, add_generation_prompt=True,
                       bos_token=manifest.bos_token or "", eos_token=manifest.eos_token or "",
                       source=f"{model.folder} chat template")
    if within_context:
        _check_fits_context(model, text)
    return model.tokenizer.encode(text)


def _check_fits_context(model: Model, text: str) -> None:
    """Refuses text that has more tokens than the model's context, quickly.

    Tokenizing megabytes takes seconds (5 MB: 4 to 16 s, and a lot of memory) only to find the
    prompt far too long. So a text much longer than the context in characters is probed first:
    growing prefixes, from `_PROBE_CHARS_PER_TOKEN` characters per context token, are
    tokenized until one alone has more tokens than the context (refused) or the prefix is the
    whole text (the caller tokenizes it; `Generator.append_tokens` has the last word).
    """
    context = model.manifest.context_length
    probe = context * _PROBE_CHARS_PER_TOKEN
    while probe < len(text):
        # Cutting a word can split its last token into a few; the margin covers that.
        if len(model.tokenizer.encode(text[:probe])) > context + _CUT_MARGIN:
            raise ConfigError(
                f"the prompt ({len(text):,} characters) has more tokens than {model.name!r} has "
                f"context ({context}; its first {probe:,} characters alone are more); shorten "
                "the prompt"
            )
        probe *= 2


def generate(model: Model | Seq2SeqModel, prompt: str | Sequence[Mapping[str, str]],
             config: GenerationConfig | None = None,
             should_stop: ShouldStop | None = None) -> Iterator[TextChunk]:
    """Streams generated text as it is produced.

    Args:
        model: a loaded model; a translation model (``Seq2SeqModel``) is refused.
        prompt: plain text to continue, or chat messages (``role``/``content``) for chat models.
        config: limits and sampling settings (defaults if None).
        should_stop: called before each token and between prefill chunks; True cancels.

    Yields:
        Text pieces that are always whole UTF-8 characters; the last chunk has ``finish_reason``
        (``stop``, ``length`` or ``cancelled``) and ``stats``.

    Raises:
        ConfigError: (on the first ``next``) a translation model or a prompt that does not fit.
    """
    model = require_decoder(model)
    started = time.perf_counter()
    ids = prompt_ids(model, prompt, within_context=True)
    yield from generate_from_ids(model, ids, config, should_stop, started=started)


def generate_from_ids(model: Model, ids: list[int], config: GenerationConfig | None = None,
                      should_stop: ShouldStop | None = None, *,
                      started: float | None = None) -> Iterator[TextChunk]:
    """:func:`generate` for a prompt already turned into token ids (``prompt_ids``); the
    server tokenizes on its own threads. ``started``: when the request began (time to first
    token is counted from it; default now)."""
    config = config or GenerationConfig()
    started = time.perf_counter() if started is None else started
    generator = Generator(model, config, should_stop)
    generator.append_tokens(ids)
    assembler = TextAssembler(model.tokenizer.decode, ids, config.stop_strings)
    first_token_at: float | None = None
    last_token_at = started
    while not generator.is_done():
        token = generator.generate_next_token()
        if token is None:
            break
        last_token_at = time.perf_counter()
        if first_token_at is None:
            first_token_at = last_token_at
        text = assembler.push(token)
        if text:
            yield TextChunk(text)
        if assembler.stopped:
            generator.finish_reason = "stop"
            break
    tail = assembler.finish()
    if tail:
        yield TextChunk(tail)
    finished = time.perf_counter()
    completed = len(generator.generated)
    decode_time = last_token_at - (first_token_at or last_token_at)
    stats = GenerationStats(
        prompt_tokens=len(ids),
        completion_tokens=completed,
        ttft_s=(first_token_at or finished) - started,
        tokens_per_s=(completed - 1) / decode_time if completed > 1 and decode_time > 0 else 0.0,
        total_s=finished - started,
        device=model.device,
        cached_prompt_tokens=generator.cached_prompt_tokens,
    )
    yield TextChunk("", finish_reason=generator.finish_reason or "stop", stats=stats)
