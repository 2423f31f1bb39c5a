"""Every run ends in one terminal event that every sink sees, however it ends: an error before
the first turn, a bug of ours, Ctrl-C at the --chat prompt. The run log row is finished from that
event (never left "running"), the error is printed once, masked, with the run's exit code."""

from __future__ import annotations

import json
from io import StringIO

import pytest

from support.cli import execute
from support.paths import REPO
from runner.errors import ProviderError
from runner.runlog.log import RunLog
from runner.run.session import RunRequest
from runner.scripted import ScriptedServer
from runner.workflow.model import ScriptedTurn

WEATHER = REPO / "workflows" / "weather.yaml"
KEY = "sk-test-end-5e1f0c2a"


def request(tmp_path, **options) -> RunRequest:
    options.setdefault("base_url", "http://127.0.0.1:9/v1")
    return RunRequest(file=str(WEATHER), env={"OPENAI_API_KEY": KEY}, log_db=str(tmp_path / "log.db"), **options)


def only_run(tmp_path) -> dict:
    [run] = RunLog.open_reader(tmp_path / "log.db").list_runs()
    return run


def failing_factory(exc: BaseException):
    def create_provider(*args, **kwargs):
        raise exc
    return create_provider


@pytest.mark.parametrize("output", ["jsonl", "text"])
def test_an_error_before_the_first_turn_ends_the_run_once_and_masked(tmp_path, monkeypatch, output):
    from runner.providers import factory

    monkeypatch.setattr(factory, "create_provider", failing_factory(ProviderError(f"no client for {KEY}")))
    out, err = StringIO(), StringIO()
    code = execute(request(tmp_path, output=output), out=out, err=err)
    assert code == 3
    assert err.getvalue() == "flowrun: error: no client for ***\n"  # once, masked
    run = only_run(tmp_path)
    assert (run["status"], run["exit_code"], run["error"]) == ("error", 3, "no client for ***")
    if output == "jsonl":
        events = [json.loads(line) for line in out.getvalue().splitlines()]
        assert [e["type"] for e in events] == ["run.started", "run.failed"]
        assert (events[-1]["status"], events[-1]["exit_code"], events[-1]["turns"]) == ("error", 3, 0)
        assert events[-1]["message"] == "no client for ***"
    else:
        assert out.getvalue() == ""


def test_a_bug_ends_the_run_crashed_and_still_raises(tmp_path, monkeypatch):
    from runner.providers import factory

    monkeypatch.setattr(factory, "create_provider", failing_factory(RuntimeError("boom")))
    out = StringIO()
    with pytest.raises(RuntimeError, match="boom"):
        execute(request(tmp_path, output="jsonl"), out=out, err=StringIO())
    run = only_run(tmp_path)
    assert (run["status"], run["exit_code"], run["error"]) == ("crashed", 1, "internal error: RuntimeError")
    last = json.loads(out.getvalue().splitlines()[-1])
    assert (last["type"], last["status"]) == ("run.failed", "crashed")


def test_ctrl_c_at_the_chat_prompt_ends_the_run_interrupted(tmp_path):
    def ctrl_c(prompt: str):
        raise KeyboardInterrupt

    out, err = StringIO(), StringIO()
    with ScriptedServer([ScriptedTurn(text="Hello.")]) as server:
        code = execute(request(tmp_path, base_url=server.base_url, api="chat", chat=True, read_line=ctrl_c,
                               output="jsonl"), out=out, err=err)
    assert code == 130
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [e["type"] for e in events][-2:] == ["run.completed", "run.failed"]
    assert (events[-1]["status"], events[-1]["exit_code"], events[-1]["turns"]) == ("interrupted", 130, 1)
    run = only_run(tmp_path)
    assert (run["status"], run["exit_code"], run["error"]) == ("interrupted", 130, "interrupted by the user")
    assert "flowrun: error" not in err.getvalue()
