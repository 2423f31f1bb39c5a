"""Shared pieces of the three wire formats: SSE framing, OpenAI-style errors, ids, fragmenting.

Everything here is pure (no I/O), so the per-API builders stay small and testable.
"""

from __future__ import annotations

import json
import random
import re
import string
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

_ALNUM = string.ascii_letters + string.digits
_rng = random.SystemRandom()


def dumps(obj: Any) -> str:
    """Compact JSON, as OpenAI's servers write it (the recorded chunks use no spaces). A lone
    surrogate (scripted by a hostile-model test) goes out as its ``\\udcff`` escape, as JSON allows."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    if not text.isascii() and _SURROGATE.search(text):
        text = json.dumps(obj, separators=(",", ":"))
    return text


_SURROGATE = re.compile("[\ud800-\udfff]")


def new_id(prefix: str, length: int = 24, *, hex_only: bool = False) -> str:
    """``call_Ab3…``-style ids; the Responses API uses long lowercase-hex ids (``resp_67cc…``)."""
    alphabet = "0123456789abcdef" if hex_only else _ALNUM
    return prefix + "".join(_rng.choice(alphabet) for _ in range(length))


def now() -> int:
    return int(time.time())


@dataclass(frozen=True)
class Event:
    """One server-sent event. ``name`` None means no ``event:`` line (Chat Completions);
    ``data`` is a JSON-able object or a literal string such as ``[DONE]``."""

    data: Any
    name: str | None = None

    def encode(self) -> bytes:
        payload = self.data if isinstance(self.data, str) else dumps(self.data)
        head = f"event: {self.name}\n" if self.name is not None else ""
        return f"{head}data: {payload}\n\n".encode()


DONE = Event("[DONE]")


@dataclass
class ApiError(Exception):
    """An error answered as an OpenAI-style JSON body: ``{"error": {message, type, param, code}}``.

    ``headers`` lets script-level failures say ``x-should-retry: false`` so the SDK does not
    spend its retries (and seconds) on a bug in the test script."""

    status: int
    message: str
    type: str = "invalid_request_error"
    param: str | None = None
    code: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def body(self) -> dict:
        return error_body(self.message, self.type, self.param, self.code)


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def not_found(message: str, param: str | None = None) -> ApiError:
    return ApiError(404, message, param=param)


def bad_request(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


def split_fragments(text: str, parts: int) -> list[str]:
    """Cut ``text`` into ``parts`` non-empty pieces at evenly spaced points, wherever they fall
    (mid-word, mid-string, between an escape and its letter), as the recorded streams do."""
    if not text:
        return []
    parts = max(1, min(parts, len(text)))
    cuts = [round(i * len(text) / parts) for i in range(parts + 1)]
    return [text[a:b] for a, b in zip(cuts, cuts[1:]) if b > a]


_WORD = re.compile(r"\s*\S+|\s+")


def text_deltas(text: str) -> list[str]:
    """Small word-sized deltas with leading spaces (``"I'm"``, ``" unable"``), like the recording."""
    return _WORD.findall(text) or ([text] if text else [])


def estimate_tokens(text: str) -> int:
    """A stable, roughly realistic token count (4 characters a token) for usage fields."""
    return max(1, (len(text) + 3) // 4) if text else 0
