"""Issue 4, "Tool faults" and "HTTP tool security", end to end: a scripted model calls tools that
fail in every way a tool can, through the command line; each failure becomes that call's
``error: ...`` output, the run goes on, and the process neither hangs nor corrupts its output.
The resolvers' finer points are unit-tested in test_python_tool.py and test_http_tool.py."""

from __future__ import annotations

import json
import socket

import pytest

from support.cli import flowrun_process
from support.events import check_event
from support.reliability import (
    TOOLS_PY,
    submissions,
    completed,
    ENV,
    flowrun_with_key,
    logged_run,
    notes,
    python_tool,
    same_events,
    write_workflow,
)
from runner.scripted import EchoServer, ScriptedServer
from runner.workflow.model import ScriptedCall, ScriptedTurn

# The SDK warns on every Assistants call; flowrun hides that from users, but pytest resets the
# warning filters for each test, so say it again here.
pytestmark = [
    pytest.mark.filterwarnings("ignore:The Assistants API is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning"),
]


def outputs_of(result) -> dict[str, tuple[bool, str]]:
    return {e["name"]: (e["is_error"], e["output"]) for e in result.jsonl() if e["type"] == "tool_call.completed"}


def one_turn_of(*names: str, args: dict | None = None) -> list[ScriptedTurn]:
    calls = tuple(ScriptedCall(n, (args or {}).get(n, {})) for n in names)
    return [ScriptedTurn(tool_calls=calls), ScriptedTurn(text="carried on")]


# --- Python tools --------------------------------------------------------------------------------

def test_python_tools_that_raise_return_junk_or_hang_become_error_outputs(tmp_path):
    wf = write_workflow(tmp_path, "".join([
        python_tool("boom", "boom"),
        python_tool("selfref", "selfref"),
        python_tool("when", "when"),
        python_tool("hang", "hang", timeout=0.5),
        python_tool("missing", "no_such_function"),
        "- name: gone\n  description: gone\n  parameters: {type: object}\n  resolve: {python: 'no_such_module_xyz:f'}\n",
        python_tool("note", "note"),
    ]), python=TOOLS_PY + (
        "\nif __name__ == 'never':  # defined where validate reads it, absent when the run imports it\n"
        "    def no_such_function():\n        return 'unreachable'\n"))
    with ScriptedServer(one_turn_of("boom", "selfref", "when", "hang", "missing", "gone", "note")) as server:
        r = flowrun_with_key(str(wf), "--base-url", server.base_url, "-o", "jsonl")
    assert r.code == 0, r.err
    out = outputs_of(r)
    assert out["boom"] == (True, "error: the tool raised ValueError: db down")
    assert out["selfref"][0] and "cannot be turned into JSON (it contains a reference to itself)" in out["selfref"][1]
    assert out["when"] == (False, '{"at":"2030-01-02T03:04:05","tags":["a","b"]}')
    assert out["hang"] == (True, "error: tool 'hang' timed out after 0.5 s")
    assert out["missing"][0] and "no_such_function" in out["missing"][1]
    assert out["gone"][0] and "no_such_module_xyz" in out["gone"][1]
    assert out["note"] == (False, "noted x")
    assert r.jsonl()[-1]["type"] == "run.completed"
    same_events(logged_run()["events"], r.jsonl())


def test_a_missing_module_is_reported_by_validate_resolve(tmp_path):
    wf = write_workflow(tmp_path, "- name: gone\n  description: gone\n  parameters: {type: object}\n"
                                  "  resolve: {python: 'no_such_module_xyz:f'}\n")
    plain = flowrun_with_key("validate", str(wf))
    resolved = flowrun_with_key("validate", "--resolve", str(wf))
    assert plain.code == 0, plain.err  # without --resolve nothing is imported
    assert resolved.code == 2 and "no_such_module_xyz" in resolved.err and "Traceback" not in resolved.err


def test_a_tool_printing_to_stdout_does_not_corrupt_jsonl(tmp_path):
    wf = write_workflow(tmp_path, python_tool("chatty", "chatty"))
    with ScriptedServer(one_turn_of("chatty")) as server:
        r = flowrun_with_key(str(wf), "--base-url", server.base_url, "-o", "jsonl")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    for line in lines:
        check_event(json.loads(line))  # every stdout line is an event
    assert json.loads(lines[-1])["type"] == "run.completed"
    assert "TOOL SAYS HELLO ON STDOUT" in r.err and "{not json either" in r.err


def test_a_hanging_tool_is_abandoned_and_the_process_exits_without_waiting_for_it(tmp_path):
    """The tool's thread never ends; flowrun must still finish the run and exit (a process
    that waited for the thread would hit the subprocess timeout and fail this test)."""
    wf = write_workflow(tmp_path, python_tool("hang", "hang", timeout=1) + python_tool("note", "note"))
    with ScriptedServer(one_turn_of("hang", "note")) as server:
        r = flowrun_process(str(wf), "--base-url", server.base_url, env=ENV, timeout=30)
    assert r.code == 0, r.err
    assert r.out == "carried on\n"
    assert "hang() → error: tool 'hang' timed out after 1 s" in r.err
    assert notes(tmp_path) == ["x"]


