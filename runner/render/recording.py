"""``flowrun FILE --record CASE.yaml``: keep a real run's model side as a replayable test case.

The model's turns become scripted ``turns`` and what the tools returned becomes ``expect``, so
"record once with a real model, check in CI forever" is one flag. Events arrive here already
masked, so a recorded case never holds a secret.

The case goes into a test file (normally ``NAME.test.yaml`` beside the workflow, which
``flowrun test`` picks up): created with a schema modeline for editors, or appended to as text so
the comments and edits already in it survive.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from runner.errors import UsageError
from runner.events import (
    ApprovalDecided,
    ApprovalRequested,
    Event,
    RunCompleted,
    RunFailed,
    RunStarted,
    TextDelta,
    ToolCallCompleted,
    ToolCallRequested,
    TurnStarted,
)
from runner.workflow.yaml_loader import _plain_value, load_file


def _arguments(raw: str) -> Any:
    """Arguments as a mapping when they are a JSON object; otherwise the exact text, which the
    scripted model replays as is (a test case's arguments are a mapping or a string)."""
    try:
        value = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return raw
    return value if isinstance(value, dict) else raw


class Recorder:
    """A sink that builds a test case from the events of one run."""

    def __init__(self, *, vars: Mapping[str, Any] | None = None, mock_http: Mapping[str, Any] | None = None,
                 mock_mcp: Mapping[str, Any] | None = None) -> None:
        self.vars = dict(vars or {})  # the --var values of the run, so the replay fills inputs the same way
        self.mock_http = dict(mock_http or {})  # canned HTTP answers the run used (--offline)
        self.mock_mcp: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (mock_mcp or {}).items()}
        self.mcp_tools: dict[str, str] = {}  # MCP tool name -> its server, once the servers are up
        self.turns: list[dict[str, Any]] = []
        self.outputs: dict[str, str] = {}
        self.calls: list[dict[str, Any]] = []
        self.error_outputs: list[str] = []  # tools that returned an error, in order
        self.approvals: dict[str, list[Any]] = {}  # tool -> the answers given when its calls asked, in order
        self.refused: list[str] = []  # tools with a refused call, in order (expect.refused)
        self._asked: set[str] = set()  # call ids put to a person (or left unanswered)
        self._refused_calls: set[str] = set()
        self.input = ""
        self.meta = ""
        self.status: str | None = None
        self._text: list[str] = []
        self._calls: list[dict[str, Any]] = []

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.input = event.input
            self.meta = f"{event.api}, model {event.model}"
        elif isinstance(event, TurnStarted):
            self._close_turn()
        elif isinstance(event, TextDelta):
            self._text.append(event.text)
        elif isinstance(event, ToolCallRequested):
            call = {"name": event.name, "arguments": _arguments(event.arguments)}
            self._calls.append(call)
            self.calls.append(call)
        elif isinstance(event, ApprovalRequested):
            self._asked.add(event.call_id)
        elif isinstance(event, ApprovalDecided):
            self._decided(event)
        elif isinstance(event, ToolCallCompleted):
            if event.call_id in self._refused_calls:  # not a tool error; its text depends on who said no
                return
            self.outputs[event.name] = event.output  # the last one per tool, as expect checks it
            if event.is_error and event.name not in self.error_outputs:
                self.error_outputs.append(event.name)
            server = self.mcp_tools.get(event.name)
            if server is not None:  # kept as the case's canned result: the replay needs no server
                text = event.output[len("error: "):] if event.is_error and event.output.startswith("error: ") else event.output
                self.mock_mcp.setdefault(server, {})[event.name] = (
                    {"text": text, "is_error": True} if event.is_error else {"text": text})
        elif isinstance(event, (RunCompleted, RunFailed)):
            self._close_turn()
            self.status = event.status

    def _decided(self, event: ApprovalDecided) -> None:
        """A call that asked gets its answer into the case's ``approvals:`` (one answer for the
        tool when every call got the same, else one per call, in order); any refusal goes into
        ``expect.refused``."""
        if event.decision == "denied":
            self._refused_calls.add(event.call_id)
            if event.name not in self.refused:
                self.refused.append(event.name)
        if event.call_id not in self._asked or event.decision == "paused":
            return  # the file decided (a rule, a tool's default): the replay decides the same way
        if event.decision == "approved":
            answer: Any = "approve"
        else:
            said = event.reason if event.by == "prompt" else ""
            answer = {"deny": said} if said else "deny"
        self.approvals.setdefault(event.name, []).append(answer)

    def saw_mcp(self, mcp: Any) -> None:
        """Learn which tools come from which MCP server (called once the servers are up)."""
        self.mcp_tools = {t.name: t.resolver.server for t in mcp.tools}

    def _close_turn(self) -> None:
        # A turn that both talks and calls tools is replayed as its calls: a scripted turn is one
        # or the other, and the text before a call is not what a test checks.
        if self._calls:
            self.turns.append({"tool_calls": self._calls})
        elif self._text:
            self.turns.append({"text": "".join(self._text)})
        self._calls, self._text = [], []

    def case(self, name: str | None = None, *, taken: Iterable[str] = ()) -> dict[str, Any]:
        """The test case, named ``name`` or after the time and model, made unique among ``taken``."""
        if not self.turns:
            raise UsageError("nothing to record: the model did not answer")
        final = self.turns[-1].get("text", "")
        expect: dict[str, Any] = {}
        if self.calls:
            expect["tool_calls"] = self.calls
        if self.outputs:
            expect["outputs"] = {k: {"equals": v} for k, v in self.outputs.items()}
        if final:
            expect["final_text"] = {"equals": final}
        expect["status"] = self.status or "completed"
        if self.error_outputs:
            expect["error_outputs"] = list(self.error_outputs)  # the replay expects the same errors
        else:
            expect["no_error_outputs"] = True
        if self.refused:
            expect["refused"] = list(self.refused)
        case: dict[str, Any] = {
            "name": unique_name(name or f"recorded {time.strftime('%Y-%m-%d %H:%M')} ({self.meta})", taken),
            "input": self.input,
        }
        if self.vars:
            case["vars"] = self.vars
        if self.mock_http:
            case["mock_http"] = self.mock_http
        if self.mock_mcp:
            case["mock_mcp"] = self.mock_mcp
        if self.approvals:
            case["approvals"] = {tool: answers[0] if all(a == answers[0] for a in answers) else answers
                                 for tool, answers in self.approvals.items()}
        case["turns"] = self.turns
        case["expect"] = expect
        return case


