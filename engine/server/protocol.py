"""OpenAI request bodies, checked and turned into our values; OpenAI-shaped error bodies.

Every rule a request can break is a :class:`ApiError` with the HTTP status and the error body
OpenAI's clients expect (``{"error": {"message", "type", "param", "code"}}``), so a bad request
is answered in one readable line and never reaches the engine. Fields that change nothing here
(``user``, ``presence_penalty``/``frequency_penalty`` of 0, ``logprobs: false``) are accepted;
features we do not have (tools, images, ``n`` > 1, log-probabilities) are refused by name
rather than silently ignored.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.chat_template import ROLES
from engine.errors import ConfigError
from engine.sampling import SamplingSettings

MAX_BODY_BYTES = 2 * 1024 * 1024  # a 4k-token prompt is ~16 KB; room for long documents
MAX_STOP_STRINGS = 4  # as OpenAI
MAX_STOP_CHARS = 200
MAX_EMBEDDING_INPUTS = 256  # texts per /v1/embeddings request (each read up to 256 tokens)
# OpenAI's default for /v1/completions; chat answers default to what the context leaves.
COMPLETION_DEFAULT_TOKENS = 16
# "developer" is what newer OpenAI clients send instead of "system".
ROLE_ALIASES = {"developer": "system"}


class ApiError(Exception):
    """A request refused with ``status`` and an OpenAI-style error body."""

    def __init__(self, status: int, message: str, *, kind: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.param, self.code = \
            status, message, kind, param, code

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.kind, self.param, self.code)


def error_body(message: str, kind: str, param: str | None = None,
               code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def bad_request(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


@dataclass(frozen=True)
class TextRequest:
    """A chat or plain completion, checked: what the scheduler needs besides the prompt."""

    model: str
    max_tokens: int | None  # None: as many as the context leaves (capped by the server)
    sampling: SamplingSettings
    stop: tuple[str, ...]
    stream: bool
    include_usage: bool  # stream_options.include_usage: a last chunk with the token counts
    client: str  # the ``user`` field: requests are queued fairly between clients


@dataclass(frozen=True)
class ChatRequest(TextRequest):
    messages: tuple[dict[str, str], ...] = ()


@dataclass(frozen=True)
class CompletionRequest(TextRequest):
    prompt: str = ""


@dataclass(frozen=True)
class EmbeddingRequest:
    model: str
    inputs: tuple[str, ...]
    base64: bool  # encoding_format "base64": little-endian float32 bytes, base64-encoded


def parse_json(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object, or a 400 naming what is wrong with it."""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as error:
        raise bad_request(f"the request body is not valid JSON ({error}); send a JSON "
                          "object with Content-Type: application/json") from None
    if not isinstance(body, dict):
        raise bad_request(f"the request body must be a JSON object (got a "
                          f"{type(body).__name__})")
    return body


def parse_chat(body: Mapping[str, Any]) -> ChatRequest:
    _refuse_unsupported(body, ("tools", "functions", "tool_choice", "function_call"),
                        "tool calls are")
    response_format = body.get("response_format")
    if response_format not in (None, {"type": "text"}):
        raise bad_request("response_format other than text is not supported",
                          "response_format")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("messages must be a non-empty list of {role, content} objects",
                          "messages")
    return ChatRequest(**_text_fields(body), messages=tuple(
        _message(message, number) for number, message in enumerate(messages)))


def parse_completion(body: Mapping[str, Any]) -> CompletionRequest:
    _refuse_unsupported(body, ("suffix",), "a suffix is")
    if body.get("echo"):
        raise bad_request("echo is not supported", "echo")
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str) or not prompt:
        raise bad_request("prompt must be non-empty text (one prompt per request)", "prompt")
    fields = _text_fields(body)
    if "max_tokens" not in body:
        fields["max_tokens"] = COMPLETION_DEFAULT_TOKENS
    return CompletionRequest(**fields, prompt=prompt)


def parse_embedding(body: Mapping[str, Any]) -> EmbeddingRequest:
    model = _model_name(body)
    raw = body.get("input")
    inputs = [raw] if isinstance(raw, str) else raw
    if not isinstance(inputs, list) or not inputs \
            or not all(isinstance(text, str) and text for text in inputs):
        raise bad_request("input must be non-empty text or a list of non-empty texts "
                          "(token arrays are not supported)", "input")
    if len(inputs) > MAX_EMBEDDING_INPUTS:
        raise bad_request(f"input has {len(inputs)} texts; send at most "
                          f"{MAX_EMBEDDING_INPUTS} per request", "input")
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise bad_request(f"encoding_format must be 'float' or 'base64' (got {encoding!r})",
                          "encoding_format")
    if body.get("dimensions") is not None:
        raise bad_request("dimensions cannot be changed for this model; leave it out",
                          "dimensions")
    return EmbeddingRequest(model, tuple(inputs), encoding == "base64")


