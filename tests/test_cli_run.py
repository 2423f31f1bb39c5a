"""``flowrun FILE`` end to end: the real entry point, the real openai client, a scripted server that
speaks each API's wire format on 127.0.0.1."""

from __future__ import annotations

import json

import pytest

from support.cli import flowrun
from support.events import check_event
from support.paths import REPO
from support.reliability import submissions
from runner.scripted import Fault, ScriptedServer
from runner.workflow.model import ScriptedCall, ScriptedTurn

APIS = ["responses", "chat", "assistants"]
WEATHER = "workflows/weather.yaml"
KEY = {"OPENAI_API_KEY": "sk-test-key-for-loopback-0000"}

WEATHER_TURNS = [
    ScriptedTurn(
        tool_calls=(
            ScriptedCall("get_current_temperature", {"location": "San Francisco, CA", "unit": "Fahrenheit"}),
            ScriptedCall("get_rain_probability", {"location": "San Francisco, CA"}),
        )
    ),
    ScriptedTurn(text="It is ${{ outputs.get_current_temperature }}°F; rain chance ${{ outputs.get_rain_probability }}."),
]


@pytest.mark.parametrize("api", APIS)
def test_weather_completes_with_one_submission_of_both_outputs(api):
    with ScriptedServer(WEATHER_TURNS) as server:
        r = flowrun(WEATHER, "--api", api, "--base-url", server.base_url, "-o", "jsonl", env=KEY)
    assert r.code == 0, r.err
    events = r.jsonl()
    for ev in events:
        check_event(ev)
    calls = {e["name"]: e["call_id"] for e in events if e["type"] == "tool_call.requested"}
    subs = submissions(server, api)
    assert len(subs) == 1, subs
    assert subs[0] == {calls["get_current_temperature"]: "57", calls["get_rain_probability"]: "0.06"}
    assert events[-1]["type"] == "run.completed"
    assert events[-1]["final_text"] == "It is 57°F; rain chance 0.06."
    assert "sk-test-key" not in r.out + r.err


@pytest.mark.parametrize("api", APIS)
def test_text_goes_to_stdout_and_tool_activity_to_stderr(api):
    with ScriptedServer(WEATHER_TURNS) as server:
        r = flowrun(WEATHER, "--api", api, "--base-url", server.base_url, env=KEY)
    assert r.code == 0, r.err
    assert r.out == "It is 57°F; rain chance 0.06.\n"
    assert "get_current_temperature" in r.err and "→ 57" in r.err
    assert "completed · 2 turns · 2 tool calls" in r.err


def test_flowrun_run_and_flowrun_file_are_the_same_command():
    with ScriptedServer(WEATHER_TURNS * 2) as server:
        a = flowrun("run", WEATHER, "--base-url", server.base_url, "-q", env=KEY)
        b = flowrun(WEATHER, "--base-url", server.base_url, "-q", env=KEY)
    assert a.code == b.code == 0
    assert a.out == b.out


def test_a_file_named_like_a_command_is_still_a_file(tmp_path):
    (tmp_path / "validate").write_text((REPO / WEATHER).read_text().replace("../schemas", str(REPO / "schemas")))
    with ScriptedServer(WEATHER_TURNS) as server:
        r = flowrun("run", "validate", "--base-url", server.base_url, "-q", env=KEY, cwd=tmp_path)
    assert r.code == 0, r.err


@pytest.mark.parametrize("api", APIS)
def test_several_tool_rounds_then_text(api):
    turns = [
        ScriptedTurn(tool_calls=(ScriptedCall("get_rain_probability", {"location": "Paris"}),)),
        ScriptedTurn(tool_calls=(ScriptedCall("get_rain_probability", {"location": "Oslo"}),)),
        ScriptedTurn(tool_calls=tuple(ScriptedCall("get_rain_probability", {"location": c}) for c in ("A", "B", "C"))),
        ScriptedTurn(text="done"),
    ]
    with ScriptedServer(turns) as server:
        r = flowrun(WEATHER, "--api", api, "--base-url", server.base_url, "-o", "jsonl", env=KEY)
    assert r.code == 0, r.err
    events = r.jsonl()
    assert [e["turn"] for e in events if e["type"] == "turn.started"] == [1, 2, 3, 4]
    assert sum(e["type"] == "tool_call.completed" for e in events) == 5
    assert [len(s) for s in submissions(server, api)] == [1, 1, 3]


