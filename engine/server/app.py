"""The HTTP side: OpenAI's routes on aiohttp, with the server's guards in front of them.

Guards, in order: the Host header must name this server when it listens on loopback (a web page
cannot reach it through DNS rebinding); the API key, when one is set; request bodies at most
``MAX_BODY_BYTES`` and, for POST, declared as JSON (a browser cannot send that cross-origin
without a CORS preflight, which only the origins given to ``--cors-origin`` pass). Every error
is an OpenAI-style JSON body; an unexpected one is logged and answered with a 500, and the
server goes on.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from aiohttp import web

from engine.errors import ConfigError, EngineError, ModelNotFoundError
from engine.generation import prompt_ids
from engine.server.protocol import (
    MAX_BODY_BYTES,
    ApiError,
    ChatRequest,
    CompletionRequest,
    TextRequest,
    bad_request,
    error_body,
    parse_chat,
    parse_completion,
    parse_embedding,
    parse_json,
)
from engine.server.registry import EMBEDDING_ARCHITECTURE, ModelRegistry, describe
from engine.server.scheduler import Delta, Done, Event, Failed, Job, ModelScheduler, QueueFullError

logger = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REGISTRY: web.AppKey[ModelRegistry] = web.AppKey("registry", ModelRegistry)
DEFAULT_MAX_TOKENS = 2048  # the largest answer a request may ask for (`serve --max-tokens`)


@dataclass(frozen=True)
class ServerSettings:
    api_key: str | None = None
    allowed_hosts: frozenset[str] | None = None  # Host header values; None: any (not loopback)
    cors_origins: frozenset[str] = frozenset()  # "*" allows every origin
    max_tokens: int = DEFAULT_MAX_TOKENS


SETTINGS: web.AppKey[ServerSettings] = web.AppKey("settings", ServerSettings)


def build_app(registry: ModelRegistry, settings: ServerSettings) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES,
                          middlewares=[_errors, _guards])
    app[REGISTRY], app[SETTINGS] = registry, settings
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/v1/models/{name}", get_model)
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/completions", completions)
    app.router.add_post("/v1/embeddings", embeddings)
    app.router.add_get("/health", health)
    return app


# --- guards and errors ---------------------------------------------------------------------

def _json_error(status: int, message: str, kind: str = "invalid_request_error",
                code: str | None = None) -> web.Response:
    return web.json_response(error_body(message, kind, None, code), status=status)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as error:
        return web.json_response(error.body(), status=error.status)
    except ModelNotFoundError as error:
        return _json_error(404, f"{error}; GET /v1/models lists what is installed",
                           code="model_not_found")
    except ConfigError as error:
        return _json_error(400, str(error))
    except EngineError as error:
        return _json_error(500, str(error), "server_error")
    except web.HTTPRequestEntityTooLarge:
        return _json_error(413, f"the request body is larger than {MAX_BODY_BYTES:,} bytes; "
                           "send less text per request", code="request_too_large")
    except web.HTTPException as error:  # an unknown route, a wrong method
        if error.status < 400:
            raise
        return _json_error(error.status, f"{request.method} {request.path}: {error.reason}")
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        logger.exception("%s %s failed", request.method, request.path)
        return _json_error(500, "the server failed on this request (see its log); it goes on "
                           "serving others", "server_error")


@web.middleware
async def _guards(request: web.Request, handler: Handler) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    if settings.allowed_hosts is not None \
            and request.headers.get("Host", "").lower() not in settings.allowed_hosts:
        raise ApiError(403, "this server answers requests for its own address only (the Host "
                       "header names another)", code="host_not_allowed")
    allowed_origin = _allowed_origin(request)
    if request.method == "OPTIONS":  # a browser's preflight
        if allowed_origin is None:
            origin = request.headers.get("Origin")
            raise ApiError(403, f"cross-origin requests from {origin!r} are not allowed; start "
                           "the server with --cors-origin ORIGIN", code="origin_not_allowed")
        response: web.StreamResponse = web.Response(status=204)
        response.headers.update({"Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                                 "Access-Control-Allow-Headers": "Authorization, Content-Type",
                                 "Access-Control-Max-Age": "600"})
    else:
        _check_key(request, settings.api_key)
        if request.method == "POST" and request.content_type != "application/json":
            raise ApiError(415, f"send the body as JSON with Content-Type: application/json "
                           f"(got {request.content_type!r})", code="unsupported_media_type")
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY_BYTES,
                                                actual_size=request.content_length)
        response = await handler(request)
    if allowed_origin is not None and not response.prepared:  # a stream set it itself
        response.headers["Access-Control-Allow-Origin"] = allowed_origin
        response.headers["Vary"] = "Origin"
    return response


def _allowed_origin(request: web.Request) -> str | None:
    """The request's Origin when ``--cors-origin`` lets it call the server, else None."""
    origin = request.headers.get("Origin")
    allowed = request.app[SETTINGS].cors_origins
    return origin if origin is not None and ("*" in allowed or origin in allowed) else None


