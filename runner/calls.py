"""What a model asked a tool to do, what the tool gave back, and what a person decided about it:
the values the run loop passes between providers, the dispatcher and the prompters. Neutral
ground, so none of them imports another."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


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


Answer = Literal["approve", "deny", "pause", "unanswered"]  # what a prompter says
DecidedBy = Literal["prompt", "flag", "rule", "default", "case", "resume"]


@dataclass(frozen=True)
class ApprovalRequest:
    """One call put to the prompter: everything a person needs to say yes or no."""

    call: ToolCall
    tool: str
    arguments: dict[str, Any]  # checked against the tool's schema, bound arguments filled in
    target: str | None = None  # for an http tool: the exact method and URL it will call
    why: str = ""  # why it asks: "http POST asks by default", "rule 2 of tool 'x'"


@dataclass(frozen=True)
class Decision:
    """A prompter's answer for one call."""

    answer: Answer
    by: DecidedBy
    reason: str | None = None  # a refusal's reason, given to the model as the tool's output
    always: bool = False  # "always for this tool in this run"


@dataclass(frozen=True)
class Approvals:
    """What the command line decided up front: ``--approve TOOL`` (repeatable), ``--deny TOOL``
    (repeatable), ``--yes`` (approve everything that asks). A rule or tool set to ``deny`` in the
    file is never overridden by ``--yes``."""

    approve: frozenset[str] = field(default_factory=frozenset)
    deny: frozenset[str] = field(default_factory=frozenset)
    yes: bool = False
    pause: bool = False  # --pause-on-approval: an unanswered call pauses the run
