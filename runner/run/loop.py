"""The run loop: send the message, resolve tool calls, submit outputs, until the run ends.

The loop decides; providers translate and the dispatcher executes. Every event goes to one
``emit`` callback (renderers and the run log hang off it), so rendering stays out of here.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any, AsyncIterator, Callable

from runner.errors import FlowrunError, ProviderError
from runner.events import (
    Event,
    Notice,
    RunCompleted,
    RunEnd,
    RunFailed,
    TextDelta,
    ToolCallCompleted,
    ToolCallRequested,
    TurnCompleted,
    TurnStarted,
)
from runner.calls import ToolCall, ToolResult
from runner.providers.base import Provider, TurnEvent, TurnResult
from runner.run.pausing import PauseContext, Pausing, SavedRound
from runner.run.structured import OutputCheck, repair_message
from runner.tools.approval import ApprovalPause
from runner.run.policies import empty_answer, tool_error_failure, unknown_tool_failure, unknown_tools
from runner.workflow.model import RunPolicies

Emit = Callable[[Event], None]
CANCEL_TIMEOUT = 10.0  # seconds given to the server to cancel a run after Ctrl-C


def new_run_id() -> str:
    return "run_" + uuid.uuid4().hex[:16]


class _Dispatcher:  # the part of runner.tools.dispatcher.Dispatcher the loop uses
    workflow: Any  # the tools a call may name (the file's and its MCP servers')

    async def run_all(self, calls, *, on_start=None, on_done=None, deadline=None) -> list[ToolResult]: ...


def crash_end(run_id: str, exc: BaseException, *, turns: int = 0, tool_calls: int = 0,
              usage: dict[str, int] | None = None, duration_ms: float = 0.0) -> RunFailed:
    """The terminal event for a run cut short outside a turn: an error while setting up,
    Ctrl-C at the --chat prompt, a bug of ours. Every sink sees it, so none is left waiting (the
    run log row never stays "running"). Unmasked, like every event before the fan-out."""
    if isinstance(exc, (KeyboardInterrupt, asyncio.CancelledError)):
        status, message, code = "interrupted", "interrupted by the user", 130
    elif isinstance(exc, FlowrunError):
        status, message, code = "error", str(exc), exc.exit_code
    else:
        status, message, code = "crashed", f"internal error: {type(exc).__name__}", 1
    return RunFailed(run_id=run_id, status=status, message=message, exit_code=code, final_text="",
                     turns=turns, tool_calls=tool_calls, usage=usage, duration_ms=duration_ms)


def add_usage(total: dict[str, int] | None, more: dict[str, int] | None) -> dict[str, int] | None:
    if not more:
        return total
    total = dict(total or {})
    for k, v in more.items():
        if isinstance(v, int):
            total[k] = total.get(k, 0) + v
    return total


class RunLoop(Pausing):
    """Drives one conversation. ``run`` handles the first message; ``follow_up`` continues the
    same conversation (chat mode) with a new user message."""

    def __init__(
        self,
        provider: Provider,
        dispatcher: _Dispatcher,
        emit: Emit,
        *,
        run_id: str,
        max_turns: int = 10,
        output: OutputCheck | None = None,
        pause: PauseContext | None = None,
        started: float | None = None,
        policies: RunPolicies | None = None,
    ):
        self.provider = provider
        self.dispatcher = dispatcher
        self.emit = emit
        self.run_id = run_id
        self.max_turns = max_turns
        self.output = output  # None: the final text is the answer, as it comes
        self.pause = pause or PauseContext()
        self.policies = policies if policies is not None else RunPolicies()
        self.turns = 0
        self.tool_call_count = 0
        self.usage: dict[str, int] | None = None
        self._partial: list[str] = []  # text of the turn in flight, kept if the turn never ends
        self._heard = False  # the turn in flight had an answer from the server (text or its end)
        self._finished_calls: set[str] = set()  # call ids of this round that have an output
        # ``started``: when run.started was emitted (time.monotonic()), so the duration on the
        # summary line is the one the run log records, not one that leaves out the set-up.
        self._started = time.monotonic() if started is None else started

    async def _consume(self, stream: AsyncIterator[TurnEvent]) -> TurnResult:
        result: TurnResult | None = None
        self._partial = []
        self._heard = False
        async for ev in stream:
            self._heard = self._heard or not isinstance(ev, Notice)
            if isinstance(ev, TurnResult):
                result = ev
            else:
                if isinstance(ev, TextDelta):
                    self._partial.append(ev.text)
                self.emit(ev)
        if result is None:  # a provider must end every turn with a result
            raise ProviderError("the server's stream ended before the turn finished")
        return result

    async def run(self, message: str) -> RunEnd:
        return await self._drive(lambda: self.provider.send_message(message))

    follow_up = run

    async def resume(self, saved: SavedRound) -> RunEnd:
        """Go on with a paused round on a restored provider: dispatch the whole round again (the
        decisions given now apply; nothing of it ran before), submit every output, continue to
        the end. A server that no longer waits for the outputs ends the run before any tool runs.

        A resume that fails never loses the pause nor runs a tool twice: when the server cannot
        be asked before any tool ran, the run pauses again as it was; when the tools ran and the
        first submission of their outputs fails before the server answered, it pauses with the
        outputs saved (``saved.outputs``), and the next resume sends them without dispatching."""
        self.turns, self.tool_call_count, self.usage = saved.turns, saved.tool_calls, saved.usage
        return await self._drive(None, saved=saved)

    async def _drive(self, first: Callable[[], AsyncIterator[TurnEvent]] | None, *,
                     saved: SavedRound | None = None) -> RunEnd:
        turns_here = saved.turns_here if saved is not None else 0
        repairs = 0
        start = first
        unsent: tuple[dict, SavedRound] | None = None  # a resumed round's outputs, until the server has them
        asking = saved is not None  # a resume, before any tool of its round runs
        try:
            if saved is not None:
                try:
                    gone = await self.provider.resumable(resending=saved.outputs is not None)
                except FlowrunError as exc:  # the server cannot be asked: nothing ran, pause as it was
                    try:
                        snapshot = self.provider.snapshot()
                    except FlowrunError:
                        return self._fail("error", exc.message, exc.exit_code, saved.text)
                    return self.pause_again(saved, exc.message, snapshot)
                if gone is not None:
                    return self._fail(gone[0], gone[1], 1, saved.text)
                asking = False
                if saved.outputs is not None:
                    results: Any = list(saved.outputs)
                    self.emit(Notice("info", f"sending the saved outputs of {_count(len(results), 'tool call')} "
                                             "that ran before the run paused; no tool runs again"))
                else:
                    for call in saved.calls:  # the resumed stream tells its own story, calls first
                        self.emit(ToolCallRequested(call.call_id, call.name, call.arguments))
                    results = await self._round(saved.calls, saved.deadline, saved.text, turns_here)
                    if isinstance(results, (RunCompleted, RunFailed)):
                        return results
                unsent = self._unsent(saved, results, turns_here)
                start = self._submission(results)
            while True:
                self.turns += 1
                turns_here += 1
                self.emit(TurnStarted(turn=self.turns))
                try:
                    result = await self._consume(start())
                except ProviderError as exc:
                    if unsent is None or self._heard:
                        raise
                    return self._paused_unsent(*unsent, exc.message)  # the outputs never reached the server
                unsent = None
                self.usage = add_usage(self.usage, result.usage)
                self.emit(TurnCompleted(turn=self.turns, status=result.status, usage=result.usage))
                if result.status == "completed" and self.output is not None:
                    checked = self.output.check(result.text)
                    if checked.ok:
                        return self._finish(result, checked.value)
                    if repairs >= self.output.attempts:
                        return self._fail(
                            "invalid_output",
                            "the final answer does not match the output schema"
                            + (f" after {repairs + 1} answers" if repairs else "") + ": "
                            + "; ".join(checked.errors),
                            1,
                            result.text,
                        )
                    repairs += 1
                    self.emit(Notice(level="warning", message=(
                        f"the answer does not match the output schema; asking again "
                        f"({repairs} of {self.output.attempts}): " + "; ".join(checked.errors))))
                    start = lambda m=repair_message(checked.errors): self.provider.send_message(m)  # noqa: E731
                    continue
                if result.status != "tool_calls":
                    return self._finish(result)
                calls = list(result.tool_calls)
                for call in calls:
                    self.emit(ToolCallRequested(call.call_id, call.name, call.arguments))
                if turns_here >= self.max_turns:
                    await self.provider.cancel()
                    return self._fail(
                        "max_turns",
                        f"stopped after {self.max_turns} turns: the model kept calling tools "
                        f"(raise the limit with --max-turns)",
                        1,
                        result.text,
                    )
                unknown = unknown_tools(calls, self.dispatcher.workflow)
                if unknown and self.policies.on_unknown_tool == "fail":  # before any tool of the round runs
                    await self.provider.cancel()
                    known = [t.name for t in self.dispatcher.workflow.tools]
                    return self._fail("unknown_tool", unknown_tool_failure(unknown, known), 1, result.text)
                # meta "deadline" (epoch seconds, our clock): when the server stops accepting the
                # outputs (an Assistants run's expires_at); tools are cut short to submit in time.
                deadline = (result.meta or {}).get("deadline")
                deadline = float(deadline) if isinstance(deadline, (int, float)) else None
                step = await self._round(calls, deadline, result.text, turns_here)
                if isinstance(step, (RunCompleted, RunFailed)):
                    return step
                start = self._submission(step)
        except (asyncio.CancelledError, KeyboardInterrupt):
            kept = self._interrupted_resume(saved, asking, unsent) if saved is not None else None
            if kept is not None:
                return kept
            try:  # bounded: a server that hangs on cancel must not keep the user waiting
                await asyncio.wait_for(asyncio.shield(self.provider.cancel()), CANCEL_TIMEOUT)
            except BaseException:  # noqa: BLE001 - best effort while interrupted
                pass
            return self._fail("interrupted", "interrupted by the user", 130, "".join(self._partial))
        except FlowrunError as exc:
            return self._fail("error", str(exc), exc.exit_code, "".join(self._partial))

    async def _round(self, calls: list[ToolCall] | tuple[ToolCall, ...], deadline: float | None, text: str,
                     turns_here: int):
        """Dispatch one round: its results (to submit), or the run's end when the round paused
        for approvals or a tool error fails it (``on_tool_error: fail``)."""
        extra = {"deadline": deadline} if deadline is not None else {}
        self._finished_calls = set()
        try:
            results = await self.dispatcher.run_all(list(calls), on_done=self._tool_done, **extra)
        except ApprovalPause as pause:
            return self._paused(pause, SavedRound(tuple(calls), deadline, text, self.turns, turns_here,
                                                  self.tool_call_count, self.usage))
        # counted as each one finishes (so Ctrl-C mid-round still counts the finished ones, as the
        # run log does); plus any result that came without on_done
        self.tool_call_count += sum(1 for r in results if r.call_id not in self._finished_calls)
        errors = [r for r in results if r.is_error and not r.refused]  # a refusal is no tool error
        if errors and self.policies.on_tool_error == "fail":
            await self.provider.cancel()  # nothing more is submitted; Assistants: the server run ends
            return self._fail("tool_error", tool_error_failure(errors), 1, text)
        return results

    def _submission(self, results: list[ToolResult]) -> Callable[[], AsyncIterator[TurnEvent]]:
        return lambda: self.provider.submit_tool_outputs(results)

    def _tool_done(self, result: ToolResult) -> None:
        self.tool_call_count += 1
        self._finished_calls.add(result.call_id)
        self.emit(
            ToolCallCompleted(
                result.call_id, result.name, result.output, result.is_error, result.duration_ms
            )
        )

    def _elapsed_ms(self) -> float:
        return round((time.monotonic() - self._started) * 1000, 3)

    def crashed(self, exc: BaseException) -> RunFailed:
        """The end of this conversation when ``exc`` stopped it between turns."""
        return crash_end(self.run_id, exc, turns=self.turns, tool_calls=self.tool_call_count,
                         usage=self.usage, duration_ms=self._elapsed_ms())

    def _finish(self, result: TurnResult, output=None) -> RunEnd:
        if result.status == "completed":
            if not result.text.strip():  # never a silent success: stdout would be empty
                if self.policies.on_empty_answer == "fail":
                    return self._fail("empty_answer", empty_answer(self.tool_call_count, fatal=True), 1, result.text)
                self.emit(Notice("warning", empty_answer(self.tool_call_count)))
            return self._end(
                RunCompleted(
                    run_id=self.run_id,
                    status="completed",
                    final_text=result.text,
                    output=output,
                    turns=self.turns,
                    tool_calls=self.tool_call_count,
                    usage=self.usage,
                    duration_ms=self._elapsed_ms(),
                )
            )
        why = result.error or "no reason given by the server"
        code = f" ({result.error_code})" if result.error_code else ""
        return self._fail(result.status, f"the run ended {result.status}{code}: {why}", 1, result.text)

    def _fail(self, status: str, message: str, exit_code: int, text: str) -> RunFailed:
        return self._end(
            RunFailed(
                run_id=self.run_id,
                status=status,
                message=message,
                exit_code=exit_code,
                final_text=text,
                turns=self.turns,
                tool_calls=self.tool_call_count,
                usage=self.usage,
                duration_ms=self._elapsed_ms(),
            )
        )

    def _end(self, end):
        """The terminal event is the outcome: emitted to every sink, returned to the caller."""
        self.emit(end)
        return end


def _count(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")



__all__ = ["RunLoop", "RunEnd", "crash_end", "new_run_id", "Notice", "TextDelta", "ToolCall"]
