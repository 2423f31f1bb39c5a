"""A ``flowrun resume`` that fails never loses the pause and never runs a tool twice, through the
real CLI on all three APIs: a model server that is down when the resume asks it (Assistants) pauses
the run again as it was; a submission of the approved tools' outputs that fails keeps the outputs
in the pause, and the next resume sends them without running anything (each POST is counted at a
loopback echo server). Ctrl-C during a resume keeps the pause the same way (exit 130). A tampered
saved output, and a changed python tool module, are refused."""

from __future__ import annotations

import json
import os
import sys
import sqlite3

import pytest

from support.cli import flowrun
from support.reliability import ENV, logged_run, python_tool, submissions, write_workflow
from support.resume import APIS, ORDER, PLACED, command_in, paused_run, shop, start
from runner.scripted import Fault, ScriptedServer
from runner.scripted.echo import EchoServer
from runner.workflow.model import ScriptedCall, ScriptedTurn

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

# The submission of the tools' outputs (the second turn) fails: the first attempt and both retries.
SUBMISSION_FAILS = Fault(kind="http_error", turn=1, status=503, times=3, shared=True)


def saved_round(run_id: str) -> dict:
    with sqlite3.connect(os.environ["FLOWRUN_LOG_DB"]) as conn:
        [(state,)] = conn.execute("SELECT state FROM pauses WHERE run_id = ?", (run_id,)).fetchall()
    return json.loads(state)["state"]["round"]


@pytest.mark.parametrize("api", APIS)
def test_a_resume_while_the_server_is_down_pauses_again_and_the_next_one_completes(api, tmp_path):
    with EchoServer() as echo, ScriptedServer([ORDER, PLACED]) as server:
        run_id = paused_run(start(shop(tmp_path, echo, api), server))
        server.stop()  # down: nothing listens on its port until it starts again
        down = flowrun("resume", run_id, "--approve", "order", env=ENV)
        assert down.code == 4, down.err
        assert f"cannot reach http://127.0.0.1:{server._next_port}" in down.err and "Traceback" not in down.err
        assert logged_run(run_id)["status"] == "paused"
        if api == "assistants":  # the run is asked for before any tool runs: nothing ran
            assert "paused again: cannot reach" in down.err and "no tool of this round ran" in down.err
            assert f"to try again:  flowrun resume {run_id} --log-db" in down.err
            assert command_in(down)[-2:] == ["--approve", "order"]
            assert echo.hits() == 0
        else:  # nothing to ask first: the tool ran, its output is kept for the next resume
            assert "the tools of this round ran, but their outputs could not be sent" in down.err
            assert f"to send them and go on:  flowrun resume {run_id} --log-db" in down.err
            assert "--approve" not in command_in(down)
            assert echo.hits("/count/orders") == 1
        server.start()
        up = flowrun(*command_in(down), env=ENV)
        assert up.code == 0, up.err
        assert len(server.requests_for("/assistants/", "DELETE")) == (1 if api == "assistants" else 0)
        assert up.out == "placed: hit 1\n"
        assert echo.hits("/count/orders") == 1  # over both resumes
        sent = submissions(server, api)
    assert len(sent) == 1 and list(sent[0].values()) == ["hit 1"]
    run = logged_run(run_id)
    assert run["status"] == "completed" and run["final_text"] == "placed: hit 1"
    kinds = [e["type"] for e in run["events"]]
    assert kinds.count("run.paused") == 2 and kinds.count("run.resumed") == 2 and kinds[-1] == "run.completed"


