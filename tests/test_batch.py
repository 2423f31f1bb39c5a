"""``flowrun batch``: inputs and results files, ordering, resume, failures that stay local, and
429 back-off, against the scripted server on 127.0.0.1 through the real provider and SDK."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.batch import WORKFLOW, echo_script
from support.cli import flowrun
from runner.batch.rate_gate import RateGate
from runner.batch.files import ResultWriter, parse_input, read_done, read_inputs, repair_tail
from runner.cli import main
from runner.commands.batch import ProgressBar
from runner.scripted import Fault, ScriptedServer, TurnContext
from runner.workflow.model import ScriptedCall, ScriptedTurn

@pytest.fixture
def workflow(tmp_path: Path) -> Path:
    path = tmp_path / "echo.yaml"
    path.write_text(WORKFLOW)
    return path


def write_lines(path: Path, lines: list) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(["batch", *map(str, args)])
    captured = capsys.readouterr()
    return done.value.code, captured.out, captured.err


def results(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# --- the inputs file ----------------------------------------------------------------------------


def test_input_lines_in_every_accepted_form() -> None:
    full = parse_input('{"message": "Hi", "vars": {"city": "Rome", "n": 3, "ok": true}, "id": "a1"}', 0, 1)
    assert (full.message, full.vars, full.id, full.problem) == ("Hi", {"city": "Rome", "n": "3", "ok": "true"}, "a1", None)
    bare = parse_input('{"city": "Oslo"}', 1, 2)
    assert (bare.message, bare.vars) == (None, {"city": "Oslo"})
    text = parse_input('"What now?"', 2, 3)
    assert (text.message, text.vars) == ("What now?", {})


@pytest.mark.parametrize(
    "line, says",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "got an array"),
        ('{"message": 5}', '"message" must be a string'),
        ('{"vars": [1]}', '"vars" must be an object'),
    ],
)
def test_unreadable_input_lines_name_their_line(line: str, says: str) -> None:
    item = parse_input(line, 4, 7, "in.jsonl")
    assert item.problem is not None and item.problem.startswith("in.jsonl:7: ") and says in item.problem


def test_blank_lines_are_not_inputs(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"city": "A"}\n\n   \n{"city": "B"}\n')
    items = read_inputs(path)
    assert [(i.index, i.line, i.vars["city"]) for i in items] == [(0, 1, "A"), (1, 4, "B")]


# --- the results file ---------------------------------------------------------------------------


def test_a_torn_last_line_is_cut_and_later_lines_win(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text('{"index": 0, "status": "failed"}\n{"index": 1, "status": "completed"}\n{"index": 0, "status": "comp')
    assert repair_tail(out) == len('{"index": 0, "status": "comp')
    assert read_done(out) == {0: "failed", 1: "completed"}
    writer = ResultWriter(out, append=True)
    writer.write({"index": 0, "status": "completed"})
    writer.close()
    assert read_done(out) == {0: "completed", 1: "completed"}
    assert out.read_text().endswith('"completed"}\n')


# --- end to end ---------------------------------------------------------------------------------


def test_every_input_gets_one_result_with_its_index(workflow: Path, tmp_path: Path, capsys) -> None:
    cities = [f"City{i}" for i in range(24)]
    lines = [{"vars": {"city": c}} if i % 3 else {"city": c} for i, c in enumerate(cities)]
    lines[5] = {"message": "Weather in Lima?", "id": "lima"}
    inputs = write_lines(tmp_path / "in.jsonl", lines)
    out = tmp_path / "out.jsonl"
    with ScriptedServer(echo_script, latency_per_turn=0.01) as server:
        code, stdout, stderr = run_cli(capsys, workflow, "--inputs", inputs, "--out", out, "--concurrency", 6,
                                       "--base-url", server.base_url)
    assert code == 0, stderr
    assert stdout == ""
    assert re.fullmatch(r"24 inputs: 24 completed, 0 failed in \d+\.\d s\n", stderr)
    got = results(out)
    assert sorted(r["index"] for r in got) == list(range(24))
    for r in got:
        city = "Lima" if r["index"] == 5 else cities[r["index"]]
        assert r["status"] == "completed" and r["error"] is None
        assert r["line"] == r["index"] + 1
        assert r["final_text"] == f"[Weather in {city}?] 21C in {city}"
        assert r["tool_calls"] == [{"name": "get_temp", "arguments": json.dumps({"city": city}),
                                    "output": f"21C in {city}", "is_error": False}]
        assert r["usage"]["total_tokens"] > 0 and r["duration_ms"] > 0
    assert next(r for r in got if r["index"] == 5)["id"] == "lima"


def test_failing_inputs_do_not_stop_the_others(workflow: Path, tmp_path: Path, capsys) -> None:
    lines = [{"city": "Oslo"}, "{broken", {"country": "Peru"}, {"message": "explode now"}, {"city": "Bern"}]
    inputs = write_lines(tmp_path / "in.jsonl", lines)
    out = tmp_path / "out.jsonl"
    with ScriptedServer(echo_script) as server:
        code, _, stderr = run_cli(capsys, workflow, "--inputs", inputs, "--out", out, "--concurrency", 2,
                                  "--base-url", server.base_url)
    assert code == 1
    by_index = {r["index"]: r for r in results(out)}
    assert sorted(by_index) == [0, 1, 2, 3, 4]
    assert by_index[0]["status"] == by_index[4]["status"] == "completed"
    assert by_index[1]["status"] == "invalid_input" and by_index[1]["error"].startswith(f"{inputs}:2: not valid JSON")
    assert by_index[2]["status"] == "invalid_input" and "country" in by_index[2]["error"]
    assert by_index[2]["error"].startswith(f"{inputs}:3: ")
    assert by_index[3]["status"] == "error" and "model fail" in by_index[3]["error"]
    assert "5 inputs: 2 completed, 3 failed" in stderr
    assert "first failure: input " in stderr


def test_resume_runs_only_what_is_missing(workflow: Path, tmp_path: Path, capsys) -> None:
    inputs = write_lines(tmp_path / "in.jsonl", [{"city": f"C{i}"} for i in range(6)])
    out = tmp_path / "out.jsonl"
    earlier = [{"index": 0, "status": "completed"}, {"index": 2, "status": "failed"}, {"index": 3, "status": "completed"}]
    out.write_text("".join(json.dumps(r) + "\n" for r in earlier) + '{"index": 4, "sta')  # a crash mid-line
    with ScriptedServer(echo_script) as server:
        code, _, stderr = run_cli(capsys, workflow, "--inputs", inputs, "--out", out, "--resume",
                                  "--base-url", server.base_url)
        first_turns = [r for r in server.requests if r.turn_index == 0]
    assert code == 1, stderr  # input 2 failed before and was not run again: the results hold a failure
    assert "6 inputs: 3 already done (1 of them failed), 3 completed, 0 failed" in stderr
    got = results(out)  # every line parses: the torn one is gone
    assert [r["index"] for r in got[:3]] == [0, 2, 3]
    assert sorted(r["index"] for r in got[3:]) == [1, 4, 5]
    assert sorted(r.body["messages"][-1]["content"] for r in first_turns) == [f"Weather in C{i}?" for i in (1, 4, 5)]

    with ScriptedServer(echo_script) as server:  # --retry-failed: the failed input 2 runs again
        code, _, stderr = run_cli(capsys, workflow, "--inputs", inputs, "--out", out, "--resume", "--retry-failed",
                                  "--base-url", server.base_url)
    assert code == 0 and "5 already done, 1 completed" in stderr
    assert read_done(out)[2] == "completed"


def test_an_existing_results_file_is_not_overwritten(workflow: Path, tmp_path: Path, capsys) -> None:
    inputs = write_lines(tmp_path / "in.jsonl", [{"city": "Oslo"}])
    out = tmp_path / "out.jsonl"
    out.write_text('{"index": 0, "status": "completed"}\n')
    code, _, stderr = run_cli(capsys, workflow, "--inputs", inputs, "--out", out, "--base-url", "http://127.0.0.1:9/v1")
    assert code == 2 and "already holds results" in stderr and "--resume" in stderr
    assert out.read_text() == '{"index": 0, "status": "completed"}\n'


def test_no_key_stops_the_batch_before_any_input_runs(workflow: Path, tmp_path: Path, capsys) -> None:
    inputs = write_lines(tmp_path / "in.jsonl", [{"city": "Oslo"}, {"city": "Rome"}])
    out = tmp_path / "out.jsonl"
    code, _, stderr = run_cli(capsys, workflow, "--inputs", inputs, "--out", out)
    assert code == 3 and "OPENAI_API_KEY" in stderr
    assert not out.exists() or out.read_text() == ""


def test_a_429_pauses_the_whole_batch_for_its_retry_after(workflow: Path, tmp_path: Path, capsys) -> None:
    inputs = write_lines(tmp_path / "in.jsonl", [{"city": f"C{i}"} for i in range(8)])
    out = tmp_path / "out.jsonl"
    fault = Fault(kind="http_error", status=429, headers={"retry-after": "1"}, turn=0, times=1, shared=True)
    # the 429 comes at once; the three runs started beside it get their turns 0.4 s later and
    # would send their tool outputs inside the pause if the gate let them
    with ScriptedServer(echo_script, faults=[fault], latency_per_turn=0.4) as server:
        code, _, stderr = run_cli(capsys, workflow, "--inputs", inputs, "--out", out, "--concurrency", 4,
                                  "--base-url", server.base_url)
        times = [r.time for r in server.requests]
    assert code == 0, stderr
    assert "8 inputs: 8 completed, 0 failed" in stderr and "(1 rate-limit answers waited out)" in stderr
    assert all(r["status"] == "completed" for r in results(out))
    limited_at = times[0]  # the first request of the batch got the 429
    assert [t for t in times if limited_at + 0.2 < t < limited_at + 0.95] == []  # nobody went in meanwhile
    assert len([t for t in times if t >= limited_at + 0.95]) >= 8  # then everything did


def test_inputs_rate_limited_past_their_retries_are_queued_again(workflow: Path, tmp_path: Path, capsys) -> None:
    inputs = write_lines(tmp_path / "in.jsonl", [{"city": "Oslo"}, {"city": "Rome"}])
    out = tmp_path / "out.jsonl"
    # per conversation: more 429s in a row than one run's retries allow (1 + 4 attempts)
    fault = Fault(kind="http_error", status=429, headers={"retry-after-ms": "10"}, turn=0, times=7)
    with ScriptedServer(echo_script, faults=[fault]) as server:
        code, _, stderr = run_cli(capsys, workflow, "--inputs", inputs, "--out", out, "--base-url", server.base_url)
    assert code == 0, stderr
    assert "2 inputs: 2 completed, 0 failed" in stderr and "(14 rate-limit answers waited out)" in stderr
    assert sorted(r["index"] for r in results(out)) == [0, 1]


def test_offline_batch_scripts_the_model_from_the_first_test_case(workflow: Path, tmp_path: Path) -> None:
    inputs = write_lines(tmp_path / "in.jsonl", [{"city": "Oslo"}, {"city": "Rome"}, "[]"])
    out = tmp_path / "out.jsonl"
    done = flowrun("batch", str(workflow), "--inputs", str(inputs), "--out", str(out), "--offline", cwd=tmp_path)
    assert done.code == 1, done.err
    assert done.out == ""
    said = done.err.strip().splitlines()
    assert said[0].startswith("flowrun: OFFLINE: the model's side of every run is scripted from test case 'demo'")
    assert said[-1].startswith("3 inputs: 2 completed, 1 failed in ")
    texts = sorted(r["final_text"] for r in results(out) if r["status"] == "completed")
    assert texts == ["It is 21C in Oslo.", "It is 21C in Oslo."]


# --- worker processes (--workers) ---------------------------------------------------------------


def comparable(path: Path) -> list[dict]:
    """Result lines in input order, without what differs from run to run: the duration, the run's
    id in the run log and the server's request ids."""
    def same(r: dict) -> dict:
        error = re.sub(r"req_[0-9a-f]+", "req_*", r["error"]) if r["error"] else r["error"]
        return {**{k: v for k, v in r.items() if k not in ("duration_ms", "run_id")}, "error": error}

    return sorted(map(same, results(path)), key=lambda r: r["index"])


