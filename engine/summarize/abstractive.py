"""Asking an instruct model for summaries: one answer streamed, or many side by side.

``Summarizer`` holds what one summary's requests share (model, length, language, callbacks) and
asks: ``ask`` one answer, streamed as it comes; ``ask_many`` independent answers decoded in one
batch (the sections of a document, the sentences to regenerate); ``reduce_ask`` the request that
combines notes into one summary, grouping them in rounds when they don't fit the context. What to
ask is decided in ``sectioned``. Decoding is greedy with a mild repetition penalty (reproducible;
without it small models loop, with a stronger one they invent), and an answer stops once it has
the sentences asked for. The instruction comes after the text: small models follow what they
read last.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from engine.batch import BatchRequest, batchable, decode_batch
from engine.callbacks import OnText, Progress, ShouldStop
from engine.documents.model import Block, Document
from engine.errors import ConfigError, OperationCancelledError
from engine.generation import GenerationConfig, generate, prompt_ids
from engine.model import Model
from engine.sampling import BannedSequences, SamplingSettings
from engine.summarize.parts import split_parts
from engine.text.prompt_style import instruction_messages
from engine.text.sentences import join_sentences, split_sentences

# How much to ask for, and the most new tokens to allow, per length.
HOW = {"short": "in two or three sentences", "medium": "in one paragraph of five to eight "
       "sentences", "long": "in a few sentences"}
ANSWER_TOKENS = {"short": 160, "medium": 320, "long": 240}
MAX_SENTENCES = {"short": 4, "medium": 8, "long": 6}
SENTENCE_ENDS = (".", "!", "?", "。", "！", "？")
PART_TOKENS = 1536  # the most document tokens per request: small models lose the thread beyond
MIN_PART_TOKENS = 32  # below this a model's context is too small to summarize anything with
RARE_PIECES = 3
MAX_CHARS_PER_TOKEN = 20
SAMPLING = SamplingSettings(temperature=0.0, repetition_penalty=1.1)


_LIST_MARK = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)])\s+")
_LABEL = re.compile(r"(?i)(^|(?<=[.!?\n]))\s*\**summary\**\s*:\**\s*")
_LINK = re.compile(r"\[([^\]\n]*)\]\([^)\n]*\)?")
_OPEN_LIST = re.compile(r":\s*(?:\d{1,2}\.)?\s*$")  # "These include:" or "... are: 1."
MIN_SENTENCE_WORDS = 3  # "1." or "Summary:" is not a sentence of a summary


def tidy(answer: str) -> str:
    """A model's answer as plain sentences: its headings (small models echo the text's
    ``## 2.``) and "Summary:" labels dropped, Markdown links reduced to their text, list items
    run together, and fragments without a verb's worth of words or ending in a colon left
    out."""
    answer = _LINK.sub(r"\1", _LABEL.sub(" ", answer))
    lines = [_LIST_MARK.sub("", line).strip() for line in answer.splitlines()
             if not line.lstrip().startswith("#")]
    prose = " ".join(line for line in lines if line)
    return join_sentences([sentence for sentence in split_sentences(prose)
                           if len(sentence.split()) >= MIN_SENTENCE_WORDS
                           and not _OPEN_LIST.search(sentence)])


def sentence_count(answer: str) -> int:
    """Sentences of ``answer`` as ``tidy`` keeps them, once it ends at a sentence end (else 0:
    the last one is not finished)."""
    if not answer.rstrip().endswith(SENTENCE_ENDS):
        return 0
    return len(split_sentences(tidy(answer)))


def messages(model: Model, instruction: str, text: str) -> list[dict[str, str]]:
    system = ("You summarize documents faithfully. Use only facts from the text; do not add "
              "opinions or new information.")
    user = f"{text}\n\n{instruction}"
    return instruction_messages(model, system, user)


@dataclass(frozen=True)
class Ask:
    """One question to the model: an instruction over a text, answered in some sentences."""

    instruction: str
    text: str
    sentences: int  # the answer ends after this many sentences
    prefix: str = ""  # the answer's start, already written (a regenerated sentence continues it)
    banned: tuple[str, ...] = ()  # terms the answer must not write (the text does not have them)


class Summarizer:
    """One summary of one document with one model (holds the settings the passes share)."""

    def __init__(self, model: Model, length: str, language: str,
                 should_stop: ShouldStop | None, progress: Progress | None,
                 on_text: OnText | None) -> None:
        self.model = model
        self.length = length
        self.language = language
        self.should_stop = should_stop or (lambda: False)
        self.progress = progress or (lambda _stage, _done, _total: None)
        self.on_text = on_text
        self.requests = 0
        context = model.manifest.context_length
        self.answer_tokens = min(ANSWER_TOKENS[length], context // 4)
        # The longest instruction and the chat template's markup, measured with this model.
        overhead = len(prompt_ids(model, messages(model, self.instruction(
            "these notes on the parts of one document into a single summary"), ""))) + 8
        self.budget = min(PART_TOKENS, context - overhead - self.answer_tokens)
        if self.budget < MIN_PART_TOKENS:
            raise ConfigError(f"{model.name}'s context of {context} tokens is too small to "
                              "summarize with; use the extractive method or a larger model")

    def count(self, text: str) -> int:
        return len(self.model.tokenizer.encode(text))

    def is_rare(self, word: str) -> bool:
        """Whether the model's tokenizer needs RARE_PIECES or more pieces for ``word`` (a word
        it has seen often is one or two): how the fact check spots an invented name."""
        return len(self.model.tokenizer.encode(" " + word)) >= RARE_PIECES

    def ask(self, instruction: str, text: str, stream: bool, sentences: int | None = None) -> str:
        """One model answer of up to ``sentences`` sentences (the length's by default);
        ``stream`` sends its text to ``on_text`` as it comes."""
        sentences = sentences or MAX_SENTENCES[self.length]
        if self.should_stop():
            raise OperationCancelledError("the summary was cancelled")
        self.requests += 1
        config = GenerationConfig(max_new_tokens=self.answer_tokens, sampling=SAMPLING)
        prompt = messages(self.model, instruction, text)
        answer = ""
        enough = False

        def stop() -> bool:
            return enough or self.should_stop()

        for chunk in generate(self.model, prompt, config, stop):
            if chunk.finish_reason == "cancelled" and not enough:
                raise OperationCancelledError("the summary was cancelled")
            answer += chunk.text
            if stream and self.on_text and chunk.text:
                self.on_text(chunk.text)
            # Stop at the end of the last sentence this length allows.
            enough = enough or sentence_count(answer) >= sentences
        return tidy(answer)

    def instruction(self, what: str, how: str | None = None) -> str:
        return (f"Summarize {what} {how or HOW[self.length]}. Write the summary in "
                f"{self.language}.")

    def fits(self, text: str) -> bool:
        # No tokenizer averages MAX_CHARS_PER_TOKEN characters a token on real text: a longer
        # text does not fit, and is not tokenized to learn it (a 90-page section takes ~1 s).
        return len(text) <= MAX_CHARS_PER_TOKEN * self.budget and self.count(text) <= self.budget

    def single(self, text: str) -> str:
        return self.ask(self.instruction("the following text"), text, stream=True)

    def ask_many(self, asks: Sequence[Ask], stage: str = "summarizing", done_before: int = 0,
                 total: int | None = None) -> list[str]:
        """Every answer, decoded side by side where the model can batch (``engine.batch``: the
        asks do not depend on each other, and one step for several costs little more than for
        one), else one after the other. Each ends at the end of its sentences or its length;
        ``progress`` hears (stage, done_before + answers done, total or the number of asks):
        a job asking in several rounds counts on across them."""
        if not asks:
            return []
        total = total or len(asks)
        if self.should_stop():
            raise OperationCancelledError("the summary was cancelled")
        if not batchable(self.model):  # a prefix or a ban needs token-level control: left out
            answers = []
            for index, one in enumerate(asks):
                self.progress(stage, done_before + index, total)
                answers.append(self.ask(one.instruction, one.text, False, one.sentences))
            self.progress(stage, done_before + len(asks), total)
            return answers
        requests = [self._request(one) for one in asks]
        decode = self.model.tokenizer.decode
        finished = [0]

        def enough(index: int, ids: list[int]) -> bool:
            return sentence_count(decode(ids)) >= asks[index].sentences

        def done(index: int) -> None:
            finished[0] += 1
            self.progress(stage, done_before + finished[0], total)

        self.progress(stage, done_before, total)
        self.requests += len(asks)
        try:
            results = decode_batch(self.model, requests, should_stop=self.should_stop,
                                   until=enough, on_finish=done)
        except OperationCancelledError:
            raise OperationCancelledError("the summary was cancelled") from None
        return [tidy(decode(result.token_ids)) for result in results]

    def _request(self, one: Ask) -> BatchRequest:
        ids = prompt_ids(self.model, messages(self.model, one.instruction, one.text))
        if one.prefix:  # the answer so far, as if the model had written it
            with_prefix = ids + self.model.tokenizer.encode(one.prefix)
            if len(with_prefix) + self.answer_tokens <= self.model.manifest.context_length:
                ids = with_prefix
        constraints = (BannedSequences(self._term_ids(one.banned)),) if one.banned else ()
        return BatchRequest(ids, self.answer_tokens, SAMPLING, constraints)

    def _term_ids(self, terms: Sequence[str]) -> tuple[tuple[int, ...], ...]:
        """Each term's token ids as the model would write it: after a space or not, as it is,
        in lower case and capitalised."""
        encode = self.model.tokenizer.encode
        found: dict[tuple[int, ...], None] = {}
        for term in terms:
            for variant in dict.fromkeys((term, term.lower(), term[:1].upper() + term[1:])):
                for spelled in (variant, " " + variant):
                    if ids := tuple(encode(spelled)):
                        found[ids] = None
        return tuple(found)

    def reduce_ask(self, notes: list[str]) -> Ask:
        """The ask that combines notes on a document's parts into one summary; notes too long
        for one input are combined in groups first, as many rounds as it takes."""
        rounds = 0
        while not self.fits("\n\n".join(notes)) and len(notes) > 1:
            rounds += 1
            grouped = split_parts(Document("notes", "text", [Block("paragraph", n)
                                                               for n in notes]),
                                  self.count, self.budget)
            notes = self.ask_many([Ask(self.instruction("these notes", "in one paragraph"),
                                       group.text, MAX_SENTENCES["medium"])
                                   for group in grouped], f"combining (round {rounds})")
        return Ask(self.instruction("these notes on the parts of one document into a single "
                                    "summary"), "\n\n".join(notes), MAX_SENTENCES[self.length])
