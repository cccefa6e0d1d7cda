"""``nightlamp serve``: the installed models behind an OpenAI-compatible HTTP API, on loopback.

Editors, scripts and chat front-ends written against OpenAI's API talk to it unchanged (base URL
``http://127.0.0.1:8765/v1``). The parts, each its own module:

- ``protocol``: the OpenAI request bodies checked and turned into our values, the error bodies;
- ``scheduler``: one thread per loaded model that decodes every waiting request side by side
  (``engine.batch``: continuous batching), or one at a time where the graph cannot batch;
- ``registry``: which models are loaded, loading them on first use;
- ``app``: the HTTP routes (aiohttp), authentication, limits and server-sent events.

Nothing here is imported by the app or the other commands until the server starts.
"""

from __future__ import annotations

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_CONTEXT = 4096  # positions per request (prompt + answer): each slot's cache holds this
# 32 streaming clients on SmolLM2-135M, 2 cores: 8 slots 262 tok/s, 16 slots 351, 32 slots 354
# (benchmarks/server_load.py); 16 keeps most of the gain at half the cache memory of 32.
DEFAULT_PARALLEL = 16