@pytest.mark.parametrize("api", APIS)
def test_text_only_run(api):
    with ScriptedServer([ScriptedTurn(text="Just text.")]) as server:
        r = flowrun(WEATHER, "--api", api, "--base-url", server.base_url, "-M", "hello", env=KEY)
    assert (r.code, r.out) == (0, "Just text.\n"), r.err


@pytest.mark.parametrize("api", APIS)
def test_invalid_and_unknown_tool_calls_become_error_outputs_and_the_run_goes_on(api):
    turns = [
        ScriptedTurn(
            tool_calls=(
                ScriptedCall("no_such_tool", {}),
                ScriptedCall("get_rain_probability", '{"location": "Par'),
                ScriptedCall("get_current_temperature", {"location": "X", "unit": "Kelvin"}),
            )
        ),
        ScriptedTurn(text="sorry"),
    ]
    with ScriptedServer(turns) as server:
        r = flowrun(WEATHER, "--api", api, "--base-url", server.base_url, "-o", "jsonl", env=KEY)
    assert r.code == 0, r.err
    done = [e for e in r.jsonl() if e["type"] == "tool_call.completed"]
    assert [e["is_error"] for e in done] == [True, True, True]
    assert all(e["output"].startswith("error: ") for e in done)
    assert "get_current_temperature" in done[0]["output"]  # lists what exists
    assert "Kelvin" in done[2]["output"]
    assert len(submissions(server, api)[0]) == 3


@pytest.mark.parametrize("api", APIS)
def test_max_turns_stops_a_model_that_never_stops(api):
    loop = [ScriptedTurn(tool_calls=(ScriptedCall("get_rain_probability", {"location": "P"}),))] * 5
    with ScriptedServer(loop) as server:
        r = flowrun(WEATHER, "--api", api, "--base-url", server.base_url, "--max-turns", "3", env=KEY)
    assert r.code == 1
    assert "stopped after 3 turns" in r.err


@pytest.mark.parametrize(
    "api,terminal,status",
    [
        ("assistants", "failed", "failed"),
        ("assistants", "expired", "expired"),
        ("assistants", "cancelled", "cancelled"),
        ("assistants", "incomplete", "incomplete"),
        ("responses", "failed", "failed"),
        ("responses", "incomplete", "incomplete"),
        ("chat", "length", "incomplete"),
        ("chat", "content_filter", "incomplete"),
    ],
)
def test_runs_that_end_badly_exit_1_with_the_servers_reason(api, terminal, status):
    fault = Fault(kind="terminal", terminal=terminal, message="the server gave up", turn=0)
    with ScriptedServer([ScriptedTurn(text="never")], faults=[fault]) as server:
        r = flowrun(WEATHER, "--api", api, "--base-url", server.base_url, "-o", "jsonl", env=KEY)
    assert r.code == 1, r.err
    last = r.jsonl()[-1]
    assert last["type"] == "run.failed" and last["status"] == status


@pytest.mark.parametrize("api", APIS)
def test_an_error_event_mid_stream_fails_the_run_clearly(api):
    fault = Fault(kind="error_event", message="internal boom", turn=0, after=2)
    with ScriptedServer([ScriptedTurn(text="a long answer that will be cut")], faults=[fault]) as server:
        r = flowrun(WEATHER, "--api", api, "--base-url", server.base_url, env=KEY)
    assert r.code in (1, 3), r.err
    assert "internal boom" in r.err
    assert "Traceback" not in r.err


