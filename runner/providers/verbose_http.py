"""``-v``: show every request flowrun sends to the model API, secrets masked.

An httpx2 request hook on the SDK's own client type, so what is shown is exactly what is sent.
"""

from __future__ import annotations

import json
from typing import Callable

from runner.events import Event, Notice
from runner.secrets.masker import Masker

MAX_BODY_CHARS = 20_000


def describe_request(method: str, url: str, body: bytes) -> str:
    text = body.decode("utf-8", "replace")
    try:
        text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        pass
    if len(text) > MAX_BODY_CHARS:
        text = text[:MAX_BODY_CHARS] + f"\n…[{len(text) - MAX_BODY_CHARS} more characters]"
    return f"→ {method} {url}" + (f"\n{text}" if text else "")


def logging_http_client(emit: Callable[[Event], None], masker: Masker, timeout: float):
    """An ``httpx2.AsyncClient`` with the SDK's defaults that reports each request as a Notice."""
    import httpx2
    import openai

    async def show(request) -> None:
        body = request.content if hasattr(request, "content") else b""
        emit(Notice("info", masker.mask(describe_request(request.method, str(request.url), body or b""))))

    return openai.DefaultAsyncHttpxClient(
        timeout=httpx2.Timeout(timeout, connect=10.0), event_hooks={"request": [show]}
    )
