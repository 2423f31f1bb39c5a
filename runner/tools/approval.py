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

from typing import Literal, Protocol, Sequence

from runner.calls import ApprovalRequest, Approvals, Decision, ToolCall  # noqa: F401 - re-exported

Verdict = Literal["allow", "ask", "deny"]  # what the file says about a call

PAUSED_EXIT_CODE = 4  # a run stopped to wait for an approval; `flowrun resume RUN_ID` continues it


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