@pytest.mark.parametrize("api", APIS)
def test_a_failed_submission_keeps_the_output_and_the_next_resume_sends_it_without_running_the_tool(api, tmp_path):
    with EchoServer() as echo, ScriptedServer([ORDER, PLACED], faults=[SUBMISSION_FAILS]) as server:
        run_id = paused_run(start(shop(tmp_path, echo, api), server))
        failed = flowrun("resume", run_id, "--approve", "order", env=ENV)
        assert failed.code == 4, failed.err
        assert "their outputs could not be sent" in failed.err and "HTTP 503" in failed.err
        assert "the outputs are saved in the run log; no tool runs again" in failed.err
        assert echo.hits("/count/orders") == 1 and submissions(server, api) != []  # tried, refused
        [output] = saved_round(run_id)["outputs"]
        assert output["name"] == "order" and output["output"] == "hit 1" and output["is_error"] is False
        assert logged_run(run_id)["status"] == "paused"
        deleted = lambda: len(server.requests_for("/assistants/", "DELETE"))  # noqa: E731
        assert deleted() == 0  # Assistants: the assistant made for the run is kept for the next resume

        again = flowrun("resume", run_id, "--approve", "order", env=ENV)
        assert again.code == 2 and "waits for no decision" in again.err
        assert f"`flowrun resume {run_id}` sends them" in again.err

        sent = flowrun(*command_in(failed), env=ENV)
        assert sent.code == 0, sent.err
        assert "sending the saved outputs of 1 tool call that ran before the run paused" in sent.err
        assert sent.out == "placed: hit 1\n"
        assert echo.hits("/count/orders") == 1  # the tool never ran again
        last = submissions(server, api)[-1]
        assert deleted() == (1 if api == "assistants" else 0)  # once, when the run ended
    assert list(last.values()) == ["hit 1"] and list(last) == [output["call_id"]]
    shown = flowrun("logs", "show", run_id, env=ENV)
    assert "⏸ paused: the outputs of this round wait to be sent (its tools ran)" in shown.out
    assert logged_run(run_id)["status"] == "completed"


def test_a_submission_that_keeps_failing_pauses_each_time_with_the_same_outputs(tmp_path):
    fails = Fault(kind="http_error", turn=1, status=503, times=6, shared=True)
    with EchoServer() as echo, ScriptedServer([ORDER, PLACED], faults=[fails]) as server:
        run_id = paused_run(start(shop(tmp_path, echo, "chat"), server))
        first = flowrun("resume", run_id, "--approve", "order", env=ENV)
        saved = saved_round(run_id)["outputs"]
        second = flowrun("resume", run_id, env=ENV)
        assert second.code == 4 and "their outputs could not be sent" in second.err
        assert saved_round(run_id)["outputs"] == saved and command_in(second) == command_in(first)
        third = flowrun("resume", run_id, env=ENV)
        assert third.code == 0, third.err
        assert third.out == "placed: hit 1\n" and echo.hits("/count/orders") == 1


@pytest.mark.parametrize("edit, message", [
    ("json_set(state, '$.state.round.outputs[0].output', 7)", "round.outputs[0].output must be text"),
    ("json_set(state, '$.state.round.outputs[0].call_id', 'call_forged')", "round.outputs[0] answers no call"),
    ("json_set(state, '$.state.round.outputs[0].name', 'refund')", "round.outputs[0] answers no call"),
    ("json_set(state, '$.state.round.outputs', json('[]'))", "round.outputs has no output for call"),
    ("json_set(state, '$.state.round.outputs', 'hit 1')", "round.outputs must be a list"),
    ("json_set(state, '$.state.round.outputs[0].is_error', 'no')", "is_error and .refused must be true or false"),
    ("json_set(state, '$.state.round.outputs[0].extra', 'x')", "must be an object with call_id"),
    ("json_set(state, '$.state.round.outputs[1]', json_extract(state, '$.state.round.outputs[0]'))",
     "a second time"),
    ("json_set(state, '$.waiting', json('[{\"call_id\": \"c\", \"name\": \"order\"}]'))", "waiting must be empty"),
])
def test_a_tampered_saved_output_is_refused_and_the_run_stays_paused(edit, message, tmp_path):
    with EchoServer() as echo, ScriptedServer([ORDER, PLACED], faults=[SUBMISSION_FAILS]) as server:
        run_id = paused_run(start(shop(tmp_path, echo, "chat"), server))
        assert flowrun("resume", run_id, "--approve", "order", env=ENV).code == 4
        with sqlite3.connect(os.environ["FLOWRUN_LOG_DB"]) as conn:
            conn.execute(f"UPDATE pauses SET state = {edit}")
        r = flowrun("resume", run_id, env=ENV)
        assert r.code == 2, r.err
        assert message in r.err and "the paused run's saved state is unusable" in r.err
        assert "Traceback" not in r.err
        assert echo.hits("/count/orders") == 1 and len(submissions(server, "chat")) == 3  # nothing more sent
    assert logged_run(run_id)["status"] == "paused"


