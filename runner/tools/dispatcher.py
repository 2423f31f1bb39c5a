"""Resolve the model's tool calls through the workflow file.

The dispatcher's promise to the run loop: exactly one ``ToolResult`` per call, in call order,
whatever happens. Bad JSON, an unknown tool, arguments that break the schema, a tool that raises
(even ``SystemExit`` or ``KeyboardInterrupt``), hangs past its timeout or returns something odd:
each becomes an output starting with ``error: `` so the model can react, and nothing is raised.
Only cancellation of the dispatcher itself (Ctrl-C) propagates.

Arguments are checked before anything runs: no side effect happens for a call the tool's schema
rejects. Then the approval gate (``approval.py``, ``approval_policy.py``) decides each checked call,
one after another in call order: run, refuse (the model is told why) or ask a ``Prompter``; a round
with a call that must wait for a later decision runs no tool and raises ``ApprovalPause``. Outputs are masked (secrets) and then capped at ``max_output_chars``; what Python tools
print is masked too (``stdout_guard``). A run that expires (Assistants ``expires_at``) passes its
deadline, and each tool's timeout is cut so the outputs still reach the run in time.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Callable, Mapping, Sequence

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from runner.calls import ToolCall, ToolResult
from runner.events import ApprovalDecided, ApprovalRequested, Event, Notice
from runner.secrets.masker import Masker
from runner.suggest import suggest
from runner.templating import MISSING, TemplateError, render_value
from runner.textsafe import encodable
from runner.tools.approval import ApprovalPause, ApprovalRequest, Approvals, Decision, Prompter
from runner.tools.approval_policy import verdict
from runner.tools.outputs import ToolFailure, error_text, to_output, truncate
from runner.tools.static_tool import resolve_static
from runner.workflow.model import HttpResolver, McpResolver, PythonResolver, StaticResolver, ToolSpec, Workflow

MAX_ARGUMENT_BYTES = 1_000_000
MAX_LISTED_VIOLATIONS = 20
DEADLINE_MARGIN = 2.0  # seconds kept, before a run's deadline, to submit the outputs
MIN_TOOL_SECONDS = 0.5  # a tool clamped by a deadline still gets this long


class _BadArguments(Exception):
    pass


@dataclass
class _Admitted:
    """A call after the checks and the gate: ``tool``/``args`` to run, or its ``output`` already
    decided (bad arguments, refused), or ``waiting`` for a later decision (paused)."""

    call: ToolCall
    tool: ToolSpec | None = None
    args: dict[str, Any] | None = None
    output: str | None = None
    refused: bool = False
    waiting: ApprovalRequest | None = None


class Dispatcher:
    def __init__(
        self,
        workflow: Workflow,
        *,
        inputs: Mapping[str, Any] = {},  # noqa: B006 - never mutated
        env: Mapping[str, str] | None = None,
        masker: Masker | None = None,
        allow_python: bool = True,
        max_concurrency: int = 16,
        mock_http: Mapping[str, Mapping] | None = None,
        max_output_chars: int = 100_000,
        mcp: Any = None,  # runner.tools.mcp_servers.manager.McpTools, started; owned by the caller
        emit: Callable[[Event], None] | None = None,  # notices and approval.* events
        approvals: Approvals | None = None,  # the command line's --approve/--deny/--yes
        prompter: Prompter | None = None,  # who is asked when the file says ask; None: nobody
    ):
        self.workflow = workflow if mcp is None else mcp.with_tools(workflow)
        self._mcp = mcp
        self._inputs = dict(inputs)
        self._env = dict(os.environ if env is None else env)
        self.masker = masker if masker is not None else Masker()
        self._allow_python = allow_python
        self._semaphore = asyncio.Semaphore(max(1, max_concurrency))
        self._mock_http = mock_http
        self._max_output_chars = max_output_chars
        self._on_event = emit
        self._validators: dict[str, Draft202012Validator] = {}
        self._http = None
        self._python = None
        self._watchdog = None
        self._in_flight: dict[str, int] = {}
        self._approvals = approvals if approvals is not None else Approvals()
        self._prompter = prompter
        self._always: set[str] = set()  # tools approved "always" at the prompt, for this run
        for name in workflow.env_names():  # values the tools send are secrets
            self.masker.add(self._env.get(name))

    async def run_all(
        self,
        calls: Sequence[ToolCall],
        *,
        on_start: Callable[[ToolCall], None] | None = None,
        on_done: Callable[[ToolResult], None] | None = None,
        deadline: float | None = None,
    ) -> list[ToolResult]:
        """Run every call concurrently (at most ``max_concurrency`` at once); results in call
        order. ``on_start``/``on_done`` are called as each call starts and finishes; an exception
        raised by one of them is the caller's and propagates (the other calls are cancelled).

        ``deadline`` (epoch seconds, e.g. an Assistants run's ``expires_at``): each tool's timeout
        is cut so its output can still be submitted ``DEADLINE_MARGIN`` seconds before it."""

        admitted = []
        for call in calls:  # checked and decided one after another, in call order
            admitted.append(await self._admit_safely(call))
        waiting = [a.waiting for a in admitted if a.waiting is not None]
        if waiting:
            raise ApprovalPause(calls, waiting)

        async def one(item: _Admitted) -> ToolResult:
            if on_start is not None:
                on_start(item.call)
            result = await self._run_admitted(item, deadline)
            if on_done is not None:
                on_done(result)
            return result

        tasks = [asyncio.ensure_future(one(item)) for item in admitted]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            raise

    async def run_one(self, call: ToolCall, *, deadline: float | None = None) -> ToolResult:
        """One call, never raising (except when cancelled from outside, or ``ApprovalPause``
        when it must wait for a later decision)."""
        item = await self._admit_safely(call)
        if item.waiting is not None:
            raise ApprovalPause([call], [item.waiting])
        return await self._run_admitted(item, deadline)

    async def _admit_safely(self, call: ToolCall) -> _Admitted:
        try:
            return await self._admit(call)
        except asyncio.CancelledError:
            raise
        except BaseException as e:  # noqa: BLE001 - a bug of ours must not lose the call's output
            return _Admitted(call, output=f"error: flowrun failed while checking this call ({_describe(e)})")

    async def _run_admitted(self, item: _Admitted, deadline: float | None) -> ToolResult:
        call = item.call
        started = time.perf_counter()
        if item.output is not None:
            output, is_error = item.output, True
        else:
            try:
                async with self._semaphore:
                    output, is_error = await self._execute(item.tool, item.args, deadline)
            except asyncio.CancelledError:
                raise
            except BaseException as e:  # noqa: BLE001 - a bug of ours must not lose the call's output
                output, is_error = f"error: flowrun failed while running this tool ({_describe(e)})", True
        output = truncate(self.masker.mask(encodable(output)), self._max_output_chars)
        duration = round((time.perf_counter() - started) * 1000, 3)
        return ToolResult(call.call_id, call.name, output, is_error, duration, refused=item.refused)

    def _watch(self) -> None:
        if self._watchdog is None:
            from runner.tools.loop_watchdog import LoopWatchdog

            self._watchdog = LoopWatchdog(self._running_tools, write=lambda t: sys.stderr.write(self.masker.mask(t)))
            self._watchdog.start()

    def _running_tools(self) -> str:
        names = sorted(n for n, k in self._in_flight.items() if k > 0)
        return "tool " + ", ".join(repr(n) for n in names) if names else "a tool"

    async def aclose(self) -> None:
        if self._watchdog is not None:
            self._watchdog.stop()
        if self._python is not None:
            from runner.tools import stdout_guard

            stdout_guard.remove_masker(self.masker)
        if self._http is not None:
            await self._http.aclose()

    async def _admit(self, call: ToolCall) -> _Admitted:
        """Check the call (tool, JSON, bound arguments, schema), then put it through the gate."""
        name = call.name if call.name and call.name.strip() else ""
        tool = self.workflow.tool(name) if name else None
        if tool is None:
            return _Admitted(call, output=self._unknown_tool(name))
        try:
            args = parse_arguments(call.arguments)
            args = self._bind(tool, args)
            self._validate(tool, args)
        except _BadArguments as e:
            return _Admitted(call, output=error_text(str(e)))
        return await self._gate(call, tool, args)

    async def _gate(self, call: ToolCall, tool: ToolSpec, args: dict[str, Any]) -> _Admitted:
        """What the file says, then (for ``ask``) the flags, an earlier "always", the prompter."""
        v = verdict(tool, args, self.workflow)
        if v.action == "allow":
            if v.by == "rule":
                self._emit(ApprovalDecided(call.call_id, tool.name, "approved", "rule", ""))
            return _Admitted(call, tool, args)
        if v.action == "deny":
            reason = f"the workflow file refuses this call ({v.why})"
            self._emit(ApprovalDecided(call.call_id, tool.name, "denied", v.by, reason))
            return _Admitted(call, output=f"error: tool {tool.name!r} was not run: {reason}.", refused=True)
        try:
            target = self._target(tool, args)
        except Exception as e:  # noqa: BLE001 - a request that cannot be built is not put to anyone
            return _Admitted(call, output=error_text(f"cannot build the request of tool {tool.name!r}: {e}"))
        request = ApprovalRequest(call, tool.name, args, target=target, why=v.why)
        self._emit(ApprovalRequested(call.call_id, tool.name, json.dumps(args, ensure_ascii=False),
                                     target or "", v.why))
        decision = await self._ask(request)
        if decision.answer == "approve":
            if decision.always:
                self._always.add(tool.name)
            self._emit(ApprovalDecided(call.call_id, tool.name, "approved", decision.by, ""))
            return _Admitted(call, tool, args)
        if decision.answer == "pause":
            self._emit(ApprovalDecided(call.call_id, tool.name, "paused", decision.by, ""))
            return _Admitted(call, waiting=request)
        if decision.answer == "deny":
            said = f": {decision.reason}" if decision.reason else ""
            reason = f"the user declined to run it{said}"
            text = f"error: tool {tool.name!r} was not run: {reason}. Do not call it again for this request."
            if decision.by == "flag":
                reason = "refused with --deny on the command line"
                text = f"error: tool {tool.name!r} was not run: the user refused it (--deny)."
        else:  # unanswered: nobody could be asked
            reason = "it needs approval and nobody was asked (no terminal)"
            text = (f"error: tool {tool.name!r} was not run: it needs a person's approval ({v.why}) and "
                    "none could be given in this run.")
            self._notice(f"tool {tool.name!r} was not run: it needs approval ({v.why}); approve it with "
                         f"--approve {tool.name} or --yes, or set approval: allow for it in the workflow file")
        self._emit(ApprovalDecided(call.call_id, tool.name, "denied", decision.by, reason))
        return _Admitted(call, output=text, refused=True)

    async def _ask(self, request: ApprovalRequest) -> Decision:
        flags = self._approvals
        name = request.tool
        if any(fnmatchcase(name, p) for p in flags.deny):
            return Decision("deny", "flag")
        if flags.yes or any(fnmatchcase(name, p) for p in flags.approve):
            return Decision("approve", "flag")
        if name in self._always:
            return Decision("approve", "prompt")
        if self._prompter is not None:
            return await self._prompter.decide(request)
        if flags.pause:
            return Decision("pause", "default")
        return Decision("unanswered", "default")

    def _target(self, tool: ToolSpec, args: dict[str, Any]) -> str | None:
        """For an http tool, the method and URL it will call: what a person approves."""
        if not isinstance(tool.resolver, HttpResolver):
            return None
        from runner.tools.http_request import prepare

        prepared = prepare(tool.resolver, {"args": args, "env": self._env, "inputs": self._inputs})
        return f"{prepared.method} {prepared.url}"

    def _emit(self, event: Event) -> None:
        if self._on_event is not None:
            self._on_event(event)

    async def _execute(self, tool: ToolSpec, args: dict[str, Any], deadline: float | None = None) -> tuple[str, bool]:
        limit, clamped = time_limit(tool.timeout, deadline)
        python = isinstance(tool.resolver, PythonResolver)
        if python and tool.isolation != "process":
            self._watch()
        started = time.monotonic()
        self._in_flight[tool.name] = self._in_flight.get(tool.name, 0) + 1
        try:
            outcome = await _guard(self._resolve(tool, args), limit)
        finally:
            self._in_flight[tool.name] -= 1
        late = overran(limit, time.monotonic() - started)
        if late is not None:  # the tool kept the event loop from running its timeout
            return (f"error: tool {tool.name!r} ran {late:.1f} s, past its {limit:g} s timeout: it blocked "
                    "flowrun, so the timeout could not stop it, and its result is discarded. "
                    "`isolation: process` makes the timeout hold."), True
        if outcome[0] == "timeout":
            if clamped:
                return (f"error: tool {tool.name!r} was stopped after {limit:.1f} s so that the outputs "
                        "reach the run before it expires"), True
            return f"error: tool {tool.name!r} timed out after {tool.timeout:g} s", True
        if outcome[0] == "raised":
            exc = outcome[1]
            if isinstance(exc, ToolFailure):
                return error_text(str(exc)), True
            if isinstance(exc, TemplateError):
                return f"error: cannot fill the templates of tool {tool.name!r}: {exc}", True
            return f"error: the tool raised {_describe(exc)}", True
        try:
            return to_output(outcome[1]), False
        except ToolFailure as e:
            return error_text(str(e)), True

    async def _resolve(self, tool: ToolSpec, args: dict[str, Any]) -> Any:
        resolver = tool.resolver
        context = {"args": args, "env": self._env, "inputs": self._inputs}
        if isinstance(resolver, StaticResolver):
            return resolve_static(resolver, context)
        if isinstance(resolver, PythonResolver):
            if not self._allow_python:
                raise ToolFailure("python resolvers are disabled (--no-python)")
            if self._python is None:
                from runner.tools import stdout_guard
                from runner.tools.python_tool import PythonTool

                self._python = PythonTool(self.workflow.folder)
                stdout_guard.add_masker(self.masker)  # what the tools print is masked too
            return await self._python.call(resolver.entrypoint, args, isolation=tool.isolation)
        if isinstance(resolver, HttpResolver):
            if self._http is None:
                from runner.tools.http_tool import HttpTool

                self._http = HttpTool(self._mock_http, masker=self.masker)
            return await self._http.call(tool.name, resolver, context)
        if isinstance(resolver, McpResolver):
            if self._mcp is None:
                raise ToolFailure(f"MCP server {resolver.server!r} is not connected in this run")
            return await self._mcp.call(resolver, tool.name, args)
        raise ToolFailure(f"tool {tool.name!r} has no resolver flowrun knows")

    def _bind(self, tool: ToolSpec, args: dict[str, Any]) -> dict[str, Any]:
        """The arguments with the tool's bound ones filled in from the file. A value the model
        sent for a bound argument is dropped (it never saw that argument: it guessed, or was
        told to by text it read) and a warning says so, naming the argument, not the value."""
        if not tool.bind:
            return args
        sent = [name for name in tool.bind if name in args]
        if sent:
            self._notice(f"tool {tool.name!r}: the model sent bound argument{'s' if len(sent) > 1 else ''} "
                         f"{', '.join(sent)}; ignored, the workflow file sets {'them' if len(sent) > 1 else 'it'}")
        filled = {k: v for k, v in args.items() if k not in tool.bind}
        context = {"env": self._env, "inputs": self._inputs}
        for name, template in tool.bind.items():
            try:
                value = render_value(template, context)
            except TemplateError as e:
                raise _BadArguments(f"tool {tool.name!r} cannot fill its bound argument {name!r}: {e}") from None
            if value is not MISSING:
                filled[name] = _typed(value, (tool.parameters.get("properties") or {}).get(name))
        return filled

    def _notice(self, message: str) -> None:
        self._emit(Notice("warning", self.masker.mask(message)))

    def _unknown_tool(self, name: str) -> str:
        names = [t.name for t in self.workflow.tools]
        available = ", ".join(names) if names else "none"
        if not name:
            return f"error: the call names no tool. Available tools: {available}."
        shown = name if len(name) <= 100 else name[:100] + "…"
        close = suggest(name, names)
        hint = f" Did you mean {close!r}?" if close else ""
        return f"error: there is no tool named {shown!r}.{hint} Available tools: {available}."

    def _validate(self, tool: ToolSpec, args: dict[str, Any]) -> None:
        validator = self._validators.get(tool.name)
        if validator is None:
            try:
                validator = validator_for(tool.parameters)
            except SchemaError as e:
                raise _BadArguments(f"the parameters schema of tool {tool.name!r} is invalid: "
                                    f"{e.message}") from None
            self._validators[tool.name] = validator
        errors = sorted(validator.iter_errors(args), key=lambda e: (list(map(str, e.absolute_path)), e.message))
        if not errors:
            return
        lines = [f"- {e.json_path}: {_short(e.message)}" for e in errors[:MAX_LISTED_VIOLATIONS]]
        if len(errors) > MAX_LISTED_VIOLATIONS:
            lines.append(f"- …and {len(errors) - MAX_LISTED_VIOLATIONS} more")
        raise _BadArguments(f"the arguments do not match the parameters of tool {tool.name!r}:\n"
                            + "\n".join(lines) + "\nFix these and call the tool again.")


def _typed(value: Any, schema: Any) -> Any:
    """A bound value from ``--var`` is text; read it as the number or boolean its argument
    declares (``--var page_size=20`` for an integer argument), else leave it as it is."""
    kinds = schema.get("type") if isinstance(schema, dict) else None
    kinds = [kinds] if isinstance(kinds, str) else kinds if isinstance(kinds, list) else []
    if not isinstance(value, str) or "string" in kinds or not kinds:
        return value
    try:
        parsed = json.loads(value)
    except ValueError:
        return value
    ok = ((isinstance(parsed, bool) and "boolean" in kinds)
          or (isinstance(parsed, int) and not isinstance(parsed, bool) and ("integer" in kinds or "number" in kinds))
          or (isinstance(parsed, float) and "number" in kinds))
    return parsed if ok else value


_VALIDATORS: dict[int, tuple[Any, Draft202012Validator]] = {}  # id(schema) -> (schema, validator)
MAX_CACHED_VALIDATORS = 512


def validator_for(schema: Any) -> Draft202012Validator:
    """A checked validator for a tool's parameters schema, built once per schema object.

    ``check_schema`` costs more than a whole run against a local server, and a batch
    makes a dispatcher per input from the same loaded workflow: so validators are kept per schema
    *object* (a workflow's schemas are not changed after loading). The entry holds the schema
    itself, so its id cannot be reused while cached. Raises ``SchemaError``; not cached then."""
    hit = _VALIDATORS.get(id(schema))
    if hit is not None and hit[0] is schema:
        return hit[1]
    validator = Draft202012Validator(schema)
    validator.check_schema(schema)
    if len(_VALIDATORS) >= MAX_CACHED_VALIDATORS:
        _VALIDATORS.clear()  # many workflows in one process (flowrun test): start over
    _VALIDATORS[id(schema)] = (schema, validator)
    return validator


OVERRUN_SLACK = 1.0  # seconds past a timeout that count as "the timeout did not hold"


def overran(limit: float, elapsed: float) -> float | None:
    """``elapsed`` when a call outlived its timeout by more than the slack (the event loop could
    not stop it), else None."""
    return elapsed if limit and limit > 0 and elapsed > limit + OVERRUN_SLACK else None


def time_limit(timeout: float, deadline: float | None) -> tuple[float, bool]:
    """The seconds a tool may run, and whether ``deadline`` cut its own ``timeout`` short."""
    if deadline is None:
        return timeout, False
    left = max(deadline - time.time() - DEADLINE_MARGIN, MIN_TOOL_SECONDS)
    if timeout and 0 < timeout <= left:
        return timeout, False
    return left, True


def parse_arguments(raw: str | None) -> dict[str, Any]:
    """The model's arguments as a dict. Empty text means no arguments. Raises _BadArguments."""
    if raw is None or not raw.strip():
        return {}
    size = len(raw.encode("utf-8", errors="replace"))
    if size > MAX_ARGUMENT_BYTES:
        raise _BadArguments(f"the arguments are too large ({size} bytes; the limit is "
                            f"{MAX_ARGUMENT_BYTES} bytes). Send smaller arguments.")
    try:
        value = json.loads(raw, parse_constant=_no_constant, object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError) as e:
        reason = e.msg if isinstance(e, json.JSONDecodeError) else str(e) or type(e).__name__
        if isinstance(e, json.JSONDecodeError):
            reason = f"{reason}: line {e.lineno} column {e.colno}"
        raise _BadArguments(f"the arguments are not valid JSON ({reason}). Send a JSON object "
                            "that matches the tool's parameters.") from None
    if not isinstance(value, dict):
        kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
            type(value), "a number")
        raise _BadArguments(f"expected a JSON object with the tool's parameters, got {kind}.")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"the key {_short(key, 60)!r} appears twice")
        out[key] = value
    return out


