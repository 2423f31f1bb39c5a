"""Paused runs and ``flowrun resume``, through the real CLI on all three APIs: a POST tool asks by
default, so with --pause-on-approval (or -o jsonl) the run pauses with exit 4
and nothing runs; a second invocation, after the first process is gone, runs the approved tool
exactly once (counted at a loopback HTTP server) and the model reads its real output."""

from __future__ import annotations

import json
import sqlite3
import time

import pytest

from support.cli import flowrun, flowrun_process
from support.events import check_event
from support.reliability import ENV, logged_run, submissions
from support.resume import APIS, ORDER, PLACED, paused_run, shop, start
from runner.runlog.log import NotPaused, RunLog
from runner.scripted import ScriptedServer
from runner.scripted.echo import EchoServer
from runner.workflow.model import ScriptedCall, ScriptedTurn

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.mark.parametrize("api", APIS)
def test_a_paused_run_resumed_later_runs_the_approved_tool_once_and_the_model_reads_it(api, tmp_path):
    with EchoServer() as echo, ScriptedServer([ORDER, PLACED]) as server:
        wf = shop(tmp_path, echo, api)
        first = start(wf, server)
        run_id = paused_run(first)
        assert "--approve order" in first.err and "--deny order" in first.err
        assert "flowrun: paused: tool 'order' waits for approval" in first.err and "error" not in first.err
        assert echo.hits("/count/orders") == 0 and submissions(server, api) == []
        assert logged_run(run_id)["status"] == "paused"
        listed = flowrun("logs", "--status", "paused", env=ENV)
        assert run_id[:8] in listed.out and "paused: tool 'order' waits for approval" in listed.out

        second = flowrun("resume", run_id, "--approve", "order", env=ENV)
        assert second.code == 0, second.err
        assert echo.hits("/count/orders") == 1
        assert second.out == "placed: hit 1\n"
        assert "✓ order" in second.err and "completed · 2 turns · 1 tool call" in second.err
        call_id = next(iter(submissions(server, api)[0]))
        assert submissions(server, api) == [{call_id: "hit 1"}]

    run = logged_run(run_id)
    assert run["status"] == "completed" and run["exit_code"] == 0 and run["final_text"] == "placed: hit 1"
    kinds = [e["type"] for e in run["events"]]
    assert kinds.count("run.started") == 1 and kinds.count("run.resumed") == 1
    assert kinds.index("run.paused") < kinds.index("run.resumed") < kinds.index("run.completed")
    decided = [e for e in run["events"] if e["type"] == "approval.decided" and e["decision"] == "approved"]
    assert [e["by"] for e in decided] == ["resume"]
    import os

    from support.reliability import KEY

    from pathlib import Path

    db = Path(os.environ["FLOWRUN_LOG_DB"])
    for part in db.parent.glob(db.name + "*"):  # the database and its write-ahead log
        assert KEY.encode() not in part.read_bytes()  # nor in the pause's state
    shown = flowrun("logs", "show", run_id, env=ENV)
    assert "⏸ paused: order waits for approval" in shown.out and "flowrun resume --approve order" in shown.out
    assert "placed: hit 1" in shown.out


@pytest.mark.parametrize("api", APIS)
def test_a_denied_call_never_runs_and_the_model_reads_the_reason(api, tmp_path):
    with EchoServer() as echo, ScriptedServer([ORDER, PLACED]) as server:
        run_id = paused_run(start(shop(tmp_path, echo, api), server))
        r = flowrun("resume", run_id, "--deny", "order", "--reason", "tea is sold out", env=ENV)
        assert r.code == 0, r.err
        assert echo.hits("/count/orders") == 0
        [sent] = submissions(server, api)
    assert "tea is sold out" in next(iter(sent.values()))
    assert logged_run(run_id)["status"] == "completed"


