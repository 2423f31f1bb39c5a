"""``flowrun batch``: one workflow over many inputs, as fast as the API's rate limits allow.

Every input is one ordinary run (``run.plan.prepare`` then ``run.conversation.run_plan``: provider,
dispatcher, loop) so a batch behaves exactly like ``flowrun run`` once per line. What the batch adds:

- asyncio workers, at most ``concurrency`` runs in flight;
- shared HTTP connection pools (a new client's TLS set-up costs more than a whole scripted
  run): one per ``POOL_SHARD`` workers, each worker keeping to its own, because the
  HTTP library checks every pooled connection on each request (one pool of N connections costs
  O(N) CPU per request); one SDK client per pool (``Batch.sdk_clients``); a batch-wide
  ``RateGate`` on all pools: a 429 pauses every request for its ``Retry-After`` and narrows the
  concurrency, so the batch slows down instead of failing inputs;
  a run that still ends on a 429 before any tool ran is queued again (nothing was done twice);
- results appended to the out file as each input finishes (``batch_io`` has the format and the
  durability policy), so ``--resume`` skips the inputs already there;
- a failing input is a failed result line, never the end of the batch. Only what fails every
  input alike (an invalid workflow file, no API key) stops it before it starts;
- the run log (``runner.batch.batch_log``): each run, once it ends, written in one transaction
  under the batch's id, before its result line (so whatever --out has, the log has); the batch's
  own row says how far it got and how it ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Mapping

from runner.batch.files import BatchInput, ResultWriter, read_done, read_inputs, repair_tail
from runner.errors import FlowrunError, UsageError
from runner.events import Event, RunCompleted, RunFailed, ToolCallCompleted, ToolCallRequested
from runner.run.defaults import Defaults, resolve as resolve_defaults
from runner.run.plan import NoMessage, RunOptions, prepare
from runner.calls import Approvals
from runner.run.settings import Overrides, model_settings, resolve_inputs

BATCH_MAX_RETRIES = 4  # per request; the gate spaces them out by the server's Retry-After
MAX_REQUEUES = 5  # per input, for runs that ended on a 429 before any tool ran


@dataclass
class BatchOptions:
    file: str
    inputs: str
    out: str
    concurrency: int = 8
    resume: bool = False
    retry_failed: bool = False  # with resume: run again the inputs whose last result failed
    api: str | None = None
    base_url: str | None = None
    model: str | None = None
    profile: str | None = None  # --profile, as for `flowrun run` (runner/run/defaults.py)
    verbose: bool = False  # -v: say once where api/base_url/model came from
    max_turns: int = 10
    policies: dict[str, str] = field(default_factory=dict)  # --policy NAME=VALUE, checked
    offline: bool = False
    case_name: str | None = None
    allow_python: bool = True
    env: Mapping[str, str] | None = None
    log: str = "off"  # the run log: "all" runs, only the "failed" ones, or "off" (the CLI's default is "all")
    log_db: str | None = None  # default: FLOWRUN_LOG_DB, else the usual place
    batch_id: str | None = None  # given by the parent to its workers; else a new one
    workers: int = 1  # how many processes share the batch (kept in the batch's row)
    approve: tuple[str, ...] = ()  # --approve TOOL: calls that ask run (nobody is asked in a batch)
    deny: tuple[str, ...] = ()  # --deny TOOL
    yes: bool = False  # --yes


@dataclass
class BatchSummary:
    total: int = 0  # inputs in the file
    skipped: int = 0  # already in the out file (--resume)
    failed_before: int = 0  # of those, the ones whose result there is a failure (not run again)
    completed: int = 0
    failed: int = 0
    seconds: float = 0.0
    rate_limited: int = 0  # 429 answers seen
    interrupted: bool = False
    first_failure: dict | None = None

    def count(self, record: dict) -> None:
        """One finished input: completed, or failed (the first failure is kept for the summary)."""
        if record.get("status") == "completed":
            self.completed += 1
        else:
            self.failed += 1
            if self.first_failure is None:
                self.first_failure = record

    @property
    def done(self) -> int:
        return self.skipped + self.completed + self.failed

    def line(self) -> str:
        """``1000 inputs: 998 completed, 2 failed in 2.3 s`` (plus what else happened)."""
        parts = [f"{self.completed} completed", f"{self.failed} failed"]
        if self.skipped:
            parts.insert(0, f"{self.skipped} already done" + (f" ({self.failed_before} of them failed)"
                                                              if self.failed_before else ""))
        text = f"{self.total} inputs: {', '.join(parts)} in {self.seconds:.1f} s"
        if self.rate_limited:
            text += f" ({self.rate_limited} rate-limit answers waited out)"
        if self.interrupted:
            left = self.total - self.done
            text += f"; interrupted with {left} left: run the same command with --resume to finish"
        return text


def empty_record(item: BatchInput, status: str, error: str) -> dict[str, Any]:
    return {
        "index": item.index,
        "line": item.line,
        **({"id": item.id} if item.id is not None else {}),
        "status": status,
        "final_text": "",
        "tool_calls": [],
        "usage": None,
        "error": error,
        "duration_ms": 0.0,
    }


class _Collector:
    """Keeps what a result line needs from the (already masked) event stream."""

    def __init__(self) -> None:
        self.calls: dict[str, dict[str, Any]] = {}
        self.end: RunCompleted | RunFailed | None = None

    def __call__(self, ev: Event) -> None:
        if isinstance(ev, ToolCallRequested):
            self.calls[ev.call_id] = {"name": ev.name, "arguments": ev.arguments, "output": None, "is_error": False}
        elif isinstance(ev, ToolCallCompleted):
            entry = self.calls.setdefault(ev.call_id, {"name": ev.name, "arguments": None})
            entry["output"] = ev.output
            entry["is_error"] = ev.is_error
        elif isinstance(ev, (RunCompleted, RunFailed)):
            self.end = ev


class Batch:
    """One batch: the plan (workflow, inputs, what to skip) and the run of it."""

    def __init__(
        self,
        options: BatchOptions,
        *,
        on_result: Callable[[dict, BatchSummary], None] | None = None,
        on_notice: Callable[[str], None] | None = None,
    ):
        self.options = options
        self.on_result = on_result  # after each result line is written
        self.on_notice = on_notice or (lambda text: None)  # things a person should know
        self.summary = BatchSummary()
        self.log = None  # a BatchLog while the session is open and logging is on
        # a snapshot: each run's dispatcher copies it, and copying os.environ decodes every entry
        self.env: Mapping[str, str] = dict(os.environ if options.env is None else options.env)

    # --- plan ---------------------------------------------------------------------------------

    def _load(self):
        from runner.workflow.validate import load_workflow

        o = self.options
        if Path(o.out).resolve() == Path(o.inputs).resolve():
            raise UsageError("--out is the inputs file", hint="write the results to another file")
        workflow = load_workflow(Path(o.file))
        try:
            items = read_inputs(o.inputs)
        except OSError as exc:
            raise UsageError(f"cannot read the inputs: {exc.strerror or exc}: {o.inputs}") from None
        done: dict[int, str] = {}
        out = Path(o.out)
        if o.resume:
            repair_tail(out)
            done = read_done(out)
        elif out.exists() and out.stat().st_size > 0:
            raise UsageError(
                f"{o.out} already holds results",
                hint="add --resume to skip the inputs it has, or choose another --out",
            )
        keep = ("completed",) if o.retry_failed else None
        todo = [it for it in items if it.index not in done or (keep is not None and done[it.index] not in keep)]
        again = {it.index for it in todo}
        self.summary.failed_before = sum(1 for it in items if it.index in done and it.index not in again
                                         and done[it.index] != "completed")
        return workflow, items, todo

    def defaults(self) -> Defaults:
        """api/base_url/model from the flags, FLOWRUN_* and the config files, as ``flowrun run``
        takes them; resolved once for the whole batch (not once per input line). Offline, none."""
        if getattr(self, "_defaults", None) is None:
            o = self.options
            self._defaults = Defaults() if o.offline else resolve_defaults(
                {"api": o.api, "base_url": o.base_url, "model": o.model}, profile=o.profile, env=self.env)
        return self._defaults

    # --- run ----------------------------------------------------------------------------------

    async def run(self) -> BatchSummary:
        """Run every input still to do; returns the tally (also kept in ``self.summary``)."""
        started = time.monotonic()
        async with self.session() as todo:
            pending = deque(todo)
            workers = [
                asyncio.ensure_future(self._worker(pending, self.clients[i % len(self.clients)]))
                for i in range(min(self.gate.ceiling, len(todo)))
            ]
            try:
                await asyncio.gather(*workers)
            except BaseException as exc:
                self.summary.interrupted = isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt))
                for w in workers:
                    w.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
                raise
            finally:
                self.summary.seconds = time.monotonic() - started
                self.summary.rate_limited = self.gate.hits
        return self.summary

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[list[BatchInput]]:
        """Everything the runs share (workflow, HTTP client and gate, offline server, results
        file), open for the duration; yields the inputs still to do. ``run`` uses it, and so
        does the benchmark, which interleaves ``run_input`` calls with a baseline's runs."""
        from runner.batch.rate_gate import RateGate, shared_clients
        from runner.providers.sdk_client import SDKClientCache

        o = self.options
        self.workflow, items, todo = self._load()
        self.summary.total = len(items)
        self.summary.skipped = len(items) - len(todo)
        self._requeues: dict[int, int] = {}
        # The batch's row first, so a batch stopped by what fails every input (no key) says why.
        self.log = self._open_log()
        try:
            async with contextlib.AsyncExitStack() as stack:
                concurrency = max(1, o.concurrency)
                self.gate = RateGate(concurrency)
                self.clients = shared_clients(self.gate, concurrency)
                self.client = self.clients[0]
                self.sdk_clients = SDKClientCache()
                for client in self.clients:
                    stack.push_async_callback(client.shutdown)  # after the offline server stops
                self.offline = None
                self.run_options = RunOptions(
                    api=o.api, base_url=o.base_url, model=o.model, max_turns=o.max_turns, allow_python=o.allow_python,
                    policies=dict(o.policies),
                    min_retries=BATCH_MAX_RETRIES, require_env=False, defaults=self.defaults(),
                    approvals=Approvals(approve=frozenset(o.approve), deny=frozenset(o.deny), yes=o.yes),
                )
                if o.offline:
                    from runner.run import offline as offline_mode

                    case = offline_mode.pick_case(self.workflow, o.case_name)
                    self.offline = stack.enter_context(offline_mode.start(self.workflow, case))
                    self.env = self.offline.env(self.env)  # once, not per input
                    self.on_notice(self.offline.banner(o.file, every_run=True))
                self._preflight(todo)
                self.mcp = None
                if self.workflow.mcp:  # one set of MCP servers for the whole batch, shared by its runs
                    from runner.run.mcp_session import start_mcp

                    self.mcp = await start_mcp(
                        self.workflow, env=self.env, mocks=self.offline.mock_mcp if self.offline else None,
                        allow_local_code=o.allow_python,
                        emit=lambda event: self.on_notice(event.message) if event.level in ("warning", "error") else None)
                    stack.push_async_callback(self.mcp.aclose)
                try:
                    self.writer = ResultWriter(o.out, append=o.resume)
                except OSError as exc:
                    raise UsageError(f"cannot write the results to {o.out}: {exc.strerror or exc}") from None
                stack.callback(self.writer.close)
                yield todo
        except BaseException as exc:
            if self.log is not None:
                self._end_log(exc)
                self.log.close()
            raise
        if self.log is not None:
            self._end_log(None)
            self.log.close()

    def _open_log(self):
        """The batch's run log, with its row started (this process owns it), or None."""
        from runner.batch.batch_log import BatchLog

        log = BatchLog.open(self.options)
        if log is not None:
            log.start(self.summary, self.options)
        return log

    def _end_log(self, exc: BaseException | None) -> None:
        self.log.finish(self.summary, exc)

    def _preflight(self, todo: list[BatchInput]) -> None:
        """Fail the whole batch now for what would fail every input (no key, unknown API)."""
        o, offline, given = self.options, self.offline, self.defaults().values
        overrides = Overrides(api=given.get("api", o.api), base_url=offline.base_url if offline else given.get("base_url"),
                              model=given.get("model", o.model))
        for item in todo:
            if item.problem:
                continue
            try:
                inputs = resolve_inputs(self.workflow, {**(offline.vars if offline else {}), **item.vars})
            except UsageError:
                continue
            model_settings(self.workflow, overrides, inputs, self.env)  # raises for everyone
            return

    async def _worker(self, pending: deque, client) -> None:
        while pending:
            item = pending.popleft()
            if not await self.run_input(item, client=client):
                pending.append(item)

    async def run_input(self, item: BatchInput, *, client=None) -> bool:
        """Run one input inside ``session`` and record its result. False: it was rate-limited
        before any tool ran and should be queued again. ``client``: which of the batch's
        connection pools to use (each worker keeps to one); the first by default."""
        from runner.batch.rate_gate import CURRENT_RUN, RunTrace

        trace = RunTrace()
        events: list = []
        await self.gate.acquire()
        token = CURRENT_RUN.set(trace)
        try:
            record = await self._run_one(item, trace, client or self.client,
                                         events if self.log is not None else None)
        finally:
            CURRENT_RUN.reset(token)
            await self.gate.release(ok=trace.last_status != 429)
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise asyncio.CancelledError  # the loop turned Ctrl-C into an "interrupted" run
        if record is None:
            return False
        if self.log is not None:
            self.log.write(item, record, events)  # before the result line: what --out has, the log has
        self._record(record)
        return True

    def _record(self, record: dict) -> None:
        try:
            self.writer.write(record)
        except OSError as exc:  # disk full, file gone: stop, --resume picks up from what is written
            raise FlowrunError(f"cannot write the results to {self.options.out}: {exc.strerror or exc}") from None
        self.summary.count(record)
        if self.log is not None:
            self.log.progress(self.summary)
        if self.on_result is not None:
            self.on_result(record, self.summary)

    async def _run_one(self, item: BatchInput, trace, client, events: list | None = None) -> dict | None:
        """The result line for one input, or None to queue it again (rate-limited at start).
        ``events``: filled with the run's (masked) events, for the run log."""
        from runner.run.case_answers import case_prompter
        from runner.run.conversation import run_plan

        if item.problem:
            return empty_record(item, "invalid_input", item.problem)
        where = f"{self.options.inputs}:{item.line}"
        started = time.perf_counter()
        try:
            plan = prepare(self.workflow, self.run_options, env=self.env, vars=item.vars, message=item.message,
                           offline=self.offline)
        except NoMessage:
            why = 'there is no user message: give "message" in the line or `input:` in the workflow'
            return empty_record(item, "invalid_input", f"{where}: {why}")
        except UsageError as exc:
            return empty_record(item, "invalid_input", f"{where}: {exc}")
        collector = _Collector()
        sinks: list = [collector]
        if events is not None:
            sinks.append(events.append)  # as they are: made dicts only if the run is written
        try:
            end = await run_plan(plan, sinks, http_client=client, sdk_clients=self.sdk_clients, mcp=self.mcp,
                                 prompter=case_prompter(plan))
        except FlowrunError as exc:  # its text is masked
            record = empty_record(item, "error", str(exc))
        except Exception as exc:  # noqa: BLE001 - one input's crash must not end the batch
            record = empty_record(item, "error", plan.masker.mask(f"internal error: {type(exc).__name__}: {exc}"))
        else:
            if (
                end.status == "error"
                and trace.last_status == 429
                and end.tool_calls == 0
                and self._requeues.get(item.index, 0) < MAX_REQUEUES
            ):
                self._requeues[item.index] = self._requeues.get(item.index, 0) + 1
                return None
            shown = collector.end  # the terminal event as the sinks saw it: masked
            record = empty_record(item, end.status, "")
            record["final_text"] = shown.final_text
            if self.workflow.output is not None:  # the parsed answer, as data (null when it never matched)
                record["output"] = getattr(shown, "output", None)
            record["tool_calls"] = list(collector.calls.values())
            record["usage"] = end.usage
            record["error"] = None if end.status == "completed" else shown.message
        record["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
        return record


async def run_batch(options: BatchOptions, *, on_result=None) -> BatchSummary:
    return await Batch(options, on_result=on_result).run()


__all__ = ["Batch", "BatchOptions", "BatchSummary", "run_batch"]
