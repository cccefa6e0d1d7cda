"""Generation through the engine: parity with PyTorch, the step API, limits, stops, cancellation,
seeded sampling, chat prompts and UTF-8-safe streaming, on the tiny trained session models."""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from runner_spy import count_forwards

from engine.errors import ConfigError
from engine.generation import (
    GenerationConfig,
    GenerationStats,
    Generator,
    ShouldStop,
    TextChunk,
    generate,
    prompt_ids,
)
from engine.model import Model, load_model
from engine.runner import DecoderRunner
from engine.sampling import SamplingSettings

# Pure argmax: temperature 0 alone still applies the default repetition penalty.
GREEDY = SamplingSettings(temperature=0, repetition_penalty=1.0)
PROMPTS = ("The lamp", "A quiet room", "你好")
LONG_PROMPT = ("The lamp lights the map.\nA small model writes a long story.\n"
               "The reader lights the poem.\n")


@pytest.fixture(params=["transformer", "lstm"])
def model(request: pytest.FixtureRequest) -> Model:
    return request.getfixturevalue(request.param)


def without_stop_tokens(model: Model) -> Model:
    """The same session with no stop tokens, so only limits can end generation."""
    return dataclasses.replace(model, stop_token_ids=frozenset())


def run(model: Model, prompt: str | Sequence[dict[str, str]],
        config: GenerationConfig, should_stop: ShouldStop | None = None
        ) -> tuple[list[TextChunk], GenerationStats]:
    chunks = list(generate(model, prompt, config, should_stop))
    assert chunks[-1].finish_reason is not None
    assert all(c.finish_reason is None and c.stats is None for c in chunks[:-1])
    stats = chunks[-1].stats
    assert stats is not None
    return chunks, stats


def text_of(chunks: list[TextChunk]) -> str:
    return "".join(c.text for c in chunks)


def step_ids(model: Model, ids: Sequence[int], config: GenerationConfig,
             should_stop: ShouldStop | None = None) -> Generator:
    """Runs the step API to completion and returns the generator (ids in ``.generated``)."""
    generator = Generator(model, config, should_stop)
    generator.append_tokens(list(ids))
    while not generator.is_done():
        generator.generate_next_token()
    return generator


def torch_greedy(checkpoint: Path, ids: Sequence[int], count: int,
                 stop_ids: frozenset[int]) -> list[int]:
    """Reference: PyTorch greedy decoding with a full recompute of the sequence every step."""
    import torch

    from training.checkpoint import build_model, load_weights, read_checkpoint_info

    info = read_checkpoint_info(checkpoint)
    reference = build_model(info.arch, info.model_config())
    load_weights(checkpoint, reference)
    reference.eval()
    sequence, out = list(ids), []
    # One thread: OpenMP workers spinning beside ONNX Runtime's on a small CI machine can slow
    # these few tiny forward passes down a hundredfold.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            for _ in range(count):
                token = int(torch.argmax(reference(torch.tensor([sequence]))[0, -1]))
                if token in stop_ids:
                    break
                sequence.append(token)
                out.append(token)
    finally:
        torch.set_num_threads(threads)
    return out


# --- parity -----------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["transformer", "lstm"])
@pytest.mark.parametrize("prompt", PROMPTS)
def test_greedy_matches_pytorch_full_recompute(request: pytest.FixtureRequest, arch: str,
                                               prompt: str) -> None:
    loaded: Model = request.getfixturevalue(arch)
    checkpoint: Path = request.getfixturevalue(f"{arch}_checkpoint")
    config = GenerationConfig(max_new_tokens=20, sampling=GREEDY)
    ids = prompt_ids(loaded, prompt)

    engine_ids = step_ids(loaded, ids, config).generated
    reference = torch_greedy(checkpoint, ids, 20, loaded.stop_token_ids)

    assert len(reference) >= 10  # the comparison covers real decoding, not an instant stop
    assert engine_ids == reference
    chunks, stats = run(loaded, prompt, config)
    assert text_of(chunks) == loaded.tokenizer.decode(reference)
    assert chunks[-1].finish_reason == ("length" if len(reference) == 20 else "stop")
    assert stats.completion_tokens == len(reference)


