"""Validate a workflow file and build the frozen ``Workflow`` from it.

load (safe YAML with marks) -> schema check -> semantic checks -> build. Every problem is collected
before anything is reported, so one run of ``flowrun validate`` shows them all. Nothing here imports
``openai``: validation must stay quick to start.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any

from runner.errors import Problem, WorkflowError
from runner.workflow.model import (
    HttpResolver,
    InputSpec,
    ModelSpec,
    PythonResolver,
    Resolver,
    ScriptedCall,
    ScriptedTurn,
    StaticResolver,
    TestCase,
    ToolSpec,
    Workflow,
)
from runner.workflow.schema_check import schema_problems
from runner.workflow.semantic import LITERAL_KEY, semantic_problems
from runner.workflow.yaml_loader import Document, load_file

NO_PARAMETERS = {"type": "object", "properties": {}}


def validate_file(path: str | PathLike[str], *, resolve: bool = False) -> tuple[Workflow | None, list[Problem]]:
    """Check a workflow file. Returns the Workflow (None if any problem is an error) and every
    problem found, warnings included, in file order. ``resolve`` also imports Python entrypoints,
    which runs their modules' code. Never raises for a bad file."""
    file = str(path)
    doc, problems = load_file(path, file=file)
    if doc is None:
        return None, problems
    if not isinstance(doc.data, dict):
        problems.append(doc.problem((), "the workflow must be a mapping of keys (version, name, model, tools, ...)",
                                    "start from workflows/weather.yaml"))
        return None, problems
    checked: list[Problem] = []
    for check in (lambda: schema_problems(doc),
                  lambda: semantic_problems(doc, folder=Path(path).parent, resolve=resolve)):
        try:
            checked += check()
        except Exception as e:  # a bug of ours must not become a traceback for the user
            checked.append(Problem(file, 0, 0, f"internal error while checking the file: {type(e).__name__}: {e}",
                                   "$", "please report this with the workflow file"))
    problems = _drop_repeats(problems, checked)
    problems.sort(key=lambda p: (p.line, p.column))
    if any(p.severity == "error" for p in problems):
        return None, problems
    try:
        return build_workflow(doc, Path(path)), problems
    except Exception as e:
        problems.append(Problem(file, 0, 0, f"internal error while reading the file: {type(e).__name__}: {e}",
                                "$", "please report this with the workflow file"))
        return None, problems


def _drop_repeats(loaded: list[Problem], checked: list[Problem]) -> list[Problem]:
    """One report per place for one root cause: after the loader refused something (a tag, a
    duplicate key) the later checks stay quiet about that value, and the scan for pasted keys stays
    quiet where another error (say ``unknown key 'api_key'``) already points."""
    refused = {p.path for p in loaded}
    flagged = {p.path for p in checked if p.severity == "error" and p.message != LITERAL_KEY}
    kept = [p for p in checked
            if p.path not in refused and not (p.message == LITERAL_KEY and p.path in flagged)]
    return loaded + kept


def load_workflow(path: str | PathLike[str], *, resolve: bool = False) -> Workflow:
    """The Workflow in ``path``; raises WorkflowError with every problem if it has any error."""
    workflow, problems = validate_file(path, resolve=resolve)
    if workflow is None:
        raise WorkflowError(problems)
    return workflow


def build_workflow(doc: Document, path: Path) -> Workflow:
    """Frozen spec objects from data that passed validation."""
    data = doc.data
    tools = tuple(_tool(doc, i, t) for i, t in enumerate(data.get("tools", [])))
    inputs = tuple(
        InputSpec(name, spec.get("description", ""), spec.get("default"), spec.get("required", False))
        for name, spec in data.get("inputs", {}).items()
    )
    tests = tuple(_test(doc, i, t) for i, t in enumerate(data.get("tests", [])))
    model = dict(data.get("model", {}))
    if "timeout" in model:
        model["timeout"] = float(model["timeout"])
    return Workflow(
        path=path,
        name=data["name"],
        model=ModelSpec(**model),
        tools=tools,
        version=data["version"],
        description=data.get("description", ""),
        instructions=data.get("instructions"),
        input=data.get("input"),
        inputs=inputs,
        tests=tests,
        source_sha256=doc.sha256,
    )


def _tool(doc: Document, i: int, t: dict[str, Any]) -> ToolSpec:
    return ToolSpec(
        name=t["name"],
        description=t["description"],
        parameters=t.get("parameters", NO_PARAMETERS),
        resolver=_resolver(t["resolve"]),
        timeout=float(t.get("timeout", 60.0)),
        strict=t.get("strict"),
        line=doc.position(("tools", i))[0],
    )


def _resolver(spec: dict[str, Any]) -> Resolver:
    if "static" in spec:
        return StaticResolver(spec["static"])
    if "python" in spec:
        return PythonResolver(spec["python"])
    http = dict(spec["http"])
    status = http.get("expect_status", ())
    http["expect_status"] = (status,) if isinstance(status, int) else tuple(status)
    http["allow_hosts"] = tuple(http.get("allow_hosts", ()))
    http["timeout"] = float(http.get("timeout", 30.0))
    return HttpResolver(**http)


def _test(doc: Document, i: int, t: dict[str, Any]) -> TestCase:
    turns = tuple(
        ScriptedTurn(
            tool_calls=tuple(ScriptedCall(c["name"], c.get("arguments", {})) for c in turn.get("tool_calls", [])),
            text=turn.get("text"),
        )
        for turn in t["turns"]
    )
    return TestCase(
        name=t["name"],
        turns=turns,
        input=t.get("input"),
        vars=t.get("vars", {}),
        expect=t.get("expect", {}),
        mock_http=t.get("mock_http", {}),
        line=doc.position(("tests", i))[0],
    )