def test_workers_1_and_2_write_the_same_result_lines_as_one_process(workflow: Path, tmp_path: Path, capsys) -> None:
    lines = [{"city": f"City{i}"} for i in range(9)] + ["{broken", {"message": "explode now", "id": "x"}]
    inputs = write_lines(tmp_path / "in.jsonl", lines)
    outs = {}
    with ScriptedServer(echo_script) as server:
        for workers in (None, "1", "2"):
            out = outs[workers] = tmp_path / f"out-{workers}.jsonl"
            extra = ("--workers", workers) if workers else ()
            code, stdout, stderr = run_cli(capsys, workflow, "--inputs", inputs, "--out", out, "--concurrency", 4,
                                           "--base-url", server.base_url, *extra)
            assert code == 1, stderr
            assert stdout == ""
            said = stderr.strip().splitlines()
            assert re.fullmatch(r"11 inputs: 9 completed, 2 failed in \d+\.\d s", said[-1])
            assert said[-2].startswith("first failure: input ")
    today = comparable(outs[None])
    assert [r["index"] for r in today] == list(range(11))
    assert comparable(outs["1"]) == today
    assert comparable(outs["2"]) == today
    assert today[3]["final_text"] == "[Weather in City3?] 21C in City3"
    assert today[9]["status"] == "invalid_input" and today[10]["status"] == "error" and today[10]["id"] == "x"


