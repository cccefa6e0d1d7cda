"""The server driven by the official OpenAI client, as users' programs drive it: the same
greedy text as ``nightlamp chat``, streaming, stops and limits, and errors in OpenAI's shape."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import openai
import pytest
from server_helpers import CHAT_MODEL, LSTM_MODEL, StartServer, post_raw

from commands.main import main
from engine.errors import ConfigError
from engine.generation import GenerationConfig, generate
from engine.model import load_model
from engine.retrieval.embedder import load_embedder
from engine.sampling import SamplingSettings
from engine.server.runner import RunningServer
from engine.store import models_dir

HELLO = [{"role": "user", "content": "Hello there"}]


def _cli_chat_answer(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                     message: str, max_tokens: int) -> str:
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{message}\n/exit\n"))
    assert main(["chat", "-m", CHAT_MODEL, "--temperature", "0", "--max-tokens",
                 str(max_tokens), "--device", "cpu"]) == 0
    out = capsys.readouterr().out  # "\nyou> tiny-transformer> ANSWER\n\nyou> "
    start, end = out.index(f"{CHAT_MODEL}> ") + len(CHAT_MODEL) + 2, out.rindex("\n\nyou> ")
    return out[start:end]


def _greedy(client: openai.OpenAI, max_tokens: int, **extra: object) -> str:
    """The answer to HELLO; greedy unless ``extra`` sets a temperature."""
    options = {"temperature": 0, **extra}
    answer = client.chat.completions.create(model=CHAT_MODEL, messages=HELLO,  # type: ignore[arg-type]
                                            max_tokens=max_tokens, **options)
    return answer.choices[0].message.content or ""


def test_models_lists_what_is_installed(client: openai.OpenAI) -> None:
    names = sorted(model.id for model in client.models.list())
    assert names == sorted([CHAT_MODEL, LSTM_MODEL])
    assert client.models.retrieve(CHAT_MODEL).owned_by == "nightlamp"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("not-a-model")


def test_chat_greedy_text_equals_nightlamp_chat(client: openai.OpenAI,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    expected = _cli_chat_answer(monkeypatch, capsys, HELLO[0]["content"], 20)
    answer = client.chat.completions.create(model=CHAT_MODEL, messages=HELLO,  # type: ignore[arg-type]
                                            temperature=0, max_tokens=20)
    choice = answer.choices[0]
    assert expected and choice.message.content == expected
    assert choice.message.role == "assistant"
    assert answer.object == "chat.completion" and answer.model == CHAT_MODEL
    assert answer.usage is not None and answer.usage.completion_tokens <= 20
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens
    assert choice.finish_reason == ("length" if answer.usage.completion_tokens == 20 else "stop")


def test_streamed_chat_is_the_same_text_in_pieces(client: openai.OpenAI) -> None:
    whole = _greedy(client, 20)
    stream = client.chat.completions.create(model=CHAT_MODEL, messages=HELLO,  # type: ignore[arg-type]
                                            temperature=0, max_tokens=20, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    texts = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(texts) == whole and sum(bool(t) for t in texts) > 1  # really streamed
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] in ("stop", "length") and not any(finishes[:-1])
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0


def test_raw_stream_ends_with_done(server: RunningServer) -> None:
    body = {"model": CHAT_MODEL, "messages": HELLO, "max_tokens": 4, "stream": True}
    status, raw = post_raw(server, "/chat/completions", json.dumps(body).encode())
    assert status == 200
    events = [line for line in raw.decode().split("\n\n") if line]
    assert all(event.startswith("data: ") for event in events)
    assert events[-1] == "data: [DONE]"
    json.loads(events[-2][len("data: "):])  # every other event is a JSON chunk


def test_completion_equals_the_engine(client: openai.OpenAI, server: RunningServer) -> None:
    model = load_model(models_dir() / CHAT_MODEL, device="cpu")
    config = GenerationConfig(max_new_tokens=12, sampling=SamplingSettings(temperature=0))
    expected = "".join(chunk.text for chunk in generate(model, "Once upon a time", config))
    answer = client.completions.create(model=CHAT_MODEL, prompt="Once upon a time",
                                       max_tokens=12, temperature=0)
    assert answer.object == "text_completion"
    assert answer.choices[0].text == expected
    default = client.completions.create(model=CHAT_MODEL, prompt="Once upon a time",
                                        temperature=0)
    assert default.usage is not None and default.usage.completion_tokens <= 16  # OpenAI's default


def test_a_model_that_cannot_batch_is_served_one_at_a_time(client: openai.OpenAI) -> None:
    model = load_model(models_dir() / LSTM_MODEL, device="cpu")
    config = GenerationConfig(max_new_tokens=10, sampling=SamplingSettings(temperature=0))
    expected = "".join(chunk.text for chunk in generate(model, "The lamp", config))
    answer = client.completions.create(model=LSTM_MODEL, prompt="The lamp", max_tokens=10,
                                       temperature=0)
    assert answer.choices[0].text == expected


def test_stop_sequences_cut_the_answer(client: openai.OpenAI) -> None:
    whole = _greedy(client, 24)
    stop = whole[6:9]
    assert len(stop) == 3
    cut = client.chat.completions.create(model=CHAT_MODEL, messages=HELLO,  # type: ignore[arg-type]
                                         temperature=0, max_tokens=24, stop=[stop, "\x00"])
    assert cut.choices[0].message.content == whole[:whole.index(stop)]
    assert cut.choices[0].finish_reason == "stop"


def test_max_tokens_ends_with_length(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(model=CHAT_MODEL, messages=HELLO,  # type: ignore[arg-type]
                                            temperature=0.9, seed=3, max_tokens=3)
    assert answer.choices[0].finish_reason == "length"
    assert answer.usage is not None and answer.usage.completion_tokens == 3


def test_seeded_sampling_repeats(client: openai.OpenAI) -> None:
    first, second = (_greedy(client, 12, temperature=1.0, seed=11) for _ in range(2))
    assert first == second


def test_concurrent_clients_get_their_own_answers(server: RunningServer) -> None:
    """Six streams at once (four slots: two wait for a free one), each sampling with its own
    seed, get exactly the text they get alone: nothing lost or mixed between clients."""
    client = openai.OpenAI(base_url=server.url, api_key="x", max_retries=0, timeout=60)

    def ask(seed: int) -> str:
        stream = client.chat.completions.create(
            model=CHAT_MODEL, messages=[{"role": "user", "content": f"The lamp {seed}"}],
            temperature=1.0, seed=seed, max_tokens=16 + seed, stream=True)
        return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

    seeds = range(6)
    alone = [ask(seed) for seed in seeds]
    together: list[str | None] = [None] * len(seeds)

    def run(index: int) -> None:
        together[index] = ask(seeds[index])

    threads = [threading.Thread(target=run, args=(i,)) for i in seeds]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert together == alone
    assert len(set(alone)) > 1  # different prompts, different answers: a mix-up would show


def test_a_client_leaving_mid_stream_frees_its_slot(server: RunningServer) -> None:
    client = openai.OpenAI(base_url=server.url, api_key="x", max_retries=0, timeout=60)
    stream = client.chat.completions.create(model=CHAT_MODEL, messages=HELLO,  # type: ignore[arg-type]
                                            temperature=0.8, max_tokens=900, stream=True)
    received = 0
    for chunk in stream:
        received += bool(chunk.choices and chunk.choices[0].delta.content)
        if received == 3:
            break
    stream.close()
    scheduler = server.registry.scheduler_of(CHAT_MODEL)
    deadline = time.monotonic() + 10
    while not scheduler.finished and time.monotonic() < deadline:
        time.sleep(0.01)
    # Ended by the disconnect, not by running on to its 900 tokens; the slot is free.
    assert scheduler.finished == {"cancelled": 1} and scheduler.idle
    assert _greedy(client, 4)  # and the server goes on


@pytest.mark.parametrize(("body", "status", "param"), [
    ({"model": "no-such-model", "messages": HELLO}, 404, None),
    ({"model": f"../models/{CHAT_MODEL}", "messages": HELLO}, 404, None),  # names, never paths
    ({"model": "/tmp", "messages": HELLO}, 404, None),
    ({"model": CHAT_MODEL, "messages": HELLO, "max_tokens": -5}, 400, "max_tokens"),
    ({"model": CHAT_MODEL, "messages": HELLO, "max_tokens": 10**6}, 400, "max_tokens"),
    ({"model": CHAT_MODEL, "messages": []}, 400, "messages"),
    ({"model": CHAT_MODEL, "messages": [{"role": "wizard", "content": "x"}]}, 400,
     "messages[0].role"),
    ({"model": CHAT_MODEL, "messages": HELLO, "temperature": "hot"}, 400, "temperature"),
    ({"model": CHAT_MODEL, "messages": HELLO, "n": 3}, 400, "n"),
    ({"model": CHAT_MODEL, "messages": HELLO, "tools": [{"type": "function"}]}, 400, "tools"),
    ({"model": CHAT_MODEL, "messages": HELLO, "stop": [""]}, 400, "stop"),
    ({"messages": HELLO}, 400, "model"),
    ({"model": CHAT_MODEL, "messages": [{"role": "user", "content": "lamp " * 3000}]}, 400,
     "messages"),
])
def test_bad_requests_get_openai_errors(client: openai.OpenAI, body: dict[str, object],
                                        status: int, param: str | None) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        client.post("/chat/completions", body=body, cast_to=dict)
    error = caught.value
    assert error.status_code == status
    assert isinstance(error.body, dict) and set(error.body) >= {"message", "type", "code"}
    assert error.body["message"] and error.body["param"] == param
    assert _greedy(client, 2) is not None  # the server is still up


def test_malformed_json_and_huge_bodies(server: RunningServer, client: openai.OpenAI) -> None:
    status, raw = post_raw(server, "/chat/completions", b'{"model": "tiny-chat", "messa')
    assert status == 400 and "not valid JSON" in json.loads(raw)["error"]["message"]
    status, raw = post_raw(server, "/chat/completions", b"[1, 2]")
    assert status == 400
    status, raw = post_raw(server, "/chat/completions", b'{"model": 1}',
                           content_type="text/plain")
    assert status == 415  # what a web page could send without asking: refused
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(
            model=CHAT_MODEL, messages=[{"role": "user", "content": "x" * 10_000_000}])
    assert caught.value.status_code == 413
    assert caught.value.body["code"] == "request_too_large"  # type: ignore[index]
    status, raw = post_raw(server, "/no/such/route", b"{}")
    assert status == 404 and json.loads(raw)["error"]["message"]


def test_api_key_is_required_when_set(start_server: StartServer) -> None:
    server = start_server(api_key="right-key")
    good = openai.OpenAI(base_url=server.url, api_key="right-key", max_retries=0)
    assert [m.id for m in good.models.list()]
    for key in ("wrong-key", ""):
        bad = openai.OpenAI(base_url=server.url, api_key=key or "x", max_retries=0)
        if not key:
            bad = bad.with_options(default_headers={"Authorization": ""})
        with pytest.raises(openai.AuthenticationError) as caught:
            bad.models.list()
        assert caught.value.body["code"] == "invalid_api_key"  # type: ignore[index]


def test_other_addresses_need_a_key() -> None:
    from engine.server.registry import ModelRegistry

    with pytest.raises(ConfigError, match="--api-key"):
        RunningServer(ModelRegistry(), host="0.0.0.0", port=0)


def test_only_its_own_host_name_and_no_cors_by_default(server: RunningServer,
                                                       start_server: StartServer) -> None:
    request = urllib.request.Request(f"{server.url}/models",
                                     headers={"Host": "attacker.example:80"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == 403
    page = {"Origin": "http://page.example"}
    with urllib.request.urlopen(urllib.request.Request(f"{server.url}/models", headers=page),
                                timeout=30) as answer:
        assert "Access-Control-Allow-Origin" not in answer.headers
    allowed = start_server(cors_origins=frozenset({"http://page.example"}))
    with urllib.request.urlopen(urllib.request.Request(f"{allowed.url}/models", headers=page),
                                timeout=30) as answer:
        assert answer.headers["Access-Control-Allow-Origin"] == "http://page.example"


def test_embeddings_are_the_embedding_models(minilm: Path, client: openai.OpenAI) -> None:
    texts = ["The lamp lights the page.", "A night train"]
    answer = client.embeddings.create(model="minilm", input=texts)
    expected = load_embedder("minilm").embed(texts)
    got = np.array([row.embedding for row in answer.data], np.float32)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert answer.usage.prompt_tokens > 0
    raw = client.embeddings.create(model="minilm", input="A night train",
                                   encoding_format="base64")
    vector = raw.data[0].embedding
    decoded = np.frombuffer(base64.b64decode(vector), "<f4") if isinstance(vector, str) \
        else np.array(vector, np.float32)
    np.testing.assert_allclose(decoded, expected[1], atol=1e-6)
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model=CHAT_MODEL, input="x")
