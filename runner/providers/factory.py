"""Pick the provider for ``settings.api``; the module is imported only when that API is used."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Awaitable, Callable

import httpx2

from runner.errors import ProviderError, UsageError
from runner.events import Notice
from runner.providers.base import ModelSettings, Provider
from runner.secrets.masker import Masker

if TYPE_CHECKING:  # the module imports openai: only when a provider is made
    from runner.providers.sdk_client import SDKClientCache

_PROVIDERS = {
    "chat": ("runner.providers.chat", "ChatProvider"),
    "responses": ("runner.providers.responses", "ResponsesProvider"),
    "assistants": ("runner.providers.assistants", "AssistantsProvider"),
}


def create_provider(
    settings: ModelSettings,
    *,
    http_client: httpx2.AsyncClient | None = None,
    sdk_clients: SDKClientCache | None = None,
    masker: Masker | None = None,
    on_notice: Callable[[Notice], None] | None = None,
    sleep: Callable[[float], Awaitable[None]] | None = None,
    now: Callable[[], float] | None = None,
) -> Provider:
    """A provider for one conversation. ``http_client`` (owned by the caller, never closed here)
    is a test and proxy seam; ``sdk_clients`` (also the caller's) shares SDK clients between
    conversations, as a batch does; ``masker`` is shared with the run so its secrets are masked too;
    ``on_notice`` receives notices raised outside a turn (e.g. a failed clean-up in ``aclose``);
    ``sleep`` replaces ``asyncio.sleep`` for retry and poll waits and ``now`` replaces
    ``time.time`` (fake clocks in tests)."""
    cls = provider_class(settings.api)  # an unknown API is refused before a client is made
    from runner.providers.sdk_client import build_client

    try:
        client = build_client(settings, http_client=http_client, sdk_clients=sdk_clients)
    except Exception as exc:  # noqa: BLE001 - e.g. the SDK's "Missing credentials"
        m = masker or Masker([settings.api_key])
        raise ProviderError(
            m.mask(f"cannot set up the API client: {exc}"),
            hint="set the API key (local servers accept any value, e.g. 'ollama')",
        ) from None
    owns_client = http_client is None and sdk_clients is None
    return cls(settings, client, masker=masker, owns_client=owns_client, sleep=sleep, now=now, on_notice=on_notice)


def provider_class(api: str) -> type[Provider]:
    """The provider class for ``api`` (imports its module, and so the SDK)."""
    try:
        module_name, class_name = _PROVIDERS[api]
    except KeyError:
        raise UsageError(f"unknown api {api!r}: use one of responses, chat, assistants") from None
    return getattr(importlib.import_module(module_name), class_name)
