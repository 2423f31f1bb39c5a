"""The collector waits while a run starts (runner/run/startup_gc.py): paused from the run command's
start until the first model turn ends, then what start-up built is frozen and collection goes on
as before; never left off, whatever way the run ends."""

from __future__ import annotations

import gc

import pytest
from support.cli import flowrun
from support.paths import WORKFLOWS

from runner.events import RunFailed, TextDelta, TurnCompleted, TurnStarted
from runner.run.startup_gc import PausedCollector
from runner.scripted import ScriptedServer, TurnContext
from runner.workflow.model import ScriptedCall, ScriptedTurn


@pytest.fixture(autouse=True)
def collector_on():
    gc.enable()
    yield
    was_on = gc.isenabled()
    gc.enable()
    gc.unfreeze()  # the test process's heap goes back to being collected
    assert was_on, "the collector was left off"


def test_paused_until_the_first_turn_ends_then_what_exists_is_frozen():
    frozen = gc.get_freeze_count()
    paused = PausedCollector()
    assert not gc.isenabled()
    paused(TurnStarted(turn=1))
    paused(TextDelta("hi"))
    assert not gc.isenabled()
    paused(TurnCompleted(turn=1, status="tool_calls"))
    assert gc.isenabled()
    assert gc.get_freeze_count() > frozen
    paused(TurnCompleted(turn=2, status="completed"))  # later events change nothing
    paused.resume()
    assert gc.isenabled()


def test_a_run_that_ends_before_any_turn_resumes_it():
    paused = PausedCollector()
    paused(RunFailed(run_id="r", status="error", message="no server", exit_code=1, final_text="", turns=0,
                     tool_calls=0, usage=None, duration_ms=0.0))
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off():
    gc.disable()
    paused = PausedCollector()
    paused(TurnCompleted(turn=1, status="completed"))
    paused.resume()
    assert not gc.isenabled()
    gc.enable()


def test_flowrun_run_pauses_it_for_the_first_request_only():
    seen: list[bool] = []

    def script(ctx: TurnContext) -> ScriptedTurn:
        seen.append(gc.isenabled())  # the server thread runs in this process: the same collector
        if ctx.turn_index == 0:
            return ScriptedTurn(tool_calls=(ScriptedCall("get_rain_probability", {"location": "Paris"}),))
        return ScriptedTurn(text="The chance of rain is ${{ outputs.get_rain_probability }}.")

    with ScriptedServer(script) as server:
        result = flowrun(str(WORKFLOWS / "weather.yaml"), "--api", "chat", "--base-url", server.base_url,
                         "--no-log", env={"OPENAI_API_KEY": "test"})
    assert result.code == 0, result.err
    assert "0.06" in result.out
    assert seen == [False, True]
    assert gc.isenabled()


def test_a_run_that_cannot_start_leaves_it_on(tmp_path):
    result = flowrun(str(tmp_path / "missing.yaml"), "--no-log")
    assert result.code == 2
    assert gc.isenabled()
