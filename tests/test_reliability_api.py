"""Issue 4, "API and network faults", end to end: the real command line and ``openai`` client
against the scripted loopback server with injected faults, for each API. In every case: the
right exit code, one clear message and no traceback, tools never run twice, and the run log
holds every event that was printed (``-o jsonl``)."""

from __future__ import annotations

import json
import socket
import time

import pytest

from support.cli import flowrun_process
from support.reliability import (
    APIS,
    ENV,
    KEY,
    error_lines,
    flowrun_with_key,
    logged_run,
    notes,
    python_tool,
    same_events,
    submissions,
    write_workflow,
)
from runner.scripted import EchoServer, Fault, ScriptedServer
from runner.workflow.model import ScriptedCall, ScriptedTurn

# The SDK warns on every Assistants call; flowrun hides that from users, but pytest resets the
# warning filters for each test, so say it again here.
pytestmark = [
    pytest.mark.filterwarnings("ignore:The Assistants API is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning"),
]


NOTE = python_tool("note", "note", params="{type: object, properties: {text: {type: string}}}")
FINAL = "The final answer arrives in several small pieces of text."
NOTE_THEN_TEXT = [ScriptedTurn(tool_calls=(ScriptedCall("note", {"text": "a"}),)), ScriptedTurn(text=FINAL)]


def jsonl_run(wf, server, api, *more):
    return flowrun_with_key(str(wf), "--api", api, "--base-url", server.base_url, "-o", "jsonl", *more)


def text_of(events: list[dict]) -> str:
    return "".join(e["text"] for e in events if e["type"] == "text.delta")


# --- 429 and 5xx before a stream starts -------------------------------------------------------

@pytest.mark.parametrize("api", APIS)
def test_429_before_the_stream_waits_retry_after_and_says_so(api, tmp_path):
    wf = write_workflow(tmp_path, NOTE, api=api)
    fault = Fault(kind="http_error", status=429, headers={"retry-after": "0.3"}, turn=0, times=1)
    with ScriptedServer(NOTE_THEN_TEXT, faults=[fault]) as server:
        r = flowrun_with_key(str(wf), "--api", api, "--base-url", server.base_url)
    assert r.code == 0, r.err
    assert "flowrun: warning: rate limited (HTTP 429); retrying in 0.3s (1/2)" in r.err
    first_turn = [q for q in server.requests if q.turn_index == 0]
    assert len(first_turn) == 2 and first_turn[1].time - first_turn[0].time >= 0.3  # Retry-After honoured
    assert notes(tmp_path) == ["a"] and r.out == FINAL + "\n"


@pytest.mark.parametrize("api,status", [("responses", 503), ("chat", 500), ("assistants", 502)])
def test_5xx_on_the_submission_is_retried_and_the_tool_runs_once(api, status, tmp_path):
    wf = write_workflow(tmp_path, NOTE, api=api)
    fault = Fault(kind="http_error", status=status, turn=1, times=1)
    with ScriptedServer(NOTE_THEN_TEXT, faults=[fault]) as server:
        r = flowrun_with_key(str(wf), "--api", api, "--base-url", server.base_url)
    assert r.code == 0, r.err
    assert f"flowrun: warning: server error (HTTP {status}); retrying in" in r.err
    assert notes(tmp_path) == ["a"]
    assert len(submissions(server, api)) == 2  # one refused, one accepted; the tool ran once


def test_5xx_past_the_retries_is_exit_3_in_one_line(tmp_path):
    wf = write_workflow(tmp_path, NOTE)
    with ScriptedServer(NOTE_THEN_TEXT, faults=[Fault(kind="http_error", status=502)]) as server:
        r = flowrun_with_key(str(wf), "--base-url", server.base_url)
    assert r.code == 3
    lines = error_lines(r.err)
    assert len(lines) == 1 and lines[0].startswith("flowrun: error: server error (HTTP 502): The server had an error")
    assert len(server.requests) == 3 and "Traceback" not in r.err