@pytest.mark.parametrize("prompt", PROMPTS)
def test_cached_greedy_matches_runner_full_recompute(model: Model, prompt: str) -> None:
    config = GenerationConfig(max_new_tokens=20, sampling=GREEDY)
    ids = prompt_ids(model, prompt)
    cached = step_ids(model, ids, config).generated

    sequence, recomputed = list(ids), []
    for _ in range(20):
        token = int(np.argmax(DecoderRunner(model.session, model.manifest).forward(sequence)))
        if token in model.stop_token_ids:
            break
        sequence.append(token)
        recomputed.append(token)

    assert len(recomputed) >= 10
    assert cached == recomputed


def test_cached_logits_match_one_pass_logits(model: Model) -> None:
    ids = prompt_ids(model, LONG_PROMPT)
    one_pass = DecoderRunner(model.session, model.manifest).forward(ids, all_logits=True)
    stepper = DecoderRunner(model.session, model.manifest)
    stepped = np.stack([stepper.forward([token]) for token in ids])

    assert one_pass.shape == (len(ids), model.manifest.vocab_size)
    assert stepper.past_length == len(ids)
    np.testing.assert_allclose(stepped, one_pass, atol=1e-4, rtol=1e-4)


def test_runner_reset_forgets_the_context(model: Model) -> None:
    ids = prompt_ids(model, "The lamp")
    runner = DecoderRunner(model.session, model.manifest)
    first = runner.forward(ids)
    runner.forward(ids)
    runner.reset()
    assert runner.past_length == 0
    np.testing.assert_array_equal(runner.forward(ids), first)


# --- step API ---------------------------------------------------------------------------------


@pytest.mark.parametrize("sampling", [GREEDY, SamplingSettings(temperature=0.9, seed=11)],
                         ids=["greedy", "seeded"])
def test_step_api_gives_the_same_tokens_as_generate(model: Model,
                                                    sampling: SamplingSettings) -> None:
    config = GenerationConfig(max_new_tokens=24, sampling=sampling)
    generator = step_ids(model, prompt_ids(model, "The night"), config)
    chunks, stats = run(model, "The night", config)

    assert generator.generated
    assert text_of(chunks) == model.tokenizer.decode(generator.generated)
    assert stats.completion_tokens == len(generator.generated)
    assert chunks[-1].finish_reason == generator.finish_reason
    assert generator.generate_next_token() is None  # done stays done


def test_step_api_misuse_is_a_config_error(transformer: Model) -> None:
    generator = Generator(transformer, GenerationConfig(sampling=GREEDY))
    with pytest.raises(ConfigError, match="append_tokens"):
        generator.generate_next_token()
    with pytest.raises(ConfigError, match="empty"):
        generator.append_tokens([])
    # An empty text prompt is still BOS for a model with one: unconditional generation.
    _, stats = run(transformer, "", GenerationConfig(max_new_tokens=3, sampling=GREEDY))
    assert stats.prompt_tokens == 1


def test_chunked_prefill_gives_the_same_tokens(model: Model) -> None:
    ids = prompt_ids(model, LONG_PROMPT)
    whole = step_ids(model, ids, GenerationConfig(max_new_tokens=12, sampling=GREEDY))
    chunked = step_ids(model, ids, GenerationConfig(max_new_tokens=12, sampling=GREEDY,
                                                    prefill_chunk=4))
    assert chunked.generated == whole.generated


# --- limits -----------------------------------------------------------------------------------


@pytest.mark.parametrize("max_new_tokens", [1, 5, 17])
def test_max_new_tokens_ends_with_length_and_exactly_n_tokens(model: Model,
                                                              max_new_tokens: int) -> None:
    unstoppable = without_stop_tokens(model)
    config = GenerationConfig(max_new_tokens=max_new_tokens, sampling=GREEDY)
    chunks, stats = run(unstoppable, "The lamp", config)
    generator = step_ids(unstoppable, prompt_ids(unstoppable, "The lamp"), config)

    assert chunks[-1].finish_reason == "length"
    assert stats.completion_tokens == max_new_tokens
    assert len(generator.generated) == max_new_tokens
    assert text_of(chunks) == model.tokenizer.decode(generator.generated)


@pytest.mark.parametrize("max_new_tokens", [0, -3, 2.5, True])
def test_bad_max_new_tokens_is_a_config_error(max_new_tokens: object) -> None:
    with pytest.raises(ConfigError, match=rf"max_new_tokens.*{max_new_tokens!r}"):
        GenerationConfig(max_new_tokens=max_new_tokens)  # type: ignore[arg-type]