def _refuse_unsupported(body: Mapping[str, Any], fields: tuple[str, ...], what: str) -> None:
    for field in fields:
        if body.get(field):
            raise bad_request(f"{what} ({field}) not supported by this server", field)


def _model_name(body: Mapping[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("model is required: one of the names GET /v1/models lists", "model")
    return model


def _text_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    """The fields chat and plain completions share, checked."""
    n = body.get("n", 1)
    if n != 1 or isinstance(n, bool):
        raise bad_request(f"n must be 1 (got {n!r}); send one request per answer", "n")
    if body.get("logprobs") or body.get("top_logprobs"):
        raise bad_request("log-probabilities are not supported", "logprobs")
    for penalty in ("presence_penalty", "frequency_penalty"):
        if body.get(penalty) not in (None, 0, 0.0):
            raise bad_request(f"{penalty} is not supported (leave it out or send 0); "
                              "repetition is discouraged by sampling instead", penalty)
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None and (not isinstance(max_tokens, int)
                                   or isinstance(max_tokens, bool) or max_tokens < 1):
        raise bad_request(f"max_tokens must be a positive integer (got {max_tokens!r})",
                          "max_tokens")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise bad_request(f"stream must be true or false (got {stream!r})", "stream")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise bad_request("stream_options must be an object", "stream_options")
    client = body.get("user", "")
    return {"model": _model_name(body), "max_tokens": max_tokens,
            "sampling": _sampling(body), "stop": _stop(body.get("stop")), "stream": stream,
            "include_usage": bool(options.get("include_usage")),
            "client": client if isinstance(client, str) else ""}


def _sampling(body: Mapping[str, Any]) -> SamplingSettings:
    """OpenAI's temperature/top_p/seed over our defaults (the Chat panel's) where unset.

    A temperature or top_p the client sets means plain temperature + nucleus sampling, as
    OpenAI's API does, so our top-k and min-p are turned off then.
    """
    values: dict[str, Any] = {}
    for field in ("temperature", "top_p"):
        value = body.get(field)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value):
                raise bad_request(f"{field} must be a number (got {value!r})", field)
            values[field] = float(value)
    if values.get("temperature", 0) > 2:
        raise bad_request(f"temperature must be between 0 and 2 (got {values['temperature']})",
                          "temperature")
    if values:
        values.update(top_k=0, min_p=0.0)
    seed = body.get("seed")
    if seed is not None:
        values["seed"] = seed
    try:
        return SamplingSettings(**values)
    except ConfigError as error:
        raise bad_request(str(error), next(iter(values), None)) from None


def _stop(stop: Any) -> tuple[str, ...]:
    stops = [stop] if isinstance(stop, str) else ([] if stop is None else stop)
    if not isinstance(stops, list) or len(stops) > MAX_STOP_STRINGS or not all(
            isinstance(s, str) and 0 < len(s) <= MAX_STOP_CHARS for s in stops):
        raise bad_request(f"stop must be a string or a list of at most {MAX_STOP_STRINGS} "
                          f"non-empty strings of up to {MAX_STOP_CHARS} characters", "stop")
    return tuple(stops)


def _message(message: Any, number: int) -> dict[str, str]:
    where = f"messages[{number}]"
    if not isinstance(message, dict):
        raise bad_request(f"{where} must be an object with role and content", where)
    given = message.get("role")
    role = ROLE_ALIASES.get(given, given) if isinstance(given, str) else given
    if role not in ROLES:
        raise bad_request(f"{where}.role is {message.get('role')!r}; use one of "
                          f"{', '.join(ROLES)}", f"{where}.role")
    content = message.get("content")
    if isinstance(content, list):  # content parts: text only
        if not all(isinstance(part, dict) and part.get("type") == "text"
                   and isinstance(part.get("text"), str) for part in content):
            raise bad_request(f"{where}.content: only text parts are supported (no images or "
                              "audio)", f"{where}.content")
        content = "".join(part["text"] for part in content)
    if not isinstance(content, str):
        raise bad_request(f"{where}.content must be text", f"{where}.content")
    return {"role": role, "content": content}
