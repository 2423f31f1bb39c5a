"""``flowrun logs`` lists runs and ``flowrun logs show`` replays one, from the run log alone."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from runner.commands.logs import logs_group
from runner.events import (
    RunCompleted,
    RunFailed,
    RunStarted,
    TextDelta,
    ToolCallCompleted,
    ToolCallRequested,
    TurnCompleted,
    TurnStarted,
)
from runner.runlog.log import RunLog
from runner.terminal_text import show_controls
from runner.runlog.transcript import render_transcript

ROOT = Path(__file__).resolve().parents[1]
DONE = "5e1f0c2a-done-0000"
FAILED = "9b7d3e11f-fail"
CRASHED = "9b7d3e11c-crash"


def _start(log: RunLog, run_id: str, text: str) -> None:
    log.start_run(run_id=run_id, workflow_path="workflows/weather.yaml", workflow_sha256="ab", api="responses",
                  model="gpt-test", input=text, offline=False)
    log.record(run_id, RunStarted(run_id=run_id, workflow="workflows/weather.yaml", api="responses",
                                  model="gpt-test", input=text))


@pytest.fixture
def db(tmp_path) -> Path:
    path = tmp_path / "runs.sqlite3"
    with RunLog.open(path) as log:
        _start(log, DONE, "Weather in Paris and Oslo?")
        log.record(DONE, TurnStarted(turn=1))
        log.record(DONE, ToolCallRequested(call_id="c1", name="get_weather", arguments='{"city": "Paris"}'))
        log.record(DONE, ToolCallRequested(call_id="c2", name="get_weather", arguments='{"city": "Osl"}'))
        log.record(DONE, ToolCallCompleted(call_id="c2", name="get_weather", output="unknown city: Osl",
                                           is_error=True, duration_ms=4))
        log.record(DONE, ToolCallCompleted(call_id="c1", name="get_weather", output='{"temp": 21}\x1b[2J\rEVIL',
                                           is_error=False, duration_ms=12))
        log.record(DONE, TurnCompleted(turn=1, status="tool_calls", usage={"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}))
        log.record(DONE, TurnStarted(turn=2))
        for piece in ("Paris: 21 °C.", "\nOslo: unknown."):
            log.record(DONE, TextDelta(text=piece))
        usage = {"input_tokens": 30, "output_tokens": 12, "total_tokens": 42}
        log.record(DONE, TurnCompleted(turn=2, status="completed", usage=usage))
        log.record(DONE, RunCompleted(run_id=DONE, status="completed", final_text="Paris: 21 °C.\nOslo: unknown.",
                                      turns=2, tool_calls=2, usage=usage, duration_ms=50))
        log.finish_run(DONE, status="completed", final_text="Paris: 21 °C.\nOslo: unknown.", usage=usage,
                       exit_code=0, error=None)

        _start(log, FAILED, "Loop forever")
        log.record(FAILED, TurnStarted(turn=1))
        log.record(FAILED, RunFailed(run_id=FAILED, status="max_turns", message="max turns (1) exceeded", exit_code=1,
                                     final_text="", turns=1, tool_calls=0, usage=None, duration_ms=5))
        log.finish_run(FAILED, status="max_turns", final_text="", usage=None, exit_code=1, error="max turns (1) exceeded")

        _start(log, CRASHED, "Tell me a story")
        log.record(CRASHED, TurnStarted(turn=1))
        log.record(CRASHED, TextDelta(text="Once upon a"))
        log.close()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    conn = sqlite3.connect(path)  # the crashed run's recorder: a process that has exited
    conn.execute("UPDATE runs SET pid=?, pid_start=NULL WHERE run_id=?", (int(gone.stdout), CRASHED))
    conn.execute("UPDATE runs SET started_at = started_at - 100 WHERE run_id=?", (DONE,))  # the oldest
    conn.commit()
    conn.close()
    return path


def invoke(*args: str, env: dict | None = None):
    return CliRunner().invoke(logs_group, list(args), env=env)


def test_lists_recent_runs_newest_first(db):
    result = invoke("--log-db", str(db))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["ID", "STARTED", "WORKFLOW", "STATUS", "DURATION", "ANSWER"]
    ids = [line.split()[0] for line in lines[1:]]
    assert ids == [CRASHED[:9], FAILED[:9], DONE[:9]]  # 8 characters would not tell the 9b7d3e runs apart
    assert "crashed" in lines[1] and "max_turns" in lines[2] and "completed" in lines[3]
    assert "weather.yaml" in lines[3] and lines[3].rstrip().endswith("Paris: 21 °C.")
    assert "error: max turns (1) exceeded" in lines[2]


def test_limit_and_json(db):
    result = invoke("--log-db", str(db), "--limit", "2", "--json")
    assert result.exit_code == 0, result.output
    runs = json.loads(result.output)
    assert [r["run_id"] for r in runs] == [CRASHED, FAILED]
    assert [r["status"] for r in runs] == ["crashed", "max_turns"]
    assert runs[1]["exit_code"] == 1 and runs[1]["error"] == "max turns (1) exceeded"


def test_show_replays_a_run_by_prefix(db):
    result = invoke("show", "5e1f", "--log-db", str(db))
    assert result.exit_code == 0, result.output
    text = result.output
    for expected in (f"run       {DONE}", "workflow  workflows/weather.yaml", "api       responses · model gpt-test",
                     "status    completed", "Weather in Paris and Oslo?", "── turn 1 ──", "── turn 2 ──",
                     '→ get_weather({"city": "Paris"})', "✗ get_weather: error: unknown city: Osl  (4 ms)",
                     "← get_weather [c1]: {\"temp\": 21}", "Paris: 21 °C.\n  Oslo: unknown.",
                     "── completed · 2 turns · 2 tool calls · 42 tokens (30 in / 12 out)"):
        assert expected in text, expected
    assert text.index("→ get_weather") < text.index("✗ get_weather") < text.index("── turn 2 ──") < text.index("Oslo: unknown")
    tool_lines = [line for line in text.splitlines() if line[:2] in ("→ ", "← ", "✗ ")]
    assert len(tool_lines) == 4 and all(line[2:].startswith("get_weather") for line in tool_lines), tool_lines


def test_show_escapes_control_characters(db):
    text = invoke("show", DONE, "--log-db", str(db)).output
    assert "\x1b" not in text and "\r" not in text
    assert "\\x1b[2J\\rEVIL" in text
    assert show_controls("a\u202eb\x00c\x9b") == "a\\u202eb\\0c\\x9b"


def test_show_json_has_events_and_tool_calls(db):
    result = invoke("--log-db", str(db), "show", FAILED, "--json")  # group-level --log-db works too
    assert result.exit_code == 0, result.output
    run = json.loads(result.output)
    assert run["run_id"] == FAILED and run["status"] == "max_turns"
    assert [e["type"] for e in run["events"]] == ["run.started", "turn.started", "run.failed"]
    assert [e["seq"] for e in run["events"]] == [0, 1, 2]
    assert run["tool_calls"] == []


def test_show_failed_and_crashed_runs(db):
    failed = invoke("show", FAILED, "--log-db", str(db)).output
    assert "✗ run max_turns: max turns (1) exceeded" in failed
    assert "── max_turns · 1 turn · 0 tool calls" in failed and "exit 1" in failed
    crashed = invoke("show", "9b7d3e11c", "--log-db", str(db)).output
    assert "status    crashed" in crashed and "ended without finishing the run" in crashed
    assert "Once upon a" in crashed and "── crashed · 1 turn · 0 tool calls" in crashed


@pytest.mark.parametrize("prefix, message", [("nope", "no run matches 'nope'"), ("9b7d3e11", "matches more than one run")])
def test_show_unknown_or_ambiguous_id_exits_2(db, prefix, message):
    result = invoke("show", prefix, "--log-db", str(db))
    assert result.exit_code == 2
    assert message in result.stderr and "hint:" in result.stderr


def test_no_log_yet(tmp_path):
    missing = tmp_path / "none" / "runs.sqlite3"
    listed = invoke("--log-db", str(missing))
    assert listed.exit_code == 0 and "No runs recorded yet" in listed.output
    assert json.loads(invoke("--log-db", str(missing), "--json").output) == []
    shown = invoke("show", "abc", "--log-db", str(missing))
    assert shown.exit_code == 2 and "no run log" in shown.stderr
    assert not missing.exists()  # reading never creates a log


def test_unreadable_log_is_an_error(tmp_path):
    bad = tmp_path / "runs.sqlite3"
    bad.write_bytes(b"not a database at all" * 50)
    result = invoke("--log-db", str(bad))
    assert result.exit_code == 1 and "cannot read the run log" in result.stderr


def test_env_var_chooses_the_log(db):
    result = invoke("--json", env={"FLOWRUN_LOG_DB": str(db)})
    assert len(json.loads(result.output)) == 3


def test_transcript_falls_back_to_final_text_without_deltas():
    run = {"run_id": "r", "status": "completed", "input": "hi", "final_text": "Hello there",
           "events": [{"type": "turn.started", "turn": 1}], "tool_calls": [], "usage": None}
    text = render_transcript(run)
    assert "assistant:\n  Hello there" in text and "── completed · 1 turn · 0 tool calls" in text