def test_prompt_longer_than_the_context_is_refused_with_the_numbers(transformer: Model) -> None:
    context = transformer.manifest.context_length
    prompt = LONG_PROMPT * 3
    length = len(prompt_ids(transformer, prompt))
    assert length > context == 64

    with pytest.raises(ConfigError) as caught:
        list(generate(transformer, prompt, GenerationConfig(sampling=GREEDY)))
    message = str(caught.value)
    assert f"the prompt is {length} tokens" in message
    assert f"context of {context}" in message
    assert "tiny-transformer" in message


def test_prompt_must_leave_room_for_one_token(transformer: Model) -> None:
    context = transformer.manifest.context_length
    ids = (prompt_ids(transformer, LONG_PROMPT * 3))[:context]
    config = GenerationConfig(max_new_tokens=50, sampling=GREEDY)

    with pytest.raises(ConfigError, match=f"the prompt is {context} tokens"):
        Generator(transformer, config).append_tokens(ids)
    generator = step_ids(without_stop_tokens(transformer), ids[:context - 1], config)
    assert len(generator.generated) == 1
    assert generator.finish_reason == "length"


def test_generation_stops_with_length_at_the_context_limit(model: Model) -> None:
    unstoppable = without_stop_tokens(model)
    context = model.manifest.context_length
    config = GenerationConfig(max_new_tokens=500, sampling=GREEDY)
    chunks, stats = run(unstoppable, "The lamp", config)
    prompt_length = len(prompt_ids(unstoppable, "The lamp"))
    generator = step_ids(unstoppable, prompt_ids(unstoppable, "The lamp"), config)

    assert chunks[-1].finish_reason == "length"
    assert stats.prompt_tokens == prompt_length
    assert stats.completion_tokens == context - prompt_length
    assert len(generator.history) == context
    assert generator.runner.past_length == context - 1  # the last token is never fed back


# --- stop strings and stop tokens ---------------------------------------------------------------


def test_stop_string_ends_generation_before_it(transformer: Model) -> None:
    config = GenerationConfig(max_new_tokens=30, sampling=GREEDY)
    full = text_of(run(transformer, "The lamp", config)[0])
    second_line = full.index("\n") + 1
    stop = full[second_line:second_line + 7]  # e.g. "A small"
    assert len(stop.strip()) == 7

    chunks, stats = run(transformer, "The lamp",
                        dataclasses.replace(config, stop_strings=("never there", stop)))

    assert text_of(chunks) == full[:full.index(stop)]
    assert chunks[-1].finish_reason == "stop"
    assert stats.completion_tokens < 30


def test_stop_string_split_over_tokens_is_still_found(transformer: Model) -> None:
    config = GenerationConfig(max_new_tokens=30, sampling=GREEDY)
    ids = step_ids(transformer, prompt_ids(transformer, "The lamp"), config).generated
    decode = transformer.tokenizer.decode
    full = decode(ids)
    # From the last character of token 3 to the first of token 6: spread over four tokens.
    stop = full[len(decode(ids[:3])) - 1:len(decode(ids[:5])) + 1]
    assert len(stop) >= 4

    chunks, stats = run(transformer, "The lamp",
                        dataclasses.replace(config, stop_strings=(stop,)))
    assert text_of(chunks) == full[:full.index(stop)]
    assert chunks[-1].finish_reason == "stop"
    assert stats.completion_tokens == 6  # generation ends on the token completing the stop


def test_stop_token_ends_generation_with_stop(transformer: Model) -> None:
    config = GenerationConfig(max_new_tokens=10, sampling=GREEDY)
    ids = prompt_ids(transformer, "The lamp")
    first = step_ids(transformer, ids, config).generated[0]
    stopping = dataclasses.replace(transformer, stop_token_ids=frozenset({first}))

    chunks, stats = run(stopping, "The lamp", config)
    assert chunks[-1].finish_reason == "stop"
    assert stats.completion_tokens == 0
    assert text_of(chunks) == ""


# --- cancellation -----------------------------------------------------------------------------