# --- HTTP tools ----------------------------------------------------------------------------------

def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_tool(name: str, url: str, **fields) -> str:
    extra = "".join(f", {k}: {json.dumps(v)}" for k, v in fields.items())
    return (f"- name: {name}\n  description: {name}\n  parameters: {{type: object, properties: {{}}}}\n"
            f"  resolve:\n    http: {{url: \"{url}\", allow_private_network: true{extra}}}\n")


def test_http_tool_faults_reach_the_model_as_bounded_error_outputs(tmp_path):
    with EchoServer() as echo:
        wf = write_workflow(tmp_path, "".join([
            http_tool("slow", echo.url("/slow?s=30"), timeout=0.5, retries=0),
            http_tool("refused", f"http://127.0.0.1:{_closed_port()}/x", retries=0),
            http_tool("missing", echo.url("/status/404")),
            http_tool("broken", echo.url("/status/500"), retries=0),
            http_tool("huge", echo.url(f"/bytes?n={50 * 1024 * 1024}"), max_response_bytes=50_000),
            http_tool("latin", echo.url("/latin")),
            http_tool("moved", echo.url("/redirect?to=/echo")),
            http_tool("flaky_get", echo.url("/flaky")),
            http_tool("flaky_post", echo.url("/flaky/post"), method="POST"),
        ]), python=None)
        names = ("slow", "refused", "missing", "broken", "huge", "latin", "moved", "flaky_get", "flaky_post")
        with ScriptedServer(one_turn_of(*names)) as server:
            r = flowrun_with_key(str(wf), "--base-url", server.base_url, "-o", "jsonl", "--yes")
        assert r.code == 0, r.err
        out = outputs_of(r)
        assert out["slow"] == (True, "error: HTTP request to 127.0.0.1 timed out after 0.5 s")
        assert out["refused"][0] and out["refused"][1].startswith("error: cannot connect to 127.0.0.1:")
        assert out["missing"][0] and out["missing"][1].startswith("error: HTTP 404 Not Found from 127.0.0.1: error 404; you sent")
        assert out["broken"][0] and out["broken"][1].startswith("error: HTTP 500 Internal Server Error from 127.0.0.1")
        assert out["huge"][0] is False and out["huge"][1] == "a" * 50_000 + "\n…[response cut at 50000 bytes]"
        assert out["latin"][0] is False and "invalid bytes were replaced" in out["latin"][1]
        assert out["moved"][0] and "redirects are not followed" in out["moved"][1]
        assert out["flaky_get"] == (False, "finally")  # a GET is retried after 503 + Retry-After
        assert out["flaky_post"] == (True, "error: HTTP 503 Service Unavailable from 127.0.0.1: busy")
        assert echo.hits("/flaky/post") == 1  # a POST never is
        assert echo.hits("/flaky") - echo.hits("/flaky/post") == 3
        assert echo.hits("/status/500") == 1
        assert r.jsonl()[-1]["type"] == "run.completed"


def test_hostile_arguments_never_leave_the_declared_host_and_path(tmp_path):
    """The model's arguments try traversal, query, host and header injection; each call is
    refused (or encoded) and the server never sees a request outside /users/."""
    with EchoServer() as echo:
        wf = write_workflow(tmp_path, f"""
            - name: user
              description: one user
              parameters: {{type: object, required: [id], properties: {{id: {{type: string}}, q: {{type: string}}, tag: {{type: string}}}}}}
              resolve:
                http:
                  url: "{echo.url('/echo/users/${{ args.id }}')}"
                  query: {{q: "${{{{ args.q }}}}"}}
                  headers: {{X-Tag: "${{{{ args.tag }}}}"}}
                  allow_private_network: true
            - name: fetch_loopback
              description: not allowed to reach private addresses
              parameters: {{type: object, properties: {{}}}}
              resolve:
                http: {{url: "{echo.url('/echo/private')}"}}
            """, python=None)
        hostile = [
            {"id": "../../admin"}, {"id": "%2e%2e%2fadmin"}, {"id": ".."}, {"id": "a/../../b"},
            {"id": "7", "tag": "x\r\nX-Injected: 1"},
        ]
        fine = [{"id": "a?b#c@evil.example", "q": "a&admin=true"}]
        calls = tuple(ScriptedCall("user", a) for a in hostile + fine) + (ScriptedCall("fetch_loopback", {}),)
        with ScriptedServer([ScriptedTurn(tool_calls=calls), ScriptedTurn(text="done")]) as server:
            r = flowrun_with_key(str(wf), "--base-url", server.base_url, "-o", "jsonl")
        assert r.code == 0, r.err
        done = completed(r.jsonl())
        assert [e["is_error"] for e in done] == [True] * len(hostile) + [False, True], [e["output"] for e in done]
        assert "header 'X-Tag' would contain a line break" in done[4]["output"] and "Injected" not in done[4]["output"]
        assert "loopback address; blocked" in done[-1]["output"]
        seen = echo.requests
        assert len(seen) == 1  # only the encoded, harmless call was sent
        assert seen[0].path == "/echo/users/a%3Fb%23c%40evil.example?q=a%26admin%3Dtrue"
        assert seen[0].header("X-Injected") is None