def test_no_key_and_no_server_says_what_to_do():
    r = flowrun(WEATHER)
    assert r.code == 3
    assert "OPENAI_API_KEY" in r.err and "--base-url" in r.err and "--offline" in r.err
    assert "Traceback" not in r.err


def test_unreachable_server_exits_3_in_one_line():
    r = flowrun(WEATHER, "--base-url", "http://127.0.0.1:9/v1", "--api", "chat", env=KEY)
    assert r.code == 3
    assert "Traceback" not in r.err
    assert "127.0.0.1:9" in r.err


def test_assistants_api_missing_on_server_exits_3_with_advice():
    # a server that answers 404 for /assistants, as OpenAI does since 2026-08-26
    fault = Fault(kind="http_error", status=404, api="assistants", match="/assistants", body={"error": {"message": "Invalid URL (POST /v1/assistants)", "type": "invalid_request_error", "param": None, "code": None}})
    with ScriptedServer([ScriptedTurn(text="x")], faults=[fault]) as server:
        r = flowrun(WEATHER, "--api", "assistants", "--base-url", server.base_url, env=KEY)
    assert r.code == 3, r.err
    assert "--api responses" in r.err


def test_invalid_workflow_exits_2_before_any_request(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nname: x\nmodel: {api: chat, name: m}\ntools:\n  - name: t\n    description: d\n    parameters: {type: object}\n    resolve: {statik: 1}\n")
    with ScriptedServer([ScriptedTurn(text="x")]) as server:
        r = flowrun(str(bad), "--base-url", server.base_url, env=KEY)
    assert r.code == 2
    assert f"{bad}:8:" in r.err
    assert server.requests == []


def test_var_and_message_options(tmp_path):
    wf = tmp_path / "greet.yaml"
    wf.write_text(
        "version: 1\nname: greet\nmodel: {api: chat, name: m}\n"
        "instructions: Greet people from ${{ inputs.city }}.\n"
        "input: Hello from ${{ inputs.city }}\n"
        "inputs:\n  city: {description: where, default: Rome}\n"
        "tools: []\n"
    )
    with ScriptedServer([ScriptedTurn(text="ciao")] * 3) as server:
        a = flowrun(str(wf), "--base-url", server.base_url, env=KEY)
        b = flowrun(str(wf), "--base-url", server.base_url, "--var", "city=Oslo", env=KEY)
        c = flowrun(str(wf), "--base-url", server.base_url, "-M", "Just hi", env=KEY)
        bad = flowrun(str(wf), "--base-url", server.base_url, "--var", "town=Oslo", env=KEY)
    assert a.code == b.code == c.code == 0, a.err + b.err + c.err
    users = [[m["content"] for m in r.body["messages"] if m["role"] == "user"][-1] for r in server.requests]
    systems = [[m["content"] for m in r.body["messages"] if m["role"] in ("system", "developer")][0] for r in server.requests]
    assert users == ["Hello from Rome", "Hello from Oslo", "Just hi"]
    assert systems[1] == "Greet people from Oslo."
    assert bad.code == 2 and "town" in bad.err
    typo = flowrun(str(wf), "--base-url", "http://127.0.0.1:9/v1", "--var", "cty=Oslo", env=KEY)
    assert typo.code == 2 and "did you mean 'city'?" in typo.err


def test_offline_demo_needs_no_key_and_says_so_loudly():
    r = flowrun(WEATHER, "--offline")
    assert r.code == 0, r.err
    assert "57" in r.out and "0.06" in r.out
    assert "OFFLINE" in r.err and "scripted" in r.err


def test_recorded_streams_replay_through_the_chat_path(recorded_dir, tmp_path):
    from runner.scripted import RawSSE

    body = (recorded_dir / "chat" / "two_parallel_tool_calls.sse").read_bytes()
    wf = tmp_path / "rec.yaml"
    wf.write_text(
        "version: 1\nname: rec\nmodel: {api: chat, name: gpt-4o-2024-08-06}\ninput: hi\ntools:\n"
        "  - name: GetWeatherArgs\n    description: w\n    parameters: {type: object, properties: {city: {type: string}, country: {type: string}, units: {type: string, enum: [c, f]}}}\n    resolve: {static: '12'}\n"
        "  - name: get_stock_price\n    description: s\n    parameters: {type: object, properties: {ticker: {type: string}, exchange: {type: string}}}\n    resolve: {static: '190'}\n"
    )
    with ScriptedServer([RawSSE(body), ScriptedTurn(text="ok")]) as server:
        r = flowrun(str(wf), "--base-url", server.base_url, "-o", "jsonl", env=KEY)
    assert r.code == 0, r.err
    req = [(e["call_id"], e["name"], json.loads(e["arguments"])) for e in r.jsonl() if e["type"] == "tool_call.requested"]
    assert req == [
        ("call_JMW1whyEaYG438VE1OIflxA2", "GetWeatherArgs", {"city": "Edinburgh", "country": "GB", "units": "c"}),
        ("call_DNYTawLBoN8fj3KN6qU9N1Ou", "get_stock_price", {"ticker": "AAPL", "exchange": "NASDAQ"}),
    ]
    assert submissions(server, "chat") == [{"call_JMW1whyEaYG438VE1OIflxA2": "12", "call_DNYTawLBoN8fj3KN6qU9N1Ou": "190"}]


def test_every_command_has_help_with_a_worked_example():
    from runner.cli import COMMANDS

    top = flowrun("--help")
    assert top.code == 0 and "flowrun workflows/weather.yaml --offline" in top.out
    for name in COMMANDS:
        r = flowrun(name, "--help")
        assert r.code == 0, (name, r.err)
        assert "Example" in r.out, name
        assert COMMANDS[name][2] in top.out


def test_help_and_validate_do_not_import_openai():
    """The backstop, in a real interpreter, of what test_layering.py reads from the source."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from runner.cli import main\n"
        "for args in (['--help'], ['validate', 'workflows/weather.yaml']):\n"
        "    try:\n        main(args)\n"
        "    except SystemExit:\n        pass\n"
        "    print(args[0], 'openai' in sys.modules, file=sys.stderr)\n"
    )
    err = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO).stderr
    assert err.splitlines()[-2:] == ["--help False", "validate False"], err


def test_an_unset_environment_variable_a_tool_needs_stops_the_run_before_any_request(tmp_path):
    wf = tmp_path / "env.yaml"
    wf.write_text(
        "version: 1\nname: e\nmodel: {api: chat, name: m}\ninput: hi\ntools:\n"
        "  - name: t\n    description: d\n    parameters: {type: object}\n"
        "    resolve: {static: 'key ${{ env.SERVICE_TOKEN }}'}\n"
    )
    with ScriptedServer([ScriptedTurn(text="x")]) as server:
        r = flowrun(str(wf), "--base-url", server.base_url, env=KEY)
        assert r.code == 2
        assert "SERVICE_TOKEN" in r.err and "not set" in r.err
        assert server.requests == []
        ok = flowrun(str(wf), "--base-url", server.base_url, env={**KEY, "SERVICE_TOKEN": "tok-123456"})
    assert ok.code == 0, ok.err


def test_responses_background_mode_resumes_a_cut_stream(tmp_path):
    wf = tmp_path / "bg.yaml"
    wf.write_text((REPO / WEATHER).read_text().replace("  temperature: 0.2\n", "  temperature: 0.2\n  background: true\n"))
    cut = Fault(kind="drop_after", turn=1, after=6, api="responses")
    with ScriptedServer(WEATHER_TURNS, faults=[cut]) as server:
        r = flowrun(str(wf), "--base-url", server.base_url, env=KEY)
        resumed = [q for q in server.requests if q.method == "GET" and "starting_after" in q.query]
    assert r.code == 0, r.err
    assert r.out == "It is 57°F; rain chance 0.06.\n"  # no text lost or repeated across the cut
    assert len(resumed) == 1
    assert sum(1 for q in server.requests if q.path.endswith("/responses") and q.method == "POST") == 2
