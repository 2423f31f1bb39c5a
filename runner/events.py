"""The normalized event vocabulary: what every provider's stream becomes.

These events are a public contract: ``flowrun -o jsonl`` prints them one per line, the run log
stores them, and ``schemas/events.schema.json`` describes them. Add fields, never rename them.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Literal, Union


def _now() -> float:
    return round(time.time(), 6)


@dataclass(frozen=True)
class _Event:
    type: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {"type": self.type, **data}


@dataclass(frozen=True)
class RunStarted(_Event):
    type: ClassVar[str] = "run.started"
    run_id: str
    workflow: str
    api: str
    model: str
    input: str
    offline: bool = False
    workflow_sha256: str = ""  # of the file's bytes: which version of the workflow ran
    ts: float = field(default_factory=_now)


@dataclass(frozen=True)
class TurnStarted(_Event):
    type: ClassVar[str] = "turn.started"
    turn: int
    ts: float = field(default_factory=_now)


@dataclass(frozen=True)
class TextDelta(_Event):
    type: ClassVar[str] = "text.delta"
    text: str
    ts: float = field(default_factory=_now)


@dataclass(frozen=True)
class ToolCallRequested(_Event):
    type: ClassVar[str] = "tool_call.requested"
    call_id: str
    name: str
    arguments: str  # the raw JSON text the model sent
    ts: float = field(default_factory=_now)


@dataclass(frozen=True)
class ToolCallCompleted(_Event):
    type: ClassVar[str] = "tool_call.completed"
    call_id: str
    name: str
    output: str
    is_error: bool
    duration_ms: float
    ts: float = field(default_factory=_now)


@dataclass(frozen=True)
class TurnCompleted(_Event):
    type: ClassVar[str] = "turn.completed"
    turn: int
    status: str  # "tool_calls" when the model asked for tools, else the API's final status
    usage: dict[str, int] | None = None
    ts: float = field(default_factory=_now)


@dataclass(frozen=True)
class Notice(_Event):
    """Something a person should know that is not part of the conversation (retries, banners)."""

    type: ClassVar[str] = "notice"
    level: Literal["debug", "info", "warning", "error"]  # debug: details shown with -v only
    message: str
    ts: float = field(default_factory=_now)


@dataclass(frozen=True)
class RunCompleted(_Event):
    """The run ended well. With ``RunFailed``, the one record of how a run ended: callers read it."""

    type: ClassVar[str] = "run.completed"
    exit_code: ClassVar[int] = 0  # not fields: so a caller reads either end the same way
    message: ClassVar[str] = ""
    run_id: str
    status: str  # always "completed"
    final_text: str
    turns: int
    tool_calls: int
    usage: dict[str, int] | None
    duration_ms: float
    ts: float = field(default_factory=_now)
    output: Any = None  # the parsed final answer when the workflow has an output schema


@dataclass(frozen=True)
class RunFailed(_Event):
    """The run ended any other way, including a crash or Ctrl-C outside a turn (then ``turns``
    counts the turns before it), so every sink sees how each run ended."""

    type: ClassVar[str] = "run.failed"
    run_id: str
    status: str  # failed | expired | cancelled | incomplete | max_turns | invalid_output | paused | tool_error | empty_answer | unknown_tool | output_failed | error | interrupted | crashed
    message: str
    exit_code: int
    final_text: str
    turns: int
    tool_calls: int
    usage: dict[str, int] | None
    duration_ms: float
    ts: float = field(default_factory=_now)


@dataclass(frozen=True)
class ApprovalRequested(_Event):
    """A tool call waits for a person's yes or no (the file says to ask)."""

    type: ClassVar[str] = "approval.requested"
    call_id: str
    name: str
    arguments: str  # the checked arguments as JSON text, bound ones filled in
    target: str  # for an http tool the method and URL it will call, else ""
    why: str  # why this call asks: the tool's setting, a rule, the file's default
    ts: float = field(default_factory=_now)


@dataclass(frozen=True)
class ApprovalDecided(_Event):
    """The answer for one call: approved or denied, and who or what decided."""

    type: ClassVar[str] = "approval.decided"
    call_id: str
    name: str
    decision: str  # approved | denied | paused
    by: str  # prompt | flag | rule | default | case | resume
    reason: str  # a refusal's reason (what the model is told), else ""
    ts: float = field(default_factory=_now)


@dataclass(frozen=True)
class RunPaused(_Event):
    """The run stopped to wait for approvals (``--pause-on-approval``, JSONL mode): no tool of
    the round ran. ``state`` is what ``flowrun resume`` needs to go on (opaque: the provider's
    snapshot and the run's settings); the ``run.failed`` with status "paused" follows."""

    type: ClassVar[str] = "run.paused"
    run_id: str
    waiting: list[dict[str, str]]  # {call_id, name} of each call that waits for a decision
    calls: list[dict[str, str]]  # the whole round, {call_id, name, arguments}, in call order
    resume: str  # the command that continues the run
    state: dict[str, Any]
    ts: float = field(default_factory=_now)


@dataclass(frozen=True)
class RunResumed(_Event):
    """``flowrun resume`` took up a paused run: the same run id goes on from here."""

    type: ClassVar[str] = "run.resumed"
    run_id: str
    approve: list[str]  # --approve TOOL, as given
    deny: list[str]  # --deny TOOL, as given
    yes: bool  # --yes
    workflow_sha256: str  # of the file now: differs from run.started's only with --force-changed-file
    ts: float = field(default_factory=_now)


ALL_EVENTS = (
    RunStarted,
    TurnStarted,
    TextDelta,
    ToolCallRequested,
    ToolCallCompleted,
    ApprovalRequested,
    ApprovalDecided,
    TurnCompleted,
    Notice,
    RunPaused,
    RunResumed,
    RunCompleted,
    RunFailed,
)
RunEnd = Union[RunCompleted, RunFailed]  # the terminal event: the run's outcome
Event = Union[ALL_EVENTS]  # type: ignore[valid-type]
EVENT_TYPES: dict[str, type] = {cls.type: cls for cls in ALL_EVENTS}
