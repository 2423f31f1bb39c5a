"""Carry out a run: provider + dispatcher + loop, events fanned out (masked once) to the sinks.

Every way of ending goes through one terminal event (``run.completed`` or ``run.failed``) that
every sink sees, an exception or Ctrl-C included; the caller gets that event back, or the
exception, its text masked.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, Callable, Iterable, Mapping

from runner.errors import FlowrunError, Interrupted
from runner.events import Event, Notice, RunEnd, RunStarted
from runner.run.fanout import FanOut, Sink
from runner.run.loop import RunLoop, crash_end
from runner.run.pausing import PauseContext, SavedRound
from runner.run.plan import RunPlan
from runner.run.structured import OutputCheck
from runner.workflow.model import RunPolicies, Workflow


async def run_plan(
    plan: RunPlan,
    sinks: Iterable[Sink],
    *,
    notices: Iterable[str] = (),
    next_message: Callable[[], Any] | None = None,
    http_client: Any = None,
    sdk_clients: Any = None,
    mcp: Any = None,
    on_mcp: Callable[[Any], None] | None = None,
    prompter: Any = None,
    resume_flags: str = "",
) -> RunEnd:
    """Run ``plan``: ``notices`` (warnings a person must see first), ``run.started``, the
    conversation, its terminal event. Returns that event; an exception is raised on after the
    sinks saw the run end, a FlowrunError with its text masked."""
    emit = FanOut(list(sinks), plan.masker)
    for text in notices:
        emit(Notice(level="warning", message=text))
    s = plan.settings
    emit(RunStarted(plan.run_id, str(plan.workflow.path), s.api, s.model, plan.message,
                    plan.offline is not None, plan.workflow.source_sha256))
    try:
        end = await run_conversation(
            plan.workflow, s, [plan.message], emit, run_id=plan.run_id, inputs=plan.inputs, env=plan.env,
            masker=plan.masker, allow_python=plan.options.allow_python, max_turns=plan.options.max_turns,
            mock_http=plan.mocks, next_message=next_message, show_requests=plan.options.show_requests,
            http_client=http_client, sdk_clients=sdk_clients, mcp=mcp, on_mcp=on_mcp,
            mock_mcp=plan.offline.mock_mcp if plan.offline is not None else None,
            approvals=plan.options.approvals, prompter=prompter, policies=plan.policies,
            pause=PauseContext(pause_settings(plan), resume_flags, more=lambda: tool_modules(plan.workflow)),
        )
    except FlowrunError as exc:
        raise exc.masked(plan.masker.mask) from None
    emit.check_output(end)  # it completed, but not everything it said was shown?
    return end


def pause_settings(plan: RunPlan) -> dict[str, Any]:
    """What ``flowrun resume`` rebuilds a paused run from, beside the provider's snapshot."""
    s = plan.settings
    return {"workflow": str(plan.workflow.path.resolve()), "workflow_sha256": plan.workflow.source_sha256,
            "api": s.api, "base_url": s.base_url, "model": s.model, "inputs": dict(plan.inputs),
            "max_turns": plan.options.max_turns, "allow_python": plan.options.allow_python,
            "offline": plan.offline is not None}