def test_jsonl_without_a_terminal_pauses_and_prints_the_pause_as_events(tmp_path):
    with EchoServer() as echo, ScriptedServer([ORDER, PLACED]) as server:
        r = flowrun(shop(tmp_path, echo, "chat"), "--base-url", server.base_url, "-o", "jsonl", env=ENV)
        assert r.code == 4, r.err
        events = r.jsonl()
        for e in events:
            check_event(e)
        paused = [e for e in events if e["type"] == "run.paused"]
        assert len(paused) == 1 and paused[0]["waiting"][0]["name"] == "order"
        assert events[-1]["type"] == "run.failed" and events[-1]["status"] == "paused"
        assert events[-1]["exit_code"] == 4 and echo.hits() == 0
        resumed = flowrun("resume", events[-1]["run_id"], "--yes", "-o", "jsonl", env=ENV)
        assert resumed.code == 0, resumed.err
        out = resumed.jsonl()
        for e in out:
            check_event(e)
        assert out[0]["type"] == "run.resumed" and out[0]["yes"] is True
        assert out[-1]["type"] == "run.completed" and out[-1]["run_id"] == events[-1]["run_id"]
        assert echo.hits("/count/orders") == 1


def test_a_call_still_unanswered_at_resume_pauses_again_and_nothing_runs(tmp_path):
    both = ScriptedTurn(tool_calls=(ScriptedCall("order", {"item": "tea"}), ScriptedCall("refund", {"item": "cake"})))
    done = ScriptedTurn(text="${{ outputs.order }} / ${{ outputs.refund }}")
    with EchoServer() as echo, ScriptedServer([both, done]) as server:
        run_id = paused_run(start(shop(tmp_path, echo, "chat"), server))
        again = flowrun("resume", run_id, "--approve", "order", env=ENV)
        assert paused_run(again) == run_id and "--approve refund" in again.err
        assert echo.hits() == 0 and logged_run(run_id)["status"] == "paused"
        last = flowrun("resume", run_id, "--approve", "order", "--approve", "refund", env=ENV)
        assert last.code == 0, last.err
        assert last.out == "hit 1 / hit 1\n"
        assert echo.hits("/count/orders") == 1 and echo.hits("/count/refunds") == 1


def test_resume_of_a_completed_run_is_refused(tmp_path):
    with EchoServer() as echo, ScriptedServer([ORDER, PLACED]) as server:
        run_id = paused_run(start(shop(tmp_path, echo, "chat"), server))
        assert flowrun("resume", run_id, "--approve", "order", env=ENV).code == 0
        again = flowrun("resume", run_id, "--approve", "order", env=ENV)
    assert again.code == 2
    assert f"run {run_id} is completed, not paused: only a paused run can be resumed" in again.err
    assert "Traceback" not in again.err and echo.hits() == 1


def test_a_changed_workflow_file_is_refused_unless_forced(tmp_path):
    with EchoServer() as echo, ScriptedServer([ORDER, PLACED]) as server:
        wf = shop(tmp_path, echo, "chat")
        run_id = paused_run(start(wf, server))
        with open(wf, "a") as f:
            f.write("# edited after the pause\n")
        refused = flowrun("resume", run_id, "--approve", "order", env=ENV)
        assert refused.code == 2
        assert "changed since run" in refused.err and "--force-changed-file" in refused.err
        assert echo.hits() == 0 and logged_run(run_id)["status"] == "paused"
        forced = flowrun("resume", run_id, "--approve", "order", "--force-changed-file", env=ENV)
        assert forced.code == 0, forced.err
        assert "changed since the run paused" in forced.err and echo.hits("/count/orders") == 1


def test_decisions_must_name_a_tool_of_the_paused_round(tmp_path):
    with EchoServer() as echo, ScriptedServer([ORDER, PLACED]) as server:
        run_id = paused_run(start(shop(tmp_path, echo, "chat"), server))
        typo = flowrun("resume", run_id, "--approve", "ordr", env=ENV)
        assert typo.code == 2 and "has no call of tool 'ordr' waiting" in typo.err and "order" in typo.err
        both = flowrun("resume", run_id, "--approve", "order", "--deny", "order", env=ENV)
        assert both.code == 2 and "both approved and denied" in both.err
    assert echo.hits() == 0 and logged_run(run_id)["status"] == "paused"


def test_the_first_run_in_its_own_process_then_resume(tmp_path):
    with EchoServer() as echo, ScriptedServer([ORDER, PLACED]) as server:
        wf = shop(tmp_path, echo, "responses")
        first = flowrun_process(wf, "--base-url", server.base_url, "--pause-on-approval", env=ENV, timeout=120)
        run_id = paused_run(first)  # that process has exited
        assert echo.hits() == 0
        r = flowrun("resume", run_id, "--approve", "order", env=ENV)
        assert r.code == 0, r.err
        assert r.out == "placed: hit 1\n" and echo.hits("/count/orders") == 1


