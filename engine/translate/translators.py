"""Translators: anything that turns a list of segments in one language into another.

``Translator`` is the protocol the pipeline uses; two implementations run our models:

- ``InstructTranslator``: any chat model, one prompt per segment asking for the translation only
  (greedy decoding). It follows instructions, so it also takes glossary hints and a stricter
  retry prompt (``InstructionFollowing``).
- ``Seq2SeqTranslator``: a dedicated encoder-decoder model through ``engine.seq2seq`` (imported
  when first used); it translates only the language pairs its manifest lists.

Both tell the pipeline how long a segment may be (``max_segment_tokens``, measured by
``count_tokens``) so that no request exceeds the model's context.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from engine import seq2seq
from engine.batch import BatchRequest, batchable, decode_batch
from engine.callbacks import ShouldStop
from engine.errors import ConfigError, OperationCancelledError
from engine.generation import GenerationConfig, generate, prompt_ids
from engine.model import Model
from engine.sampling import SamplingSettings
from engine.text.prompt_style import instruction_messages
from engine.translate.glossary import Term
from engine.translate.languages import matches, name, same_language

SAMPLING = SamplingSettings(temperature=0.0, repetition_penalty=1.05)
MAX_SEGMENT_TOKENS = 384  # longer sentences are cut: small models lose the thread beyond
MIN_SEGMENT_TOKENS = 8
HINT_TOKENS = 96  # room kept in each prompt for glossary hints
ANSWER_FACTOR = 3  # an answer may have this many times the segment's tokens (plus a margin)
BATCH_SEGMENTS = 8  # segments decoded side by side where the model can batch (engine.batch)


@runtime_checkable
class Translator(Protocol):
    """Translates segments (sentences) from ``source`` to ``target`` (BCP-47 tags).

    Attributes:
        name: shown in reports (the model's name).
        max_segment_tokens: the longest segment, in ``count_tokens`` units, it can take.
        batch_size: segments per call (cancellation and progress are checked between calls).
    """

    name: str
    max_segment_tokens: int
    batch_size: int

    def count_tokens(self, text: str) -> int: ...

    def translate(self, segments: list[str], source: str, target: str,
                  should_stop: ShouldStop | None = None) -> list[str]:
        """One translation per segment, in order.

        Raises:
            OperationCancelledError: ``should_stop`` returned True.
            ConfigError: the language pair is not supported.
        """
        ...


@runtime_checkable
class InstructionFollowing(Protocol):
    """A translator that can be told glossary terms and asked again more strictly."""

    def translate_with(self, segments: list[str], source: str, target: str,
                       should_stop: ShouldStop | None = None, *,
                       terms: Sequence[Sequence[Term]] | None = None,
                       strict: bool = False) -> list[str]: ...


@runtime_checkable
class PairChecking(Protocol):
    """A translator that knows which language pairs it can do."""

    def check_pair(self, source: str, target: str) -> None: ...

    @property
    def source_languages(self) -> tuple[str, ...]: ...


class InstructTranslator:
    """Translation with a chat model through a prompt that asks for the translation only.

    Args:
        model: a loaded model with a chat template.
        max_segment_tokens: cap on segment length (None: what the context allows, at most 384).

    Raises:
        ConfigError: the model has no chat template, or its context is too small for a prompt.
    """

    def __init__(self, model: Model, max_segment_tokens: int | None = None) -> None:
        if not model.manifest.chat_template:
            raise ConfigError(f"model {model.name!r} has no chat template, so it cannot be "
                              "asked to translate; use an instruct or a translation model")
        self.model = model
        self.name = model.name
        self.context = model.manifest.context_length
        # Segments per call: where the model decodes in batches they run side by side.
        self.batch_size = BATCH_SEGMENTS if batchable(model) else 1
        overhead = len(prompt_ids(model, self.messages("", "en", "de", (), strict=True)))
        free = self.context - overhead - min(HINT_TOKENS, self.context // 8) - 16
        self.max_segment_tokens = min(max_segment_tokens or MAX_SEGMENT_TOKENS,
                                      free // (1 + ANSWER_FACTOR))
        if self.max_segment_tokens < MIN_SEGMENT_TOKENS:
            raise ConfigError(f"{model.name}'s context of {self.context} tokens is too small for "
                              "a translation prompt; use a model with a larger context")

    def count_tokens(self, text: str) -> int:
        return len(self.model.tokenizer.encode(text))

    def messages(self, segment: str, source: str, target: str, terms: Sequence[Term],
                 strict: bool = False) -> list[dict[str, str]]:
        """The chat for one segment; the instruction is repeated after the text when strict
        (small models follow what they read last)."""
        to, origin = name(target), (f" from {name(source)}" if source else "")
        system = (f"You are a translation engine. Translate the user's text{origin} into {to}. "
                  f"Reply with the {to} translation only: no preface, no quotes, no notes. "
                  "Keep placeholders such as ⟦1⟧ exactly as they are, where they belong, and "
                  "keep Markdown markup.")
        if terms:
            system += " Use these translations: " + "; ".join(
                f'"{t.source}" -> "{t.target}"' for t in terms) + "."
        if strict:
            user = (f"{segment}\n\nTranslate the text above into {to}. Write only the {to} "
                    f"text; do not repeat the original and do not leave it untranslated.")
        else:
            user = f"Translate into {to}:\n\n{segment}"
        return instruction_messages(self.model, system, user)

    def translate(self, segments: list[str], source: str, target: str,
                  should_stop: ShouldStop | None = None) -> list[str]:
        return self.translate_with(segments, source, target, should_stop)

    def translate_with(self, segments: list[str], source: str, target: str,
                       should_stop: ShouldStop | None = None, *,
                       terms: Sequence[Sequence[Term]] | None = None,
                       strict: bool = False) -> list[str]:
        if len(segments) > 1 and self.batch_size > 1:
            return self._ask_together(segments, source, target, terms, strict, should_stop)
        answers = []
        for index, segment in enumerate(segments):
            if should_stop is not None and should_stop():
                raise OperationCancelledError("translation was cancelled")
            hints = terms[index] if terms else ()
            answers.append(self._ask(segment, source, target, hints, strict, should_stop))
        return answers

    def _ask_together(self, segments: list[str], source: str, target: str,
                      terms: Sequence[Sequence[Term]] | None, strict: bool,
                      should_stop: ShouldStop | None) -> list[str]:
        """The segments' answers decoded side by side (``engine.batch``); each is the answer
        the segment gets alone."""
        requests = []
        for index, segment in enumerate(segments):
            _, ids, budget = self._prompt(segment, source, target,
                                          terms[index] if terms else (), strict)
            requests.append(BatchRequest(ids, budget, SAMPLING))
        try:
            results = decode_batch(self.model, requests, should_stop=should_stop)
        except OperationCancelledError:
            raise OperationCancelledError("translation was cancelled") from None
        return [self.model.tokenizer.decode(r.token_ids).strip() for r in results]

    def _ask(self, segment: str, source: str, target: str, terms: Sequence[Term], strict: bool,
             should_stop: ShouldStop | None) -> str:
        messages, _, budget = self._prompt(segment, source, target, terms, strict)
        config = GenerationConfig(max_new_tokens=budget, sampling=SAMPLING)
        answer: list[str] = []
        for chunk in generate(self.model, messages, config, should_stop):
            if chunk.finish_reason == "cancelled":
                raise OperationCancelledError("translation was cancelled")
            answer.append(chunk.text)
        return "".join(answer).strip()

    def _prompt(self, segment: str, source: str, target: str, terms: Sequence[Term],
                strict: bool) -> tuple[list[dict[str, str]], list[int], int]:
        """The chat for one segment (hints dropped that do not fit), its token ids and its
        answer's budget."""
        messages = self.messages(segment, source, target, terms, strict)
        ids = prompt_ids(self.model, messages)
        while terms and len(ids) + 8 > self.context:  # hints that don't fit are only checked
            terms = terms[:-1]
            messages = self.messages(segment, source, target, terms, strict)
            ids = prompt_ids(self.model, messages)
        room = self.context - len(ids) - 1
        if room < 1:
            raise ConfigError(f"a segment of {self.count_tokens(segment)} tokens does not fit "
                              f"{self.name}'s context of {self.context}")
        wanted = ANSWER_FACTOR * self.count_tokens(segment) + 24
        return messages, ids, min(room, wanted)


class Seq2SeqTranslator:
    """Translation with a dedicated encoder-decoder model (``engine.seq2seq.translate_batch``).

    Args:
        model: a loaded encoder-decoder model (``load_model`` returns one for such folders).
        beam_size: 1 for greedy decoding, more for beam search.
    """

    batch_size = 8

    def __init__(self, model: Any, beam_size: int = 1) -> None:
        self.model = model
        self.name = str(model.name)
        self.beam_size = beam_size
        spec = getattr(model.manifest, "encoder_decoder", None)
        self.sources: tuple[str, ...] = tuple(getattr(spec, "source_languages", ()) or ())
        self.targets: tuple[str, ...] = tuple(getattr(spec, "target_languages", ()) or ())
        longest = int(getattr(spec, "max_source_length", 0) or 512)
        self.max_segment_tokens = max(MIN_SEGMENT_TOKENS, longest - 2)  # room for </s>

    @property
    def source_languages(self) -> tuple[str, ...]:
        return self.sources

    def pairs(self) -> list[str]:
        return [f"{s}->{t}" for s in self.sources for t in self.targets if s != t]

    def check_pair(self, source: str, target: str) -> None:
        """Raises ConfigError when the manifest does not list ``source`` -> ``target`` (a model
        that lists no languages is trusted with any pair)."""
        ok_source = not self.sources or matches(source, self.sources)
        ok_target = not self.targets or matches(target, self.targets)
        if not (ok_source and ok_target):
            raise ConfigError(f"{self.name} cannot translate {source}->{target}; it translates "
                              f"{', '.join(self.pairs()) or 'no listed pairs'}",
                              hint="choose --from/--to accordingly or another model",
                              app_hint="choose those languages, or another model for "
                                       "Translate in Models")

    def count_tokens(self, text: str) -> int:
        return len(self.model.source_tokenizer.encode(text))

    def translate(self, segments: list[str], source: str, target: str,
                  should_stop: ShouldStop | None = None) -> list[str]:
        self.check_pair(source, target)
        return list(seq2seq.translate_batch(self.model, segments, beam_size=self.beam_size,
                                            should_stop=should_stop))


def make_translator(model: Any, beam_size: int = 1) -> Translator:
    """The translator for a loaded model: dedicated for encoder-decoder folders (``beam_size``
    applies there), else a prompt.

    Raises:
        ConfigError: a model that can do neither (no chat template).
    """
    if isinstance(model, seq2seq.Seq2SeqModel):
        return Seq2SeqTranslator(model, beam_size=beam_size)
    return InstructTranslator(model)


def same_or_error(source: str, target: str) -> None:
    """Refuses translating a text into its own language."""
    if same_language(source, target):
        raise ConfigError(f"the source and target language are both {name(target)} ({target})",
                          hint="choose another --to, or pass --from if detection was wrong",
                          app_hint="choose another target language, or the source language "
                                   "if it was detected wrongly")
