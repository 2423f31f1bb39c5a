"""Faults the scripted server injects, and the bookkeeping of which attempt gets which fault.

A Fault is plain data so tests can build lists of them and reuse them. Matching is by API, turn
index and (optionally) a path fragment; ``times`` limits a fault to the first N matching attempts
of each conversation's turn (or of the whole server with ``shared=True``), so "429 twice, then
success" and "drop once, then a clean retry" are one line each.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Mapping

KINDS = ("http_error", "drop_after", "stall", "error_event", "terminal", "bad_json")
# What ``terminal`` may end a turn with, per API.
TERMINALS = {
    "chat": ("length", "content_filter"),
    "responses": ("failed", "incomplete"),
    "assistants": ("failed", "expired", "cancelled", "incomplete"),
}


@dataclass(frozen=True, kw_only=True)
class Fault:
    """One injected failure.

    kind        http_error | drop_after | stall | error_event | terminal | bad_json
    turn        turn index it applies to; None: every turn
    api         chat | responses | assistants; None: all
    match       path fragment (e.g. "submit_tool_outputs"); with it the fault also applies to
                requests that carry no turn (GET /responses/{id}?stream=true, POST /threads, ...)
    times       how many matching attempts get it (per conversation turn); None: all of them
    shared      count attempts across all conversations instead of per conversation
    after       stream faults: how many events are sent first
    status, headers, body    http_error: the answer (body: dict/str/bytes; default OpenAI JSON)
    seconds, keepalive       stall: how long, and the interval of ``: keepalive`` comments (None: silence)
    partial_bytes            drop_after: bytes of the next event written before the drop
    terminal    terminal: failed | expired | cancelled | incomplete (Assistants),
                failed | incomplete (Responses), length | content_filter (Chat)
    code, message            error_event / terminal failed: the error reported

    On a non-streaming request, drop_after closes the connection (after ``partial_bytes`` of the
    body), stall delays the answer, bad_json garbles it; error_event does not apply there.
    """

    kind: str
    turn: int | None = None
    api: str | None = None
    match: str | None = None
    times: int | None = None
    shared: bool = False
    after: int = 0
    status: int = 500
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    seconds: float = 0.0
    keepalive: float | None = None
    partial_bytes: int = 0
    terminal: str | None = None
    code: str = "server_error"
    message: str = "The server had an error while processing your request. Sorry about that!"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; use one of {', '.join(KINDS)}")
        if self.kind == "terminal":
            allowed = sorted({t for ts in TERMINALS.values() for t in ts})
            if self.terminal not in allowed:
                raise ValueError(f"terminal fault needs terminal= one of {', '.join(allowed)}")

    def applies_to(self, api: str, turn: int | None, path: str) -> bool:
        if self.api is not None and self.api != api:
            return False
        if self.match is not None and self.match not in path:
            return False
        if turn is None:
            return self.match is not None and self.turn is None
        if self.turn is not None and self.turn != turn:
            return False
        if self.kind == "terminal" and self.terminal not in TERMINALS.get(api, ()):
            return False
        return True


@dataclass(frozen=True)
class ActiveFaults:
    """The faults that fire on one attempt."""

    faults: tuple[Fault, ...] = ()

    def first(self, kind: str) -> Fault | None:
        return next((f for f in self.faults if f.kind == kind), None)

    @property
    def http_error(self) -> Fault | None:
        return self.first("http_error")

    @property
    def terminal(self) -> str | None:
        f = self.first("terminal")
        return f.terminal if f else None

    @property
    def terminal_fault(self) -> Fault | None:
        return self.first("terminal")

    @property
    def error_event(self) -> Fault | None:
        return self.first("error_event")

    def stream_faults(self) -> list[Fault]:
        kinds = ("drop_after", "stall", "error_event", "bad_json")
        return sorted((f for f in self.faults if f.kind in kinds), key=lambda f: f.after)


class FaultBook:
    """Counts attempts per (fault, conversation, turn); thread-safe."""

    def __init__(self, faults: tuple[Fault, ...] | list[Fault] = ()):
        self.faults = tuple(faults)
        for f in self.faults:
            if not isinstance(f, Fault):
                raise TypeError(f"faults must be Fault objects, got {type(f).__name__}")
        self._counts: dict[tuple, int] = {}
        self._lock = threading.Lock()

    def fire(self, api: str, turn: int | None, path: str, conversation: Any) -> ActiveFaults:
        fired = []
        with self._lock:
            for i, f in enumerate(self.faults):
                if not f.applies_to(api, turn, path):
                    continue
                key = (i, None if f.shared else conversation, turn)
                n = self._counts.get(key, 0) + 1
                self._counts[key] = n
                if f.times is None or n <= f.times:
                    fired.append(f)
        return ActiveFaults(tuple(fired))
