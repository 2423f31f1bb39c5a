"""How a run pauses for approvals, and how a resume that cannot go on keeps the pause.

``Pausing`` is the part of ``RunLoop`` that writes ``run.paused`` (the provider's snapshot and
the round, for ``flowrun resume``) and ends the run "paused" with the command to run next: when a
round waits for a decision; when a resume fails, or is interrupted, before any tool ran (the run
waits again as it did); and when the tools ran but the server never answered their outputs (they
are saved, and the next resume sends them without running anything). The loop decides when.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from runner.calls import ToolCall, ToolResult
from runner.errors import FlowrunError
from runner.events import RunEnd, RunFailed, RunPaused
from runner.tools.approval import PAUSED_EXIT_CODE, ApprovalPause


@dataclass(frozen=True)
class PauseContext:
    """What a paused run keeps beside the provider's snapshot so ``flowrun resume`` can rebuild
    it (workflow path and hash, api, base URL, model, inputs), and the flags its resume command
    needs (``--log-db PATH``). Given by the caller; the loop only passes it on. ``more``: settings
    worked out only when the run pauses (the hashes of the python tools' modules); ``again``: in a
    resumed run, the command that repeats this resume (said when the run pauses again as it was)."""

    settings: dict[str, Any] = field(default_factory=dict)
    resume_flags: str = ""
    again: str = ""
    more: Callable[[], dict[str, Any]] | None = None

    def saved(self) -> dict[str, Any]:
        return {**self.settings, **(self.more() if self.more is not None else {})}


@dataclass(frozen=True)
class SavedRound:
    """A paused round, read back for ``RunLoop.resume``: the calls (all dispatched again) and
    where the conversation stood. ``outputs``: the round already ran and only its submission
    failed; the resumed run sends these and dispatches nothing."""

    calls: tuple[ToolCall, ...]
    deadline: float | None = None
    text: str = ""  # the model's text in the turn that asked for the calls
    turns: int = 0
    turns_here: int = 0  # turns since the last user message (for --max-turns)
    tool_calls: int = 0
    usage: dict[str, int] | None = None
    waiting: tuple[str, ...] = ()  # call ids that waited for a decision (all of them when empty)
    outputs: tuple[ToolResult, ...] | None = None


class Pausing:
    """Mixed into ``RunLoop``: these read the loop's run id, provider, pause context, counts and
    ``_heard``, and end the run through its ``_fail``."""

    run_id: str
    provider: Any
    pause: PauseContext
    emit: Callable[[Any], None]
    turns: int
    tool_call_count: int
    usage: dict[str, int] | None
    _heard: bool
    _fail: Callable[[str, str, int, str], RunFailed]

    def _unsent(self, saved: SavedRound, results: list[ToolResult], turns_here: int) -> tuple[dict, SavedRound] | None:
        """What pausing with a resumed round's outputs needs, taken before the submission changes
        the provider's state: its snapshot (the calls still waiting for outputs) and the round
        with its results. None when the provider cannot say (the run then fails as any would)."""
        try:
            snapshot = self.provider.snapshot(hand_over=False)
        except FlowrunError:
            return None
        return snapshot, SavedRound(saved.calls, saved.deadline, saved.text, self.turns, turns_here,
                                    self.tool_call_count, self.usage, saved.waiting, tuple(results))

    def _paused(self, pause: ApprovalPause, saved: SavedRound) -> RunEnd:
        """End the run paused: the provider's snapshot and the round go to the log (``run.paused``)
        and the terminal ``run.failed`` says exactly what to run to continue."""
        try:
            snapshot = self.provider.snapshot()
        except FlowrunError as exc:
            return self._fail("error", f"a tool call waits for approval, and the run cannot pause: {exc.message}",
                              2, saved.text)
        waiting = [{"call_id": r.call.call_id, "name": r.call.name} for r in pause.waiting]
        approve, deny = self._commands(waiting)
        self._emit_pause(snapshot, saved, waiting, approve)
        which = ", ".join(repr(n) for n in dict.fromkeys(w["name"] for w in waiting))
        message = (f"paused: tool {which} waits for approval; no tool of this round ran.\n"
                   f"  to run it:     {approve}\n"
                   f"  to refuse it:  {deny} --reason \"...\"")
        return self._fail("paused", message, PAUSED_EXIT_CODE, saved.text)

    def pause_again(self, saved: SavedRound, why: str, snapshot: dict, exit_code: int = PAUSED_EXIT_CODE) -> RunEnd:
        """A resume that failed (``why``) before any tool of ``saved`` ran: the run waits again
        exactly as it did (the same calls wait for the same decisions), from ``snapshot``."""
        self.turns, self.tool_call_count, self.usage = saved.turns, saved.tool_calls, saved.usage
        waiting = [] if saved.outputs is not None else [  # saved outputs: nothing waits for a decision
            {"call_id": c.call_id, "name": c.name} for c in saved.calls if not saved.waiting or c.call_id in saved.waiting]
        approve, _ = self._commands(waiting)
        self._emit_pause(snapshot, saved, waiting, approve)
        kept = ("its saved outputs were not sent and no tool ran again" if saved.outputs is not None
                else "no tool of this round ran")
        message = (f"paused again: {why}\n"
                   f"  {kept}; the run waits as it did.\n"
                   f"  to try again:  {self.pause.again or approve}")
        return self._fail("paused", message, exit_code, saved.text)

    def _paused_unsent(self, snapshot: dict, saved: SavedRound, why: str, exit_code: int = PAUSED_EXIT_CODE) -> RunEnd:
        """The round's tools ran, and sending their outputs failed (``why``) before the server
        answered: pause with the outputs saved, so the next resume sends them and no tool runs twice."""
        self.provider.hand_over()
        command = f"flowrun resume {self.run_id}{self.pause.resume_flags}"
        self._emit_pause(snapshot, saved, [], command)
        message = (f"paused: the tools of this round ran, but their outputs could not be sent: {why}\n"
                   f"  the outputs are saved in the run log; no tool runs again.\n"
                   f"  to send them and go on:  {command}")
        return self._fail("paused", message, exit_code, saved.text)

    def _interrupted_resume(self, saved: SavedRound, asking: bool,
                            unsent: tuple[dict, SavedRound] | None) -> RunEnd | None:
        """Ctrl-C in a resume keeps the pause where nothing is lost by it: before any tool of the
        round ran (it waits as it did), or after they ran and before the server answered their
        outputs (they are saved). The server's run is not cancelled then; exit 130, status paused.
        None when tools were running: the run ends interrupted, as any would."""
        why = "interrupted by the user"
        if asking:
            try:
                snapshot = self.provider.snapshot()
            except FlowrunError:
                return None
            return self.pause_again(saved, why, snapshot, exit_code=130)
        if unsent is not None and not self._heard:
            return self._paused_unsent(*unsent, why, exit_code=130)
        return None

    def _commands(self, waiting: list[dict[str, str]]) -> tuple[str, str]:
        """The commands that approve and that deny every waiting call."""
        names = list(dict.fromkeys(w["name"] for w in waiting))
        command = f"flowrun resume {self.run_id}{self.pause.resume_flags}"
        return (command + "".join(f" --approve {n}" for n in names),
                command + "".join(f" --deny {n}" for n in names))

    def _emit_pause(self, snapshot: dict, saved: SavedRound, waiting: list[dict[str, str]], command: str) -> None:
        """``run.paused``: what ``flowrun resume`` goes on from (the run log upserts the pause)."""
        rnd: dict[str, Any] = {"calls": [_call_dict(c) for c in saved.calls], "deadline": saved.deadline,
                               "text": saved.text, "turns": saved.turns, "turns_here": saved.turns_here,
                               "tool_calls": saved.tool_calls, "usage": saved.usage}
        if saved.outputs is not None:
            rnd["outputs"] = [{"call_id": r.call_id, "name": r.name, "output": r.output, "is_error": r.is_error,
                               "refused": r.refused} for r in saved.outputs]
        state = {**self.pause.saved(), "provider": snapshot, "round": rnd}
        self.emit(RunPaused(self.run_id, waiting, [_call_dict(c) for c in saved.calls], command, state))


def _call_dict(call: ToolCall) -> dict[str, str]:
    return {"call_id": call.call_id, "name": call.name, "arguments": call.arguments}
