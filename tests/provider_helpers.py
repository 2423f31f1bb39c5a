"""Shared bits for the provider tests: settings, a fake clock, running a turn to its end."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any, AsyncIterator

from runner.providers.base import ModelSettings, TurnResult

RECORDED = Path(__file__).resolve().parent / "fixtures" / "recorded"
API_KEY = "sk-test-canary-0123456789abcd"

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def settings(api: str, base_url: str, **overrides: Any) -> ModelSettings:
    values: dict[str, Any] = dict(api=api, model="gpt-test", base_url=base_url, api_key=API_KEY, timeout=5.0)
    values.update(overrides)
    return ModelSettings(**values)


class FakeClock:
    """``now`` and an async ``sleep`` that advances it instantly and records each wait."""

    def __init__(self, start: float = 1_800_000_000.0):
        self.t = start
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


async def collect(stream: AsyncIterator[Any]) -> list[Any]:
    return [event async for event in stream]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def last_result(events: list[Any]) -> TurnResult:
    assert events and isinstance(events[-1], TurnResult), events
    assert sum(isinstance(e, TurnResult) for e in events) == 1
    return events[-1]


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def parse_sse_data(body: bytes) -> list[Any]:
    """The JSON payloads of a Chat SSE body (up to ``[DONE]``), as dicts."""
    out = []
    for block in body.decode().replace("\r\n", "\n").split("\n\n"):
        data = "\n".join(line[5:].lstrip() for line in block.split("\n") if line.startswith("data:"))
        if not data:
            continue
        if data.startswith("[DONE]"):
            break
        out.append(json.loads(data))
    return out
