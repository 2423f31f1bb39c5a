"""The run-log filters `flowrun logs` and `flowrun view` share: what each keeps, paging, the CLI."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from support.generated_log import CITIES, WORKFLOWS, generate
from runner.commands.logs import logs_group
from runner.events import RunStarted
from runner.runlog.log import RunLog
from runner.runlog.query import (FilterError, RunFilter, count_runs, decode_cursor, encode_cursor, facets,
                                 list_runs, open_read, parse_when)

NOW = 1_790_000_000.0
RUNS = 600


@pytest.fixture(scope="module")
def log_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("query") / "runs.sqlite3"
    generate(path, RUNS, now=NOW, days=10)
    return path


@pytest.fixture
def conn(log_path):
    c = open_read(log_path)
    yield c
    c.close()


def every_run(conn) -> list[dict]:
    return [dict(r) for r in conn.execute("SELECT run_id, workflow_path, status, api, model, started_at, input,"
                                          " final_text FROM runs ORDER BY started_at DESC, rowid DESC")]


def ids(runs) -> list[str]:
    return [r["run_id"] for r in runs]


def test_no_filter_lists_newest_first(conn):
    page = list_runs(conn, limit=20)
    assert ids(page.runs) == ids(every_run(conn)[:20])
    assert page.next_cursor is not None
    assert {"tool_call_count", "tool_error_count", "last_event_at"} <= set(page.runs[0])


def test_paging_by_cursor_visits_every_run_once(conn):
    seen, cursor = [], None
    while True:
        page = list_runs(conn, limit=100, before=cursor)
        seen += ids(page.runs)
        if page.next_cursor is None:
            break
        cursor = decode_cursor(encode_cursor(page.next_cursor))
    assert seen == ids(every_run(conn))
    assert count_runs(conn) == RUNS


@pytest.mark.parametrize("field, value", [("status", "failed"), ("api", "chat"), ("model", "qwen3")])
def test_equality_filters(conn, field, value):
    expected = [r for r in every_run(conn) if r[field] == value]
    assert expected, "the generated log should hold such runs"
    got = list_runs(conn, RunFilter(**{field: value}), limit=1000).runs
    assert ids(got) == ids(expected)
    assert count_runs(conn, RunFilter(**{field: value})) == len(expected)


@pytest.mark.parametrize("name", ["weather", "weather.yaml", "workflows/weather.yaml"])
def test_workflow_by_name_file_name_or_path(conn, name):
    got = list_runs(conn, RunFilter(workflow=name), limit=1000).runs
    assert got and {r["workflow_path"] for r in got} == {"workflows/weather.yaml"}
    assert len(got) == sum(r["workflow_path"] == "workflows/weather.yaml" for r in every_run(conn))


def test_unknown_workflow_matches_nothing(conn):
    assert list_runs(conn, RunFilter(workflow="nope")).runs == []


def test_since_and_until(conn):
    since, until = NOW - 3 * 86400, NOW - 1 * 86400
    got = list_runs(conn, RunFilter(since=since, until=until), limit=1000).runs
    expected = [r for r in every_run(conn) if since <= r["started_at"] < until]
    assert ids(got) == ids(expected) and 0 < len(got) < RUNS


def test_search_input_and_answer_case_insensitive(conn):
    city = CITIES[3]
    expected = [r for r in every_run(conn)
                if city.lower() in (r["input"] or "").lower() or city.lower() in (r["final_text"] or "").lower()]
    got = list_runs(conn, RunFilter(search=city.upper()), limit=1000).runs
    assert ids(got) == ids(expected) and got


def test_search_wildcards_are_literal(conn):
    # As LIKE patterns these would match every input ("What's the weather ... today?").
    assert list_runs(conn, RunFilter(search="W%y")).runs == []
    assert list_runs(conn, RunFilter(search="Wh_t")).runs == []
    assert list_runs(conn, RunFilter(search="100%")).runs  # answers say "rain chance 100%."


def test_filters_combine(conn):
    f = RunFilter(status="completed", api="responses", workflow="weather", search="Paris")
    got = list_runs(conn, f, limit=1000).runs
    for r in got:
        assert r["status"] == "completed" and r["api"] == "responses"
        assert r["workflow_path"] == "workflows/weather.yaml"
        assert "paris" in (r["input"] + (r["final_text"] or "")).lower()
    assert len(got) == count_runs(conn, f)


def test_facets(conn):
    f = facets(conn)
    assert f["workflow"] == sorted(WORKFLOWS)
    assert set(f["api"]) == {"responses", "chat", "assistants"}
    assert "failed" in f["status"] and "crashed" in f["status"]


def test_crashed_and_running_are_told_apart(tmp_path):
    path = tmp_path / "runs.sqlite3"
    with RunLog.open(path) as log:
        for run_id in ("live", "dead"):
            log.start_run(run_id=run_id, workflow_path="w.yaml", workflow_sha256="x", api="chat", model="m",
                          input="hi", offline=False)
            log.record(run_id, RunStarted(run_id, "w.yaml", "chat", "m", "hi"))
    conn = open_read(path)
    # "dead" was recorded by a process that no longer exists (pid 1 is never ours; a token that
    # cannot match makes it a different process).
    import sqlite3
    w = sqlite3.connect(path)
    w.execute("UPDATE runs SET pid = ?, pid_start = 'not-this-process' WHERE run_id = 'dead'", (os.getpid(),))
    w.commit()
    w.close()
    assert ids(list_runs(conn, RunFilter(status="running")).runs) == ["live"]
    assert ids(list_runs(conn, RunFilter(status="crashed")).runs) == ["dead"]
    assert count_runs(conn, RunFilter(status="crashed")) == 1


def test_parse_when():
    assert parse_when("1d", now=NOW) == NOW - 86400
    assert parse_when("30m", now=NOW) == NOW - 1800
    assert parse_when("2w", now=NOW) == NOW - 14 * 86400
    assert parse_when("2026-12-01") == time.mktime((2026, 12, 1, 0, 0, 0, 0, 0, -1))
    with pytest.raises(FilterError) as info:
        parse_when("yesterday")
    assert "30m, 3h, 1d, 2w" in str(info.value)


def test_bad_filters_are_usage_errors():
    with pytest.raises(FilterError):
        RunFilter(status="weird")
    with pytest.raises(FilterError):
        RunFilter(search="x" * 1000)
    with pytest.raises(FilterError):
        decode_cursor("nonsense")


# -- the command line ------------------------------------------------------------------------------

def invoke(*args):
    return CliRunner().invoke(logs_group, list(args), catch_exceptions=False)


def test_cli_filters(log_path, conn):
    result = invoke("--log-db", str(log_path), "--status", "failed", "--workflow", "weather", "--json",
                    "--limit", "1000")
    assert result.exit_code == 0, result.output
    runs = json.loads(result.output)
    expected = [r for r in every_run(conn) if r["status"] == "failed" and r["workflow_path"] == "workflows/weather.yaml"]
    assert ids(runs) == ids(expected) and runs
    assert all(len(r["input"]) == len(e["input"]) for r, e in zip(runs, expected))  # whole texts, not cut


def test_cli_search_and_since_table(log_path):
    result = invoke("--log-db", str(log_path), "--search", "(request 599)", "--since", "2026-01-01")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("ID") and len(lines) == 2


def test_cli_no_match_says_so(log_path):
    result = invoke("--log-db", str(log_path), "--search", "no such text anywhere")
    assert result.exit_code == 0 and result.output.strip() == "No run matches these filters."


def test_cli_bad_since_exits_2(log_path):
    result = CliRunner().invoke(logs_group, ["--log-db", str(log_path), "--since", "yesterday"])
    assert result.exit_code == 2
    assert "cannot read 'yesterday' as a time" in result.output