def tool_modules(workflow: Workflow) -> dict[str, Any]:
    """The python tools' module files and their hashes: a resume refuses code that changed."""
    from runner.workflow.tool_modules import tool_module_hashes

    return {"tool_modules": tool_module_hashes(workflow)}


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
    mcp: Any = None,
    mock_mcp: Mapping[str, Any] | None = None,
    on_mcp: Callable[[Any], None] | None = None,
    approvals: Any = None,
    prompter: Any = None,
    pause: PauseContext | None = None,
    resume: tuple[dict, SavedRound] | None = None,
    policies: RunPolicies | None = None,
) -> RunEnd:
    """The conversation every caller shares. Each message after the first (and each one
    ``next_message`` returns, until it returns None) continues it. ``http_client`` (owned by
    the caller) lets many runs share one connection pool, ``sdk_clients`` (an
    ``SDKClientCache``, the caller's too) their SDK clients, ``mcp`` (started and owned by the
    caller, e.g. a batch) its MCP servers; without it, the workflow's MCP servers are started here
    for this conversation and stopped after it (``mock_mcp``: a test case's canned servers).
    Whatever stops it outside a turn still ends it with a terminal event (``crash_end``) before
    the exception goes on. ``pause``: what a run that pauses for approvals keeps for ``flowrun
    resume``; ``resume``: (the provider's snapshot, the paused round) to go on with instead of
    sending ``messages[0]``; ``approvals`` and ``prompter``: the dispatcher's gate;
    ``policies``: the run policies (default: the workflow's own)."""
    started = time.monotonic()
    loop: RunLoop | None = None
    try:
        async with contextlib.AsyncExitStack() as stack:
            if mcp is None and workflow.mcp:
                from runner.run.mcp_session import start_mcp

                mcp = await start_mcp(workflow, env=env, emit=emit, mocks=mock_mcp, allow_local_code=allow_python)
                stack.push_async_callback(mcp.aclose)
            if mcp is not None:
                from dataclasses import replace

                from runner.run.settings import tool_definitions

                workflow = mcp.with_tools(workflow)
                settings = replace(settings, tools=tool_definitions(workflow))
                if on_mcp is not None:
                    on_mcp(mcp)
            loop = await _open(stack, workflow, settings, emit, run_id=run_id, inputs=inputs, env=env,
                               masker=masker, allow_python=allow_python, max_turns=max_turns,
                               mock_http=mock_http, show_requests=show_requests, http_client=http_client,
                               sdk_clients=sdk_clients, mcp=mcp, approvals=approvals, prompter=prompter,
                               pause=pause, started=started,
                               policies=policies if policies is not None else workflow.policies)
            if resume is not None:
                loop.provider.restore(resume[0])  # checked before: a bad snapshot never gets here
                end = await loop.resume(resume[1])
            else:
                end = await loop.run(messages[0])
            pending = list(messages[1:])
            while end.exit_code == 0:
                if pending:
                    follow = pending.pop(0)
                elif next_message is not None:
                    try:
                        follow = await next_message()
                    except (asyncio.CancelledError, KeyboardInterrupt) as exc:  # Ctrl-C at the prompt
                        end = loop.crashed(exc)  # ends "interrupted", as Ctrl-C in a turn does
                        emit(end)
                        break
                else:
                    break
                if not follow:
                    break
                end = await loop.follow_up(follow)
        return end
    except BaseException as exc:
        if loop is not None:
            emit(loop.crashed(exc))
        elif resume is not None and isinstance(exc, FlowrunError) and not isinstance(exc, Interrupted):
            # a resume that failed before its conversation began (an MCP server that does not
            # start): nothing ran, so the run waits again as it was
            exc = exc.masked(masker.mask)
            return RunLoop(None, None, emit, run_id=run_id, pause=pause, started=started).pause_again(
                resume[1], exc.message, resume[0])
        else:
            emit(crash_end(run_id, exc, duration_ms=round((time.monotonic() - started) * 1000, 3)))
        raise


async def _open(stack: contextlib.AsyncExitStack, workflow: Workflow, settings, emit, *, run_id, inputs, env,
                masker, allow_python, max_turns, mock_http, show_requests, http_client, sdk_clients, mcp=None,
                approvals=None, prompter=None, pause: PauseContext | None = None, started=None,
                policies=None) -> RunLoop:
    """Provider, dispatcher and loop for one conversation, closed by ``stack``."""
    from runner.providers.factory import create_provider
    from runner.tools.dispatcher import Dispatcher

    if show_requests and http_client is None:
        from runner.providers.verbose_http import logging_http_client

        http_client = logging_http_client(emit, masker, settings.timeout)
        stack.push_async_callback(http_client.aclose)
    provider = create_provider(settings, http_client=http_client, sdk_clients=sdk_clients, masker=masker, on_notice=emit)
    stack.push_async_callback(provider.aclose)
    dispatcher = Dispatcher(
        workflow, inputs=inputs, env=env, masker=masker, allow_python=allow_python, mock_http=mock_http, mcp=mcp,
        emit=emit, approvals=approvals, prompter=prompter,
    )
    stack.push_async_callback(dispatcher.aclose)
    spec = workflow.output
    output = OutputCheck(spec.schema, attempts=spec.attempts) if spec is not None else None
    return RunLoop(provider, dispatcher, emit, run_id=run_id, max_turns=max_turns, output=output, pause=pause,
                   started=started, policies=policies)


__all__ = ["run_plan", "run_conversation"]
