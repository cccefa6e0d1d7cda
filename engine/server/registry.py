"""Which models the server has loaded: each chat model on first use, behind its scheduler.

Loading takes a second or more, so it runs on a worker thread, once per name however many
requests ask at the same time. At most ``max_loaded`` text models stay loaded; a new one
replaces the least recently used model that has nothing to do (none idle: HTTP 503). The
embedding model (``/v1/embeddings``) is loaded on first use as well and runs on a thread of its
own, one request at a time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from engine.errors import ConfigError, EngineError, ModelNotFoundError
from engine.formats import read_model_folder
from engine.model import Model, load_model
from engine.retrieval.embedder import Embedder, load_embedder
from engine.server import DEFAULT_PARALLEL
from engine.server.protocol import ApiError
from engine.server.scheduler import ModelScheduler
from engine.store import installed_models, model_folder

logger = logging.getLogger(__name__)
TEXT_ARCHITECTURES = ("decoder-transformer", "decoder-lstm")
EMBEDDING_ARCHITECTURE = "encoder"


class ModelRegistry:
    """The loaded models of one server (used from its event loop only).

    Args:
        device, threads: as ``load_model``'s.
        capacity: positions per sequence (prompt + answer); None: the model's context.
        slots: sequences decoded side by side per model.
        max_loaded: text models kept loaded at once.
    """

    def __init__(self, device: str = "auto", threads: int | None = None,
                 capacity: int | None = None, slots: int = DEFAULT_PARALLEL,
                 max_loaded: int = 2) -> None:
        self.device, self.threads, self.capacity, self.slots = device, threads, capacity, slots
        self.max_loaded = max_loaded
        self.created = int(time.time())
        self._schedulers: OrderedDict[str, ModelScheduler] = OrderedDict()
        self._embedders: dict[str, Embedder] = {}
        self._loading: dict[str, asyncio.Lock] = {}
        self.embedding_pool = ThreadPoolExecutor(1, thread_name_prefix="serve-embeddings")

    def served_models(self) -> list[tuple[str, str]]:
        """(name, architecture) of every installed model the server can run; broken folders
        are left out (``nightlamp models list`` shows why)."""
        served = []
        for name in installed_models():
            try:
                architecture = read_model_folder(model_folder(name)).architecture
            except EngineError:
                continue
            if architecture in (*TEXT_ARCHITECTURES, EMBEDDING_ARCHITECTURE):
                served.append((name, architecture))
        return served

    async def scheduler(self, name: str) -> ModelScheduler:
        """The scheduler of text model ``name``, loading it first if needed."""
        async with self._loading.setdefault(name, asyncio.Lock()):
            if name not in self._schedulers:
                self._make_room()
                model = await asyncio.to_thread(self._load_text_model, name)
                self._schedulers[name] = ModelScheduler(
                    model, self.slots, self.capacity or model.manifest.context_length)
            self._schedulers.move_to_end(name)
            return self._schedulers[name]

    async def embedder(self, name: str) -> Embedder:
        async with self._loading.setdefault(name, asyncio.Lock()):
            if name not in self._embedders:
                self._embedders[name] = await asyncio.get_running_loop().run_in_executor(
                    self.embedding_pool, self._load_embedder, name)
            return self._embedders[name]

    def scheduler_of(self, name: str) -> ModelScheduler:
        """The scheduler of a loaded text model (KeyError if not loaded)."""
        return self._schedulers[name]

    def loaded(self) -> list[str]:
        return [*self._schedulers, *self._embedders]

    def close(self) -> None:
        for scheduler in self._schedulers.values():
            scheduler.close()
        self._schedulers.clear()
        self.embedding_pool.shutdown(wait=False, cancel_futures=True)

    def _make_room(self) -> None:
        while len(self._schedulers) >= self.max_loaded:
            idle = next((n for n, s in self._schedulers.items() if s.idle), None)
            if idle is None:
                raise ApiError(503, f"{len(self._schedulers)} models are loaded and busy; "
                               "retry when their requests finish, or start the server with "
                               "a larger --max-loaded", kind="server_error",
                               code="server_busy")
            logger.info("unloading %s to make room", idle)
            self._schedulers.pop(idle).close()

    def _load_text_model(self, name: str) -> Model:
        model = load_model(_known(name), device=self.device, threads=self.threads,
                           context_length=self.capacity)
        if not isinstance(model, Model):
            raise ApiError(400, f"{name} is a translation model; it cannot chat or complete "
                           "text", param="model", code="model_not_supported")
        logger.info("loaded %s on %s", name, model.device)
        return model

    def _load_embedder(self, name: str) -> Embedder:
        try:
            return load_embedder(_known(name), device="cpu", threads=self.threads)
        except ConfigError as error:
            raise ApiError(400, str(error), param="model", code="model_not_supported") from None


def _known(name: str) -> str:
    """``name`` when the store has it: a request may name installed models only, never a path."""
    if name not in installed_models():
        raise ModelNotFoundError(f"model {name!r} is not installed here")
    return name


def describe(name: str, created: int) -> dict[str, Any]:
    """A model as ``GET /v1/models`` lists it."""
    return {"id": name, "object": "model", "created": created, "owned_by": "nightlamp"}