async def _guard(coro: Any, timeout: float) -> tuple[str, Any]:
    """Run ``coro`` under ``timeout``; report ("ok", value), ("raised", exc) or ("timeout", None).

    BaseExceptions are caught *inside* the coroutine: a SystemExit or KeyboardInterrupt escaping
    an asyncio task would stop the event loop itself."""

    async def inner() -> tuple[str, Any]:
        try:
            return "ok", await coro
        except asyncio.CancelledError:
            task = asyncio.current_task()
            cancelling = getattr(task, "cancelling", None)  # Python 3.11+
            if cancelling is None or cancelling():
                raise  # we are being cancelled (timeout or Ctrl-C)
            return "raised", asyncio.CancelledError("the tool cancelled itself")
        except BaseException as e:  # noqa: BLE001 - the tool's failure becomes its output
            return "raised", e

    limit = timeout if timeout and timeout > 0 else None
    try:
        if _timeout is not None:  # Python 3.11+: no extra task per call, unlike wait_for
            async with _timeout(limit):
                return await inner()
        return await asyncio.wait_for(inner(), limit)
    except (asyncio.TimeoutError, TimeoutError):
        return "timeout", None


_timeout = getattr(asyncio, "timeout", None)


def _describe(e: BaseException) -> str:
    if isinstance(e, SystemExit):
        return f"SystemExit (the tool called sys.exit({e.code!r}))"
    text = str(e).strip()
    return f"{type(e).__name__}: {_short(text, 2000)}" if text else type(e).__name__


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