def test_resume_across_workers_runs_only_what_is_missing(workflow: Path, tmp_path: Path, capsys) -> None:
    inputs = write_lines(tmp_path / "in.jsonl", [{"city": f"C{i}"} for i in range(8)])
    out = tmp_path / "out.jsonl"
    earlier = [{"index": 1, "status": "completed"}, {"index": 4, "status": "failed"}, {"index": 6, "status": "completed"}]
    out.write_text("".join(json.dumps(r) + "\n" for r in earlier) + '{"index": 2, "sta')  # a crash mid-line
    with ScriptedServer(echo_script) as server:
        code, _, stderr = run_cli(capsys, workflow, "--inputs", inputs, "--out", out, "--resume", "--workers", 2,
                                  "--base-url", server.base_url)
        first_turns = [r for r in server.requests if r.turn_index == 0]
    assert code == 1, stderr
    assert "8 inputs: 3 already done (1 of them failed), 5 completed, 0 failed" in stderr
    got = results(out)  # every line parses: the torn one is gone
    assert [r["index"] for r in got[:3]] == [1, 4, 6]
    assert sorted(r["index"] for r in got[3:]) == [0, 2, 3, 5, 7]
    assert sorted(r.body["messages"][-1]["content"] for r in first_turns) == [
        f"Weather in C{i}?" for i in (0, 2, 3, 5, 7)]

    with ScriptedServer(echo_script) as server:  # --retry-failed: the failed input 4 runs again
        code, _, stderr = run_cli(capsys, workflow, "--inputs", inputs, "--out", out, "--resume", "--retry-failed",
                                  "--workers", 2, "--base-url", server.base_url)
    assert code == 0 and "7 already done, 1 completed" in stderr
    assert read_done(out) == {i: "completed" for i in range(8)}


