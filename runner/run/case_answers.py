"""A test case answers approvals: the ``Prompter`` of a scripted run.

A case says, per tool, how a call that asks is answered (``approvals:`` in the case). ``flowrun
test``, ``flowrun run --offline`` and ``flowrun batch --offline`` all replay a case, so all three
take its answers from here. A call the case does not answer goes to the ``fallback`` prompter (the
terminal of an offline run), else is refused, as it would be without a terminal, and remembered:
``flowrun test`` then fails the case with the key its author has to add, rather than passing on a
refusal nobody chose.
"""

from __future__ import annotations

from typing import Any, Mapping

from runner.tools.approval import ApprovalRequest, Decision, Prompter
from runner.workflow.model import CaseAnswers


class CasePrompter:
    """Answers from one case's ``approvals:`` (one answer for every call of a tool, or one per
    call in the order asked); ``unanswered`` lists the tools it was asked about and had no answer
    for (nor a fallback), in the order asked, each with how many per-call answers the case gave."""

    def __init__(self, answers: Mapping[str, CaseAnswers], fallback: Prompter | None = None):
        self.answers = dict(answers)
        self.fallback = fallback
        self.unanswered: list[tuple[str, int]] = []
        self._asked: dict[str, int] = {}  # tool -> its calls put to the case so far

    async def decide(self, request: ApprovalRequest) -> Decision:
        n = self._asked.get(request.tool, 0)
        self._asked[request.tool] = n + 1
        given = self.answers.get(request.tool)
        answer = given.for_call(n) if given is not None else None
        if answer is None:
            if self.fallback is not None:
                return await self.fallback.decide(request)
            if request.tool not in [tool for tool, _ in self.unanswered]:
                self.unanswered.append((request.tool, len(given.per_call) if given is not None else 0))
            return Decision("unanswered", "case")
        if answer.answer == "approve":
            return Decision("approve", "case")
        return Decision("deny", "case", reason=answer.reason)


def case_prompter(plan: Any, fallback: Prompter | None = None) -> Prompter | None:
    """Who answers approvals in ``plan``'s run: an offline run's case first (``fallback`` for
    what it does not answer), else ``fallback``."""
    if plan.offline is None or not plan.offline.case.approvals:
        return fallback
    return CasePrompter(plan.offline.case.approvals, fallback)
