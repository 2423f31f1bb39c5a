"""The run log records every event as it happens and survives crashes, kills and concurrency."""

from __future__ import annotations

import base64
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from runner.runlog import log as runlog_module
from runner.events import (
    Notice,
    RunCompleted,
    RunStarted,
    TextDelta,
    ToolCallCompleted,
    ToolCallRequested,
    TurnCompleted,
    TurnStarted,
)
from runner.runlog.log import RunLog, RunLogError, RunNotFound, default_log_path
from runner.runlog.db import SCHEMA_VERSION
from runner.secrets.masker import Masker

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}

# A recorder in another process: records a few events, then ends as `mode` says.
CHILD = r"""
import os, signal, sys, time
from runner.events import RunStarted, TextDelta, ToolCallRequested, TurnStarted
from runner.runlog.log import RunLog
db, run_id, mode = sys.argv[1:4]
log = RunLog.open(db)
log.start_run(run_id=run_id, workflow_path="wf.yaml", workflow_sha256="00", api="chat",
              model="m", input="hi", offline=True)
log.record(run_id, RunStarted(run_id=run_id, workflow="wf.yaml", api="chat", model="m", input="hi"))
log.record(run_id, TurnStarted(turn=1))
log.record(run_id, TextDelta(text="Hel"))
log.record(run_id, TextDelta(text="lo"))
log.record(run_id, ToolCallRequested(call_id="c1", name="get_weather", arguments='{"city": "Paris"}'))
if mode == "exit":
    os._exit(1)
if mode == "sigkill":
    os.kill(os.getpid(), signal.SIGKILL)
log.record(run_id, TextDelta(text=" partial"))
if mode == "atexit":
    sys.exit(0)  # no close(): the atexit hook must flush the buffered delta
print("ready", flush=True)
time.sleep(60)  # a stalled stream; the parent kills us
"""

# One of many concurrent writers: waits for the parent's go, then records a whole run.
WRITER = r"""
import sys
from runner.events import TextDelta, ToolCallCompleted, ToolCallRequested, TurnStarted
from runner.runlog.log import RunLog
db, run_id = sys.argv[1:3]
sys.stdin.read()
log = RunLog.open(db)
log.start_run(run_id=run_id, workflow_path="wf.yaml", workflow_sha256="00", api="chat",
              model="m", input="hi", offline=True)
for turn in range(5):
    log.record(run_id, TurnStarted(turn=turn + 1))
    for i in range(20):
        log.record(run_id, TextDelta(text=f"{run_id}-{turn}-{i} "))
    log.record(run_id, ToolCallRequested(call_id=f"c{turn}", name="f", arguments="{}"))
    log.record(run_id, ToolCallCompleted(call_id=f"c{turn}", name="f", output="ok", is_error=False, duration_ms=1))
log.finish_run(run_id, status="completed", final_text="done", usage=None, exit_code=0, error=None)
log.close()
"""


