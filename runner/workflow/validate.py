"""Validate a workflow file and build the frozen ``Workflow`` from it.

load (safe YAML with marks) -> schema check -> semantic checks -> build. Every problem is collected
before anything is reported, so one run of ``flowrun validate`` shows them all. Nothing here imports
``openai``: validation must stay quick to start.

A workflow ``NAME.yaml`` may keep test cases beside it in ``NAME.test.yaml`` (or ``.test.yml``), a
file with only ``tests:``. It is loaded, checked with the same rigor (its own line numbers, tool
names against the workflow) and its cases follow the workflow's own in ``Workflow.tests``. Given a
test file, ``validate_file`` checks it against its workflow and returns that workflow.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from os import PathLike
from pathlib import Path
import re
from typing import Any

from runner.errors import Problem, WorkflowError
from runner.workflow.model import (
    ApprovalRule,
    ApprovalSpec,
    HttpResolver,
    InputSpec,
    McpOverride,
    McpServerSpec,
    McpSource,
    ModelSpec,
    CaseAnswer,
    CaseAnswers,
    PythonResolver,
    Resolver,
    RunPolicies,
    ScriptedCall,
    ScriptedTurn,
    StaticResolver,
    TestCase,
    OutputSpec,
    ToolSpec,
    Workflow,
    without_bound,
)
from runner.workflow.schema_check import cases_schema_problems, schema_problems
from runner.workflow.semantic import LITERAL_KEY, semantic_problems, sibling_problems
from runner.workflow.yaml_loader import Document, load_file

NO_PARAMETERS = {"type": "object", "properties": {}}
TEST_SUFFIXES = (".test.yaml", ".test.yml")
WORKFLOW_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class LocatedTestCase(TestCase):
    """A TestCase that knows the file it is written in: the workflow, or its NAME.test.yaml."""

    file: str = ""


def is_test_file(path: str | PathLike[str]) -> bool:
    return Path(path).name.endswith(TEST_SUFFIXES)


def sibling_test_files(workflow_path: str | PathLike[str]) -> list[Path]:
    """The sibling test files of a workflow that exist (normally none or one)."""
    p = Path(workflow_path)
    if is_test_file(p) or p.suffix not in WORKFLOW_SUFFIXES:
        return []
    return [q for q in (p.with_name(p.stem + s) for s in TEST_SUFFIXES) if q.is_file()]


def workflow_for(test_path: str | PathLike[str]) -> Path | None:
    """The workflow a test file belongs to (``weather.test.yaml`` -> ``weather.yaml``), if it exists."""
    p = Path(test_path)
    stem = next((p.name[: -len(s)] for s in TEST_SUFFIXES if p.name.endswith(s)), None)
    if not stem:
        return None
    return next((q for q in (p.with_name(stem + s) for s in WORKFLOW_SUFFIXES) if q.is_file()), None)


def validate_file(path: str | PathLike[str], *, resolve: bool = False) -> tuple[Workflow | None, list[Problem]]:
    """Check a workflow file (with its NAME.test.yaml, if any) or a test file (with its workflow).
    Returns the Workflow (None if any problem is an error) and every problem found, warnings
    included, in file order. ``resolve`` also imports Python entrypoints, which runs their
    modules' code. Never raises for a bad file."""
    if is_test_file(path):
        return _validate_test_file(str(path), resolve=resolve)
    return _validate(str(path), resolve=resolve)


def _validate(file: str, *, resolve: bool) -> tuple[Workflow | None, list[Problem]]:
    doc, problems = _check_workflow(file, resolve=resolve)
    siblings = sibling_test_files(file)
    test_doc = None
    if len(siblings) > 1:
        shown = [str(Path(file).with_name(q.name)) for q in siblings]
        problems.append(Problem(shown[1], 0, 0, f"both {shown[0]} and {shown[1]} hold test cases for {file}", "$",
                                f"merge them into {shown[0]}"))
    if siblings:
        test_doc, test_problems = _check_tests(str(Path(file).with_name(siblings[0].name)), doc)
        problems += test_problems
    if doc is None or any(p.severity == "error" for p in problems):
        return None, problems
    try:
        return build_workflow(doc, Path(file), test_doc), problems
    except Exception as e:
        problems.append(Problem(file, 0, 0, f"internal error while reading the file: {type(e).__name__}: {e}",
                                "$", "please report this with the workflow file"))
        return None, problems


