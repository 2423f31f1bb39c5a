"""The run loop's pause and resume, with a small dispatcher that pauses like the approval gate:
the round ends the run with run.paused + run.failed "paused" (exit 4), no tool runs; a new loop
on a restored provider dispatches the whole saved round once and goes on to the end."""

from __future__ import annotations

import json

import pytest

from support.providers import APIS, RAIN_TOOL, SCRIPT, TEMP_TOOL, run, settings
from support.reliability import submissions
from runner.calls import ToolResult
from runner.events import RunFailed, RunPaused, ToolCallCompleted, ToolCallRequested
from runner.providers.factory import create_provider
from runner.run.loop import RunLoop
from runner.run.pausing import PauseContext, SavedRound
from runner.providers.snapshot import calls as saved_calls
from runner.scripted import ScriptedServer
from runner.tools.approval import PAUSED_EXIT_CODE, ApprovalPause, ApprovalRequest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


class KnownTools:
    def tool(self, name):
        return name if name in ("get_temp", "get_rain") else None


class PausingDispatcher:
    """Pauses on every round while ``pause`` is set; else answers each call, counting runs."""

    def __init__(self, pause: bool):
        self.pause = pause
        self.ran: list[str] = []
        self.workflow = KnownTools()  # the loop asks it which tools exist (on_unknown_tool)

    async def run_all(self, calls, *, on_start=None, on_done=None, deadline=None):
        if self.pause:
            waiting = [ApprovalRequest(c, c.name, {}) for c in calls if c.name == "get_rain"]
            raise ApprovalPause(calls, waiting)
        results = []
        for c in calls:
            self.ran.append(c.name)
            r = ToolResult(c.call_id, c.name, {"get_temp": "21C", "get_rain": "10%"}[c.name])
            if on_done:
                on_done(r)
            results.append(r)
        return results


def drive(server, api, dispatcher, *, saved=None, snapshot=None):
    events = []

    async def go():
        provider = create_provider(settings(api, server.base_url, tools=(TEMP_TOOL, RAIN_TOOL)))
        try:
            loop = RunLoop(provider, dispatcher, events.append, run_id="run_test",
                           pause=PauseContext({"api": api}, " --log-db /tmp/x.db"))
            if saved is None:
                return await loop.run("Weather in Paris?")
            provider.restore(snapshot)
            return await loop.resume(saved)
        finally:
            await provider.aclose()

    return run(go()), events


@pytest.mark.parametrize("api", APIS)
def test_a_paused_round_runs_no_tool_and_the_resumed_round_runs_each_once(api):
    with ScriptedServer(SCRIPT) as server:
        first = PausingDispatcher(pause=True)
        end, events = drive(server, api, first)
        assert isinstance(end, RunFailed) and end.status == "paused" and end.exit_code == PAUSED_EXIT_CODE
        assert "flowrun resume run_test --log-db /tmp/x.db --approve get_rain" in end.message
        assert "--deny get_rain" in end.message
        paused = [e for e in events if isinstance(e, RunPaused)][0]
        assert paused.waiting == [{"call_id": paused.calls[1]["call_id"], "name": "get_rain"}]
        assert [c["name"] for c in paused.calls] == ["get_temp", "get_rain"] and first.ran == []
        assert submissions(server, api) == []
        state = json.loads(json.dumps(paused.state))  # what the run log keeps
        assert state["api"] == api and state["round"]["turns"] == 1

        second = PausingDispatcher(pause=False)
        r = state["round"]
        saved = SavedRound(saved_calls(r["calls"]), r["deadline"], r["text"], r["turns"], r["turns_here"],
                           r["tool_calls"], r["usage"])
        end, events = drive(server, api, second, saved=saved, snapshot=state["provider"])
    assert end.status == "completed" and end.final_text == "It is 21C with 10% rain."
    assert second.ran == ["get_temp", "get_rain"]
    assert end.turns == 2 and end.tool_calls == 2
    assert [type(e) for e in events[:2]] == [ToolCallRequested, ToolCallRequested]
    assert sum(isinstance(e, ToolCallCompleted) for e in events) == 2
    ids = [c["call_id"] for c in paused.calls]
    assert submissions(server, api) == [{ids[0]: "21C", ids[1]: "10%"}]


def test_a_provider_that_cannot_pause_ends_the_run_with_an_error_not_a_traceback():
    class NoSnapshot:
        api = "fake"

        def snapshot(self):
            from runner.errors import ProviderError

            raise ProviderError("a run on the fake API cannot be paused")

    loop = RunLoop(NoSnapshot(), PausingDispatcher(pause=True), lambda e: None, run_id="run_x")
    end = loop._paused(ApprovalPause([], []), SavedRound(()))
    assert end.status == "error" and "cannot pause" in end.message and end.exit_code == 2
