"""Wire one run together: workflow, settings, optional offline server, sinks, provider, loop.

Kept apart from the click command so ``flowrun test``, ``flowrun batch`` and the tests can run a
workflow in-process with the same code path as the CLI.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, TextIO

from runner.daemon_thread import in_daemon_thread
from runner.errors import FlowrunError, UsageError
from runner.events import Event, Notice, RunFailed, RunStarted
from runner.run.loop import RunLoop, RunOutcome, new_run_id
from runner.secrets.sources import build_masker
from runner.run.settings import OFFLINE_KEY, Overrides, model_settings, render_text, resolve_inputs
from runner.run.fanout import FanOut
from runner.workflow.model import TestCase, Workflow

OFFLINE_BANNER = (
    "OFFLINE: the model's side is scripted from test case {case!r} of {file}; "
    "no model is called. The tools are real{mocked}."
)


@dataclass
class RunRequest:
    file: str
    message: str | None = None
    vars: dict[str, str] = field(default_factory=dict)
    api: str | None = None
    base_url: str | None = None
    model: str | None = None
    max_turns: int = 10
    output: str = "text"
    offline: bool = False
    case_name: str | None = None
    quiet: bool = False
    verbose: bool = False
    color: bool = True
    allow_python: bool = True
    log_db: str | None = None
    log: bool = True
    env: Mapping[str, str] | None = None
    chat: bool = False
    record: str | None = None  # write the run as a test case to this file
    read_line: Callable[[str], str | None] | None = None  # for --chat; default reads stdin


def require_env(workflow: Workflow, env: Mapping[str, str]) -> None:
    """Every ``${{ env.NAME }}`` a tool reads must be set before anything is sent: a missing token
    found halfway through a run would cost model calls and leave a half-done conversation."""
    missing = sorted(name for name in workflow.env_names() if not env.get(name))
    if missing:
        names = ", ".join(missing)
        raise UsageError(
            f"{workflow.path} reads {names} from the environment, and {'it is' if len(missing) == 1 else 'they are'} not set",
            hint=f"export {missing[0]}=... before running (the value is never written to logs or output)",
        )


def pick_case(workflow: Workflow, name: str | None) -> TestCase:
    if not workflow.tests:
        raise UsageError(
            f"{workflow.path} has no test case to script the model from",
            hint="add a `tests:` entry with `turns:` (see workflows/weather.yaml) or a sibling "
            f"{workflow.path.with_suffix('.test.yaml').name}, or run without --offline",
        )
    if name is None:
        return workflow.tests[0]
    for case in workflow.tests:
        if case.name == name:
            return case
    names = ", ".join(repr(c.name) for c in workflow.tests)
    raise UsageError(f"no test case named {name!r}", hint=f"the file has: {names}")


def open_log(request: RunRequest, masker):
    if not request.log:
        return None
    try:
        from runner.runlog.log import RunLog, default_log_path
    except ImportError:  # the run log is optional equipment, never a reason to fail
        return None
    try:
        return RunLog.open(request.log_db or default_log_path(), masker=masker)
    except Exception as exc:  # noqa: BLE001
        import sys

        sys.stderr.write(f"flowrun: warning: run log unavailable ({exc}); this run is not recorded\n")
        return None


def execute(request: RunRequest, *, out: TextIO, err: TextIO) -> int:
    """Run a workflow for the CLI; returns the exit code. Errors are printed, never raised."""
    holder: dict[str, Any] = {}
    try:
        return asyncio.run(_execute(request, out, err, holder))
    except KeyboardInterrupt:
        outcome: RunOutcome | None = holder.get("outcome")
        if outcome is None:
            err.write("\nflowrun: interrupted\n")
        return 130
    except FlowrunError as exc:
        masker = holder.get("masker")
        text = str(exc) if masker is None else masker.mask(str(exc))
        err.write(f"flowrun: error: {text}\n")
        return exc.exit_code


async def _execute(request: RunRequest, out: TextIO, err: TextIO, holder: dict) -> int:
    from runner.workflow.validate import load_workflow

    env = os.environ if request.env is None else request.env
    workflow = load_workflow(Path(request.file))
    async with contextlib.AsyncExitStack() as stack:
        overrides = Overrides(api=request.api, base_url=request.base_url, model=request.model)
        given_vars = dict(request.vars)
        message = request.message
        banner = None
        mocks = None
        if request.offline:
            case = pick_case(workflow, request.case_name)
            given_vars = {**case.vars, **given_vars}
            if message is None:
                message = case.input
            server = start_scripted_server(workflow, case)
            mocks = case_mocks(workflow, case)
            stack.callback(server.stop)
            overrides = Overrides(api=request.api, base_url=server.base_url, model=request.model)
            env = {**env, workflow.model.api_key_env: OFFLINE_KEY}
            mocked = f" (HTTP tools {', '.join(sorted(mocks))} answer from the case's mock_http)" if mocks else ""
            banner = OFFLINE_BANNER.format(case=case.name, file=request.file, mocked=mocked)
        inputs = resolve_inputs(workflow, given_vars)
        require_env(workflow, env)
        settings = model_settings(workflow, overrides, inputs, env)
        masker = build_masker(workflow, env, None if request.offline else settings.api_key)
        holder["masker"] = masker
        recorder = None
        if request.record:  # checked before the run, so a refused target costs no model call
            from runner.render.recording import Recorder, check_target

            if request.chat:
                raise UsageError("--record saves one message and its answer; it cannot be used with --chat")
            check_target(Path(request.record), workflow.path)
            recorder = Recorder(vars=given_vars, mock_http=mocks)
        message = render_text(message if message is not None else workflow.input, inputs, "input")
        if not message:
            raise UsageError(
                "there is no user message", hint=f"give one with -m \"...\" or set `input:` in {request.file}"
            )
        run_id = new_run_id()
        sinks: list[Callable[[Event], None]] = []
        renderer = make_renderer(request, out, err)
        sinks.append(renderer)
        log = open_log(request, masker)
        if log is not None:
            stack.callback(log.close)
            log.start_run(
                run_id=run_id,
                workflow_path=str(workflow.path),
                workflow_sha256=workflow.source_sha256,
                api=settings.api,
                model=settings.model,
                input=masker.mask(message),
                offline=request.offline,
            )
            sinks.append(lambda ev, _log=log: _log.record(run_id, ev))
        if recorder is not None:
            sinks.append(recorder)
        emit = FanOut(sinks, masker)
        if banner:
            emit(Notice(level="warning", message=banner))
        emit(RunStarted(run_id, str(workflow.path), settings.api, settings.model, message, request.offline))

        try:
            outcome = await run_conversation(
                workflow,
                settings,
                [message],
                emit,
                run_id=run_id,
                inputs=inputs,
                env=env,
                masker=masker,
                allow_python=request.allow_python,
                max_turns=request.max_turns,
                next_message=chat_reader(request, err) if request.chat else None,
                mock_http=mocks,
                show_requests=request.verbose,
            )
        except (KeyboardInterrupt, asyncio.CancelledError):
            if log is not None:
                log.finish_run(run_id, status="interrupted", final_text="", usage=None, exit_code=130, error="interrupted by the user")
            raise
        except FlowrunError as exc:  # e.g. the API client could not be set up: exit 3, not a crash
            if log is not None:
                log.finish_run(run_id, status="error", final_text="", usage=None, exit_code=exc.exit_code, error=masker.mask(str(exc)))
            raise
        except BaseException as exc:
            if log is not None:
                log.finish_run(run_id, status="crashed", final_text="", usage=None, exit_code=1, error=f"internal error: {type(exc).__name__}")
            raise
        holder["outcome"] = outcome
        if recorder is not None:
            from runner.render.recording import finish

            finish(recorder, outcome.status, Path(request.record), workflow, err)
        if log is not None:
            log.finish_run(
                run_id,
                status=outcome.status,
                final_text=outcome.final_text,
                usage=outcome.usage,
                exit_code=outcome.exit_code,
                error=outcome.message or None,
            )
        if hasattr(renderer, "close"):
            renderer.close()
        return outcome.exit_code


async def run_conversation(
    workflow: Workflow,
    settings,
    messages: list[str],
    emit: Callable[[Event], None],
    *,
    run_id: str,
    inputs: Mapping[str, Any],
    env: Mapping[str, str],
    masker,
    allow_python: bool = True,
    max_turns: int = 10,
    mock_http: Mapping[str, Any] | None = None,
    next_message: Callable[[], Any] | None = None,
    show_requests: bool = False,
    http_client: Any = None,
    sdk_clients: Any = None,
) -> RunOutcome:
    """The run path every caller shares: provider + dispatcher + loop. Each message after the
    first (and each one ``next_message`` returns, until it returns None) continues the same
    conversation. ``http_client`` (owned by the caller) lets many runs share one connection pool,
    ``sdk_clients`` (an ``SDKClientCache``, the caller's too) their SDK clients."""
    from runner.providers.factory import create_provider
    from runner.tools.dispatcher import Dispatcher

    async with contextlib.AsyncExitStack() as stack:
        if show_requests and http_client is None:
            from runner.providers.verbose_http import logging_http_client

            http_client = logging_http_client(emit, masker, settings.timeout)
            stack.push_async_callback(http_client.aclose)
        provider = create_provider(
            settings, http_client=http_client, sdk_clients=sdk_clients, masker=masker, on_notice=emit
        )
        stack.push_async_callback(provider.aclose)
        dispatcher = Dispatcher(
            workflow, inputs=inputs, env=env, masker=masker, allow_python=allow_python, mock_http=mock_http,
            on_notice=emit,
        )
        stack.push_async_callback(dispatcher.aclose)
        loop = RunLoop(provider, dispatcher, emit, run_id=run_id, max_turns=max_turns)
        outcome = await loop.run(messages[0])
        pending = list(messages[1:])
        while outcome.exit_code == 0:
            if pending:
                follow = pending.pop(0)
            elif next_message is not None:
                follow = await next_message()
            else:
                break
            if not follow:
                break
            outcome = await loop.follow_up(follow)
        return outcome


def chat_reader(request: RunRequest, err: TextIO):
    """``--chat``: the next user message, read off the event loop; None ends the conversation."""
    import sys

    def read(prompt: str) -> str | None:
        err.write(prompt)
        err.flush()
        line = sys.stdin.readline()
        return line.rstrip("\n") if line else None

    reader = request.read_line or read

    async def next_message() -> str | None:
        text = await in_daemon_thread(reader, "\nyou> ")
        return text.strip() or None if text is not None else None

    return next_message


def start_scripted_server(workflow: Workflow, case: TestCase):
    """The embedded model server for --offline and ``flowrun test``, playing ``case``'s turns."""
    from runner.scripted import ScriptedServer

    server = ScriptedServer(list(case.turns))
    if workflow.model.assistant_id:
        server.add_assistant(workflow.model.assistant_id, name=workflow.name, model=workflow.model.name)
    server.start()
    return server


def case_mocks(workflow: Workflow, case: TestCase, mode: str = "declared") -> dict | None:
    """Canned HTTP answers: the case's ``mock_http`` (declared), those plus "no answer" for every
    other HTTP tool (all: no network at all), or none (live)."""
    if mode == "none":
        return None
    mocks: dict[str, Any] = dict(case.mock_http)
    if mode == "all":
        from runner.workflow.model import HttpResolver

        for tool in workflow.tools:
            if isinstance(tool.resolver, HttpResolver):
                mocks.setdefault(tool.name, None)
    return mocks


def make_renderer(request: RunRequest, out: TextIO, err: TextIO):
    if request.output == "jsonl":
        from runner.render.jsonl import JsonlRenderer

        return JsonlRenderer(out)
    from runner.render.terminal import TerminalRenderer

    tty = bool(getattr(err, "isatty", lambda: False)())
    return TerminalRenderer(
        out,
        err,
        tty=tty,
        color=request.color and tty,
        quiet=request.quiet,
        verbose=request.verbose,
    )


__all__ = ["RunRequest", "execute", "RunFailed"]
