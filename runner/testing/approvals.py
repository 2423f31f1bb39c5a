"""A test case answers approvals: the ``Prompter`` a case run is given.

A case says, per tool, how a call that asks is answered (``approvals:`` in the case). A call it
does not answer is refused, as it would be without a terminal, and remembered, so the case fails
with the key its author has to add, rather than passing on a refusal nobody chose.
"""

from __future__ import annotations

from typing import Mapping

from runner.tools.approval import ApprovalRequest, Decision
from runner.workflow.model import CaseAnswer


class CasePrompter:
    """Answers from one case's ``approvals:``; ``unanswered`` lists the tools it was asked about
    and had no answer for, in the order asked."""

    def __init__(self, answers: Mapping[str, CaseAnswer]):
        self.answers = dict(answers)
        self.unanswered: list[str] = []

    async def decide(self, request: ApprovalRequest) -> Decision:
        answer = self.answers.get(request.tool)
        if answer is None:
            if request.tool not in self.unanswered:
                self.unanswered.append(request.tool)
            return Decision("unanswered", "case")
        if answer.answer == "approve":
            return Decision("approve", "case")
        return Decision("deny", "case", reason=answer.reason)