def _check_key(request: web.Request, api_key: str | None) -> None:
    if api_key is None or request.path == "/health":
        return
    given = request.headers.get("Authorization", "")
    scheme, _, token = given.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(),
                                                             api_key.encode()):
        raise ApiError(401, "a valid API key is required: send Authorization: Bearer KEY "
                       "(the key the server was started with)", code="invalid_api_key")


# --- routes ----------------------------------------------------------------------------------

async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "loaded": request.app[REGISTRY].loaded()})


async def list_models(request: web.Request) -> web.Response:
    registry = request.app[REGISTRY]
    served = await asyncio.to_thread(registry.served_models)
    return web.json_response({"object": "list", "data": [
        describe(name, registry.created) for name, _ in served]})


async def get_model(request: web.Request) -> web.Response:
    registry = request.app[REGISTRY]
    name = request.match_info["name"]
    if name not in dict(await asyncio.to_thread(registry.served_models)):
        raise ModelNotFoundError(f"model {name!r} is not installed here")
    return web.json_response(describe(name, registry.created))


async def _body(request: web.Request) -> dict[str, Any]:
    return parse_json(await request.read())


async def chat_completions(request: web.Request) -> web.StreamResponse:
    parsed = parse_chat(await _body(request))
    return await _complete(request, parsed, "chat.completion", "chatcmpl")


async def completions(request: web.Request) -> web.StreamResponse:
    parsed = parse_completion(await _body(request))
    return await _complete(request, parsed, "text_completion", "cmpl")


