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

__all__ = ["build_client", "SDKClientCache"]

MAX_SHARED_SDK_CLIENTS = 64  # per connection pool


class SDKClientCache:
    """SDK clients shared by many conversations: one per connection pool and configuration.

    A new ``AsyncOpenAI`` detours through a worker thread on its first request (platform
    headers), which costs a batch of short runs more than the runs' own parsing, so the batch
    keeps one of these for all its runs and passes it to ``build_client``. The caller owns the
    pools and the clients built on them; providers never close them."""

    def __init__(self, limit: int = MAX_SHARED_SDK_CLIENTS):
        self.limit = limit
        self._by_pool: dict[Any, dict[tuple, openai.AsyncOpenAI]] = {}

    def get(self, settings: ModelSettings, http_client: httpx2.AsyncClient | None) -> openai.AsyncOpenAI:
        """The client for ``settings`` on ``http_client``, built on first use."""
        clients = self._by_pool.setdefault(http_client, {})
        key = (settings.api_key, settings.base_url, settings.timeout, tuple(settings.extra_headers))
        client = clients.get(key)
        if client is None:
            if len(clients) >= self.limit:
                clients.clear()  # per-input keys or headers: do not grow without end
            client = clients[key] = _new_client(settings, http_client)
        return client


def build_client(
    settings: ModelSettings,
    *,
    http_client: httpx2.AsyncClient | None = None,
    sdk_clients: SDKClientCache | None = None,
) -> openai.AsyncOpenAI:
    """An ``AsyncOpenAI`` with SDK retries off (ours are visible): a new one for one
    conversation, or the shared one from ``sdk_clients`` for this pool and configuration."""
    if sdk_clients is not None:
        return sdk_clients.get(settings, http_client)
    return _new_client(settings, http_client)


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