def test_cancel_after_three_tokens(transformer: Model) -> None:
    config = GenerationConfig(max_new_tokens=30, sampling=GREEDY)
    expected = step_ids(transformer, prompt_ids(transformer, "The lamp"), config).generated
    received: list[str] = []

    def should_stop() -> bool:
        return len(received) >= 3  # the UI sets its cancel flag after showing three tokens

    final = None
    for chunk in generate(transformer, "The lamp", config, should_stop):
        if chunk.text:
            received.append(chunk.text)
        final = chunk

    assert final is not None and final.stats is not None
    assert final.finish_reason == "cancelled"
    assert final.stats.completion_tokens == 3
    assert "".join(received) == transformer.tokenizer.decode(expected[:3])


def test_step_api_cancel_after_three_tokens(model: Model) -> None:
    config = GenerationConfig(max_new_tokens=30, sampling=GREEDY)
    generator: Generator

    def should_stop() -> bool:
        return len(generator.generated) >= 3

    generator = Generator(model, config, should_stop)
    generator.append_tokens(prompt_ids(model, "The lamp"))
    while not generator.is_done():
        generator.generate_next_token()
    assert generator.finish_reason == "cancelled"
    assert len(generator.generated) == 3


def test_cancel_between_prefill_chunks(model: Model, monkeypatch: pytest.MonkeyPatch) -> None:
    forwards = count_forwards(monkeypatch)
    calls = 0

    def should_stop() -> bool:
        nonlocal calls
        calls += 1
        return calls >= 3  # cancelled before the third prefill chunk

    ids = prompt_ids(model, LONG_PROMPT)
    assert len(ids) >= 24  # at least 6 chunks of 4
    config = GenerationConfig(max_new_tokens=10, sampling=GREEDY, prefill_chunk=4)
    model.decoder_runner().reset()  # nothing cached from earlier tests
    chunks, stats = run(model, LONG_PROMPT, config, should_stop)

    assert chunks[-1].finish_reason == "cancelled"
    assert forwards == [4, 4]
    assert calls == 3
    assert stats.completion_tokens == 0
    assert stats.prompt_tokens == len(ids)
    assert text_of(chunks) == ""

    forwards.clear()
    # Not cancelled: the 8 tokens the cancelled run fed stay cached; the rest runs in chunks.
    chunks, stats = run(model, LONG_PROMPT, config)
    assert stats.cached_prompt_tokens == 8
    rest = len(ids) - 8
    prefill = [4] * (rest // 4) + ([rest % 4] if rest % 4 else [])
    # Each token is fed back, except the last one when the length limit ends generation.
    last_fed = chunks[-1].finish_reason != "length"
    decode = [1] * (stats.completion_tokens - 1 + last_fed)
    assert forwards == prefill + decode


# --- sampling and stats -----------------------------------------------------------------------


def test_seeded_sampling_is_reproducible_and_seeds_differ(model: Model) -> None:
    def sample(seed: int) -> str:
        config = GenerationConfig(max_new_tokens=20,
                                  sampling=SamplingSettings(temperature=1.2, seed=seed))
        return text_of(run(model, "The", config)[0])

    assert sample(5) == sample(5)
    assert len({sample(seed) for seed in range(5)}) > 1


def test_stats_are_sane(model: Model) -> None:
    config = GenerationConfig(max_new_tokens=8, sampling=SamplingSettings(seed=3))
    chunks, stats = run(without_stop_tokens(model), "A small model", config)

    tokenizer_ids = model.tokenizer.encode("A small model")
    assert stats.prompt_tokens == len(tokenizer_ids) + 1  # BOS is prepended
    assert prompt_ids(model, "A small model") == [model.bos_token_id, *tokenizer_ids]
    assert stats.completion_tokens == 8
    assert stats.ttft_s > 0
    assert stats.tokens_per_s > 0
    assert stats.total_s >= stats.ttft_s
    assert stats.device == "cpu"
    assert chunks[-1].text == ""


# --- chat -------------------------------------------------------------------------------------


def test_chat_messages_use_the_chatml_template(model: Model) -> None:
    im_start = model.tokenizer.token_to_id("<|im_start|>")
    im_end = model.tokenizer.token_to_id("<|im_end|>")
    messages = [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hello"}]
    ids = prompt_ids(model, messages)

    assert im_start is not None and im_end is not None
    assert ids[0] == im_start  # the template places its own tokens; no BOS
    assert ids.count(im_start) == 3  # system, user, and the assistant turn being opened
    assert ids.count(im_end) == 2
    assert ids == model.tokenizer.encode(
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n"
        "<|im_start|>assistant\n")
    assert im_end in model.stop_token_ids

    config = GenerationConfig(max_new_tokens=6, sampling=GREEDY)
    chunks, stats = run(model, messages, config)
    assert stats.prompt_tokens == len(ids)
    assert text_of(chunks) == model.tokenizer.decode(step_ids(model, ids, config).generated)


def test_chat_without_a_template_is_a_config_error(transformer_model_dir: Path,
                                                   tmp_path: Path) -> None:
    folder = tmp_path / "no-template"
    shutil.copytree(transformer_model_dir, folder)
    manifest = json.loads((folder / "nightlamp.json").read_text(encoding="utf-8"))
    manifest["chat_template"] = None
    (folder / "nightlamp.json").write_text(json.dumps(manifest), encoding="utf-8")

    plain = load_model(folder, device="cpu", threads=1)
    with pytest.raises(ConfigError, match="no chat template"):
        list(generate(plain, [{"role": "user", "content": "Hi"}]))


# --- UTF-8 streaming --------------------------------------------------------------------------


def test_streaming_never_breaks_utf8(transformer: Model) -> None:
    clean_with_multibyte = 0
    for prompt in ("你好", "夜灯照", "助手"):
        for temperature in (0.7, 1.0, 1.5):
            for seed in range(8):
                config = GenerationConfig(
                    max_new_tokens=24, sampling=SamplingSettings(temperature=temperature,
                                                                 seed=seed))
                chunks, stats = run(transformer, prompt, config)
                ids = step_ids(transformer, prompt_ids(transformer, prompt), config).generated
                full = transformer.tokenizer.decode(ids)

                assert stats.completion_tokens == len(ids)
                assert text_of(chunks) == full, (prompt, temperature, seed)
                if "\ufffd" not in full:  # (at high temperature the model may write bad bytes)
                    assert not any("\ufffd" in c.text for c in chunks)
                    if any(ord(ch) > 0x7F for ch in full):
                        clean_with_multibyte += 1

    assert clean_with_multibyte >= 10  # CJK and emoji really were streamed


class ScriptedChain:
    """Stands in for the sampling chain: 'samples' a fixed list of ids, then an end token."""

    def __init__(self, ids: list[int], end: int) -> None:
        self.ids, self.end = list(ids), end

    def sample(self, logits: np.ndarray, history: Sequence[int]) -> int:
        return self.ids.pop(0) if self.ids else self.end


def test_characters_split_over_byte_tokens_stream_whole(transformer: Model,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    tokenizer = transformer.tokenizer
    text = "龍🌃 ok 鳳"  # not in the training text: each is spelled with byte tokens
    ids = tokenizer.encode(text)
    assert tokenizer.decode(ids) == text
    partial = [i for i in ids if "\ufffd" in tokenizer.decode([i])]
    assert len(partial) >= 6

    end = tokenizer.token_to_id("<|im_end|>")
    monkeypatch.setattr("engine.generation.build_chain", lambda settings: ScriptedChain(ids, end))
    chunks, stats = run(transformer, "The lamp", GenerationConfig(max_new_tokens=40))

    pieces = [c.text for c in chunks if c.text]
    assert "".join(pieces) == text
    assert not any("\ufffd" in piece for piece in pieces)
    assert len(pieces) < len(ids)  # tokens holding part of a character produced no text
    assert stats.completion_tokens == len(ids)
    assert chunks[-1].finish_reason == "stop"


def test_the_same_prompt_again_reruns_its_last_chunk_for_the_same_answer(
        transformer: Model, monkeypatch: pytest.MonkeyPatch) -> None:
    """A regenerate (or a second summary of the same text) must not feed the prompt's last
    token alone: its logits would be summed in another order than in the chunk a fresh run
    computed it in, and a greedy answer could change at a near-tie."""
    model = transformer
    ids = prompt_ids(model, LONG_PROMPT)
    config = GenerationConfig(max_new_tokens=6, sampling=GREEDY, prefill_chunk=5)
    assert len(ids) % 5  # the last chunk is a partial one
    model.decoder_runner().reset()
    first, _ = run(model, LONG_PROMPT, config)
    forwards = count_forwards(monkeypatch)
    again, stats = run(model, LONG_PROMPT, config)
    last_chunk = len(ids) % 5
    assert forwards[0] == last_chunk  # rerun from the chunk's start, not the last token alone
    assert stats.cached_prompt_tokens == len(ids) - last_chunk
    assert text_of(again) == text_of(first)
