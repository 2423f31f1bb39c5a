"""Shared bits for the provider tests: settings, a fake clock, running a turn to its end, and one
whole conversation with the project's ScriptedServer."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any, AsyncIterator

from runner.calls import ToolResult
from runner.providers.base import ModelSettings, TurnResult
from runner.providers.factory import create_provider
from runner.scripted import ScriptedServer
from runner.workflow.model import ScriptedCall, ScriptedTurn

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


# --- one conversation with the project's ScriptedServer -------------------------------------------

APIS = ["chat", "responses", "assistants"]
TEMP_TOOL = {"name": "get_temp", "description": "Temperature", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
RAIN_TOOL = {**TEMP_TOOL, "name": "get_rain", "description": "Rain"}
SCRIPT = [
    ScriptedTurn(tool_calls=(ScriptedCall("get_temp", {"city": "Paris"}), ScriptedCall("get_rain", {"city": "Paris"}))),
    ScriptedTurn(text="It is ${{ outputs.get_temp }} with ${{ outputs.get_rain }} rain."),
]


def loop(server: ScriptedServer, api: str, clock: FakeClock | None = None, **overrides):
    """Send one message and answer every tool call with a canned output; return all events."""
    clock = clock or FakeClock()

    async def go():
        provider = create_provider(settings(api, server.base_url, tools=(TEMP_TOOL, RAIN_TOOL), **overrides),
                                   sleep=clock.sleep, now=clock.now)
        events = []
        try:
            turn = await collect(provider.send_message("Weather in Paris?"))
            events += turn
            while last_result(turn).status == "tool_calls":
                outputs = {"get_temp": "21C", "get_rain": "10%"}
                results = [ToolResult(c.call_id, c.name, outputs.get(c.name, "?")) for c in last_result(turn).tool_calls]
                turn = await collect(provider.submit_tool_outputs(results))
                events += turn
            return events
        finally:
            await provider.aclose()

    return run(go())