def full_run(log: RunLog, run_id: str = "run-0001", secret: str = "") -> None:
    log.start_run(run_id=run_id, workflow_path="workflows/weather.yaml", workflow_sha256="ab" * 32,
                  api="responses", model="gpt-test", input=f"Weather in Paris? {secret}", offline=False)
    log.record(run_id, RunStarted(run_id=run_id, workflow="workflows/weather.yaml", api="responses",
                                  model="gpt-test", input=f"Weather in Paris? {secret}"))
    log.record(run_id, TurnStarted(turn=1))
    log.record(run_id, ToolCallRequested(call_id="call_1", name="get_weather", arguments=f'{{"city": "Paris{secret}"}}'))
    log.record(run_id, ToolCallCompleted(call_id="call_1", name="get_weather", output=f'{{"temp": 21, "k": "{secret}"}}',
                                         is_error=False, duration_ms=12.5))
    log.record(run_id, TurnCompleted(turn=1, status="tool_calls", usage={"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}))
    log.record(run_id, TurnStarted(turn=2))
    for piece in ("It is ", "21 °C ", f"in Paris{secret}."):
        log.record(run_id, TextDelta(text=piece))
    log.record(run_id, Notice(level="warning", message=f"slow tool {secret}"))
    log.record(run_id, TurnCompleted(turn=2, status="completed", usage={"input_tokens": 20, "output_tokens": 7, "total_tokens": 27}))
    usage = {"input_tokens": 30, "output_tokens": 12, "total_tokens": 42}
    final = f"It is 21 °C in Paris{secret}."
    log.record(run_id, RunCompleted(run_id=run_id, status="completed", final_text=final, turns=2, tool_calls=1,
                                    usage=usage, duration_ms=99.0))
    log.finish_run(run_id, status="completed", final_text=final, usage=usage, exit_code=0, error=None)


def run_child(db: Path, run_id: str, mode: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CHILD, str(db), run_id, mode], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_full_run_reads_back_in_order(tmp_path):
    db = tmp_path / "state" / "flowrun" / "runs.sqlite3"
    with RunLog.open(db) as log:
        full_run(log)
    run = RunLog.open_reader(db).get_run("run-0001")
    assert run["status"] == "completed" and run["exit_code"] == 0 and run["error"] is None
    assert run["final_text"] == "It is 21 °C in Paris."
    assert run["usage"] == {"input_tokens": 30, "output_tokens": 12, "total_tokens": 42}
    assert run["workflow_sha256"] == "ab" * 32 and run["api"] == "responses" and run["offline"] is False
    assert run["duration_ms"] >= 0 and run["pid"] == os.getpid()
    types = [e["type"] for e in run["events"]]
    assert types == ["run.started", "turn.started", "tool_call.requested", "tool_call.completed",
                     "turn.completed", "turn.started", "text.delta", "text.delta", "text.delta",
                     "notice", "turn.completed", "run.completed"]
    assert [e["seq"] for e in run["events"]] == list(range(len(types)))
    assert "".join(e["text"] for e in run["events"] if e["type"] == "text.delta") == "It is 21 °C in Paris."
    assert run["tool_calls"] == [{"call_id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}',
                                  "output": '{"temp": 21, "k": ""}', "is_error": False, "duration_ms": 12.5}]


def test_schema_is_versioned_wal_and_private(tmp_path):
    db = tmp_path / "runs.sqlite3"
    RunLog.open(db).close()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


def test_tool_call_rows_are_upserted_once_per_call_id(tmp_path):
    with RunLog.open(tmp_path / "r.db") as log:
        log.start_run(run_id="r", workflow_path="w", workflow_sha256="", api="chat", model="m", input="", offline=True)
        log.record("r", ToolCallRequested(call_id="a", name="f", arguments='{"x": 1}'))
        log.record("r", ToolCallRequested(call_id="b", name="g", arguments="{}"))
        log.record("r", ToolCallCompleted(call_id="b", name="g", output="boom", is_error=True, duration_ms=2))
        log.record("r", ToolCallCompleted(call_id="a", name="f", output="one", is_error=False, duration_ms=3))
        run = log.get_run("r")
    assert [(c["call_id"], c["arguments"], c["output"], c["is_error"]) for c in run["tool_calls"]] == [
        ("a", '{"x": 1}', "one", False), ("b", "{}", "boom", True)]


def test_deltas_are_batched_and_flushed_before_other_events(tmp_path, monkeypatch):
    monkeypatch.setattr(runlog_module, "FLUSH_SECONDS", 60.0)  # only count and events flush here
    db = tmp_path / "r.db"
    log = RunLog.open(db)
    log.start_run(run_id="r", workflow_path="w", workflow_sha256="", api="chat", model="m", input="", offline=True)
    other = sqlite3.connect(db)
    count = lambda: other.execute("SELECT COUNT(*) FROM events").fetchone()[0]  # noqa: E731
    for i in range(runlog_module.FLUSH_DELTAS - 1):
        log.record("r", TextDelta(text=str(i)))
    assert count() == 0  # batched, not one commit per delta
    log.record("r", TextDelta(text="last"))
    assert count() == runlog_module.FLUSH_DELTAS
    log.record("r", TextDelta(text="x"))
    log.record("r", TurnCompleted(turn=1, status="completed"))
    assert count() == runlog_module.FLUSH_DELTAS + 2  # the event took the pending delta with it
    log.close()
    other.close()


def test_get_run_by_prefix(tmp_path):
    with RunLog.open(tmp_path / "r.db") as log:
        for run_id in ("abc", "abcd-1", "abcd-2"):
            log.start_run(run_id=run_id, workflow_path="w", workflow_sha256="", api="chat", model="m", input="", offline=True)
        assert log.get_run("abc")["run_id"] == "abc"  # exact match wins over prefixes
        assert log.get_run("abcd-2")["run_id"] == "abcd-2"
        with pytest.raises(RunNotFound, match="more than one run") as ambiguous:
            log.get_run("abcd")
        assert ambiguous.value.exit_code == 2
        with pytest.raises(RunNotFound, match="no run matches 'zzz'"):
            log.get_run("zzz")
        assert [r["run_id"] for r in log.list_runs(limit=2)] == ["abcd-2", "abcd-1"]


@pytest.mark.parametrize("mode", ["exit", "sigkill"])
def test_process_dying_mid_stream_leaves_its_events_and_shows_crashed(tmp_path, mode):
    db = tmp_path / "r.db"
    proc = run_child(db, "dead-run", mode)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == (1 if mode == "exit" else -signal.SIGKILL), err
    log = RunLog.open_reader(db)
    run = log.get_run("dead")
    assert run["status"] == "crashed" and run["recorded_status"] == "running"
    assert [e["type"] for e in run["events"]] == ["run.started", "turn.started", "text.delta", "text.delta",
                                                  "tool_call.requested"]
    assert run["tool_calls"][0]["output"] is None
    assert log.list_runs()[0]["status"] == "crashed"
    log.close()


def test_stalled_stream_deltas_reach_disk_before_a_kill(tmp_path):
    db = tmp_path / "r.db"
    proc = run_child(db, "stalled", "stall")
    try:
        assert proc.stdout.readline().strip() == "ready"
        reader = RunLog.open_reader(db)
        assert reader.list_runs()[0]["status"] == "running"  # its recorder is alive
        deadline = time.monotonic() + 10
        while reader.get_run("stalled")["events"][-1].get("text") != " partial":
            assert time.monotonic() < deadline, "the buffered delta was never flushed"
            time.sleep(0.02)
    finally:
        proc.kill()
        proc.communicate(timeout=30)
    run = reader.get_run("stalled")
    assert run["status"] == "crashed"
    assert "".join(e["text"] for e in run["events"] if e["type"] == "text.delta") == "Hello partial"
    reader.close()


def test_normal_exit_without_close_flushes_buffered_deltas(tmp_path):
    db = tmp_path / "r.db"
    proc = run_child(db, "quit", "atexit")
    proc.communicate(timeout=30)
    assert proc.returncode == 0
    with RunLog.open_reader(db) as log:
        assert log.get_run("quit")["events"][-1]["text"] == " partial"


def test_ten_processes_write_one_db(tmp_path):
    db = tmp_path / "fresh" / "runs.sqlite3"  # they also race to create it
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(db), f"w{n:02d}"], env=ENV, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for n in range(10)]
    for p in procs:
        p.stdin.close()  # go
        p.stdin = None
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0 and err == "", err
    with RunLog.open_reader(db) as log:
        runs = log.list_runs(limit=50)
        assert sorted(r["run_id"] for r in runs) == [f"w{n:02d}" for n in range(10)]
        for r in runs:
            run = log.get_run(r["run_id"])
            assert run["status"] == "completed"
            assert [e["seq"] for e in run["events"]] == list(range(5 * 23))
            assert len(run["tool_calls"]) == 5
            deltas = [e["text"] for e in run["events"] if e["type"] == "text.delta"]
            assert deltas == [f"{r['run_id']}-{t}-{i} " for t in range(5) for i in range(20)]
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


def test_masker_masks_every_string_stored(tmp_path):
    secret = "sk-canary-5f2a9c7e"
    masker = Masker([secret])
    db = tmp_path / "r.db"
    with RunLog.open(db, masker) as log:
        full_run(log, "masked", secret=secret)
        log.record("masked", Notice(level="info", message=base64.b64encode(secret.encode()).decode()))
        log.finish_run("masked", status="failed", final_text=f"x {secret}", usage={"note": secret},
                       exit_code=1, error=f"auth failed for {secret}")
        run = log.get_run("masked")
    assert run["input"] == "Weather in Paris? ***" and run["error"] == "auth failed for ***"
    assert run["usage"] == {"note": "***"}
    assert run["tool_calls"][0]["arguments"] == '{"city": "Paris***"}'
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert secret.encode() not in raw
    assert base64.b64encode(secret.encode()).rstrip(b"=") not in raw
    assert b"***" in raw


def test_sqlite_error_while_recording_warns_once_and_the_run_goes_on(tmp_path, capsys):
    db = tmp_path / "r.db"
    log = RunLog.open(db)
    log.start_run(run_id="r", workflow_path="w", workflow_sha256="", api="chat", model="m", input="", offline=True)
    vandal = sqlite3.connect(db)
    vandal.execute("DROP TABLE events")
    vandal.close()
    log.record("r", TurnStarted(turn=1))  # fails inside: must not raise
    log.record("r", TurnStarted(turn=2))
    log.finish_run("r", status="completed", final_text="", usage=None, exit_code=0, error=None)
    log.close()
    err = capsys.readouterr().err
    assert err.count("warning: run log") == 1 and "the run continues" in err
    assert not log.enabled


def test_unopenable_log_warns_once_and_records_nothing(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    log = RunLog.open(blocker / "runs.sqlite3")
    full_run(log)
    log.close()
    assert not log.enabled
    assert capsys.readouterr().err.count("warning") == 1


def test_newer_or_foreign_databases_are_not_touched(tmp_path, capsys):
    newer = tmp_path / "newer.db"
    conn = sqlite3.connect(newer)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    assert not RunLog.open(newer).enabled
    assert "newer flowrun" in capsys.readouterr().err
    with pytest.raises(RunLogError, match="newer flowrun"):
        RunLog.open_reader(newer)
    foreign = tmp_path / "foreign.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE notes (x)")
    conn.close()
    with pytest.raises(RunLogError, match="not a flowrun run log"):
        RunLog.open_reader(foreign)
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(RunLogError, match="cannot read the run log"):
        RunLog.open_reader(garbage)


def test_liveness_checks_host_and_pid_reuse(tmp_path):
    db = tmp_path / "r.db"
    with RunLog.open(db) as log:
        for run_id in ("here", "elsewhere", "reused"):
            log.start_run(run_id=run_id, workflow_path="w", workflow_sha256="", api="chat", model="m", input="", offline=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    conn = sqlite3.connect(db)
    conn.execute("UPDATE runs SET hostname='another-host', pid=? WHERE run_id='elsewhere'", (int(dead.stdout),))
    conn.execute("UPDATE runs SET pid_start='1' WHERE run_id='reused'")  # our pid, another start time
    conn.commit()
    conn.close()
    with RunLog.open_reader(db) as log:
        status = {r["run_id"]: r["status"] for r in log.list_runs()}
    assert status == {"here": "running", "elsewhere": "running", "reused": "crashed"}


def test_default_log_path(monkeypatch, tmp_path):
    monkeypatch.setenv("FLOWRUN_LOG_DB", str(tmp_path / "x.db"))
    assert default_log_path() == tmp_path / "x.db"
    monkeypatch.delenv("FLOWRUN_LOG_DB")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert default_log_path() == tmp_path / "state" / "flowrun" / "runs.sqlite3"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_log_path() == tmp_path / "home" / ".local" / "state" / "flowrun" / "runs.sqlite3"


def test_switching_to_wal_waits_out_a_lock_sqlite_does_not_wait_for(tmp_path):
    """SQLite can refuse ``journal_mode = WAL`` at once while another process holds the file
    (seen in CI: ten processes creating one log); the switch waits instead of disabling the log."""
    from runner.runlog.db import ensure_wal

    path = tmp_path / "r.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    threading.Timer(0.3, lambda: holder.execute("COMMIT")).start()
    impatient = sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        impatient.execute("PRAGMA journal_mode = WAL")  # what the bare pragma does
    ensure_wal(impatient)
    assert impatient.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    impatient.close()
    holder.close()
