"""Turning whatever a tool returns into the one string the model receives.

Serialization is deterministic and documented, so the same return value always gives the same
output (tests compare outputs as text):

- ``str`` is sent as is; everything else becomes compact JSON (``ensure_ascii=False``), ``None``
  included (``null``).
- ``datetime``/``date``/``time``: ISO 8601. ``Decimal``: its exact decimal text, as a string.
  ``bytes``: decoded as UTF-8 with invalid bytes replaced. ``set``/``frozenset``: a list sorted by
  each item's JSON text. ``Enum``: its value. dataclasses: their fields. ``Path`` and any other
  object: ``str(obj)``. Mapping keys that JSON cannot hold are turned into text.
- NaN and ±Infinity (not JSON) become ``null``.
- A value that refers to itself cannot be serialized and becomes an error output.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import json
import math
from decimal import Decimal
from typing import Any, Mapping

TRUNCATION_MARKER = "…[truncated {n} chars]"
_MAX_DEPTH = 200


class ToolFailure(Exception):
    """A tool could not produce an output. The message (without "error: ") goes to the model."""


def to_output(value: Any) -> str:
    """The text for a tool's return value. Raises ToolFailure when it cannot be serialized."""
    if isinstance(value, str):
        return value
    try:
        plain = _plain(value, set(), 0)
        return json.dumps(plain, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (ValueError, TypeError, RecursionError) as e:
        raise ToolFailure(f"the tool returned a value that cannot be turned into JSON ({e})") from None


def _plain(value: Any, seen: set[int], depth: int) -> Any:
    """A JSON-ready copy of ``value``, following the rules in the module docstring."""
    if depth > _MAX_DEPTH:
        raise ValueError(f"nested more than {_MAX_DEPTH} levels deep")
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, enum.Enum):
        return _plain(value.value, seen, depth + 1)
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, (Mapping, list, tuple, set, frozenset)) or _is_dataclass(value):
        if id(value) in seen:
            raise ValueError("it contains a reference to itself")
        seen.add(id(value))
        try:
            if _is_dataclass(value):
                value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
            if isinstance(value, Mapping):
                return {_key(k): _plain(v, seen, depth + 1) for k, v in value.items()}
            items = [_plain(v, seen, depth + 1) for v in value]
            if isinstance(value, (set, frozenset)):
                items.sort(key=lambda v: json.dumps(v, sort_keys=True, ensure_ascii=False))
            return items
        finally:
            seen.discard(id(value))
    return str(value)


def _is_dataclass(value: Any) -> bool:
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, (bool, int, float)):
        return json.dumps(key)
    return str(_plain(key, set(), 0)) if not isinstance(key, (tuple, frozenset)) else str(key)


def truncate(text: str, limit: int) -> str:
    """At most ``limit`` characters of ``text`` followed by a marker saying how much was cut."""
    if limit <= 0 or len(text) <= limit:
        return text
    return text[:limit] + TRUNCATION_MARKER.format(n=len(text) - limit)


def error_text(message: str) -> str:
    """The output for a failed call: always starts with "error: "."""
    return message if message.startswith("error: ") else f"error: {message}"