NOTE_ASKS = python_tool("note", "note", params="{type: object, properties: {text: {type: string}}}") + "  approval: ask\n"
NOTE = ScriptedTurn(tool_calls=(ScriptedCall("note", {"text": "tea"}),))
NOTED = ScriptedTurn(text="${{ outputs.note }}")


def test_a_changed_python_tool_module_is_refused_at_resume_unless_forced(tmp_path):
    wf = write_workflow(tmp_path, NOTE_ASKS)
    notes = tmp_path / "notes.txt"
    with ScriptedServer([NOTE, NOTED]) as server:
        run_id = paused_run(start(str(wf), server))
        module = tmp_path / "tools.py"
        module.write_text(module.read_text() + "\n# edited after the pause\n")
        refused = flowrun("resume", run_id, "--approve", "note", env=ENV)
        assert refused.code == 2, refused.err
        assert f"the python code of run {run_id}'s tools changed since it paused" in refused.err
        assert f"{module.resolve()} ('note') changed" in refused.err and "--force-changed-file" in refused.err
        assert not notes.exists() and logged_run(run_id)["status"] == "paused"
        forced = flowrun("resume", run_id, "--approve", "note", "--force-changed-file", env=ENV)
        assert forced.code == 0, forced.err
        assert "python tool modules changed since the run paused" in forced.err
        assert forced.out == "noted tea\n" and notes.read_text() == "tea\n"


def test_a_pause_saved_before_module_hashes_were_kept_still_resumes(tmp_path):
    wf = write_workflow(tmp_path, NOTE_ASKS)
    with ScriptedServer([NOTE, NOTED]) as server:
        run_id = paused_run(start(str(wf), server))
        with sqlite3.connect(os.environ["FLOWRUN_LOG_DB"]) as conn:
            [(state,)] = conn.execute("SELECT state FROM pauses").fetchall()
            assert str((tmp_path / "tools.py").resolve()) in json.loads(state)["state"]["tool_modules"]
            conn.execute("UPDATE pauses SET state = json_remove(state, '$.state.tool_modules')")
        r = flowrun("resume", run_id, "--approve", "note", env=ENV)
    assert r.code == 0, r.err
    assert r.out == "noted tea\n" and (tmp_path / "notes.txt").read_text() == "tea\n"


def test_an_edited_module_hash_is_one_clear_error(tmp_path):
    wf = write_workflow(tmp_path, NOTE_ASKS)
    with ScriptedServer([NOTE, NOTED]) as server:
        run_id = paused_run(start(str(wf), server))
        with sqlite3.connect(os.environ["FLOWRUN_LOG_DB"]) as conn:
            conn.execute("UPDATE pauses SET state = json_set(state, '$.state.tool_modules', json('{\"a\": 1}'))")
        r = flowrun("resume", run_id, "--approve", "note", env=ENV)
    assert r.code == 2 and "tool_modules must map module files to SHA-256 hashes" in r.err
    assert not (tmp_path / "notes.txt").exists()


