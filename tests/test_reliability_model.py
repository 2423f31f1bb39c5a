"""Issue 4, "Model misbehaviour": whatever the model sends, the run goes on, the model gets a
readable ``error: ...`` output for that call, and a tool whose arguments were refused never ran
(no side effect). Through the command line, the real client and the scripted server, per API."""

from __future__ import annotations

import pytest

from support.events import check_event
from support.reliability import (
    completed,
    APIS,
    flowrun_with_key,
    logged_run,
    notes,
    same_events,
    submissions,
    write_workflow,
)
from runner.scripted import ScriptedServer
from runner.workflow.model import ScriptedCall, ScriptedTurn

# The SDK warns on every Assistants call; flowrun hides that from users, but pytest resets the
# warning filters for each test, so say it again here.
pytestmark = [
    pytest.mark.filterwarnings("ignore:The Assistants API is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning"),
]


STRICT_NOTE = """
- name: note
  description: append a note (a side effect)
  parameters:
    type: object
    properties: {text: {type: string}, count: {type: integer}}
    required: [text]
    additionalProperties: false
  resolve: {python: 'tools:note'}
"""

BAD_CALLS = [
    # (scripted call, a fragment of the error the model must get)
    (ScriptedCall("no_such_tool", {"text": "x"}), "there is no tool named 'no_such_tool'"),
    (ScriptedCall("nte", {"text": "x"}), "Did you mean 'note'?"),
    (ScriptedCall("note", '{"text": "Par'), "the arguments are not valid JSON"),
    (ScriptedCall("note", '{"text": "a"}{"text": "b"}'), "the arguments are not valid JSON"),
    (ScriptedCall("note", "[1, 2]"), "expected a JSON object with the tool's parameters, got an array"),
    (ScriptedCall("note", '"just a string"'), "got a string"),
    (ScriptedCall("note", "null"), "got null"),
    (ScriptedCall("note", {}), "'text' is a required property"),
    (ScriptedCall("note", {"text": 5}), "5 is not of type 'string'"),
    (ScriptedCall("note", {"text": "a", "count": "two"}), "$.count: 'two' is not of type 'integer'"),
    (ScriptedCall("note", {"text": "a", "admin": True}), "Additional properties are not allowed ('admin' was unexpected)"),
    (ScriptedCall("note", {"text": "a", "text2": "b", "admin": 1}), "Additional properties"),
    (ScriptedCall("", {"text": "x"}), "the call names no tool. Available tools: note"),
    (ScriptedCall("   ", {"text": "x"}), "the call names no tool"),
]


@pytest.mark.parametrize("api", APIS)
def test_every_kind_of_bad_call_gets_an_error_output_and_runs_nothing(api, tmp_path):
    wf = write_workflow(tmp_path, STRICT_NOTE, api=api)
    calls = tuple(c for c, _ in BAD_CALLS) + (ScriptedCall("note", {"text": "good"}),)
    turns = [ScriptedTurn(tool_calls=calls), ScriptedTurn(text="I will do better.")]
    with ScriptedServer(turns) as server:
        r = flowrun_with_key(str(wf), "--api", api, "--base-url", server.base_url, "-o", "jsonl")
    assert r.code == 0, r.err
    events = r.jsonl()
    for e in events:
        check_event(e)
    done = completed(events)
    assert len(done) == len(calls)
    for (call, fragment), result in zip(BAD_CALLS, done):
        assert result["is_error"] and result["output"].startswith("error: "), result
        assert fragment in result["output"], (call, result["output"])
    assert done[-1] == {**done[-1], "is_error": False, "output": "noted good"}
    assert notes(tmp_path) == ["good"]  # only the valid call had its side effect
    subs = submissions(server, api)
    assert len(subs) == 1 and len(subs[0]) == len(calls)  # every call answered, in one submission
    assert list(subs[0].values()) == [e["output"] for e in done]
    assert events[-1]["type"] == "run.completed"
    same_events(logged_run()["events"], events)


@pytest.mark.parametrize("api", APIS)
def test_the_same_call_forever_stops_at_max_turns_and_keeps_every_completed_call(api, tmp_path):
    wf = write_workflow(tmp_path, STRICT_NOTE, api=api)
    loop = ScriptedTurn(tool_calls=(ScriptedCall("note", {"text": "again"}),))
    with ScriptedServer(lambda ctx: loop) as server:
        r = flowrun_with_key(str(wf), "--api", api, "--base-url", server.base_url, "--max-turns", "4", "-o", "jsonl")
    assert r.code == 1
    events = r.jsonl()
    last = events[-1]
    assert last["type"] == "run.failed" and last["status"] == "max_turns"
    assert "stopped after 4 turns" in last["message"]
    assert notes(tmp_path) == ["again"] * 3  # the 4th turn's call is not run: there is no turn to answer it
    run = logged_run(last["run_id"])
    same_events(run["events"], events)
    assert run["status"] == "max_turns" and run["exit_code"] == 1
    assert [c["output"] for c in run["tool_calls"]] == ["noted again"] * 3 + [None]
    if api == "assistants":  # the run left waiting for outputs is cancelled, not left locking the thread
        assert server.requests_for("/cancel", "POST")


def test_huge_arguments_are_refused_before_parsing(tmp_path):
    wf = write_workflow(tmp_path, STRICT_NOTE)
    huge = '{"text": "' + "x" * 1_100_000 + '"}'
    turns = [ScriptedTurn(tool_calls=(ScriptedCall("note", huge),)), ScriptedTurn(text="ok")]
    with ScriptedServer(turns) as server:
        r = flowrun_with_key(str(wf), "--base-url", server.base_url, "-o", "jsonl")
    assert r.code == 0, r.err
    done = [e for e in r.jsonl() if e["type"] == "tool_call.completed"][0]
    assert done["is_error"] and "the arguments are too large" in done["output"]
    assert notes(tmp_path) == []