def test_a_batch_wide_error_in_the_workers_stops_the_batch_with_its_exit_code(workflow: Path, tmp_path: Path,
                                                                               capsys) -> None:
    inputs = write_lines(tmp_path / "in.jsonl", [{"city": "Oslo"}, {"city": "Rome"}, {"city": "Bern"}])
    out = tmp_path / "out.jsonl"
    code, _, stderr = run_cli(capsys, workflow, "--inputs", inputs, "--out", out, "--workers", 2)
    assert code == 3 and "OPENAI_API_KEY" in stderr and "Traceback" not in stderr
    assert not out.exists() or out.read_text() == ""


def test_offline_batch_with_two_workers_says_its_banner_once(workflow: Path, tmp_path: Path) -> None:
    inputs = write_lines(tmp_path / "in.jsonl", [{"city": "Oslo"}, {"city": "Rome"}, "[]", {"city": "Bern"}])
    out = tmp_path / "out.jsonl"
    done = flowrun("batch", str(workflow), "--inputs", str(inputs), "--out", str(out), "--offline", "--workers", "2",
                   cwd=tmp_path)
    assert done.code == 1, done.err
    said = done.err.strip().splitlines()
    assert sum("OFFLINE" in line for line in said) == 1
    assert said[-1].startswith("4 inputs: 3 completed, 1 failed in ")
    assert sorted(r["index"] for r in results(out)) == [0, 1, 2, 3]
    assert {r["final_text"] for r in results(out) if r["status"] == "completed"} == {"It is 21C in Oslo."}