def test_an_mcp_server_that_does_not_start_at_resume_leaves_the_run_paused_as_it_was(tmp_path):
    from support.mcp_files import FIXTURE

    launcher = tmp_path / "launch_fixture.py"  # not part of the workflow file: what it starts can change

    def launch(*flags: str) -> None:
        argv = [str(FIXTURE), "stdio", *flags]
        launcher.write_text(f"import runpy, sys\nsys.path.insert(0, {str(FIXTURE.parent)!r})\n"
                            f"sys.argv = {argv!r}\nrunpy.run_path({str(FIXTURE)!r}, run_name='__main__')\n")

    launch()
    mcp = f"""  - mcp:
      name: fx
      command: {sys.executable}
      args: [{launcher}]
    include: [echo]
    approval: allow
"""
    with EchoServer() as echo, ScriptedServer([ORDER, PLACED]) as server:
        run_id = paused_run(start(shop(tmp_path, echo, "chat", extra=mcp), server))
        launch("--fail-start")
        failed = flowrun("resume", run_id, "--approve", "order", env=ENV)
        assert failed.code == 4, failed.err
        assert "paused again: MCP server 'fx' did not start" in failed.err and "no tool of this round ran;" in failed.err
        assert echo.hits() == 0 and submissions(server, "chat") == [] and logged_run(run_id)["status"] == "paused"
        launch()
        r = flowrun(*command_in(failed), env=ENV)
        assert r.code == 0, r.err
        assert r.out == "placed: hit 1\n" and echo.hits("/count/orders") == 1


def test_an_assistants_submission_that_got_through_after_all_is_followed_not_sent_again(tmp_path):
    import urllib.request

    with EchoServer() as echo, ScriptedServer([ORDER, PLACED], faults=[SUBMISSION_FAILS]) as server:
        run_id = paused_run(start(shop(tmp_path, echo, "assistants"), server))
        failed = flowrun("resume", run_id, "--approve", "order", env=ENV)
        assert failed.code == 4 and "their outputs could not be sent" in failed.err
        with sqlite3.connect(os.environ["FLOWRUN_LOG_DB"]) as conn:
            [(state,)] = conn.execute("SELECT state FROM pauses").fetchall()
        saved = json.loads(state)["state"]
        thread, run = saved["provider"]["thread_id"], saved["provider"]["run_id"]
        [output] = saved["round"]["outputs"]
        # the server took the outputs after all (the answer to the request was lost)
        body = {"tool_outputs": [{"tool_call_id": output["call_id"], "output": "hit 1"}]}
        took = urllib.request.Request(f"{server.base_url}/threads/{thread}/runs/{run}/submit_tool_outputs",
                                      data=json.dumps(body).encode(), method="POST",
                                      headers={"content-type": "application/json", "authorization": "Bearer x"})
        with urllib.request.urlopen(took, timeout=30) as answer:
            assert answer.status == 200
        before = len(submissions(server, "assistants"))
        r = flowrun("resume", run_id, env=ENV)
        assert r.code == 0, r.err
        assert r.out == "placed: hit 1\n"
        assert len(submissions(server, "assistants")) == before and echo.hits("/count/orders") == 1


def test_saved_outputs_are_masked_like_everything_in_the_run_log(tmp_path):
    from pathlib import Path

    from support.reliability import KEY

    wf = write_workflow(tmp_path, NOTE_ASKS)
    leaky = ScriptedTurn(tool_calls=(ScriptedCall("note", {"text": KEY}),))
    with ScriptedServer([leaky, NOTED], faults=[SUBMISSION_FAILS]) as server:
        run_id = paused_run(start(str(wf), server))
        failed = flowrun("resume", run_id, "--approve", "note", env=ENV)
        assert failed.code == 4, failed.err
        [output] = saved_round(run_id)["outputs"]
        assert output["output"].startswith("noted ") and KEY not in output["output"]
        db = Path(os.environ["FLOWRUN_LOG_DB"])
        for part in db.parent.glob(db.name + "*"):  # the database and its write-ahead log
            assert KEY.encode() not in part.read_bytes()
        r = flowrun("resume", run_id, env=ENV)
        assert r.code == 0, r.err
        assert KEY not in r.out + r.err and r.out.startswith("noted ")
        assert len((tmp_path / "notes.txt").read_text().splitlines()) == 1  # it ran once


