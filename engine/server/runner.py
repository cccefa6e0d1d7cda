"""Starting and stopping a server: its event loop on a thread of its own.

``nightlamp serve``, the tests and the load benchmark all start it the same way; the command
then waits for Ctrl-C in the main thread. Binding happens before :meth:`RunningServer.start`
returns, so a port in use is a clear error at once, and port 0 picks a free one (``url``
tells which).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading
from typing import Any

from aiohttp import web

from engine.errors import ConfigError
from engine.server import DEFAULT_HOST, DEFAULT_PORT
from engine.server.app import ServerSettings, build_app
from engine.server.protocol import ApiError
from engine.server.registry import EMBEDDING_ARCHITECTURE, ModelRegistry

# A streamed answer still running at shutdown gets this long to end.
SHUTDOWN_GRACE_S = 2.0


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def loopback_hosts(port: int) -> frozenset[str]:
    """The Host header values a browser or client sends to this machine's loopback."""
    names = ("127.0.0.1", "localhost", "[::1]")
    return frozenset({*names, *(f"{name}:{port}" for name in names)})


class RunningServer:
    """One server: ``start()``, then ``url``; ``stop()`` ends it (also from another thread)."""

    def __init__(self, registry: ModelRegistry, *, host: str = DEFAULT_HOST,
                 port: int = DEFAULT_PORT, api_key: str | None = None,
                 cors_origins: frozenset[str] = frozenset(),
                 max_tokens: int | None = None) -> None:
        if not is_loopback(host) and not api_key:
            raise ConfigError(f"--host {host} lets other machines reach the server; give it "
                              "an --api-key (or set NIGHTLAMP_API_KEY) as well")
        self.registry, self.host, self.port = registry, host, port
        self._settings: dict[str, Any] = {"api_key": api_key, "cors_origins": cors_origins}
        if max_tokens:
            self._settings["max_tokens"] = max_tokens
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="serve-http",
                                        daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    def start(self) -> RunningServer:
        """Binds and starts serving. Raises ConfigError when the address cannot be used."""
        try:
            family, kind, protocol, _, address = socket.getaddrinfo(
                self.host, self.port, type=socket.SOCK_STREAM)[0]
            listener = socket.socket(family, kind, protocol)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(address)
        except OSError as error:
            raise ConfigError(f"cannot listen on {self.host}:{self.port} "
                              f"({error.strerror or error}); pass another --port, or stop "
                              "what uses it") from None
        self.port = listener.getsockname()[1]
        settings = ServerSettings(
            allowed_hosts=loopback_hosts(self.port) if is_loopback(self.host) else None,
            **self._settings)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(listener, settings), self._loop).result()
        return self

    async def _serve(self, listener: socket.socket, settings: ServerSettings) -> None:
        # handler_cancellation: a client that disconnects cancels its handler at once, which
        # frees its batch slot (aiohttp leaves handlers running by default).
        self._runner = web.AppRunner(build_app(self.registry, settings),
                                     handler_cancellation=True, access_log=None,
                                     shutdown_timeout=SHUTDOWN_GRACE_S)
        await self._runner.setup()
        await web.SockSite(self._runner, listener).start()

    def preload(self, name: str) -> None:
        """Loads model ``name`` now rather than on its first request (a chat model or the
        embedding model). Raises ConfigError naming what is wrong with it."""
        async def load() -> None:
            if dict(self.registry.served_models()).get(name) == EMBEDDING_ARCHITECTURE:
                await self.registry.embedder(name)
            else:
                await self.registry.scheduler(name)

        try:
            asyncio.run_coroutine_threadsafe(load(), self._loop).result()
        except ApiError as error:
            raise ConfigError(error.message) from None

    def stop(self) -> None:
        if self._thread.is_alive():
            if self._runner is not None:
                asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(
                    timeout=SHUTDOWN_GRACE_S + 5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self.registry.close()
