"""Abstractive summaries with an instruct model: one pass when the text fits, else map-reduce.

Map: each part of the document is summarized on its own. Reduce: the part summaries are combined
into one; when even they don't fit the context, they are grouped and summarized again, as many
rounds as it takes. "long" keeps one summary per section under its heading instead of combining.
Decoding is greedy with a mild repetition penalty (reproducible; without it small models loop,
with a stronger one they invent), and an answer stops once it has the sentences its length asks
for. The instruction comes after the text: small models follow what they read last.
"""

from __future__ import annotations

from engine.batch import BatchRequest, batchable, decode_batch
from engine.callbacks import OnText, Progress, ShouldStop
from engine.documents.model import Block, Document
from engine.errors import ConfigError, OperationCancelledError
from engine.generation import GenerationConfig, generate, prompt_ids
from engine.model import Model
from engine.sampling import SamplingSettings
from engine.summarize.parts import Part, split_parts
from engine.text.prompt_style import instruction_messages
from engine.text.sentences import split_sentences

# How much to ask for, and the most new tokens to allow, per length.
HOW = {"short": "in two or three sentences", "medium": "in one paragraph of five to eight "
       "sentences", "long": "in a few sentences"}
ANSWER_TOKENS = {"short": 160, "medium": 320, "long": 240}
MAX_SENTENCES = {"short": 4, "medium": 8, "long": 6}
SENTENCE_ENDS = (".", "!", "?", "。", "！", "？")
PART_TOKENS = 1536  # the most document tokens per request: small models lose the thread beyond
MIN_PART_TOKENS = 32  # below this a model's context is too small to summarize anything with
SAMPLING = SamplingSettings(temperature=0.0, repetition_penalty=1.1)


def messages(model: Model, instruction: str, text: str) -> list[dict[str, str]]:
    system = ("You summarize documents faithfully. Use only facts from the text; do not add "
              "opinions or new information.")
    user = f"{text}\n\n{instruction}"
    return instruction_messages(model, system, user)


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

    def ask(self, instruction: str, text: str, stream: bool) -> str:
        """One model answer; ``stream`` sends its text to ``on_text`` as it comes."""
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
            enough = enough or (answer.rstrip().endswith(SENTENCE_ENDS) and
                                len(split_sentences(answer)) >= MAX_SENTENCES[self.length])
        return answer.strip()

    def instruction(self, what: str, how: str | None = None) -> str:
        return (f"Summarize {what} {how or HOW[self.length]}. Write the summary in "
                f"{self.language}.")

    def fits(self, text: str) -> bool:
        return self.count(text) <= self.budget

    def single(self, text: str) -> str:
        return self.ask(self.instruction("the following text"), text, stream=True)

    def map_reduce(self, document: Document) -> tuple[str, int]:
        """The summary and how many parts the document was read in."""
        parts = split_parts(document, self.count, self.budget)
        if len(parts) == 1:
            return self.single(parts[0].text), 1
        notes = self._map(parts)
        if self.length == "long":
            return "\n\n".join(notes), len(parts)
        return self._reduce(notes), len(parts)

    def _map(self, parts: list[Part]) -> list[str]:
        long = self.length == "long"
        if not long and len(parts) > 1 and batchable(self.model):
            return self._map_batched(parts)
        notes: list[str] = []
        for index, part in enumerate(parts):
            self.progress("summarizing", index, len(parts))
            where = f" (section: {part.heading})" if part.heading else ""
            if long:  # this section's summary is part of the answer: show it as it comes
                title = f"## {part.heading}" if part.heading else ""
                if title and self.on_text:
                    self.on_text(("\n\n" if notes else "") + title + "\n\n")
                elif notes and self.on_text:
                    self.on_text("\n\n")
            note = self.ask(self.instruction(f"this part of a longer document{where}"),
                            part.text, stream=long)
            notes.append(f"## {part.heading}\n\n{note}" if long and part.heading else note)
        self.progress("summarizing", len(parts), len(parts))
        return notes

    def _map_batched(self, parts: list[Part]) -> list[str]:
        """Every part's notes decoded side by side (``engine.batch``): the parts do not depend
        on each other, and one step for several parts costs little more than for one. Each
        note ends where ``ask`` would end it: at the end of enough sentences, or its length."""
        requests = []
        for part in parts:
            where = f" (section: {part.heading})" if part.heading else ""
            prompt = messages(self.model, self.instruction(
                f"this part of a longer document{where}"), part.text)
            requests.append(BatchRequest(prompt_ids(self.model, prompt), self.answer_tokens,
                                         SAMPLING))
        decode = self.model.tokenizer.decode
        finished = [0]

        def enough(index: int, ids: list[int]) -> bool:
            answer = decode(ids)
            return answer.rstrip().endswith(SENTENCE_ENDS) and \
                len(split_sentences(answer)) >= MAX_SENTENCES[self.length]

        def done(index: int) -> None:
            finished[0] += 1
            self.progress("summarizing", finished[0], len(parts))

        self.progress("summarizing", 0, len(parts))
        self.requests += len(parts)
        try:
            results = decode_batch(self.model, requests, should_stop=self.should_stop,
                                   until=enough, on_finish=done)
        except OperationCancelledError:
            raise OperationCancelledError("the summary was cancelled") from None
        return [decode(result.token_ids).strip() for result in results]

    def _reduce(self, notes: list[str]) -> str:
        rounds = 0
        while not self.fits("\n\n".join(notes)) and len(notes) > 1:
            rounds += 1
            grouped = split_parts(Document("notes", "text", [Block("paragraph", n)
                                                               for n in notes]),
                                  self.count, self.budget)
            notes = []
            for index, group in enumerate(grouped):
                self.progress(f"combining (round {rounds})", index, len(grouped))
                notes.append(self.ask(self.instruction("these notes", "in one paragraph"),
                                      group.text, stream=False))
        self.progress("combining", 0, 1)
        final = self.ask(self.instruction("these notes on the parts of one document into a "
                                          "single summary"), "\n\n".join(notes), stream=True)
        self.progress("combining", 1, 1)
        return final