@pytest.mark.parametrize("api", ["responses", "chat", "assistants"])
def test_one_submission_answers_every_call_even_when_tools_fail(api, tmp_path):
    """docs/reliability.md #59: three parallel calls, one raises, one times out: exactly one submission
    with three outputs, every call id answered."""
    wf = write_workflow(tmp_path, python_tool("note", "note") + python_tool("boom", "boom")
                        + python_tool("hang", "hang", timeout=0.3), api=api)
    with ScriptedServer(one_turn_of("note", "boom", "hang")) as server:
        r = flowrun_with_key(str(wf), "--api", api, "--base-url", server.base_url, "-o", "jsonl")
    assert r.code == 0, r.err
    subs = submissions(server, api)
    requested = [e["call_id"] for e in r.jsonl() if e["type"] == "tool_call.requested"]
    assert len(subs) == 1 and list(subs[0]) == requested
    assert list(subs[0].values()) == ["noted x", "error: the tool raised ValueError: db down",
                                      "error: tool 'hang' timed out after 0.3 s"]


def test_an_error_body_reaches_the_model_as_a_bounded_excerpt(tmp_path):
    with EchoServer() as echo:
        huge_header = "x" * 6000  # the server quotes request headers back in its error body
        wf = write_workflow(tmp_path, f"""
            - name: api
              description: fails with a long body
              parameters: {{type: object, properties: {{}}}}
              resolve:
                http: {{url: "{echo.url('/status/400')}", headers: {{X-Long: "{huge_header}"}}, allow_private_network: true}}
            """, python=None)
        with ScriptedServer(one_turn_of("api")) as server:
            r = flowrun_with_key(str(wf), "--base-url", server.base_url, "-o", "jsonl")
    error, output = outputs_of(r)["api"]
    assert error and output.startswith("error: HTTP 400 Bad Request from 127.0.0.1: error 400; you sent")
    assert output.endswith("…") and len(output) < 2100  # status + the first 2,000 characters


def test_100_parallel_http_calls_to_a_slow_host_all_answer(tmp_path):
    """docs/reliability.md #69: a bounded number in flight, every call answered, no deadlock."""
    with EchoServer() as echo:
        wf = write_workflow(tmp_path, http_tool("slow", echo.url("/slow?s=0.1")), python=None)
        calls = tuple(ScriptedCall("slow", {}) for _ in range(100))
        with ScriptedServer([ScriptedTurn(tool_calls=calls), ScriptedTurn(text="ok")]) as server:
            r = flowrun_with_key(str(wf), "--base-url", server.base_url, "-o", "jsonl")
        assert r.code == 0, r.err
        done = [e for e in r.jsonl() if e["type"] == "tool_call.completed"]
        assert len(done) == 100 and all(e["output"] == "late" for e in done)
        starts = sorted(q.time for q in echo.requests)
        assert max(sum(1 for t in starts if u <= t < u + 0.05) for u in starts) <= 16  # max_concurrency


def test_the_http_debug_log_line_masks_a_secret_in_the_url(tmp_path, caplog):
    """A Python tool (or anything else) may switch logging to DEBUG: the request line the HTTP
    tool logs then must not carry a secret in its query string."""
    import logging

    with EchoServer() as echo:
        wf = write_workflow(tmp_path, http_tool("api", echo.url("/echo?key=${{ env.TOOL_TOKEN }}")), python=None)
        with ScriptedServer(one_turn_of("api")) as server, caplog.at_level(logging.DEBUG, "flowrun.tools.http"):
            r = flowrun_with_key(str(wf), "--base-url", server.base_url, env={"TOOL_TOKEN": "tok-in-url-123456"})
        assert r.code == 0, r.err
        assert echo.requests[0].path == "/echo?key=tok-in-url-123456"
    logged = "\n".join(rec.getMessage() for rec in caplog.records if rec.name == "flowrun.tools.http")
    assert "key=***" in logged and "tok-in-url" not in logged


def test_the_default_tool_timeout_is_60_seconds(tmp_path):
    from runner.workflow.validate import load_workflow

    wf = load_workflow(write_workflow(tmp_path, python_tool("note", "note")))
    assert wf.tools[0].timeout == 60.0
