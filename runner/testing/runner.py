"""Run test cases through the real run path: the embedded scripted server speaks the chosen API's
wire protocol to the real provider code and ``openai`` client; the resolvers are the real ones.

Nothing a case does may stop the others: a file that does not load, a ``vars`` value an input
refuses, even a bug of ours, each becomes one failed result with its message.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from runner.workflow.discover import discover
from runner.errors import FlowrunError, UsageError, WorkflowError
from runner.events import (
    ApprovalDecided,
    Event,
    RunCompleted,
    RunFailed,
    TextDelta,
    ToolCallCompleted,
    ToolCallRequested,
)
from runner.run import offline as offline_mode
from runner.run.offline import MOCK_MODES
from runner.run.plan import NoMessage, RunOptions, prepare
from runner.jsonpointer import MISSING
from runner.run.case_answers import CasePrompter
from runner.testing.expect import Mismatch, check, schema_mismatch
from runner.workflow.model import APIS, TestCase, Workflow

NO_TURN = "scripted model has no turn"  # what the scripted server says when a case's turns run out


@dataclass
class CaseResult:
    file: str  # where the case is written: the workflow, or its NAME.test.yaml
    case: str
    api: str  # "" when the file could not be loaded
    passed: bool
    duration_ms: float
    mismatches: list[Mismatch] = field(default_factory=list)
    error: str | None = None  # the case could not run: invalid file, bad vars, internal error
    problems: list = field(default_factory=list)  # the file's Problems when it could not be loaded
    line: int = 0  # where the case starts in ``file``

    @property
    def title(self) -> str:
        return f"{self.case} [{self.api}]" if self.api else self.case

    @property
    def nodeid(self) -> str:
        """``workflows/weather.yaml::both tools [responses]``, as pytest names a test."""
        return f"{self.file}::{self.title}" if self.api else self.file

    def report(self) -> str:
        """Why the case failed, for a person: the error, or one block per mismatch."""
        if self.error:
            return self.error
        return "\n".join(m.format() for m in self.mismatches)


class _Collector:
    def __init__(self) -> None:
        self.requested: list[ToolCallRequested] = []
        self.completed: list[ToolCallCompleted] = []
        self.text: list[str] = []
        self.refused: set[str] = set()  # call ids the approval gate refused
        self.end: RunCompleted | RunFailed | None = None

    def __call__(self, ev: Event) -> None:
        if isinstance(ev, ToolCallRequested):
            self.requested.append(ev)
        elif isinstance(ev, ToolCallCompleted):
            self.completed.append(ev)
        elif isinstance(ev, TextDelta):
            self.text.append(ev.text)
        elif isinstance(ev, ApprovalDecided) and ev.decision == "denied":
            self.refused.add(ev.call_id)
        elif isinstance(ev, (RunCompleted, RunFailed)):
            self.end = ev


def case_file(workflow: Workflow, case: TestCase) -> str:
    """The file a case is written in (cases from a NAME.test.yaml know it)."""
    return getattr(case, "file", "") or str(workflow.path)


async def run_case(
    workflow: Workflow,
    case: TestCase,
    api: str,
    *,
    mock_http: str = "declared",
    max_turns: int = 10,
    extra_sinks: Iterable = (),
    allow_python: bool = True,
) -> CaseResult:
    """Play one case on one API and check its expectations."""
    from runner.run.conversation import run_plan

    started = time.monotonic()
    file = case_file(workflow, case)
    collector = _Collector()
    prompter = CasePrompter(case.approvals)  # the case answers the calls that ask

    def failed(error: str) -> CaseResult:
        return CaseResult(file, case.name, api, False, _ms(started), error=error, line=case.line)

    try:
        offline = offline_mode.start(workflow, case, mock_http)
    except Exception as exc:  # noqa: BLE001 - reported as this case's failure
        return failed(f"the scripted model server did not start: {type(exc).__name__}: {exc}")
    with offline:
        try:
            options = RunOptions(api=api, max_turns=max_turns, require_env=False, allow_python=allow_python)
            plan = prepare(workflow, options, env=os.environ, offline=offline)
            end = await run_plan(plan, [collector, *extra_sinks], prompter=prompter)
        except NoMessage:
            return failed(f"the case has no user message: give it `input:`, or set `input:` in {workflow.path}")
        except FlowrunError as exc:
            return failed(str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug must fail this case, not the whole run
            return failed(f"internal error: {type(exc).__name__}: {exc}")
    if end.status == "interrupted":  # the run loop turned Ctrl-C into this run's end: stop them all (exit 130)
        raise KeyboardInterrupt
    expect = dict(case.expect)
    expect.setdefault("status", "completed")
    why = end.message
    if NO_TURN in why:
        why += "; the case's turns ran out: end them with a text turn, the model's answer"
    mismatches = check(
        expect,
        requested=collector.requested,
        completed=collector.completed,
        final_text=end.final_text,
        status=end.status,
        message=why,
        output=end.output if workflow.output is not None and end.status == "completed" else MISSING,
        refused=collector.refused,
        unanswered=prompter.unanswered,
    )
    if workflow.output is not None and expect["status"] == "completed" and end.status == "completed":
        mismatches += schema_mismatch(workflow.output.schema, end.output)
    return CaseResult(file, case.name, api, not mismatches, _ms(started), mismatches, line=case.line)


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)


def apis_for(workflow: Workflow, choice: str | None) -> list[str]:
    if choice == "all":
        return list(APIS)
    return [choice or workflow.model.api]


def selected(file: str, case: TestCase, name_filter: str | None) -> bool:
    """``-k TEXT``: the case's ``file::name`` contains TEXT, ignoring case (as pytest's -k does)."""
    return not name_filter or name_filter.lower() in f"{file}::{case.name}".lower()


async def run_file(path: Path, *, api: str | None, mock_http: str, name_filter: str | None = None,
                   allow_python: bool = True):
    """Yield CaseResults for one workflow file and its test file (a load failure is one failed
    result)."""
    from runner.workflow.validate import load_workflow

    try:
        workflow = load_workflow(path)
    except WorkflowError as exc:
        yield CaseResult(str(path), "(could not be loaded)", "", False, 0.0, error=str(exc), problems=exc.problems)
        return
    for case in workflow.tests:
        if not selected(case_file(workflow, case), case, name_filter):
            continue
        for which in apis_for(workflow, api):
            yield await run_case(workflow, case, which, mock_http=mock_http, allow_python=allow_python)


def run_all(
    paths: Sequence[Path],
    *,
    api: str | None,
    mock_http: str = "declared",
    name_filter: str | None = None,
    on_result: Callable[[Path, CaseResult], None] = lambda path, result: None,
    allow_python: bool = True,
) -> list[CaseResult]:
    """Every selected case of every file, in order; ``on_result(workflow_path, result)`` as each ends."""
    if mock_http not in MOCK_MODES:
        raise ValueError(f"mock_http must be one of {MOCK_MODES}")

    async def main() -> list[CaseResult]:
        results = []
        for path in paths:
            async for r in run_file(path, api=api, mock_http=mock_http, name_filter=name_filter,
                                    allow_python=allow_python):
                on_result(path, r)
                results.append(r)
        return results

    return asyncio.run(main())