def _validate_test_file(file: str, *, resolve: bool) -> tuple[Workflow | None, list[Problem]]:
    """A test file checked against its workflow. The workflow's own problems are summed up in one
    line (``flowrun validate workflows/*.yaml`` reports them for the workflow already)."""
    owner = workflow_for(file)
    if owner is None:
        stem = Path(file).name.rsplit(".test.", 1)[0]
        _, problems = _check_tests(file, None)
        problems.append(Problem(file, 0, 0, f"no workflow file for this test file (looked for {stem}.yaml and "
                                f"{stem}.yml beside it)", "$",
                                "a test file NAME.test.yaml holds the test cases of NAME.yaml in the same folder"))
        return None, problems
    owner_file = str(Path(file).with_name(owner.name))
    workflow, problems = _validate(owner_file, resolve=resolve)
    mine = [p for p in problems if Path(p.file) == Path(file)]
    errors = sum(p.severity == "error" for p in problems if Path(p.file) != Path(file))
    if errors:
        mine.append(Problem(file, 0, 0, f"its workflow {owner_file} has {errors} error{'s' if errors > 1 else ''}",
                            "$", f"run flowrun validate {owner_file}"))
    return workflow, mine


def check_test_file(test_path: str | PathLike[str], workflow_path: str | PathLike[str]) -> list[Problem]:
    """The problems of a test file checked against a given workflow, wherever the two are (for
    ``--record`` into a file of any name)."""
    workflow, _ = _check_workflow(str(workflow_path), resolve=False)
    _, problems = _check_tests(str(test_path), workflow)
    return problems


def _check_workflow(file: str, *, resolve: bool) -> tuple[Document | None, list[Problem]]:
    """The loaded workflow document (None if unusable) and its problems, in file order."""
    doc, problems = load_file(file, file=file)
    if doc is None:
        return None, problems
    if not isinstance(doc.data, dict):
        problems.append(doc.problem((), "the workflow must be a mapping of keys (version, name, model, tools, ...)",
                                    "start from workflows/weather.yaml"))
        return None, problems
    checked = _guarded(file, [lambda: schema_problems(doc),
                              lambda: semantic_problems(doc, folder=Path(file).parent, resolve=resolve)])
    problems = _drop_repeats(problems, checked)
    problems.sort(key=lambda p: (p.line, p.column))
    return doc, problems


def _check_tests(file: str, workflow: Document | None) -> tuple[Document | None, list[Problem]]:
    """A test file's document and problems. Names are checked against ``workflow`` when it could
    be read; the schema is checked regardless."""
    doc, problems = load_file(file, file=file)
    if doc is None:
        return None, [_test_file_wording(p) for p in problems]
    if not isinstance(doc.data, dict):
        problems.append(doc.problem((), "a test file must be a mapping with one key, tests:",
                                    "write tests: and the list of test cases under it, as in a workflow file"))
        return None, problems
    checks = [lambda: cases_schema_problems(doc)]
    if workflow is not None and isinstance(workflow.data, dict):
        checks.append(lambda: sibling_problems(doc, workflow))
    problems = _drop_repeats(problems, _guarded(file, checks))
    problems.sort(key=lambda p: (p.line, p.column))
    return doc, problems


def _test_file_wording(problem: Problem) -> Problem:
    """The loader speaks of workflow files; an empty test file deserves its own advice."""
    if problem.message == "workflow file is empty":
        return replace(problem, message="test file is empty",
                       hint="write tests: and a list of test cases under it, or delete the file")
    return problem


def _guarded(file: str, checks) -> list[Problem]:
    """Run checks; a bug of ours becomes a problem to report, never a traceback for the user."""
    out: list[Problem] = []
    for check in checks:
        try:
            out += check()
        except Exception as e:
            out.append(Problem(file, 0, 0, f"internal error while checking the file: {type(e).__name__}: {e}",
                               "$", "please report this with the workflow file"))
    return out


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


def build_workflow(doc: Document, path: Path, tests_doc: Document | None = None) -> Workflow:
    """Frozen spec objects from data that passed validation; ``tests_doc``'s cases (the
    workflow's test file) follow the workflow's own."""
    data = doc.data
    isolation = data.get("isolation", "thread")
    entries = list(enumerate(data.get("tools", [])))
    tools = tuple(_tool(doc, i, t, isolation) for i, t in entries if "mcp" not in t)
    sources = tuple(_mcp_source(doc, i, t) for i, t in entries if "mcp" in t)
    inputs = tuple(
        InputSpec(name, spec.get("description", ""), spec.get("default"), spec.get("required", False))
        for name, spec in data.get("inputs", {}).items()
    )
    tests = tuple(_test(doc, i, t) for i, t in enumerate(data.get("tests", [])))
    if tests_doc is not None:
        tests += tuple(_test(tests_doc, i, t) for i, t in enumerate(tests_doc.data.get("tests", [])))
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
        output=_output(data),
        source_sha256=doc.sha256,
        mcp=sources,
        approval=data.get("approval"),
        policies=RunPolicies(**data.get("policies", {})),
    )


