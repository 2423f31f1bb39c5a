"""The ``AsyncOpenAI`` client a provider talks through, with the SDK's own retries off.

The SDK's retries are silent and would retry a streamed POST whose response we may already have
started to read, so ``max_retries=0`` here and ``retry_policy`` retries the start of a request
visibly instead.
"""

from __future__ import annotations

from typing import Any

import httpx2
import openai

from runner.providers.base import ModelSettings

__all__ = ["build_client"]

MAX_SHARED_SDK_CLIENTS = 64


def build_client(settings: ModelSettings, *, http_client: httpx2.AsyncClient | None = None) -> openai.AsyncOpenAI:
    """An ``AsyncOpenAI`` for one conversation, with SDK retries off (ours are visible).

    A pool that offers an ``sdk_clients`` dict (the batch's ``SharedClient``) gets one SDK client
    per distinct configuration, shared by every run on it: a new ``AsyncOpenAI`` detours through
    a worker thread on its first request (platform headers), which costs a batch of short runs
    more than the runs' own parsing. The pool owns those clients; providers never close them."""
    shared = getattr(http_client, "sdk_clients", None) if http_client is not None else None
    if not isinstance(shared, dict):
        return _new_client(settings, http_client)
    key = (settings.api_key, settings.base_url, settings.timeout, tuple(settings.extra_headers))
    client = shared.get(key)
    if client is None:
        if len(shared) >= MAX_SHARED_SDK_CLIENTS:
            shared.clear()  # per-input keys or headers: do not grow without end
        client = shared[key] = _new_client(settings, http_client)
    return client


def _new_client(settings: ModelSettings, http_client: httpx2.AsyncClient | None) -> openai.AsyncOpenAI:
    kwargs: dict[str, Any] = {
        "api_key": settings.api_key or None,
        "timeout": httpx2.Timeout(settings.timeout, connect=10.0),
        "max_retries": 0,
    }
    if settings.base_url:
        kwargs["base_url"] = settings.base_url
    if settings.extra_headers:
        kwargs["default_headers"] = dict(settings.extra_headers)
    if http_client is not None:
        kwargs["http_client"] = http_client
    return openai.AsyncOpenAI(**kwargs)