def test_an_assistants_run_that_expired_while_waiting_fails_and_runs_nothing(tmp_path):
    with EchoServer() as echo, ScriptedServer([ORDER, PLACED], run_ttl=1) as server:
        run_id = paused_run(start(shop(tmp_path, echo, "assistants"), server))
        time.sleep(1.5)  # past the run's expires_at
        r = flowrun("resume", run_id, "--approve", "order", env=ENV)
        assert r.code == 1
        assert "expired while it waited for the approval" in r.err and "no tool ran" in r.err
        assert echo.hits() == 0 and submissions(server, "assistants") == []
    assert logged_run(run_id)["status"] == "expired"


@pytest.mark.parametrize("edit, message", [
    ("UPDATE pauses SET state = 'not json'", "not an object with a state"),
    ("UPDATE pauses SET state = json_set(state, '$.state.provider.messages', 'x')", "messages must be a list"),
    ("UPDATE pauses SET state = json_set(state, '$.state.round.calls', json('[]'))", "round.calls must be a non-empty"),
    ("UPDATE pauses SET state = json_set(state, '$.state.api', 'telepathy')", "api is not one of"),
    ("UPDATE pauses SET state = json_set(state, '$.state.base_url', 'file:///etc/passwd')", "base_url must be an http(s) URL"),
    ("UPDATE pauses SET state = json_set(state, '$.state.provider.pending[0].call_id', 7)", "call_id must be text"),
    ("DELETE FROM pauses", "holds no saved state"),
])
def test_an_edited_run_log_is_one_clear_error_and_the_run_stays_paused(edit, message, tmp_path):
    import os

    with EchoServer() as echo, ScriptedServer([ORDER, PLACED]) as server:
        run_id = paused_run(start(shop(tmp_path, echo, "chat"), server))
        with sqlite3.connect(os.environ["FLOWRUN_LOG_DB"]) as conn:
            conn.execute(edit)
        r = flowrun("resume", run_id, "--approve", "order", env=ENV)
    assert r.code == 2, r.err
    assert message in r.err and "Traceback" not in r.err
    assert echo.hits() == 0 and logged_run(run_id)["status"] == "paused"


def test_two_resumes_at_once_only_one_claims_the_run(tmp_path):
    import os

    with EchoServer() as echo, ScriptedServer([ORDER, PLACED]) as server:
        run_id = paused_run(start(shop(tmp_path, echo, "chat"), server))
    first, second = (RunLog.open_reader(os.environ["FLOWRUN_LOG_DB"]) for _ in range(2))
    try:
        first.claim_pause(run_id)
        with pytest.raises(NotPaused, match="another `flowrun resume` took it"):
            second.claim_pause(run_id)
    finally:
        first.close()
        second.close()
    busy = flowrun("resume", run_id, "--approve", "order", env=ENV)
    assert busy.code == 2 and "is running: it is being resumed by another process" in busy.err
    assert json.loads(json.dumps(logged_run(run_id)["status"])) == "running"


@pytest.mark.parametrize("flags, message", [
    (("--no-log",), "--no-log turns it off"),
    (("--offline",), "an --offline run cannot pause"),
    (("--chat",), "cannot be used with --chat"),
])
def test_pause_on_approval_refuses_what_could_never_be_resumed(flags, message):
    r = flowrun("workflows/weather.yaml", "--pause-on-approval", *flags, env=ENV)
    assert r.code == 2 and message in r.err and "Traceback" not in r.err


def test_jsonl_with_no_log_does_not_pause_it_refuses_as_without_a_terminal(tmp_path):
    with EchoServer() as echo, ScriptedServer([ORDER, PLACED]) as server:
        r = flowrun(shop(tmp_path, echo, "chat"), "--base-url", server.base_url, "-o", "jsonl", "--no-log", env=ENV)
    assert r.code == 0, r.err
    assert r.jsonl()[-1]["type"] == "run.completed" and echo.hits() == 0
    assert not any(e["type"] == "run.paused" for e in r.jsonl())
