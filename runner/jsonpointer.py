"""RFC 6901 JSON Pointers (``/current/temperature_2m``, ``/a/0/b~1c``), used by the HTTP tool's
``extract``, test expectations and ``$ref`` checks: one reading of the standard everywhere."""

from __future__ import annotations

from typing import Any


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


def resolve(document: Any, pointer: str) -> Any:
    """The value ``pointer`` names in ``document``, or MISSING (also for a malformed pointer).
    Array indexes are decimal without leading zeros, as the RFC says."""
    if pointer == "":
        return document
    if not pointer.startswith("/"):
        return MISSING
    value = document
    for raw in pointer[1:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(value, dict) and token in value:
            value = value[token]
        elif (
            isinstance(value, list)
            and token.isdigit()
            and (token == "0" or not token.startswith("0"))
            and int(token) < len(value)
        ):
            value = value[int(token)]
        else:
            return MISSING
    return value