def test_ctrl_c_stops_every_worker_and_keeps_what_finished(workflow: Path, tmp_path: Path) -> None:
    inputs = write_lines(tmp_path / "in.jsonl", [{"city": f"C{i}"} for i in range(40)])
    out = tmp_path / "out.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    with ScriptedServer(echo_script, latency_per_turn=0.2) as server:
        proc = subprocess.Popen(
            [sys.executable, "-m", "runner", "batch", str(workflow), "--inputs", str(inputs), "--out", str(out),
             "--workers", "2", "--concurrency", "2", "--base-url", server.base_url],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        deadline = time.monotonic() + 60
        while not (out.exists() and out.read_text().count("\n") >= 2):  # some inputs finished
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the batch never wrote a result"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 130, stderr
        assert "interrupted with" in stderr and "--resume" in stderr and "Traceback" not in stderr
        kept = results(out)  # every line is whole
        assert 2 <= len(kept) < 40 and len({r["index"] for r in kept}) == len(kept)

        code = subprocess.run(
            [sys.executable, "-m", "runner", "batch", str(workflow), "--inputs", str(inputs), "--out", str(out),
             "--workers", "2", "--resume", "--base-url", server.base_url],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
        )
    assert code.returncode == 0, code.stderr
    assert f"40 inputs: {len(kept)} already done, {40 - len(kept)} completed, 0 failed" in code.stderr
    assert sorted(r["index"] for r in results(out)) == list(range(40))


def test_worker_count_follows_the_cores_for_big_batches_only() -> None:
    from runner.batch.processes import choose_workers, split

    assert choose_workers(None, 1, 8, cpus=4) == 1  # one input
    assert choose_workers(None, 50, 8, cpus=4) == 1  # a tiny batch: start-up would cost more
    assert choose_workers(None, 1000, 100, cpus=4) == 4
    assert choose_workers(None, 1000, 3, cpus=4) == 3  # each worker needs a share of --concurrency
    assert choose_workers(2, 1, 8) == 1 and choose_workers(8, 100, 8, cpus=1) == 8
    assert split(10, 3) == [4, 3, 3] and sum(split(100, 7)) == 100


# --- pieces -------------------------------------------------------------------------------------


def test_the_gate_pauses_halves_and_grows_back() -> None:
    now = [100.0]
    gate = RateGate(8, clock=lambda: now[0], rand=lambda: 0.0)

    async def scenario() -> None:
        for _ in range(3):
            await gate.acquire()
        gate.rate_limited(2.0)
        gate.rate_limited(0.5)  # the same burst: the limit is cut once, the longer pause stands
        assert (gate.limit, gate.pause_left(), gate.hits) == (4, 2.0, 2)
        gate.rate_limited(None)
        assert gate.limit == 4
        for _ in range(3):
            await gate.release()  # still paused: no growth
        assert gate.limit == 4
        now[0] += 2.5
        assert gate.pause_left() == 0.0
        await gate.acquire()
        await gate.release()
        assert gate.limit == 5
        gate.rate_limited(1.0)  # a new window cuts again
        assert gate.limit == 2

    asyncio.run(scenario())


def test_the_gate_holds_new_runs_beyond_the_limit() -> None:
    gate = RateGate(2)

    async def scenario() -> list[str]:
        order: list[str] = []
        await gate.acquire()
        await gate.acquire()

        async def third() -> None:
            await gate.acquire()
            order.append("third started")

        task = asyncio.ensure_future(third())
        await asyncio.sleep(0.01)
        order.append("first done")
        await gate.release()
        await task
        return order

    assert asyncio.run(scenario()) == ["first done", "third started"]


class _Tty:
    def __init__(self) -> None:
        self.text = ""

    def write(self, s: str) -> None:
        self.text += s

    def flush(self) -> None:
        pass


def test_the_progress_bar_rewrites_one_line() -> None:
    from runner.batch.scheduler import BatchSummary

    err = _Tty()
    bar = ProgressBar(err, total=4)
    bar({}, BatchSummary(total=4, completed=4))
    bar.clear()
    assert err.text.startswith("\r[########################] 4/4  0 failed") and err.text.endswith("\r\x1b[K")
    assert "\n" not in err.text


def test_the_progress_rate_counts_from_the_start_of_the_batch() -> None:
    from runner.batch.scheduler import BatchSummary

    err = _Tty()
    bar = ProgressBar(err, total=4, started=10.0, clock=lambda: 12.0)  # first result 2 s after the start
    bar({}, BatchSummary(total=4, completed=1))
    assert err.text == "\r[######..................] 1/4  0 failed  0.5/s  ~6 s left\x1b[K"
