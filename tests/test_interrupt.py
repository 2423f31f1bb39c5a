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