def test_429_through_a_real_process_is_visible_on_stderr(tmp_path):
    wf = write_workflow(tmp_path, NOTE)
    fault = Fault(kind="http_error", status=429, headers={"retry-after-ms": "200"}, turn=0, times=1)
    with ScriptedServer(NOTE_THEN_TEXT, faults=[fault]) as server:
        r = flowrun_process(str(wf), "--base-url", server.base_url, env=ENV, timeout=30)
    assert r.code == 0, r.err
    assert "rate limited (HTTP 429); retrying in 0.2s (1/2)" in r.err
    assert r.out == FINAL + "\n"


# --- a stream cut in the middle ---------------------------------------------------------------

@pytest.mark.parametrize("after", [3, 6])
def test_assistants_cut_in_the_tool_call_turn_is_recovered_from_the_run(after, tmp_path):
    wf = write_workflow(tmp_path, NOTE, api="assistants")
    with ScriptedServer(NOTE_THEN_TEXT, faults=[Fault(kind="drop_after", turn=0, after=after, times=1)]) as server:
        r = jsonl_run(wf, server, "assistants")
    assert r.code == 0, r.err
    events = r.jsonl()
    assert any(e["type"] == "notice" and "checking the run on the server" in e["message"] for e in events)
    assert notes(tmp_path) == ["a"] and len(submissions(server, "assistants")) == 1
    assert events[-1]["type"] == "run.completed" and events[-1]["final_text"] == FINAL
    same_events(logged_run()["events"], events)


def test_assistants_cut_mid_answer_keeps_what_arrived_and_fetches_the_rest(tmp_path):
    wf = write_workflow(tmp_path, NOTE, api="assistants")
    with ScriptedServer(NOTE_THEN_TEXT, faults=[Fault(kind="drop_after", turn=1, after=8, times=1)]) as server:
        r = jsonl_run(wf, server, "assistants")
    assert r.code == 0, r.err
    events = r.jsonl()
    assert text_of(events) == FINAL  # the streamed part, then the rest from the thread's messages
    assert notes(tmp_path) == ["a"] and len(submissions(server, "assistants")) == 1
    same_events(logged_run()["events"], events)


def test_assistants_submission_cut_after_the_server_took_it_is_not_sent_or_run_again(tmp_path):
    """docs/reliability.md #62: a POST tool succeeded; the connection drops right after the server
    accepted the outputs. The retry asks the run first, so nothing is submitted or run twice."""
    with EchoServer() as echo:
        wf = write_workflow(tmp_path, f"""
            - name: order
              description: places an order (a side effect)
              parameters: {{type: object, properties: {{}}}}
              resolve:
                http: {{url: "{echo.url('/count/orders')}", method: POST, allow_private_network: true}}
            """, api="assistants")
        turns = [ScriptedTurn(tool_calls=(ScriptedCall("order", {}),)), ScriptedTurn(text="ordered")]
        fault = Fault(kind="drop_after", turn=1, after=0, times=1)  # the stream dies before its first event
        with ScriptedServer(turns, faults=[fault]) as server:
            r = flowrun_with_key(str(wf), "--base-url", server.base_url, "--api", "assistants", "--approve", "order")
        assert r.code == 0, r.err
        assert echo.hits("/count/orders") == 1
    assert len(server.requests_for("/submit_tool_outputs", "POST")) == 1
    assert r.out == "ordered\n"


@pytest.mark.parametrize("api", ["responses", "chat"])
def test_responses_and_chat_cut_mid_answer_exit_3_and_the_log_holds_what_arrived(api, tmp_path):
    wf = write_workflow(tmp_path, NOTE, api=api)
    with ScriptedServer(NOTE_THEN_TEXT, faults=[Fault(kind="drop_after", turn=1, after=8, times=1)]) as server:
        r = jsonl_run(wf, server, api)
    assert r.code == 3, r.err
    events = r.jsonl()
    arrived = text_of(events)
    assert arrived and FINAL.startswith(arrived) and arrived != FINAL
    last = events[-1]
    assert last["type"] == "run.failed" and last["exit_code"] == 3
    assert last["message"].startswith("the stream from the server was cut before the turn finished")
    if api == "responses":
        assert "background mode" in last["message"]  # why it was not resumed
    assert notes(tmp_path) == ["a"]
    run = logged_run(last["run_id"])
    same_events(run["events"], events)
    assert run["status"] == "error" and run["exit_code"] == 3
    assert run["tool_calls"][0]["output"] == "noted a"


