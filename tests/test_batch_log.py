"""``flowrun batch`` in the run log: every run under the batch's id (or only the failed ones), the
batch's own row telling how far it got and how it ended (Ctrl-C, a killed process), and what reads
it back: ``flowrun logs batches``, ``flowrun logs --batch ID``, the view's batch endpoints."""

from __future__ import annotations

import http.client
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.batch import WORKFLOW, echo_script
from support.cli import flowrun
from runner.runlog.db import SCHEMA_VERSION, connect
from runner.scripted import ScriptedServer
from runner.view.data import NotFound, RunLogView
from runner.view.server import serve


@pytest.fixture
def workflow(tmp_path: Path) -> Path:
    path = tmp_path / "echo.yaml"
    path.write_text(WORKFLOW)
    return path


@pytest.fixture
def log_db() -> Path:
    return Path(os.environ["FLOWRUN_LOG_DB"])  # each test's own (conftest)


def write_lines(path: Path, lines: list) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def results(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def rows(db: Path, sql: str, *params) -> list[sqlite3.Row]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


MIXED = [{"city": "Oslo"}, "{broken", {"city": "Rome"}, {"message": "explode now"}, {"city": "Bern"}, {"city": "Lima"}]


def test_an_offline_batch_writes_every_run_under_one_batch_id(workflow: Path, tmp_path: Path, log_db: Path) -> None:
    inputs = write_lines(tmp_path / "in.jsonl", [{"city": f"C{i}"} for i in range(6)] + ["[]"])
    out = tmp_path / "out.jsonl"
    done = flowrun("batch", str(workflow), "--inputs", str(inputs), "--out", str(out), "--offline", cwd=tmp_path)
    assert done.code == 1, done.err
    [batch] = rows(log_db, "SELECT * FROM batches")
    assert f"run log: batch {batch['batch_id']} with its runs: flowrun logs --batch {batch['batch_id']}" in done.err
    assert done.err.strip().splitlines()[-1].startswith("7 inputs: 6 completed, 1 failed")  # still the last line
    assert (batch["status"], batch["total"], batch["skipped"], batch["completed"], batch["failed"], batch["logged"]) \
        == ("failed", 7, 0, 6, 1, "all")
    assert batch["finished_at"] >= batch["started_at"] and batch["pid"] == os.getpid()
    assert json.loads(batch["options"])["offline"] is True
    runs = rows(log_db, "SELECT * FROM runs ORDER BY batch_index")
    assert [r["batch_index"] for r in runs] == list(range(7))
    assert {r["batch_id"] for r in runs} == {batch["batch_id"]}
    assert [r["status"] for r in runs] == ["completed"] * 6 + ["invalid_input"]
    assert runs[6]["error"].startswith(f"{inputs}:7: expected an object") and runs[6]["exit_code"] == 1
    assert all(r["final_text"] == "It is 21C in Oslo." and r["finished_at"] for r in runs[:6])
    # Each completed run has its whole timeline: events in order and its tool call.
    first = runs[0]["run_id"]
    kinds = [r["type"] for r in rows(log_db, "SELECT type FROM events WHERE run_id = ? ORDER BY seq", first)]
    assert kinds[0] == "run.started" and kinds[-1] == "run.completed" and "tool_call.completed" in kinds
    assert [tuple(c) for c in rows(log_db, "SELECT name, output FROM tool_calls WHERE run_id = ?", first)] \
        == [("get_temp", "21C in Oslo")]
    # The result lines name their run in the log.
    assert {r["run_id"] for r in results(out)} == {r["run_id"] for r in runs}


def test_log_failed_only_keeps_the_failures_and_counts_everything(workflow: Path, tmp_path: Path,
                                                                   log_db: Path) -> None:
    inputs = write_lines(tmp_path / "in.jsonl", MIXED)
    out = tmp_path / "out.jsonl"
    with ScriptedServer(echo_script) as server:
        done = flowrun("batch", str(workflow), "--inputs", str(inputs), "--out", str(out), "--log-failed-only",
                       "--base-url", server.base_url, cwd=tmp_path)
    assert done.code == 1, done.err
    [batch] = rows(log_db, "SELECT * FROM batches")
    assert (batch["completed"], batch["failed"], batch["logged"], batch["status"]) == (4, 2, "failed", "failed")
    runs = {r["batch_index"]: r for r in rows(log_db, "SELECT * FROM runs")}
    assert sorted(runs) == [1, 3]
    assert runs[1]["status"] == "invalid_input"
    assert runs[3]["status"] == "error" and "model fail" in runs[3]["error"]
    kinds = [r["type"] for r in rows(log_db, "SELECT type FROM events WHERE run_id = ? ORDER BY seq",
                                     runs[3]["run_id"])]
    assert kinds[0] == "run.started" and kinds[-1] == "run.failed"
    by_index = {r["index"]: r for r in results(out)}
    assert "run_id" not in by_index[0] and by_index[3]["run_id"] == runs[3]["run_id"]


def test_no_log_records_nothing(workflow: Path, tmp_path: Path, log_db: Path) -> None:
    inputs = write_lines(tmp_path / "in.jsonl", [{"city": "Oslo"}])
    done = flowrun("batch", str(workflow), "--inputs", str(inputs), "--out", str(tmp_path / "o.jsonl"), "--offline",
                   "--no-log", cwd=tmp_path)
    assert done.code == 0, done.err
    assert not log_db.exists() and "run log" not in done.err
    both = flowrun("batch", str(workflow), "--inputs", str(inputs), "--out", str(tmp_path / "p.jsonl"), "--offline",
                   "--no-log", "--log-failed-only", cwd=tmp_path)
    assert both.code == 2 and "contradict" in both.err


def test_workers_write_their_runs_to_the_parents_batch(workflow: Path, tmp_path: Path, log_db: Path) -> None:
    inputs = write_lines(tmp_path / "in.jsonl", MIXED + [{"city": f"W{i}"} for i in range(4)])
    out = tmp_path / "out.jsonl"
    with ScriptedServer(echo_script) as server:
        done = flowrun("batch", str(workflow), "--inputs", str(inputs), "--out", str(out), "--workers", "2",
                       "--base-url", server.base_url, cwd=tmp_path)
    assert done.code == 1, done.err
    [batch] = rows(log_db, "SELECT * FROM batches")
    assert (batch["total"], batch["completed"], batch["failed"], batch["status"]) == (10, 8, 2, "failed")
    assert json.loads(batch["options"])["workers"] == 2 and batch["pid"] == os.getpid()  # the parent owns the row
    runs = rows(log_db, "SELECT * FROM runs")
    assert sorted(r["batch_index"] for r in runs) == list(range(10))
    assert {r["batch_id"] for r in runs} == {batch["batch_id"]}
    writers = {r["pid"] for r in runs}
    assert len(writers) == 2 and os.getpid() not in writers  # each worker wrote its own share
    assert {r["run_id"] for r in results(out)} == {r["run_id"] for r in runs}


def _start_batch(workflow: Path, inputs: Path, out: Path, server, *extra: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    return subprocess.Popen(
        [sys.executable, "-m", "runner", "batch", str(workflow), "--inputs", str(inputs), "--out", str(out),
         "--concurrency", "2", "--base-url", server.base_url, *extra],
        cwd=out.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_results(proc: subprocess.Popen, out: Path, count: int) -> None:
    deadline = time.monotonic() + 60
    while not (out.exists() and out.read_text().count("\n") >= count):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the batch never wrote a result"
        time.sleep(0.05)


def _stopped_batch(workflow: Path, inputs: Path, out: Path, server, *extra: str, kill: bool = False) -> tuple[int, str]:
    """A batch started as a process and stopped once it has written two results: Ctrl-C, or
    ``kill``. Its exit code and stderr."""
    proc = _start_batch(workflow, inputs, out, server, *extra)
    _wait_for_results(proc, out, 2)
    proc.kill() if kill else proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    return proc.returncode, stderr


@pytest.mark.parametrize("workers", ["1", "2"])
def test_ctrl_c_leaves_the_batch_interrupted_with_every_reported_run(workflow: Path, tmp_path: Path, log_db: Path,
                                                                      workers: str) -> None:
    inputs = write_lines(tmp_path / "in.jsonl", [{"city": f"C{i}"} for i in range(40)])
    out = tmp_path / "out.jsonl"
    with ScriptedServer(echo_script, latency_per_turn=0.2) as server:
        code, stderr = _stopped_batch(workflow, inputs, out, server, "--workers", workers)
    assert code == 130, stderr
    kept = results(out)
    [batch] = rows(log_db, "SELECT * FROM batches")
    assert batch["status"] == "interrupted" and batch["finished_at"]
    assert batch["completed"] + batch["failed"] == len(kept)
    logged = {r["run_id"]: r for r in rows(log_db, "SELECT * FROM runs")}
    assert {r["run_id"] for r in kept} <= set(logged)  # nothing in --out is missing from the log
    assert all(r["status"] != "running" for r in logged.values())
    listed = flowrun("logs", "batches")
    assert "interrupted" in listed.out and f"{len(kept)}/40" in listed.out


def test_resume_goes_on_with_the_same_batch(workflow: Path, tmp_path: Path, log_db: Path) -> None:
    inputs = write_lines(tmp_path / "in.jsonl", [{"city": f"C{i}"} for i in range(20)])
    out = tmp_path / "out.jsonl"
    with ScriptedServer(echo_script, latency_per_turn=0.2) as server:
        code, stderr = _stopped_batch(workflow, inputs, out, server)
        assert code == 130, stderr
        before = len(results(out))
        [first] = rows(log_db, "SELECT * FROM batches")
        resumed = flowrun("batch", str(workflow), "--inputs", str(inputs), "--out", str(out), "--resume",
                          "--base-url", server.base_url, cwd=tmp_path)
    assert resumed.code == 0, resumed.err
    [batch] = rows(log_db, "SELECT * FROM batches")  # one batch, not one per invocation
    assert batch["batch_id"] == first["batch_id"] and batch["started_at"] == first["started_at"]
    assert (batch["status"], batch["total"], batch["skipped"], batch["completed"]) == ("completed", 20, before, 20 - before)
    assert batch["failed"] == 0
    indexes = sorted(r["batch_index"] for r in rows(log_db, "SELECT batch_index FROM runs WHERE batch_id = ?",
                                                    batch["batch_id"]))
    assert indexes == list(range(20))  # the runs of both invocations, under the one batch
    assert {r["batch_id"] for r in rows(log_db, "SELECT batch_id FROM runs")} == {batch["batch_id"]}


def test_a_resumed_batch_still_counts_the_failures_from_before(workflow: Path, tmp_path: Path, log_db: Path) -> None:
    inputs = write_lines(tmp_path / "in.jsonl", [{"city": "C0"}, {"country": "Peru"}])
    out = tmp_path / "out.jsonl"
    with ScriptedServer(echo_script) as server:
        first = flowrun("batch", str(workflow), "--inputs", str(inputs), "--out", str(out),
                        "--base-url", server.base_url, cwd=tmp_path)
        assert first.code == 1, first.err
        write_lines(inputs, [{"city": "C0"}, {"country": "Peru"}, {"city": "C2"}])  # one more input
        again = flowrun("batch", str(workflow), "--inputs", str(inputs), "--out", str(out), "--resume",
                        "--base-url", server.base_url, cwd=tmp_path)
    assert again.code == 1, again.err  # --out still holds input 1's failure
    assert "3 inputs: 2 already done (1 of them failed), 1 completed, 0 failed" in again.err
    [batch] = rows(log_db, "SELECT * FROM batches")
    assert (batch["status"], batch["skipped"], batch["completed"], batch["failed"]) == ("failed", 1, 1, 1)
    [listed] = json.loads(flowrun("logs", "batches", "--json").out)
    assert (listed["done"], listed["left"]) == (3, 0)


def test_a_killed_batch_reads_as_crashed(workflow: Path, tmp_path: Path, log_db: Path) -> None:
    inputs = write_lines(tmp_path / "in.jsonl", [{"city": f"C{i}"} for i in range(40)])
    out = tmp_path / "out.jsonl"
    with ScriptedServer(echo_script, latency_per_turn=0.2) as server:
        _stopped_batch(workflow, inputs, out, server, kill=True)
    [batch] = rows(log_db, "SELECT * FROM batches")
    assert batch["status"] == "running" and batch["finished_at"] is None  # as the dead process left it
    listed = json.loads(flowrun("logs", "batches", "--json").out)
    assert listed[0]["status"] == "crashed" and listed[0]["recorded_status"] == "running"
    # Progress counts are written at most every half second: they may lag, never run ahead.
    assert 1 <= listed[0]["completed"] <= len(results(out))
    logged = {r["run_id"] for r in rows(log_db, "SELECT run_id FROM runs")}
    assert {r["run_id"] for r in results(out)} <= logged  # every reported input has its run in the log


def test_logs_lists_batches_and_one_batchs_runs_failures_first(workflow: Path, tmp_path: Path) -> None:
    inputs = write_lines(tmp_path / "in.jsonl", MIXED)
    with ScriptedServer(echo_script) as server:
        flowrun("batch", str(workflow), "--inputs", str(inputs), "--out", str(tmp_path / "out.jsonl"),
                "--base-url", server.base_url, cwd=tmp_path)
    listed = flowrun("logs", "batches")
    assert listed.code == 0, listed.err
    head, line = listed.out.splitlines()
    assert head.split() == ["ID", "STARTED", "WORKFLOW", "STATUS", "DONE", "FAILED", "DURATION", "LOGGED"]
    batch_id = line.split()[0]
    assert batch_id.startswith("batch_") and "echo.yaml" in line and "failed" in line and "6/6" in line

    shown = flowrun("logs", "--batch", batch_id[:10])
    assert shown.code == 0, shown.err
    lines = shown.out.splitlines()
    assert lines[0].startswith(f"batch {batch_id} echo.yaml: failed, 6/6 done (2 failed)")
    statuses = [ln.split()[4] for ln in lines[2:]]
    assert statuses == ["invalid_input", "error", "completed", "completed", "completed", "completed"]

    as_json = json.loads(flowrun("logs", "--batch", batch_id, "--json").out)
    assert as_json["batch_id"] == batch_id and [r["batch_index"] for r in as_json["runs"]] == [1, 3, 0, 2, 4, 5]
    only = json.loads(flowrun("logs", "--batch", batch_id, "--status", "completed", "--json").out)
    assert [r["batch_index"] for r in only["runs"]] == [0, 2, 4, 5]

    every = json.loads(flowrun("logs", "--json").out)  # the plain list says which batch each run is of
    assert {(r["batch_id"], r["batch_index"]) for r in every} == {(batch_id, i) for i in range(6)}

    missing = flowrun("logs", "--batch", "batch_nope")
    assert missing.code == 2 and "no batch matches 'batch_nope'" in missing.err and "Traceback" not in missing.err


def test_the_view_serves_a_batch_failures_first_with_paging(workflow: Path, tmp_path: Path, log_db: Path) -> None:
    inputs = write_lines(tmp_path / "in.jsonl", MIXED)
    with ScriptedServer(echo_script) as server:
        flowrun("batch", str(workflow), "--inputs", str(inputs), "--out", str(tmp_path / "out.jsonl"),
                "--base-url", server.base_url, cwd=tmp_path)
    view = RunLogView(log_db)
    [listed] = view.batches({})["batches"]
    assert (listed["status"], listed["done"], listed["total"], listed["failed"]) == ("failed", 6, 6, 2)
    batch = view.batch(listed["batch_id"][:12], {"limit": "25"})
    assert batch["batch_id"] == listed["batch_id"] and batch["in_log"] == {"completed": 4, "failed": 2}
    assert [r["batch_index"] for r in batch["runs"]] == [1, 3, 0, 2, 4, 5] and batch["next"] is None
    # Every run of the page opens as an ordinary run, with its batch.
    run = view.run(batch["runs"][1]["run_id"])
    assert run["batch_id"] == listed["batch_id"] and run["batch_index"] == 3
    assert run["events"][-1]["type"] == "run.failed"
    with pytest.raises(NotFound):
        view.batch("batch_nope", {})
    # The same through the server, behind its token.
    server = serve(log_db)
    try:
        status, body = _get(server, f"/{server.token}/api/batch/{listed['batch_id']}?status=error")
        assert status == 200 and [r["batch_index"] for r in body["runs"]] == [3]
        status, body = _get(server, f"/{server.token}/api/batches")
        assert status == 200 and [b["batch_id"] for b in body["batches"]] == [listed["batch_id"]]
        status, body = _get(server, f"/{server.token}/api/batch/batch_nope")
        assert status == 404 and body == {"error": "no batch batch_nope"}
        assert _get(server, f"/api/batch/{listed['batch_id']}")[0] == 403
    finally:
        server.stop()


def _get(server, path: str) -> tuple[int, dict | None]:
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        return response.status, json.loads(body) if body.startswith(b"{") else None
    finally:
        conn.close()


def test_the_view_pages_a_batch_across_failures_and_completions(tmp_path: Path, log_db: Path) -> None:
    from runner.runlog.log import RunLog

    log = RunLog.open(log_db)
    log.start_batch("batch_paging", workflow_path="w.yaml", inputs_path="i", out_path="o", total=60, skipped=0,
                    logged="all", options={})
    for i in range(60):
        status = "error" if i % 20 == 7 else "completed"
        end = {"type": "run.failed", "status": status, "message": "boom", "exit_code": 1} if status == "error" \
            else {"type": "run.completed", "status": "completed", "final_text": f"answer {i}"}
        log.write_run(f"run_{i:03d}", [{"type": "run.started", "run_id": f"run_{i:03d}", "input": f"input {i}"}, end],
                      batch_id="batch_paging", batch_index=i)
    log.finish_batch("batch_paging", status="failed", completed=57, failed=3)
    log.close()
    view = RunLogView(log_db)
    seen = []
    offset = 0
    while offset is not None:
        page = view.batch("batch_paging", {"limit": "25", "offset": str(offset)})
        seen += [r["batch_index"] for r in page["runs"]]
        offset = page["next"]
    assert seen == [7, 27, 47] + [i for i in range(60) if i % 20 != 7]


def test_schema_2_logs_gain_the_batch_columns_and_keep_their_runs(tmp_path: Path) -> None:
    from runner.runlog import db

    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    for step in db.MIGRATIONS[:2]:
        for statement in step:
            conn.execute(statement)
    conn.execute("INSERT INTO runs (run_id, status, started_at) VALUES ('run_old', 'completed', 1.0)")
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    conn.close()
    conn = connect(path, create=False)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
        assert tuple(conn.execute("SELECT run_id, batch_id, batch_index FROM runs").fetchone()) == ("run_old", None, None)
        assert conn.execute("SELECT COUNT(*) FROM batches").fetchone()[0] == 0
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"runs_batch", "batches_started_at"} <= indexes
    finally:
        conn.close()


def test_a_batch_stopped_for_every_input_says_why_in_its_row(workflow: Path, tmp_path: Path, log_db: Path) -> None:
    inputs = write_lines(tmp_path / "in.jsonl", [{"city": "Oslo"}, {"city": "Rome"}])
    done = flowrun("batch", str(workflow), "--inputs", str(inputs), "--out", str(tmp_path / "out.jsonl"),
                   cwd=tmp_path)  # no key, no --base-url
    assert done.code != 0 and "OPENAI_API_KEY" in done.err
    [batch] = rows(log_db, "SELECT * FROM batches")
    assert batch["status"] == "error" and "OPENAI_API_KEY" in batch["error"] and batch["finished_at"]
    assert (batch["total"], batch["completed"], batch["failed"]) == (2, 0, 0)
    assert rows(log_db, "SELECT COUNT(*) FROM runs")[0][0] == 0