def unique_name(name: str, taken: Iterable[str]) -> str:
    names = set(taken)
    if name not in names:
        return name
    n = 2
    while f"{name} ({n})" in names:
        n += 1
    return f"{name} ({n})"


class _Dumper(yaml.SafeDumper):
    """Block style, lists indented under their key (as in workflows/weather.yaml)."""

    def increase_indent(self, flow: bool = False, indentless: bool = False):
        return super().increase_indent(flow, False)

    def ignore_aliases(self, data: Any) -> bool:  # the same call in turns and expect: write it twice
        return True


def _str(dumper: yaml.SafeDumper, value: str):
    if "\n" in value:
        style = "|"
    elif not isinstance(_plain_value(value), str) or value != value.strip():
        # PyYAML quotes by YAML 1.1's rules; our loader reads 1.2 (1e5 is a number there, and
        # 0o17): quote whatever it would not read back as this exact text.
        style = '"'
    else:
        style = None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump(value: Any) -> str:
    return yaml.dump(value, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


HEADER = "# Test cases recorded by `flowrun --record`. Replay them with `flowrun test`; edit them freely.\n"
_MODELINE = re.compile(r"^#\s*yaml-language-server:\s*\$schema=(\S+)\s*$", re.M)


def modeline(test_file: Path, workflow_file: Path | None) -> str:
    """The editor modeline for a new test file: the workflow's own, pointed at tests.schema.json
    and made relative to the test file's folder."""
    if workflow_file is None:
        return ""
    try:
        head = workflow_file.read_text(encoding="utf-8", errors="replace")[:2000]
    except OSError:
        return ""
    m = _MODELINE.search(head)
    if not m or not m.group(1).endswith("workflow.schema.json"):
        return ""
    ref = m.group(1)[: -len("workflow.schema.json")] + "tests.schema.json"
    if "://" not in ref and not os.path.isabs(ref):
        target = (workflow_file.parent / ref).resolve()
        ref = Path(os.path.relpath(target, test_file.resolve().parent)).as_posix()
    return f"# yaml-language-server: $schema={ref}\n"


def existing_names(path: Path) -> list[str]:
    """Case names already in a test file (none if it does not exist yet)."""
    tests, _ = _read_tests(path)
    return [t["name"] for t in tests if isinstance(t, dict) and isinstance(t.get("name"), str)]


def _read_tests(path: Path) -> tuple[list, Any]:
    """The ``tests`` list of an existing test file and its document; refuses anything else, so a
    recording never overwrites a workflow or an unrelated file."""
    if not path.exists() or not path.read_bytes().strip():
        return [], None
    doc, problems = load_file(path)
    if doc is None or any(p.severity == "error" for p in problems):
        first = problems[0].format() if problems else "unreadable"
        raise UsageError(f"cannot add the recording to {path}: {first}", hint="fix the file, or record into a new one")
    data = doc.data
    if not isinstance(data, dict) or set(data) - {"tests"} or not isinstance(data.get("tests") or [], list):
        keys = ", ".join(data) if isinstance(data, dict) else type(data).__name__
        raise UsageError(
            f"{path} is not a test file (it holds {keys}); a recording goes into a file with only tests:",
            hint="record into NAME.test.yaml beside the workflow NAME.yaml; `flowrun test` picks it up",
        )
    return list(data.get("tests") or []), doc


def save_case(case: dict[str, Any], path: Path, *, workflow_file: Path | None = None) -> None:
    """Add ``case`` to the test file at ``path``: append it to the ``tests:`` list as text when
    the file has one in block style (comments and formatting survive), otherwise write the whole
    file. An existing file is replaced atomically: a failure leaves it as it was."""
    path = Path(path)
    if workflow_file is not None and path.exists() and path.resolve() == Path(workflow_file).resolve():
        raise UsageError(f"--record {path} would overwrite the workflow itself",
                         hint=f"record into {Path(workflow_file).stem}.test.yaml beside it")
    tests, doc = _read_tests(path)
    if doc is not None and tests:
        text = path.read_text(encoding="utf-8-sig")
        dash = _dash_column(text, doc.position(("tests", 0))[0])
        if dash is not None:
            item = "".join(line if line == "\n" else " " * dash + line
                           for line in dump([case]).splitlines(keepends=True))
            _write(path, text + ("" if text.endswith("\n") else "\n") + item)
            return
    lead = ""
    if doc is not None:  # keep the comment block at the top of the file
        for line in path.read_text(encoding="utf-8-sig").splitlines(keepends=True):
            if line.strip() and not line.lstrip().startswith("#"):
                break
            lead += line
    else:
        lead = modeline(path, Path(workflow_file) if workflow_file else None) + HEADER
    _write(path, lead + dump({"tests": tests + [case]}))


def _dash_column(text: str, line: int) -> int | None:
    """Where the ``-`` of a block list item on ``line`` sits, or None (flow style, odd layout)."""
    lines = text.splitlines()
    if not 0 < line <= len(lines):
        return None
    source = lines[line - 1]
    stripped = source.lstrip(" ")
    return len(source) - len(stripped) if stripped.startswith("- ") or stripped == "-" else None


def _write(path: Path, text: str) -> None:
    """A new file is simply written; an existing one is replaced atomically (same permissions), so
    a failure halfway leaves the cases already in it untouched."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def check_target(path: Path, workflow_file: Path) -> None:
    """Before the run: refuse a target that is the workflow itself or not a test file, so the
    run is not spent for nothing."""
    if path.exists() and path.resolve() == Path(workflow_file).resolve():
        raise UsageError(f"--record {path} would overwrite the workflow itself",
                         hint=f"record into {Path(workflow_file).stem}.test.yaml beside it")
    _read_tests(path)


def finish(recorder: Recorder, status: str, path: Path, workflow, err) -> None:
    """After the run: save the case (a completed run only), then check the file as ``flowrun
    validate`` would and say where ``flowrun test`` finds it."""
    from runner.workflow.validate import check_test_file, sibling_test_files

    if status != "completed":
        err.write(f"flowrun: not recorded: the run ended {status}; a recording is a run that completed\n")
        return
    try:
        taken = [c.name for c in workflow.tests] + existing_names(path)
        case = recorder.case(taken=taken)
        save_case(case, path, workflow_file=workflow.path)
    except (UsageError, OSError) as exc:  # the run itself went well: report, do not fail it
        err.write(f"flowrun: error: not recorded: {exc}\n")
        return
    err.write(f"flowrun: recorded this run as test case {case['name']!r} in {path}\n")
    for problem in check_test_file(path, workflow.path):
        err.write(f"flowrun: warning: the recorded file has a problem: {problem.format()}\n")
    if not any(q.resolve() == path.resolve() for q in sibling_test_files(workflow.path)):
        err.write(f"flowrun: note: `flowrun test` reads {workflow.path.stem}.test.yaml beside {workflow.path.name}; "
                  f"move the case there to have it run\n")
