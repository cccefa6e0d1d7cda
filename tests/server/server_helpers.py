"""Raw HTTP for what the OpenAI client cannot send: broken JSON, another content type."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable

from engine.server.runner import RunningServer

CHAT_MODEL = "tiny-transformer"  # the name its manifest gives it too
LSTM_MODEL = "tiny-lstm"
StartServer = Callable[..., RunningServer]


def post_raw(server: RunningServer, path: str, body: bytes,
             content_type: str = "application/json") -> tuple[int, bytes]:
    request = urllib.request.Request(f"{server.url}{path}", data=body, method="POST",
                                     headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
