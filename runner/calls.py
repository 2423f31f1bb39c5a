"""What a model asked a tool to do and what the tool gave back: the values the run loop passes
between providers and the dispatcher. Neutral ground, so neither imports the other."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ToolCall:
    """One function call the model asked for, its arguments still the raw JSON text."""

    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ToolResult:
    """What we send back for one call. ``output`` is always a string."""

    call_id: str
    name: str
    output: str
    is_error: bool = False
    duration_ms: float = 0.0
    refused: bool = False  # not approved: the output says so; not a tool error
