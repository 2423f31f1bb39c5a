"""Checking a provider snapshot read back from the run log: the file can be edited, so every
field is checked for its type and shape before a provider takes it up, and a bad one is one
clear error (``SnapshotError``), never a traceback or a request built from junk."""

from __future__ import annotations

import re
from typing import Any, Sequence

from runner.calls import ToolCall
from runner.errors import FlowrunError

SNAPSHOT_VERSION = 1
_SERVER_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,256}$")  # ids that go into URL paths
MAX_ID_CHARS = 512


class SnapshotError(FlowrunError):
    """A paused run's saved state is missing or malformed (the run log was edited or damaged)."""

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(f"the paused run's saved state is unusable: {message}",
                         hint="the run log may have been edited or damaged; run the workflow again")


def header(api: str, pending: Sequence[ToolCall]) -> dict[str, Any]:
    """The part every API's snapshot shares: which API, its format, the calls to answer."""
    return {"api": api, "version": SNAPSHOT_VERSION,
            "pending": [{"call_id": c.call_id, "name": c.name, "arguments": c.arguments} for c in pending]}


def opened(snapshot: Any, api: str) -> dict[str, Any]:
    """``snapshot`` checked as a snapshot of ``api`` in a format this flowrun reads."""
    if not isinstance(snapshot, dict):
        raise SnapshotError(f"expected an object, got {type(snapshot).__name__}")
    if snapshot.get("api") != api:
        raise SnapshotError(f"it was made on the {text(snapshot.get('api'))} API, and the run now uses {api}")
    if snapshot.get("version") != SNAPSHOT_VERSION:
        raise SnapshotError(f"format {text(snapshot.get('version'))} is not one this flowrun reads "
                            f"({SNAPSHOT_VERSION})")
    return snapshot


def calls(value: Any, where: str = "pending") -> tuple[ToolCall, ...]:
    """A list of ``{call_id, name, arguments}`` as calls; at least one, ids unique."""
    if not isinstance(value, list) or not value:
        raise SnapshotError(f"{where} must be a non-empty list of tool calls")
    found: list[ToolCall] = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise SnapshotError(f"{where}[{i}] is not an object")
        call_id, name, arguments = (string(item, k, f"{where}[{i}]") for k in ("call_id", "name", "arguments"))
        if not call_id or len(call_id) > MAX_ID_CHARS:
            raise SnapshotError(f"{where}[{i}].call_id is empty or too long")
        found.append(ToolCall(call_id, name, arguments))
    if len({c.call_id for c in found}) != len(found):
        raise SnapshotError(f"{where} repeats a call id")
    return tuple(found)


def string(obj: dict, key: str, where: str = "") -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise SnapshotError(f"{where + '.' if where else ''}{key} must be text, got {kind(value)}")
    return value


def server_id(obj: dict, key: str, *, optional: bool = False) -> str | None:
    """An id the server gave (thread, run, response): it goes into URL paths, so only the
    characters such ids are made of."""
    value = obj.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not _SERVER_ID.match(value):
        raise SnapshotError(f"{key} is not a server id ({text(value)})")
    return value


def number(obj: dict, key: str) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value < 0:
        raise SnapshotError(f"{key} must be a number of seconds, got {text(value)}")
    return value


def flag(obj: dict, key: str) -> bool:
    value = obj.get(key, False)
    if not isinstance(value, bool):
        raise SnapshotError(f"{key} must be true or false, got {text(value)}")
    return value


def objects(obj: dict, key: str) -> list[dict[str, Any]]:
    """A list of JSON objects (messages, input items), each copied."""
    value = obj.get(key)
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise SnapshotError(f"{key} must be a list of objects")
    return [dict(v) for v in value]


def kind(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__


def text(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:60] + "…"
