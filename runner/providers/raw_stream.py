"""Streamed model turns with the events as plain dicts: the hot path of every provider.

The SDK's typed methods convert each request through its TypedDict annotations and build a
pydantic object for every stream event; for a short turn that is about 40% of the client's CPU,
and in a batch the client's CPU is the limit. The stream readers here take dicts anyway
(``common.get_field``), so the streamed turn requests go through the SDK's generic
``client.post`` (documented for endpoints the SDK lacks) with ``cast_to=object``. Everything
else stays the SDK's: the same ``AsyncStream`` decodes the SSE, raises ``APIError`` for an error
object inside the stream, drains after ``[DONE]``, maps timeouts and broken connections; the same
request pipeline sends the auth, idempotency and platform headers and raises ``APIStatusError``
and friends for HTTP errors. Only the typed conversions are skipped: the body is the JSON the
``*_convert`` builders made, and events stay as the server sent them.

Each function mirrors one SDK method (noted), with the options that method sets.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import openai

_AUTH = {"bearer_auth": True}
_ASSISTANTS = {"OpenAI-Beta": "assistants=v2"}  # what the SDK's beta.threads methods add


async def _post(client: openai.AsyncOpenAI, path: str, body: dict[str, Any], **options: Any) -> Any:
    return await client.post(
        path,
        body=body,
        cast_to=object,
        stream=True,
        stream_cls=openai.AsyncStream[object],
        options={"security": _AUTH, **options},
    )


async def chat_stream(client: openai.AsyncOpenAI, body: dict[str, Any]) -> Any:
    """``chat.completions.create(**body)`` with ``stream=True`` in ``body``."""
    return await _post(client, "/chat/completions", body)


async def responses_stream(client: openai.AsyncOpenAI, body: dict[str, Any]) -> Any:
    """``responses.create(**body)`` with ``stream=True`` in ``body``."""
    return await _post(client, "/responses", body)


async def run_stream(client: openai.AsyncOpenAI, thread_id: str, body: dict[str, Any]) -> Any:
    """``beta.threads.runs.create(thread_id, **body)`` with ``stream=True`` in ``body``."""
    path = f"/threads/{_segment(thread_id, 'thread_id')}/runs"
    return await _post(client, path, body, headers=_ASSISTANTS, synthesize_event_and_data=True)


async def submit_stream(client: openai.AsyncOpenAI, thread_id: str, run_id: str, tool_outputs: list[Any]) -> Any:
    """``beta.threads.runs.submit_tool_outputs(run_id, thread_id=..., tool_outputs=..., stream=True)``."""
    path = f"/threads/{_segment(thread_id, 'thread_id')}/runs/{_segment(run_id, 'run_id')}/submit_tool_outputs"
    body = {"stream": True, "tool_outputs": tool_outputs}
    return await _post(client, path, body, headers=_ASSISTANTS, synthesize_event_and_data=True)


async def json_reply(stream: Any) -> dict[str, Any] | None:
    """The JSON object a server sent instead of the stream asked for (``content-type:
    application/json``; LLAMPHouse answers ``submit_tool_outputs`` with a Run), read and closed;
    None for a real stream, which is left untouched."""
    response = getattr(stream, "response", None)
    kind = response.headers.get("content-type", "") if response is not None else ""
    if not kind.split(";")[0].strip().lower().endswith("json"):
        return None
    try:
        body = json.loads(await response.aread())
    except ValueError:
        body = None
    finally:
        await stream.close()
    return body if isinstance(body, dict) else {}


def _segment(value: str, name: str) -> str:
    """An id as one URL path segment, refused when empty or a dot segment (as the SDK does)."""
    if not value:
        raise ValueError(f"Expected a non-empty value for `{name}` but received {value!r}")
    if value in (".", ".."):
        raise ValueError(f"{name} {value!r} is not a valid path segment")
    return quote(value, safe="")