@pytest.mark.parametrize("api", ["responses", "chat"])
def test_a_cut_while_the_model_streams_tool_calls_runs_no_tool(api, tmp_path):
    """docs/reliability.md #21: arguments may be partial; no tool runs on them."""
    wf = write_workflow(tmp_path, NOTE, api=api)
    calls = tuple(ScriptedCall("note", {"text": f"call number {i}"}) for i in range(3))
    with ScriptedServer([ScriptedTurn(tool_calls=calls), ScriptedTurn(text="x")],
                        faults=[Fault(kind="drop_after", turn=0, after=7, times=1)]) as server:
        r = jsonl_run(wf, server, api)
    assert r.code == 3
    events = r.jsonl()
    assert not any(e["type"].startswith("tool_call.") for e in events)
    assert notes(tmp_path) == [] and submissions(server, api) == []
    same_events(logged_run()["events"], events)


@pytest.mark.parametrize("api", ["responses", "chat"])
def test_a_cut_through_a_real_process_is_one_line_and_exit_3(api, tmp_path):
    wf = write_workflow(tmp_path, NOTE, api=api)
    with ScriptedServer(NOTE_THEN_TEXT, faults=[Fault(kind="drop_after", turn=1, after=8, times=1)]) as server:
        r = flowrun_process(str(wf), "--api", api, "--base-url", server.base_url, env=ENV, timeout=30)
    assert r.code == 3
    assert len(error_lines(r.err)) == 1 and "cut before the turn finished" in r.err
    assert "Traceback" not in r.err


# --- the server rejects the outputs, or the run expires ------------------------------------------

@pytest.mark.parametrize("api", APIS)
def test_tool_outputs_rejected_with_400_is_exit_1_with_a_clear_message(api, tmp_path):
    wf = write_workflow(tmp_path, NOTE, api=api)
    body = {"error": {"message": "Invalid 'tool_outputs[0].output': string too long.", "type": "invalid_request_error",
                      "param": "tool_outputs", "code": None}}
    with ScriptedServer(NOTE_THEN_TEXT, faults=[Fault(kind="http_error", status=400, turn=1, body=body)]) as server:
        r = jsonl_run(wf, server, api)
    assert r.code == 1
    last = r.jsonl()[-1]
    assert last["type"] == "run.failed" and last["status"] == "failed"
    assert "the server rejected the tool outputs (HTTP 400): Invalid 'tool_outputs[0].output'" in last["message"]
    assert len(submissions(server, api)) == 1  # a 400 is not retried
    run = logged_run(last["run_id"])
    same_events(run["events"], r.jsonl())
    assert (run["status"], run["exit_code"]) == ("failed", 1) and "rejected the tool outputs" in run["error"]
    assert run["tool_calls"][0]["output"] == "noted a"
    if api == "assistants":  # the run that waited for outputs is cancelled, so the thread is free
        assert server.requests_for("/cancel", "POST")


def test_assistants_run_expired_while_a_tool_was_slow_is_exit_1_and_the_log_is_complete(tmp_path):
    wf = write_workflow(tmp_path, python_tool("slow", "slow", params="{type: object, properties: {seconds: {type: number}}}"),
                        api="assistants")
    turns = [ScriptedTurn(tool_calls=(ScriptedCall("slow", {"seconds": 0.6}),)), ScriptedTurn(text="never")]
    with ScriptedServer(turns, run_ttl=0) as server:  # the run expires as soon as it waits for outputs
        r = jsonl_run(wf, server, "assistants")
    assert r.code == 1
    events = r.jsonl()
    last = events[-1]
    assert last["type"] == "run.failed" and last["status"] == "expired"
    assert "the run expired" in last["message"]
    assert server.requests_for("/submit_tool_outputs") == []  # not sent late
    run = logged_run(last["run_id"])
    same_events(run["events"], events)
    assert run["status"] == "expired" and run["exit_code"] == 1
    assert [c["name"] for c in run["tool_calls"]] == ["slow"] and run["tool_calls"][0]["is_error"]