def test_an_assistants_run_the_server_no_longer_has_fails_and_runs_nothing(tmp_path):
    gone = Fault(kind="http_error", api="assistants", match="/runs/run_", status=404,
                 body={"error": {"message": "No run found", "type": "invalid_request_error"}})
    with EchoServer() as echo, ScriptedServer([ORDER, PLACED], faults=[gone]) as server:
        run_id = paused_run(start(shop(tmp_path, echo, "assistants"), server))
        r = flowrun("resume", run_id, "--approve", "order", env=ENV)
        assert r.code == 1, r.err
        assert "is not on the server any more, so no tool ran; run the workflow again" in r.err
        assert echo.hits() == 0
    assert logged_run(run_id)["status"] == "failed"


# --- Ctrl-C during a resume -------------------------------------------------------------------

def _resume_process(*args: str):
    import subprocess

    return subprocess.Popen([sys.executable, "-m", "runner", "resume", *args], env={**os.environ, **ENV},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _until(condition, what: str) -> None:
    import time

    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_ctrl_c_while_a_resume_asks_the_server_keeps_the_run_paused(tmp_path):
    import signal
    import socket

    with EchoServer() as echo, ScriptedServer([ORDER, PLACED]) as server:
        run_id = paused_run(start(shop(tmp_path, echo, "assistants"), server))
        server.stop()
        silent = socket.socket()  # takes the connection on the server's port and never answers
        silent.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        silent.bind(("127.0.0.1", server._next_port))
        silent.listen(4)
        silent.settimeout(30)
        proc = _resume_process(run_id, "--approve", "order")
        try:
            conn, _ = silent.accept()  # the resume waits for the run's status
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=30)
        finally:
            proc.kill()
            silent.close()
        conn.close()
        assert proc.returncode == 130, err
        assert "paused again: interrupted by the user" in err and "no tool of this round ran" in err
        assert "Traceback" not in err
        assert logged_run(run_id)["status"] == "paused"
        assert echo.hits() == 0
        server.start()
        assert not server.requests_for("/cancel", "POST")  # the server's run was left waiting
        done = flowrun("resume", run_id, "--approve", "order", env=ENV)
    assert done.code == 0, done.err
    assert done.out == "placed: hit 1\n" and echo.hits("/count/orders") == 1


@pytest.mark.parametrize("api", APIS)
def test_ctrl_c_after_the_tools_ran_keeps_their_outputs_for_the_next_resume(api, tmp_path):
    import signal

    stall = Fault(kind="stall", turn=1, seconds=60, times=1, shared=True)  # the outputs' turn never answers
    with EchoServer() as echo, ScriptedServer([ORDER, PLACED], faults=[stall]) as server:
        run_id = paused_run(start(shop(tmp_path, echo, api), server))
        before = len(server.requests)
        proc = _resume_process(run_id, "--approve", "order")
        try:
            _until(lambda: echo.hits("/count/orders") == 1 and submissions(server, api), "the outputs were never sent")
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=30)
        finally:
            proc.kill()
        assert proc.returncode == 130, err
        assert "their outputs could not be sent: interrupted by the user" in err and "Traceback" not in err
        assert logged_run(run_id)["status"] == "paused"
        assert [o["output"] for o in saved_round(run_id)["outputs"]] == ["hit 1"]
        assert len(server.requests) > before
        done = flowrun("resume", run_id, env=ENV)
        assert done.code == 0, done.err
        assert done.out == "placed: hit 1\n"
    assert echo.hits("/count/orders") == 1  # the tool ran once, and its output reached the model
