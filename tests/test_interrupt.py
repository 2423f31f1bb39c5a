"""Ctrl-C: stop cleanly, cancel the run on the server, keep what arrived, exit 130."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from support.paths import REPO
from runner.runlog.log import RunLog
from runner.scripted import Fault, ScriptedServer
from runner.workflow.model import ScriptedTurn


def start(api: str, server: ScriptedServer, log_db) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.update(OPENAI_API_KEY="sk-test-interrupt", FLOWRUN_LOG_DB=str(log_db))
    return subprocess.Popen(
        [sys.executable, "-m", "runner", "workflows/weather.yaml", "--api", api, "--base-url", server.base_url],
        env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def wait_for_turn(server: ScriptedServer, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 90  # a hang guard: a loaded machine can take long to start Python
    while not any(r.turn_index is not None for r in server.requests):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "flowrun never reached the server"
        time.sleep(0.02)
    time.sleep(0.3)  # let the first events arrive


@pytest.mark.parametrize("api", ["assistants", "responses", "chat"])
def test_ctrl_c_cancels_keeps_partial_text_and_exits_130(api, tmp_path):
    stall = Fault(kind="stall", after=6, seconds=30, turn=0)
    with ScriptedServer([ScriptedTurn(text="The answer begins here and never ends")], faults=[stall]) as server:
        proc = start(api, server, tmp_path / "log.sqlite3")
        wait_for_turn(server, proc)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
        paths = [(r.method, r.path) for r in server.requests]
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    if api == "assistants":
        assert any(p.endswith("/cancel") for _, p in paths), paths
    runs = RunLog.open_reader(tmp_path / "log.sqlite3").list_runs()
    assert runs[0]["status"] == "interrupted"
    if api != "assistants":  # (the Assistants stream stalls before its message starts)
        assert out.startswith("The answer")  # what streamed before Ctrl-C was printed...
        assert out.strip() == runs[0]["final_text"].strip()  # ...and kept in the run log


SLOW_WORKFLOW = """\
version: 1
name: interrupted
model: {api: chat, name: scripted}
instructions: Use the tools.
input: go
tools:
  - name: quick
    description: a quick answer
    parameters: {type: object, properties: {city: {type: string}}, required: [city], additionalProperties: false}
    resolve: {static: "quick for ${{ args.city }}"}
  - name: slow
    description: an answer that takes a minute
    parameters: {type: object, properties: {city: {type: string}}, required: [city], additionalProperties: false}
    resolve: {python: "slow_tools:slow"}
tests:
  - name: demo
    turns:
      - tool_calls: [{name: quick, arguments: {city: Oslo}}]
      - tool_calls: [{name: slow, arguments: {city: Oslo}}, {name: quick, arguments: {city: Rome}}]
      - text: done
    expect: {error_outputs: [slow]}
"""


def test_after_ctrl_c_the_summary_line_and_logs_show_agree(tmp_path):
    """Ctrl-C while one call of a round still runs: the live summary line and the replay count
    the same finished calls and give the same duration, and every tool line names its tool."""
    from support.cli import flowrun

    (tmp_path / "w.yaml").write_text(SLOW_WORKFLOW)
    (tmp_path / "slow_tools.py").write_text("import time\n\ndef slow(city):\n    time.sleep(120)\n    return 'late'\n")
    log_db = tmp_path / "log.sqlite3"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.update(FLOWRUN_LOG_DB=str(log_db), PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "runner", "w.yaml", "--offline"], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90  # a hang guard: a loaded machine can take long to start Python
        finished = 0
        while finished < 2:  # both quick calls have their output; slow is still sleeping
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the quick calls never finished"
            time.sleep(0.1)
            if log_db.exists():
                reader = RunLog.open_reader(log_db)
                runs = reader.list_runs()
                calls = reader.get_run(runs[0]["run_id"])["tool_calls"] if runs else []
                reader.close()
                finished = sum(1 for c in calls if c["is_error"] is not None)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    summary = err.strip().splitlines()[-1]
    assert summary.startswith("interrupted · 2 turns · 2 tool calls · "), err
    duration = summary.rsplit(" · ", 1)[1]

    shown = flowrun("logs", "show", runs[0]["run_id"], "--log-db", str(log_db))
    assert shown.code == 0, shown.err
    last = shown.out.strip().splitlines()[-1]
    assert last.startswith("── interrupted · 2 turns · 2 tool calls · ") and f" · {duration} · exit 130 ──" in last, (summary, last)
    tool_lines = [line for line in shown.out.splitlines() if line[:2] in ("→ ", "← ", "✗ ") and "✗ run " not in line]
    assert [line.split("(")[0].split(":")[0].split(" [")[0] for line in tool_lines] == [
        "→ quick", "← quick", "→ slow", "→ quick", "← quick", "✗ slow"], tool_lines
    assert tool_lines[-1].endswith("no output (the run ended before this call finished)")
