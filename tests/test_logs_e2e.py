"""The run log seen from the CLI: finished runs replay; a run killed mid-stream leaves a record."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from support.cli import flowrun
from support.paths import REPO
from runner.scripted import Fault, ScriptedServer
from runner.workflow.model import ScriptedCall, ScriptedTurn

TURNS = [
    ScriptedTurn(tool_calls=(ScriptedCall("get_rain_probability", {"location": "Oslo"}),)),
    ScriptedTurn(text="Rain chance in Oslo: ${{ outputs.get_rain_probability }}."),
]


def test_logs_show_reproduces_a_finished_run(tmp_path):
    env = {"OPENAI_API_KEY": "sk-logs", "FLOWRUN_LOG_DB": str(tmp_path / "l.sqlite3")}
    with ScriptedServer(TURNS) as server:
        run = flowrun("workflows/weather.yaml", "--api", "chat", "--base-url", server.base_url, "-o", "jsonl", env=env)
    assert run.code == 0, run.err
    run_id = run.jsonl()[0 if run.jsonl()[0]["type"] == "run.started" else 1]["run_id"]
    listing = flowrun("logs", env=env)
    assert run_id[:8] in listing.out and "completed" in listing.out and "Rain chance in Oslo" in listing.out
    shown = flowrun("logs", "show", run_id, env=env)
    assert shown.code == 0, shown.err
    assert "get_rain_probability" in shown.out and "0.06" in shown.out
    assert "Rain chance in Oslo: 0.06." in shown.out
    as_json = json.loads(flowrun("logs", "show", run_id, "--json", env=env).out)
    logged = [e for e in as_json["events"] if e["type"] != "text.delta"]
    emitted = [e for e in run.jsonl() if e["type"] != "text.delta"]
    assert [e["type"] for e in logged] == [e["type"] for e in emitted]  # nothing lost


def test_a_run_killed_mid_stream_keeps_its_record(tmp_path):
    log_db = tmp_path / "k.sqlite3"
    stall = Fault(kind="stall", turn=1, after=8, seconds=30)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.update(OPENAI_API_KEY="sk-kill", FLOWRUN_LOG_DB=str(log_db))
    with ScriptedServer(TURNS, faults=[stall]) as server:
        proc = subprocess.Popen(
            [sys.executable, "-m", "runner", "workflows/weather.yaml", "--api", "chat", "--base-url", server.base_url],
            env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 90  # a hang guard: a loaded machine can take long to start Python
        while not any(r.turn_index == 1 for r in server.requests):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        time.sleep(0.5)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    env_log = {"FLOWRUN_LOG_DB": str(log_db)}
    listing = flowrun("logs", "--json", env=env_log)
    runs = json.loads(listing.out)
    assert runs[0]["status"] == "crashed"
    shown = flowrun("logs", "show", runs[0]["run_id"], env=env_log)
    assert shown.code == 0
    assert "get_rain_probability" in shown.out and "0.06" in shown.out  # the tool round survived
    assert "Rain chance" in shown.out  # and the text that streamed before the kill
