"""``flowrun resume RUN_ID``: take up a run that paused for approvals, in a new process.

The run log holds the pause (``run.paused``: the round's calls, the provider's snapshot, the
settings the run was built from). Everything read back is checked first (the log is a file a
person can edit), the workflow is loaded again from the path that ran and must be the same file
(its SHA-256), and so must the modules of its python tools, unless ``--force-changed-file``; only
then is the pause claimed, once, in one transaction: two resumes of one run cannot both run its
tools. The same run id goes on: its events are appended and its row is finished with the final
status. A resume that fails before any tool ran leaves the run paused as it was; one whose tools
ran but whose outputs could not be sent pauses with the outputs saved (``round.outputs``), and the
next ``flowrun resume RUN_ID`` sends them without running anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, TextIO

from runner.errors import FlowrunError, Interrupted, RunError, UsageError
from runner.events import Notice, RunEnd, RunResumed
from runner.providers.snapshot import SnapshotError, calls as saved_calls, number, string, text
from runner.run.conversation import run_conversation, tool_modules
from runner.run.fanout import FanOut
from runner.run.pausing import PauseContext, SavedRound
from runner.calls import ApprovalRequest, Approvals, Decision, ToolCall, ToolResult
from runner.workflow.tool_modules import changed_tool_modules
from runner.workflow.model import APIS


@dataclass
class ResumeRequest:
    run_id: str
    approve: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    yes: bool = False
    reason: str | None = None
    force_changed_file: bool = False
    log_db: str | None = None
    output: str = "text"
    quiet: bool = False
    verbose: bool = False
    color: bool = True
    env: Mapping[str, str] | None = None


@dataclass(frozen=True)
class PausedRun:
    """A pause read back from the run log and checked."""

    run_id: str
    workflow: Path
    workflow_sha256: str
    api: str
    base_url: str | None
    model: str
    inputs: dict[str, Any]
    max_turns: int
    allow_python: bool
    offline: bool
    snapshot: dict[str, Any]
    saved: SavedRound
    waiting: tuple[str, ...]  # the names of the tools whose calls wait for a decision
    settings: dict[str, Any] = field(default_factory=dict)  # as saved, for the next pause
    tool_modules: dict[str, str] | None = None  # python tools' module files and their SHA-256 (None: not saved)


class NotResumable(UsageError):
    """The run cannot be resumed (finished, running, offline): exit 2 with why."""


def read_paused(run_id: str, record: Any) -> PausedRun:
    """The saved ``run.paused`` event checked field by field; ``SnapshotError`` when it is not
    what flowrun wrote."""
    if not isinstance(record, dict) or not isinstance(record.get("state"), dict):
        raise SnapshotError("the saved pause is not an object with a state")
    state: dict[str, Any] = record["state"]
    rnd = state.get("round")
    if not isinstance(rnd, dict):
        raise SnapshotError("round must be an object")
    calls = saved_calls(rnd.get("calls"), "round.calls")
    outputs = read_outputs(rnd["outputs"], calls) if rnd.get("outputs") is not None else None
    waiting_items = record.get("waiting")
    if not isinstance(waiting_items, list) or (outputs is None and not waiting_items):
        raise SnapshotError("waiting must be a non-empty list of calls")
    if outputs is not None and waiting_items:
        raise SnapshotError("waiting must be empty when the round's outputs are saved (its tools ran)")
    ids = {c.call_id: c.name for c in calls}
    waiting: list[str] = []
    waiting_ids: list[str] = []
    for i, item in enumerate(waiting_items):
        if not isinstance(item, dict) or ids.get(item.get("call_id")) != item.get("name"):
            raise SnapshotError(f"waiting[{i}] is not a call of the saved round")
        waiting.append(item["name"])
        waiting_ids.append(item["call_id"])
    api = state.get("api")
    if api not in APIS:
        raise SnapshotError(f"api is not one of {', '.join(APIS)} ({text(api)})")
    base_url = state.get("base_url")
    if base_url is not None and not (isinstance(base_url, str) and base_url.startswith(("http://", "https://"))):
        raise SnapshotError(f"base_url must be an http(s) URL ({text(base_url)})")
    inputs = state.get("inputs")
    if not isinstance(inputs, dict):
        raise SnapshotError("inputs must be an object")
    workflow = string(state, "workflow")
    if not workflow:
        raise SnapshotError("workflow must name the file that ran")
    counts = {k: rnd.get(k) for k in ("turns", "turns_here", "tool_calls")}
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in counts.values()):
        raise SnapshotError("round.turns, round.turns_here and round.tool_calls must be counts")
    max_turns = state.get("max_turns")
    if isinstance(max_turns, bool) or not isinstance(max_turns, int) or max_turns < 1:
        raise SnapshotError("max_turns must be a positive count")
    usage = rnd.get("usage")
    if usage is not None and not (isinstance(usage, dict) and all(isinstance(v, int) for v in usage.values())):
        raise SnapshotError("round.usage must map names to token counts")
    snapshot = state.get("provider")
    if not isinstance(snapshot, dict):
        raise SnapshotError("provider must be an object")
    flags = {k: state.get(k, False) for k in ("allow_python", "offline")}
    if not all(isinstance(v, bool) for v in flags.values()):
        raise SnapshotError("allow_python and offline must be true or false")
    modules = state.get("tool_modules")
    if modules is not None and not (isinstance(modules, dict) and all(
            isinstance(k, str) and isinstance(v, str) and _SHA256.match(v) for k, v in modules.items())):
        raise SnapshotError("tool_modules must map module files to SHA-256 hashes")
    saved = SavedRound(calls, number(rnd, "deadline"), string(rnd, "text", "round"), counts["turns"],
                       counts["turns_here"], counts["tool_calls"], usage, tuple(waiting_ids), outputs)
    return PausedRun(run_id, Path(workflow), string(state, "workflow_sha256"), api, base_url,
                     string(state, "model"), dict(inputs), max_turns, flags["allow_python"], flags["offline"],
                     snapshot, saved, tuple(dict.fromkeys(waiting)),
                     {k: v for k, v in state.items() if k not in ("provider", "round")}, modules)


_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_OUTPUT_FIELDS = {"call_id", "name", "output", "is_error", "refused"}


def read_outputs(value: Any, calls: tuple[ToolCall, ...]) -> tuple[ToolResult, ...]:
    """``round.outputs`` checked: exactly one output for each call of the round, each what
    flowrun wrote (the call's id and name, the output text, two flags), in call order."""
    if not isinstance(value, list):
        raise SnapshotError("round.outputs must be a list of tool outputs")
    names = {c.call_id: c.name for c in calls}
    found: dict[str, ToolResult] = {}
    for i, item in enumerate(value):
        where = f"round.outputs[{i}]"
        if not isinstance(item, dict) or set(item) != _OUTPUT_FIELDS:
            raise SnapshotError(f"{where} must be an object with {', '.join(sorted(_OUTPUT_FIELDS))}")
        call_id, name, output = (string(item, k, where) for k in ("call_id", "name", "output"))
        if names.get(call_id) != name:
            raise SnapshotError(f"{where} answers no call of the saved round ({text(call_id)}, {text(name)})")
        if call_id in found:
            raise SnapshotError(f"{where} answers call {text(call_id)} a second time")
        if not all(isinstance(item[k], bool) for k in ("is_error", "refused")):
            raise SnapshotError(f"{where}.is_error and .refused must be true or false")
        found[call_id] = ToolResult(call_id, name, output, item["is_error"], 0.0, item["refused"])
    missing = [c.call_id for c in calls if c.call_id not in found]
    if missing:
        raise SnapshotError(f"round.outputs has no output for call {text(missing[0])}")
    return tuple(found[c.call_id] for c in calls)


def check_decisions(request: ResumeRequest, paused: PausedRun) -> None:
    """``--approve``/``--deny`` name tools of the paused round, each once: a typo must not
    leave the call unanswered, or approve something nobody meant to."""
    both = sorted(set(request.approve) & set(request.deny))
    if both:
        raise UsageError(f"tool {both[0]!r} is both approved and denied", hint="give it to --approve or to --deny")
    named = {c.name for c in paused.saved.calls}
    for name in (*request.approve, *request.deny):
        if name not in named:
            waiting = ", ".join(paused.waiting)
            raise UsageError(f"run {paused.run_id} has no call of tool {name!r} waiting",
                             hint=f"it waits for: {waiting} (`flowrun resume {paused.run_id} --approve {paused.waiting[0]}`)")
    if paused.saved.outputs is not None:
        given = [f for f, on in (("--approve", request.approve), ("--deny", request.deny), ("--yes", request.yes),
                                 ("--reason", request.reason is not None)) if on]
        if given:
            raise UsageError(f"run {paused.run_id} waits for no decision: the tools of its last round ran, and their "
                             f"saved outputs wait to be sent, so {given[0]} has nothing to decide",
                             hint=f"`flowrun resume {paused.run_id}` sends them and goes on")
        return
    if request.reason is not None and not request.deny:
        raise UsageError("--reason goes with --deny: it is what the model is told about the refusal")


def describe_status(run: dict) -> str:
    """Why a run that is not paused cannot be resumed."""
    run_id, status = run["run_id"], run.get("status")
    if status == "running":
        return (f"run {run_id} is running: it is being resumed by another process (pid {run.get('pid')}), "
                "or has not paused")
    if status == "crashed":
        return (f"run {run_id} crashed while it ran (or while it was being resumed); it is not waiting for "
                "approvals, and a tool of it may have run: start the workflow again")
    return f"run {run_id} is {status}, not paused: only a paused run can be resumed"


def resume(request: ResumeRequest, *, out: TextIO, err: TextIO) -> RunEnd:
    """Resume a paused run for the CLI; like ``session.run``: the end event, or a raised
    RunError with the run's exit code (4 when it paused again) after the renderer showed why."""
    try:
        end = asyncio.run(_execute(request, out, err))
    except KeyboardInterrupt:
        raise Interrupted() from None
    if end.exit_code == Interrupted.exit_code:
        raise Interrupted(end.message, shown=True)
    if end.exit_code:
        raise RunError(end.message, exit_code=end.exit_code)
    return end


async def _execute(request: ResumeRequest, out: TextIO, err: TextIO) -> RunEnd:
    from runner.runlog.log import RunLog, default_log_path
    from runner.run.session import RunRequest, make_renderer

    env = os.environ if request.env is None else request.env
    path = Path(request.log_db).expanduser() if request.log_db else default_log_path()
    log = RunLog.open_reader(path)
    with contextlib.ExitStack() as stack:
        stack.callback(log.close)
        run = log.get_run(request.run_id)
        run_id = run["run_id"]
        if run.get("status") != "paused":
            raise NotResumable(describe_status(run), hint=f"`flowrun logs show {run_id}` shows the run")
        record = log.paused_state(run_id)
        if record is None:
            raise SnapshotError(f"run {run_id} is marked paused but the log holds no saved state for it")
        paused = read_paused(run_id, record)
        if paused.offline:
            raise NotResumable(f"run {run_id} ran --offline: its scripted model ended with that process, so it "
                               "cannot be resumed", hint="run it again with the answers given up front (--approve TOOL)")
        check_decisions(request, paused)
        workflow, settings, masker, inputs = _rebuild(paused, request, env)
        snapshot_check(paused, settings)
        log.claim_pause(run_id)  # from here on, this process owns the run
        renderer = make_renderer(RunRequest(file=str(paused.workflow), output=request.output, quiet=request.quiet,
                                            verbose=request.verbose, color=request.color), out, err,
                                 structured=workflow.output is not None)
        if hasattr(renderer, "close"):
            stack.callback(renderer.close)
        emit = FanOut([renderer, log.sink(run_id)], masker)
        emit(RunResumed(run_id, list(request.approve), list(request.deny), request.yes, workflow.source_sha256))
        if workflow.source_sha256 != paused.workflow_sha256:
            emit(Notice("warning", f"{paused.workflow} changed since the run paused; resuming with the file as it "
                                   "is now (--force-changed-file)"))
        changed = changed_tool_modules(paused.tool_modules, workflow) if paused.tool_modules is not None else []
        if changed:
            emit(Notice("warning", "python tool modules changed since the run paused; resuming with them as they "
                                   "are now (--force-changed-file): " + "; ".join(changed)))
        flags = f" --log-db {shlex.quote(str(path))}" if request.log_db else ""
        try:
            end = await run_conversation(
                workflow, settings, [], emit, run_id=run_id, inputs=inputs, env=env, masker=masker,
                allow_python=paused.allow_python, max_turns=paused.max_turns,
                pause=PauseContext({**paused.settings, "workflow_sha256": workflow.source_sha256}, flags,
                                   again=again_command(request, run_id, flags),
                                   more=lambda: tool_modules(workflow)),
                resume=(paused.snapshot, paused.saved),
                approvals=Approvals(pause=True), prompter=ResumePrompter(request),
            )
        except FlowrunError as exc:
            raise exc.masked(masker.mask) from None
        emit.check_output(end)
        return end
    raise AssertionError("unreachable")  # pragma: no cover


def again_command(request: ResumeRequest, run_id: str, flags: str) -> str:
    """The command that repeats this resume, with the decisions it was given."""
    words = [f"--approve {shlex.quote(t)}" for t in request.approve] + [f"--deny {shlex.quote(t)}" for t in request.deny]
    words += ["--yes"] if request.yes else []
    words += [f"--reason {shlex.quote(request.reason)}"] if request.reason is not None else []
    words += ["--force-changed-file"] if request.force_changed_file else []
    return f"flowrun resume {run_id}{flags}" + "".join(" " + w for w in words)


def _rebuild(paused: PausedRun, request: ResumeRequest, env: Mapping[str, str]):
    """The workflow, model settings, masker and inputs, as the paused run had them."""
    from runner.run.plan import require_env
    from runner.run.settings import Overrides, model_settings, resolve_inputs
    from runner.secrets.sources import build_masker
    from runner.workflow.validate import load_workflow

    if not paused.workflow.is_file():
        raise NotResumable(f"the workflow file that ran, {paused.workflow}, is not there any more",
                           hint="put it back where it was to resume the run")
    workflow = load_workflow(paused.workflow)
    if workflow.source_sha256 != paused.workflow_sha256 and not request.force_changed_file:
        raise NotResumable(f"{paused.workflow} changed since run {paused.run_id} paused, so the calls "
                           "waiting for approval may no longer mean what they meant",
                           hint="put the file back as it was, or resume with the file as it is now with "
                                "--force-changed-file")
    changed = changed_tool_modules(paused.tool_modules, workflow) if paused.tool_modules is not None else []
    if changed and not request.force_changed_file:
        raise NotResumable(f"the python code of run {paused.run_id}'s tools changed since it paused, so the calls "
                           "waiting for approval may no longer do what they did: " + "; ".join(changed),
                           hint="put the module back as it was, or resume with the code as it is now with "
                                "--force-changed-file")
    inputs = resolve_inputs(workflow, paused.inputs)
    require_env(workflow, env)
    settings = model_settings(workflow, Overrides(paused.api, paused.base_url, paused.model), inputs, env)
    masker = build_masker(workflow, env, settings.api_key)
    return workflow, settings, masker, inputs


def snapshot_check(paused: PausedRun, settings) -> None:
    """Restore the snapshot on a provider without a client (``restore`` makes no request), so a
    malformed one is refused before the pause is claimed, and before any tool could run."""
    from runner.providers.factory import provider_class

    provider_class(settings.api)(settings, None, owns_client=False).restore(paused.snapshot)


class ResumePrompter:
    """The decisions given to ``flowrun resume``, decided ``by: resume``; a call they do not
    answer pauses the run again (it never runs unapproved)."""

    def __init__(self, request: ResumeRequest):
        self.approve = frozenset(request.approve)
        self.deny = frozenset(request.deny)
        self.yes = request.yes
        self.reason = request.reason

    async def decide(self, request: ApprovalRequest) -> Decision:
        if request.tool in self.deny:
            return Decision("deny", "resume", self.reason)
        if request.tool in self.approve or self.yes:
            return Decision("approve", "resume")
        return Decision("pause", "resume")