async def embeddings(request: web.Request) -> web.Response:
    parsed = parse_embedding(await _body(request))
    registry = request.app[REGISTRY]
    served = dict(await asyncio.to_thread(registry.served_models))
    if served.get(parsed.model) != EMBEDDING_ARCHITECTURE:
        if parsed.model not in served:
            raise ModelNotFoundError(f"model {parsed.model!r} is not installed here")
        raise bad_request(f"{parsed.model} is not an embedding model; install one with "
                          "`nightlamp models pull minilm` and name it", "model",
                          "model_not_supported")
    embedder = await registry.embedder(parsed.model)
    loop = asyncio.get_running_loop()
    tokens = await loop.run_in_executor(
        registry.embedding_pool,
        lambda: sum(min(embedder.count_tokens(t), embedder.max_tokens) for t in parsed.inputs))
    vectors = await loop.run_in_executor(registry.embedding_pool, embedder.embed,
                                         list(parsed.inputs))
    data = [{"object": "embedding", "index": index,
             "embedding": _encode_vector(vector, parsed.base64)}
            for index, vector in enumerate(vectors)]
    return web.json_response({"object": "list", "data": data, "model": parsed.model,
                              "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})


def _encode_vector(vector: np.ndarray, as_base64: bool) -> list[float] | str:
    if as_base64:
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    return [float(x) for x in vector]


# --- completions ---------------------------------------------------------------------------

async def _complete(request: web.Request, parsed: ChatRequest | CompletionRequest,
                    kind: str, id_prefix: str) -> web.StreamResponse:
    scheduler = await request.app[REGISTRY].scheduler(parsed.model)
    chat = isinstance(parsed, ChatRequest)
    prompt = list(parsed.messages) if isinstance(parsed, ChatRequest) else parsed.prompt
    field = "messages" if chat else "prompt"  # the field a prompt error is about
    try:
        ids = await asyncio.to_thread(prompt_ids, scheduler.model, prompt, within_context=True)
    except ConfigError as error:  # too long for the context, or refused by the chat template
        raise bad_request(str(error), field) from None
    max_new = _answer_limit(parsed, field, len(ids), scheduler,
                            request.app[SETTINGS].max_tokens)
    loop = asyncio.get_running_loop()
    events: asyncio.Queue[Event] = asyncio.Queue()

    def emit(event: Event) -> None:  # called on the scheduler's thread
        loop.call_soon_threadsafe(events.put_nowait, event)

    job = Job(ids, max_new, parsed.sampling, parsed.stop, emit,
              client=f"{request.remote}/{parsed.client}")
    try:
        scheduler.submit(job)
    except QueueFullError as error:
        raise ApiError(429, f"{error}; retry in a moment", kind="rate_limit_error",
                       code="queue_full") from None
    answer = _Answer(kind, id_prefix, parsed.model, chat)
    try:
        if parsed.stream:
            return await _stream(request, answer, _events(events), parsed.include_usage)
        return await _whole(answer, _events(events))
    finally:
        job.cancelled.set()  # a no-op once done; frees the slot of a client that went away


def _answer_limit(parsed: TextRequest, field: str, prompt_tokens: int,
                  scheduler: ModelScheduler, cap: int) -> int:
    room = scheduler.capacity - prompt_tokens
    if room < 1:
        raise ApiError(400, f"the prompt is {prompt_tokens} tokens; this server runs "
                       f"{parsed.model} with a context of {scheduler.capacity} tokens",
                       param=field, code="context_length_exceeded")
    if parsed.max_tokens is not None and parsed.max_tokens > cap:
        raise bad_request(f"max_tokens is {parsed.max_tokens}; this server allows at most "
                          f"{cap} (serve --max-tokens)", "max_tokens")
    return min(parsed.max_tokens or cap, room)


async def _events(events: asyncio.Queue[Event]) -> AsyncIterator[Event]:
    while True:
        event = await events.get()
        yield event
        if not isinstance(event, Delta):
            return


class _Answer:
    """The JSON of one answer, whole or in chunks, as OpenAI writes it."""

    def __init__(self, kind: str, id_prefix: str, model: str, chat: bool) -> None:
        self.kind, self.model, self.chat = kind, model, chat
        self.id = f"{id_prefix}-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())

    def _envelope(self, kind: str, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model,
                "choices": choices}

    def whole(self, text: str, done: Done) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": 0, "finish_reason": done.finish_reason,
                                  "logprobs": None}
        if self.chat:
            choice["message"] = {"role": "assistant", "content": text}
        else:
            choice["text"] = text
        return {**self._envelope(self.kind, [choice]), "usage": _usage(done)}

    def chunk(self, text: str | None, finish_reason: str | None = None,
              first: bool = False) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": 0, "finish_reason": finish_reason, "logprobs": None}
        if self.chat:
            delta: dict[str, Any] = {"role": "assistant"} if first else {}
            if text is not None:
                delta["content"] = text
            choice["delta"] = delta
            return self._envelope("chat.completion.chunk", [choice])
        choice["text"] = text or ""
        return self._envelope("text_completion", [choice])

    def usage_chunk(self, done: Done) -> dict[str, Any]:
        kind = "chat.completion.chunk" if self.chat else "text_completion"
        return {**self._envelope(kind, []), "usage": _usage(done)}


def _usage(done: Done) -> dict[str, int]:
    return {"prompt_tokens": done.prompt_tokens, "completion_tokens": done.completion_tokens,
            "total_tokens": done.prompt_tokens + done.completion_tokens}


async def _whole(answer: _Answer, events: AsyncIterator[Event]) -> web.Response:
    pieces: list[str] = []
    async for event in events:
        if isinstance(event, Delta):
            pieces.append(event.text)
        elif isinstance(event, Failed):
            raise ApiError(500, event.message, kind="server_error")
        else:
            return web.json_response(answer.whole("".join(pieces), event))
    raise ApiError(500, "the answer ended without finishing", kind="server_error")


async def _stream(request: web.Request, answer: _Answer, events: AsyncIterator[Event],
                  include_usage: bool) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache"})
    allowed_origin = _allowed_origin(request)
    if allowed_origin is not None:  # the middleware cannot add it once the stream started
        response.headers["Access-Control-Allow-Origin"] = allowed_origin
        response.headers["Vary"] = "Origin"
    await response.prepare(request)

    async def send(payload: dict[str, Any] | str) -> None:
        data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
        await response.write(f"data: {data}\n\n".encode())

    if answer.chat:  # OpenAI's first chunk names the role
        await send(answer.chunk("", first=True))
    async for event in events:
        if isinstance(event, Delta):
            await send(answer.chunk(event.text))
        elif isinstance(event, Failed):
            await send(error_body(event.message, "server_error"))
        else:
            await send(answer.chunk(None, event.finish_reason))
            if include_usage:
                await send(answer.usage_chunk(event))
    await send("[DONE]")
    await response.write_eof()
    return response
