"""Helpers shared by the test_scripted_* files (no tests here).

The SSE reader below is written from the SSE spec, independently of the server's encoder, so the
wire-level tests do not check the server against itself.
"""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel

from runner.workflow.model import ScriptedCall, ScriptedTurn
from support.paths import RECORDED



def recorded_chat_files() -> list[Path]:
    files = sorted((RECORDED / "chat").glob("*.sse"))
    assert files, f"no recorded streams in {RECORDED / 'chat'}: they ship with the repository"
    return files


def parse_sse(text: str) -> list[tuple[str | None, str]]:
    """(event name or None, data) per event; comments ignored, multi-line data joined."""
    events, name, data = [], None, []
    for line in text.replace("\r\n", "\n").split("\n"):
        if line == "":
            if data:
                events.append((name, "\n".join(data)))
            name, data = None, []
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
    return events


def call(base_url: str, method: str, path: str, body: Any = None, headers: dict | None = None):
    """(status, lower-case headers, raw body text) from one plain HTTP request."""
    url = urlsplit(base_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    payload = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else None
    all_headers = {"content-type": "application/json", **(headers or {})}
    try:
        conn.request(method, url.path + path, body=payload, headers=all_headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read().decode()
    finally:
        conn.close()


def stream(base_url: str, path: str, body: Any, method: str = "POST") -> list[tuple[str | None, Any]]:
    """Events of an SSE response; JSON data parsed, ``[DONE]`` kept as the string."""
    status, headers, text = call(base_url, method, path, body)
    assert status == 200, text
    assert headers["content-type"].startswith("text/event-stream")
    return [(n, d if d == "[DONE]" else json.loads(d)) for n, d in parse_sse(text)]


def unknown_fields(model: Any, path: str = "$") -> list[str]:
    """Every key the SDK type does not declare, at any depth (the SDK models allow extras)."""
    found = []
    if isinstance(model, BaseModel):
        for key in model.model_extra or {}:
            found.append(f"{path}.{key}")
        for name in type(model).model_fields:
            found += unknown_fields(getattr(model, name), f"{path}.{name}")
    elif isinstance(model, (list, tuple)):
        for i, item in enumerate(model):
            found += unknown_fields(item, f"{path}[{i}]")
    elif isinstance(model, dict):
        for k, v in model.items():
            found += unknown_fields(v, f"{path}.{k}")
    return found


def shape(value: Any) -> Any:
    """The structure of a JSON value with the leaves replaced by their type."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return type(value).__name__


def collapse(items: list) -> list:
    """Consecutive equal items reduced to one (the number of fragments is not a shape)."""
    out: list = []
    for item in items:
        if not out or out[-1] != item:
            out.append(item)
    return out


def tool_turn(*calls: tuple[str, Any]) -> ScriptedTurn:
    return ScriptedTurn(tool_calls=tuple(ScriptedCall(n, a) for n, a in calls))


def text_turn(text: str) -> ScriptedTurn:
    return ScriptedTurn(text=text)


CHAT_TOOLS = [
    {"type": "function", "function": {"name": n, "parameters": {"type": "object", "properties": {
        "city": {"type": "string"}}}}} for n in ("get_temp", "get_rain")
]
RESPONSES_TOOLS = [
    {"type": "function", "name": n, "strict": False, "parameters": {"type": "object", "properties": {
        "city": {"type": "string"}}}} for n in ("get_temp", "get_rain")
]
