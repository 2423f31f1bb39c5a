"""The CLI's run: a plan from the request, the sinks (terminal or JSONL, run log, --record),
the offline server when asked, then the shared run path (``run.conversation.run_plan``).

Errors are raised, never printed: ``runner.cli`` turns them into text and an exit code.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, TextIO

from runner.daemon_thread import in_daemon_thread
from runner.errors import Interrupted, RunError, UsageError
from runner.events import RunEnd
from runner.run import offline as offline_mode
from runner.run.case_answers import case_prompter
from runner.run.conversation import run_conversation, run_plan
from runner.run.plan import RunOptions, prepare
from runner.calls import Approvals
from runner.run.startup_gc import PausedCollector


@dataclass
class RunRequest:
    file: str
    message: str | None = None
    vars: dict[str, str] = field(default_factory=dict)
    api: str | None = None
    base_url: str | None = None
    model: str | None = None
    profile: str | None = None
    max_turns: int = 10
    policies: dict[str, str] = field(default_factory=dict)  # --policy NAME=VALUE, checked
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
    otel: bool = False  # --otel (the standard OTEL_EXPORTER_OTLP_ENDPOINT turns it on too)
    read_line: Callable[[str], str | None] | None = None  # for --chat; default reads stdin
    pause_on_approval: bool = False  # --pause-on-approval: a call that asks pauses the run (exit 4)
    approvals: Approvals = field(default_factory=Approvals)  # --approve/--deny/--yes
    prompter: Any = None  # who answers approvals; default: the terminal when there is one

    def options(self) -> RunOptions:
        return RunOptions(api=self.api, base_url=self.base_url, model=self.model, profile=self.profile,
                          max_turns=self.max_turns, policies=self.policies,
                          allow_python=self.allow_python, show_requests=self.verbose,
                          approvals=replace(self.approvals, pause=self.approvals.pause or pauses(self)))


def open_log(request: RunRequest):
    if not request.log:
        return None
    try:
        from runner.runlog.log import RunLog, default_log_path
    except ImportError:  # the run log is optional equipment, never a reason to fail
        return None
    try:
        return RunLog.open(request.log_db or default_log_path())
    except Exception as exc:  # noqa: BLE001
        import sys

        sys.stderr.write(f"flowrun: warning: run log unavailable ({exc}); this run is not recorded\n")
        return None


def open_tracer(request: RunRequest, env: Mapping[str, str]):
    """The OpenTelemetry sink, only when asked for: otherwise nothing of it is imported."""
    if not (request.otel or env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")):
        return None
    try:
        from runner.otel.export import OtelSink
    except ImportError as exc:
        from runner.otel import MISSING_HINT

        raise UsageError(f"OpenTelemetry is not installed ({exc.name} is missing)", hint=MISSING_HINT) from None
    return OtelSink(env=dict(env))


def run(request: RunRequest, *, out: TextIO, err: TextIO, startup: PausedCollector | None = None) -> RunEnd:
    """Run a workflow for the CLI. Returns the ``run.completed`` event. A run that ended
    otherwise raises RunError (Interrupted for Ctrl-C) with its exit code, after the renderer
    showed why; one that could not run raises its FlowrunError, text masked. ``startup``: the
    collector paused by the caller before its imports (else paused here), resumed when the
    first turn ends."""
    startup = startup if startup is not None else PausedCollector()
    try:
        end = asyncio.run(_execute(request, out, err, startup))
    except KeyboardInterrupt:
        raise Interrupted() from None
    finally:
        startup.resume()
    if end.exit_code == Interrupted.exit_code:
        raise Interrupted(end.message, shown=True)
    if end.exit_code:
        raise RunError(end.message, exit_code=end.exit_code)
    return end


async def _execute(request: RunRequest, out: TextIO, err: TextIO, startup: PausedCollector) -> RunEnd:
    from runner.workflow.validate import load_workflow

    env = os.environ if request.env is None else request.env
    workflow = load_workflow(Path(request.file))
    with contextlib.ExitStack() as stack:
        offline = None
        if request.offline and request.chat:  # a scripted model has only its case's turns to give
            raise UsageError("--chat needs a model to answer each new message; --offline only replays the "
                             "model's turns written in a test case",
                             hint="drop --chat to replay the case, or drop --offline to chat with a model")
        check_pause(request)
        if request.offline:
            case = offline_mode.pick_case(workflow, request.case_name)
            offline = stack.enter_context(offline_mode.start(workflow, case))
        plan = prepare(workflow, request.options(), env=env, vars=request.vars, message=request.message,
                       offline=offline)
        recorder = None
        if request.record:  # checked before the run, so a refused target costs no model call
            from runner.render.recording import Recorder, check_target

            if request.chat:
                raise UsageError("--record saves one message and its answer; it cannot be used with --chat")
            check_target(Path(request.record), workflow.path)
            recorder = Recorder(vars=plan.vars, mock_http=plan.mocks,
                                mock_mcp=offline.mock_mcp if offline is not None else None)
        renderer = make_renderer(request, out, err, structured=workflow.output is not None)
        sinks = [renderer, startup]
        if hasattr(renderer, "close"):
            stack.callback(renderer.close)
        log = open_log(request)
        if log is not None:
            stack.callback(log.close)
            sinks.append(log.sink(plan.run_id))
        if recorder is not None:
            sinks.append(recorder)
        tracer = open_tracer(request, env)
        if tracer is not None:
            stack.callback(tracer.close)
            sinks.append(tracer)
        notices = [offline.banner(request.file)] if offline is not None else []
        if request.verbose and offline is None:
            notices.append(plan.defaults.describe())
        end = await run_plan(plan, sinks, notices=notices,
                             next_message=chat_reader(request, err) if request.chat else None,
                             on_mcp=recorder.saw_mcp if recorder is not None else None,
                             prompter=case_prompter(plan, request.prompter or (
                                 None if plan.options.approvals.pause else terminal_prompter(request, err, plan.masker))),
                             resume_flags=resume_flags(request))
        if recorder is not None:
            from runner.render.recording import finish

            finish(recorder, end.status, Path(request.record), workflow, err)
        return end


def check_pause(request: RunRequest) -> None:
    """``--pause-on-approval`` needs what ``flowrun resume`` starts from: the run log, and a model
    that outlives this process."""
    if not request.pause_on_approval:
        return
    if not request.log:
        raise UsageError("--pause-on-approval keeps the paused run in the run log, and --no-log turns it off",
                         hint="drop --no-log, or decide up front with --approve TOOL / --deny TOOL")
    if request.offline:
        raise UsageError("an --offline run cannot pause: its scripted model ends with this process",
                         hint="decide up front with --approve TOOL / --deny TOOL")
    if request.chat:
        raise UsageError("--pause-on-approval cannot be used with --chat: answer at the prompt instead")


def pauses(request: RunRequest) -> bool:
    """Does a call that needs an approval pause this run? ``--pause-on-approval``; or ``-o jsonl``
    (its events go to a program, which cannot answer a prompt, even when a person started it at a
    terminal), when the run can be resumed (logged, not offline, not --chat)."""
    if request.pause_on_approval:
        return True
    return request.output == "jsonl" and request.log and not request.offline and not request.chat


def resume_flags(request: RunRequest) -> str:
    """What ``flowrun resume`` needs besides the run id to find a paused run: the log it is in,
    when it is not the default one (absolute: the resume may start in another folder)."""
    if not request.log_db:
        return ""
    import shlex

    return " --log-db " + shlex.quote(str(Path(request.log_db).expanduser().resolve()))


def terminal_prompter(request: RunRequest, err: TextIO, masker):
    """The person at the terminal answers approvals, when there is one: stdin and stderr both a
    terminal and the events not going to a program (``-o jsonl``). Otherwise nobody is asked."""
    import sys

    if request.output != "text" or not (sys.stdin.isatty() and getattr(err, "isatty", lambda: False)()):
        return None
    from runner.render.prompt import TerminalPrompter

    return TerminalPrompter(err, mask=masker.mask, color=request.color)


def chat_reader(request: RunRequest, err: TextIO):
    """``--chat``: the next user message, read off the event loop; None ends the conversation."""
    import sys

    def read(prompt: str) -> str | None:
        console = _terminal_stdout()
        if console is not None and sys.stdin.isatty():
            return _read_edited(prompt, err, console)
        err.write(prompt)
        err.flush()
        line = sys.stdin.readline()
        if not line:
            err.write("\n")  # Ctrl-D: leave the shell prompt on a line of its own
            err.flush()
            return None
        return line.rstrip("\n")

    reader = request.read_line or read

    async def next_message() -> str | None:
        text = await in_daemon_thread(reader, "\nyou> ")
        return text.strip() or None if text is not None else None

    return next_message


def _terminal_stdout() -> TextIO | None:
    """The interpreter's own stdout when descriptor 1 is a terminal, else None.

    ``input()`` edits the line (readline) only when ``sys.stdin`` and ``sys.stdout`` are
    descriptors 0 and 1 on a terminal. flowrun's ``sys.stdout`` is neither (``runner.stdout_fd``
    gave it a descriptor of its own, and pointed descriptor 1 at stderr, where the prompt belongs),
    so the prompt is read with the interpreter's original ``sys.__stdout__`` in place."""
    import sys

    console = sys.__stdout__
    try:
        return console if console is not None and console.fileno() == 1 and os.isatty(1) else None
    except (AttributeError, OSError, ValueError):
        return None


def _read_edited(prompt: str, err: TextIO, console: TextIO) -> str | None:
    """A terminal line with editing and history (arrow keys, Ctrl-R) where the standard
    library's readline exists; Ctrl-D ends with a clean new line. Nothing else writes to
    ``sys.stdout`` while the person types (the run waits for the message; renderers hold their
    own streams), so it is swapped for ``console`` only for the time of ``input()``."""
    import sys

    try:
        import readline  # noqa: F401 - importing it gives input() line editing
    except ImportError:
        pass
    saved = sys.stdout
    sys.stdout = console
    try:
        return input(prompt)
    except EOFError:
        err.write("\n")
        err.flush()
        return None
    finally:
        sys.stdout = saved


def make_renderer(request: RunRequest, out: TextIO, err: TextIO, *, structured: bool = False):
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
        structured=structured,
    )


__all__ = ["RunRequest", "run", "run_conversation"]
