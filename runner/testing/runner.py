"""Run test cases through the real run path: the embedded scripted server speaks the chosen API's
wire protocol to the real provider code and ``openai`` client; the resolvers are the real ones."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from runner.errors import FlowrunError, WorkflowError
from runner.events import Event, RunCompleted, RunFailed, TextDelta, ToolCallCompleted, ToolCallRequested
from runner.loop import new_run_id
from runner.secret_sources import build_masker
from runner.settings import OFFLINE_KEY, Overrides, model_settings, render_text, resolve_inputs
from runner.sinks import FanOut
from runner.testing.expect import Mismatch, check
from runner.workflow.model import APIS, TestCase, Workflow


@dataclass
class CaseResult:
    file: str
    case: str
    api: str
    passed: bool
    duration_ms: float
    mismatches: list[Mismatch] = field(default_factory=list)
    error: str | None = None  # the run could not even start (invalid file, bad --var)

    @property
    def title(self) -> str:
        return f"{self.case} [{self.api}]"


def discover(paths: Sequence[str]) -> list[Path]:
    """Workflow files under the given files or folders (``*.yaml`` / ``*.yml``, sorted)."""
    found: list[Path] = []
    for raw in paths or ["workflows"]:
        p = Path(raw)
        if p.is_dir():
            found += sorted(q for q in p.rglob("*") if q.suffix in (".yaml", ".yml") and not q.name.endswith((".test.yaml", ".test.yml")))
        else:
            found.append(p)
    return found


class _Collector:
    def __init__(self) -> None:
        self.requested: list[ToolCallRequested] = []
        self.completed: list[ToolCallCompleted] = []
        self.text: list[str] = []
        self.end: RunCompleted | RunFailed | None = None

    def __call__(self, ev: Event) -> None:
        if isinstance(ev, ToolCallRequested):
            self.requested.append(ev)
        elif isinstance(ev, ToolCallCompleted):
            self.completed.append(ev)
        elif isinstance(ev, TextDelta):
            self.text.append(ev.text)
        elif isinstance(ev, (RunCompleted, RunFailed)):
            self.end = ev


async def run_case(
    workflow: Workflow,
    case: TestCase,
    api: str,
    *,
    mock_http: str = "declared",  # declared | all | none
    max_turns: int = 10,
    extra_sinks: Iterable = (),
) -> CaseResult:
    from runner.run_session import case_mocks, run_conversation, start_scripted_server

    started = time.monotonic()
    collector = _Collector()
    server = start_scripted_server(workflow, case)
    try:
        env = {workflow.model.api_key_env: OFFLINE_KEY}
        import os

        env = {**os.environ, **env}
        inputs = resolve_inputs(workflow, {k: str(v) for k, v in case.vars.items()})
        settings = model_settings(workflow, Overrides(api=api, base_url=server.base_url), inputs, env)
        masker = build_masker(workflow, env, None)
        message = render_text(case.input if case.input is not None else workflow.input, inputs, "input") or ""
        mocks = case_mocks(workflow, case, mock_http)
        emit = FanOut([collector, *extra_sinks], masker)
        outcome = await run_conversation(
            workflow, settings, [message], emit, run_id=new_run_id(), inputs=inputs, env=env,
            masker=masker, max_turns=max_turns, mock_http=mocks,
        )
    except FlowrunError as exc:
        return CaseResult(str(workflow.path), case.name, api, False, _ms(started), error=str(exc))
    finally:
        server.stop()
    expect = dict(case.expect)
    expect.setdefault("status", "completed")
    mismatches = check(
        expect,
        requested=collector.requested,
        completed=collector.completed,
        final_text=outcome.final_text,
        status=outcome.status,
    )
    if outcome.status != expect["status"] and outcome.message:
        mismatches.append(Mismatch("run", "no error", outcome.message))
    return CaseResult(str(workflow.path), case.name, api, not mismatches, _ms(started), mismatches)


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)


def apis_for(workflow: Workflow, choice: str | None) -> list[str]:
    if choice == "all":
        return list(APIS)
    return [choice or workflow.model.api]


async def run_file(path: Path, *, api: str | None, mock_http: str, name_filter: str | None = None):
    """Yield CaseResults for one file (a load failure is one failed result)."""
    from runner.workflow.validate import load_workflow

    try:
        workflow = load_workflow(path)
    except WorkflowError as exc:
        yield CaseResult(str(path), "(load)", "-", False, 0.0, error=str(exc))
        return
    for case in workflow.tests:
        if name_filter and name_filter not in case.name:
            continue
        for which in apis_for(workflow, api):
            yield await run_case(workflow, case, which, mock_http=mock_http)


def run_all(paths: Sequence[Path], *, api: str | None, mock_http: str, name_filter: str | None, on_result) -> list[CaseResult]:
    async def main() -> list[CaseResult]:
        results = []
        for path in paths:
            async for r in run_file(path, api=api, mock_http=mock_http, name_filter=name_filter):
                on_result(r)
                results.append(r)
        return results

    return asyncio.run(main())