def test_assistants_tools_are_cut_short_to_submit_before_the_run_expires(tmp_path):
    """docs/reliability.md #58: the run's expires_at bounds the tools, so a slow tool costs its output,
    not the whole run."""
    wf = write_workflow(tmp_path, python_tool("slow", "slow", params="{type: object, properties: {seconds: {type: number}}}"),
                        api="assistants")
    turns = [ScriptedTurn(tool_calls=(ScriptedCall("slow", {"seconds": 30}),)), ScriptedTurn(text="made it")]
    with ScriptedServer(turns, run_ttl=3) as server:
        r = jsonl_run(wf, server, "assistants")
    assert r.code == 0, r.err
    done = [e for e in r.jsonl() if e["type"] == "tool_call.completed"]
    assert done[0]["is_error"] and "so that the outputs reach the run before it expires" in done[0]["output"]
    assert len(submissions(server, "assistants")) == 1
    assert r.jsonl()[-1]["type"] == "run.completed" and r.jsonl()[-1]["final_text"] == "made it"


# --- auth, missing endpoints, unreachable hosts, TLS ----------------------------------------------

@pytest.mark.parametrize("api", APIS)
def test_401_names_the_variable_and_never_echoes_the_key(api, tmp_path):
    wf = write_workflow(tmp_path, NOTE, api=api)
    body = {"error": {"message": f"Incorrect API key provided: {KEY}. You can find your API key at ...",
                      "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}
    fault = Fault(kind="http_error", status=401, body=body, match="/v1/")  # every request, turn or not
    with ScriptedServer(NOTE_THEN_TEXT, faults=[fault]) as server:
        r = flowrun_with_key(str(wf), "--api", api, "--base-url", server.base_url)
    assert r.code == 3
    lines = error_lines(r.err)
    assert len(lines) == 1 and "check OPENAI_API_KEY" in lines[0]
    assert KEY not in r.err + r.out and KEY[:12] not in r.err
    assert len(server.requests) == 1  # never retried
    assert notes(tmp_path) == []


def test_401_with_a_custom_key_variable_names_that_variable(tmp_path):
    wf = write_workflow(tmp_path, NOTE, model="api_key_env: ACME_KEY")
    with ScriptedServer(NOTE_THEN_TEXT, faults=[Fault(kind="http_error", status=401)]) as server:
        r = flowrun_with_key(str(wf), "--base-url", server.base_url, env={"ACME_KEY": "acme-secret-value-1234"})
    assert r.code == 3 and "check ACME_KEY" in r.err and "acme-secret-value" not in r.err


@pytest.mark.parametrize("api,path,says", [
    ("chat", None, "the model was not found on this server (HTTP 404)"),
    ("responses", "/responses", "older local servers do not implement the Responses API: try --api chat"),
    ("assistants", "/assistants", "the Assistants API is not available on this server"),
])
def test_404_is_exit_3_with_what_to_check(api, path, says, tmp_path):
    wf = write_workflow(tmp_path, NOTE, api=api)
    body = {"error": {"message": "The model `m` does not exist" if path is None else "Invalid URL",
                      "type": "invalid_request_error", "param": None, "code": "model_not_found" if path is None else None}}
    fault = Fault(kind="http_error", status=404, match=path, body=body) if path else Fault(kind="http_error", status=404, body=body)
    with ScriptedServer(NOTE_THEN_TEXT, faults=[fault]) as server:
        r = flowrun_with_key(str(wf), "--api", api, "--base-url", server.base_url)
    assert r.code == 3
    assert says in r.err and len(error_lines(r.err)) == 1 and "Traceback" not in r.err


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.parametrize("api", ["assistants"])  # chat: test_cli_run.py::test_unreachable_server_exits_3_in_one_line
def test_unreachable_host_is_exit_3_in_one_line(api, tmp_path):
    wf = write_workflow(tmp_path, NOTE, api=api)
    port = _closed_port()
    r = flowrun_with_key(str(wf), "--api", api, "--base-url", f"http://127.0.0.1:{port}/v1")
    assert r.code == 3
    assert error_lines(r.err) == [f"flowrun: error: cannot reach http://127.0.0.1:{port}: is the server running?"]


def test_tls_failure_is_exit_3_one_line_and_not_retried(tmp_path):
    wf = write_workflow(tmp_path, NOTE)
    with ScriptedServer(NOTE_THEN_TEXT) as server:  # plain HTTP: a TLS handshake with it fails
        port = server.port
        r = flowrun_with_key(str(wf), "--base-url", f"https://127.0.0.1:{port}/v1")
    assert r.code == 3
    lines = error_lines(r.err)
    assert len(lines) == 1 and lines[0].startswith(f"flowrun: error: TLS failure talking to https://127.0.0.1:{port}")
    assert "hint: check the server's certificate, or use http:// for a local server" in r.err
    assert "retrying" not in r.err and "Traceback" not in r.err


# --- stalls -----------------------------------------------------------------------------------

@pytest.mark.parametrize("api,keepalive", [("responses", 0.2), ("chat", 0.2), ("chat", None)])
def test_a_stall_longer_than_the_model_timeout_fails_with_exit_3(api, keepalive, tmp_path):
    """docs/reliability.md #53: a server that keeps the connection alive with comments but sends no
    event is given up after model.timeout, like one that sends nothing at all."""
    wf = write_workflow(tmp_path, NOTE, api=api, model="timeout: 1")
    fault = Fault(kind="stall", turn=0, after=3, seconds=60, keepalive=keepalive)
    with ScriptedServer([ScriptedTurn(text=FINAL)], faults=[fault]) as server:
        r = flowrun_with_key(str(wf), "--api", api, "--base-url", server.base_url, "-o", "jsonl")
    assert r.code == 3, r.err
    last = json.loads(r.out.splitlines()[-1])
    assert last["type"] == "run.failed"
    assert "the server sent nothing within the read timeout (1s" in last["message"]
    assert "Traceback" not in r.err


def test_an_assistants_stall_is_recovered_from_the_run(tmp_path):
    wf = write_workflow(tmp_path, NOTE, api="assistants", model="timeout: 1")
    fault = Fault(kind="stall", turn=0, after=3, seconds=60, keepalive=0.2)
    with ScriptedServer([ScriptedTurn(text=FINAL)], faults=[fault]) as server:
        started = time.monotonic()
        r = flowrun_with_key(str(wf), "--api", "assistants", "--base-url", server.base_url)
        took = time.monotonic() - started
    assert r.code == 0, r.err
    assert r.out == FINAL + "\n" and "checking the run on the server" in r.err
    assert took < 30  # the 60 s stall was abandoned, not waited out


# --- many calls at once -----------------------------------------------------------------------

@pytest.mark.parametrize("api", APIS)
def test_50_parallel_calls_in_one_turn_get_50_outputs_in_one_submission(api, tmp_path):
    wf = write_workflow(tmp_path, NOTE, api=api)
    calls = tuple(ScriptedCall("note", {"text": f"n{i}"}) for i in range(50))
    with ScriptedServer([ScriptedTurn(tool_calls=calls), ScriptedTurn(text="all noted")]) as server:
        r = jsonl_run(wf, server, api)
    assert r.code == 0, r.err
    events = r.jsonl()
    requested = [e["call_id"] for e in events if e["type"] == "tool_call.requested"]
    subs = submissions(server, api)
    assert len(subs) == 1 and list(subs[0]) == requested and len(requested) == 50
    assert sorted(subs[0].values()) == sorted(f"noted n{i}" for i in range(50))
    assert sorted(notes(tmp_path)) == sorted(f"n{i}" for i in range(50))
    same_events(logged_run()["events"], events)