def _approval(doc: Document, where: tuple, spec: Any) -> ApprovalSpec | None:
    """``approval:`` as written (one word, or default + rules), with the lines for messages."""
    if spec is None:
        return None
    line = doc.position(where)[0]
    if isinstance(spec, str):
        return ApprovalSpec(default=spec, line=line)
    rules = []
    for j, rule in enumerate(spec.get("rules", ())):
        (action, match), = rule.items()
        rules.append(ApprovalRule(action, dict(match), doc.position((*where, "rules", j))[0]))
    return ApprovalSpec(default=spec.get("default"), rules=tuple(rules), line=line)


def _output(data: dict[str, Any]) -> OutputSpec | None:
    spec = data.get("output")
    if spec is None:
        return None
    name = spec.get("name") or re.sub(r"[^A-Za-z0-9_-]", "_", str(data["name"]))[:64] or "output"
    return OutputSpec(name=name, schema=spec["schema"], strict=spec.get("strict", True),
                      attempts=int(spec.get("attempts", 2)))


def _tool(doc: Document, i: int, t: dict[str, Any], isolation: str = "thread") -> ToolSpec:
    parameters = t.get("parameters", NO_PARAMETERS)
    bind = dict(t.get("bind") or {})
    return ToolSpec(
        name=t["name"],
        description=t["description"],
        parameters=parameters,
        resolver=_resolver(t["resolve"]),
        timeout=float(t.get("timeout", 60.0)),
        strict=t.get("strict"),
        isolation=t.get("isolation", isolation),
        line=doc.position(("tools", i))[0],
        bind=bind,
        model_schema=without_bound(parameters, bind) if bind else None,
        approval=_approval(doc, ("tools", i, "approval"), t.get("approval")),
    )


def _mcp_source(doc: Document, i: int, t: dict[str, Any]) -> McpSource:
    server = dict(t["mcp"])
    for key in ("args", "env"):
        if key in server:
            server[key] = tuple(server[key])
    if "startup_timeout" in server:
        server["startup_timeout"] = float(server["startup_timeout"])
    overrides = {name: McpOverride(o.get("description"), float(o["timeout"]) if "timeout" in o else None,
                                   _approval(doc, ("tools", i, "overrides", name, "approval"), o.get("approval")))
                 for name, o in t.get("overrides", {}).items()}
    return McpSource(
        server=McpServerSpec(**server),
        include=tuple(t["include"]) if "include" in t else None,
        exclude=tuple(t.get("exclude", ())),
        prefix=t.get("prefix", ""),
        timeout=float(t.get("timeout", 60.0)),
        strict=t.get("strict"),
        overrides=overrides,
        line=doc.position(("tools", i))[0],
        approval=_approval(doc, ("tools", i, "approval"), t.get("approval")),
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


def _test(doc: Document, i: int, t: dict[str, Any]) -> LocatedTestCase:
    turns = tuple(
        ScriptedTurn(
            tool_calls=tuple(ScriptedCall(c["name"], c.get("arguments", {})) for c in turn.get("tool_calls", [])),
            text=turn.get("text"),
        )
        for turn in t["turns"]
    )
    return LocatedTestCase(
        name=t["name"],
        turns=turns,
        input=t.get("input"),
        vars=t.get("vars", {}),
        expect=t.get("expect", {}),
        mock_http=t.get("mock_http", {}),
        mock_mcp=t.get("mock_mcp", {}),
        approvals={tool: case_answers(a) for tool, a in t.get("approvals", {}).items()},
        line=doc.position(("tests", i))[0],
        file=doc.file,
    )


def case_answers(given: Any) -> CaseAnswers:
    """A case's ``approvals:`` entry for one tool (already checked against the schema)."""
    def one(a: Any) -> CaseAnswer:
        return CaseAnswer("deny", a["deny"]) if isinstance(a, dict) else CaseAnswer(a)

    if isinstance(given, list):
        return CaseAnswers(per_call=tuple(one(a) for a in given))
    return CaseAnswers(every=one(given))
