"""Ask before a tool acts: the approval gate's values and the prompter seam.

The gate sits inside the dispatcher, after a call's arguments are checked (a malformed call is
never put to anyone) and before its resolver runs. The workflow file's policy (``approval:`` per
tool, ``approvals:`` for the file, rules on argument values) answers first: run, refuse, or ask.
Asking goes through an injected ``Prompter``: the terminal, the command-line flags, a test case's
answers, or the paused-run store, so one gate serves a TTY, CI, ``flowrun test`` and ``resume``.

Calls are decided one after another in call order (parallel calls are asked one by one, never
merged into one approval), and nothing runs until every call of the round is decided: a round
with a call that must wait (``pause``) runs no tool at all, so a resumed run runs each tool once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, Sequence

from runner.calls import ToolCall

Verdict = Literal["auto", "ask", "deny"]  # what the file says about a call
Answer = Literal["approve", "deny", "pause", "unanswered"]  # what the prompter says
DecidedBy = Literal["prompt", "flag", "rule", "default", "case", "resume"]

PAUSED_EXIT_CODE = 4  # a run stopped to wait for an approval; `flowrun resume RUN_ID` continues it


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


class Prompter(Protocol):
    async def decide(self, request: ApprovalRequest) -> Decision: ...


class ApprovalPause(Exception):
    """Raised by the dispatcher when a round has a call that waits for a later decision
    (``--pause-on-approval``, JSONL mode): no tool of the round ran. ``calls`` is the whole
    round, in call order, so ``resume`` dispatches it again with the decisions given then."""

    def __init__(self, calls: Sequence[ToolCall], waiting: Sequence[ApprovalRequest]):
        super().__init__(f"{len(waiting)} tool call(s) wait for approval")
        self.calls = list(calls)
        self.waiting = list(waiting)


@dataclass
class Approvals:
    """What the command line decided up front: ``--approve TOOL`` (repeatable), ``--deny TOOL``
    (repeatable), ``--yes`` (approve everything that asks). A rule or tool set to ``deny`` in the
    file is never overridden by ``--yes``."""

    approve: frozenset[str] = field(default_factory=frozenset)
    deny: frozenset[str] = field(default_factory=frozenset)
    yes: bool = False
    pause: bool = False  # --pause-on-approval: an unanswered call pauses the run
