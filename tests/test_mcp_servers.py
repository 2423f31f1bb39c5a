"""MCP servers for real: the fixture server (tests/mcp_support, written with the SDK's server API)
over stdio and over streamable HTTP on 127.0.0.1, and the third-party reference server
mcp-server-time from PyPI, driven through the dispatcher, the CLI and a scripted model.

Every fault the issue lists is here: a server that exits mid-call, one that never answers, isError,
a huge result, a schema strict mode rejects, 200 tools, and a server that cannot start."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml
from click.testing import CliRunner

from support.mcp_files import HttpFixture, stdio_source, workflow
from runner.calls import ToolCall
from runner.cli import cli
from runner.errors import UsageError
from runner.calls import Approvals
from runner.tools.dispatcher import Dispatcher

YES = Approvals(yes=True)  # these tests are about MCP, not about approvals
from runner.tools.mcp_servers.manager import McpTools, McpUnavailable
from runner.workflow.validate import load_workflow

REPO = __import__("pathlib").Path(__file__).resolve().parents[1]


def invoke(*args: str, env: dict | None = None):
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


async def started(path, **kwargs) -> tuple[McpTools, list[tuple[str, str]]]:
    notes: list[tuple[str, str]] = []
    tools = McpTools(load_workflow(path), env=dict(os.environ), on_notice=lambda l, m: notes.append((l, m)), **kwargs)
    await tools.start()
    return tools, notes


def test_stdio_server_tools_and_every_fault(tmp_path):
    path = workflow(tmp_path, stdio_source(more="""\
        strict: true
        timeout: 30
        exclude: [env]
        overrides:
          hang: {timeout: 1.5, description: Waits forever.}
        """))

    async def scenario():
        mcp, notes = await started(path)
        dispatcher = Dispatcher(mcp.workflow, mcp=mcp, max_output_chars=1000, approvals=YES)
        tools = {t.name: t for t in dispatcher.workflow.tools}
        out = {}
        for name, args in [("echo", {"text": "hi"}), ("add", {"a": 1, "b": 2.5}), ("fail", {}), ("picture", {}),
                           ("huge", {"n": 300_000}), ("loose", {"query": "q", "limit": None, "tags": None, "mode": None}),
                           ("dotted_name", {}), ("echo", {"text": 5}), ("calls", {}), ("hang", {}), ("calls", {}),
                           ("crash", {}), ("echo", {"text": "after the crash"})]:
            result = await dispatcher.run_one(ToolCall("c", name, json.dumps(args)))
            out.setdefault(name, []).append((result.output, result.is_error))
        started_close = time.monotonic()
        await mcp.aclose()
        return tools, notes, out, time.monotonic() - started_close

    tools, notes, out, close_seconds = asyncio.run(scenario())
    assert sorted(tools) == ["add", "calls", "crash", "dotted_name", "echo", "fail", "hang", "huge", "loose", "picture"]
    assert tools["hang"].description == "Waits forever." and tools["hang"].timeout == 1.5
    assert tools["echo"].timeout == 30 and tools["echo"].strict is True
    loose = tools["loose"].parameters
    assert loose["additionalProperties"] is False and loose["required"] == ["query", "limit", "tags", "mode"]
    assert ("debug", "MCP tool 'dotted.name' of 'fx' is called 'dotted_name' (the APIs allow letters, digits, _ "
            "and -, at most 64)") in notes
    assert any(level == "debug" and "MCP tool 'loose': schema rewritten for the API: dropped $schema" in m
               for level, m in notes)
    assert out["echo"][0] == ("hi", False)
    assert out["add"] == [('{"sum":3.5}', False)]
    assert out["fail"] == [("error: the fixture always fails", True)]
    assert out["picture"] == [("a caption\n[image: image/png, 32 bytes]", False)]
    huge, is_error = out["huge"][0]
    assert not is_error and huge == "x" * 1000 + "…[truncated 299000 chars]"
    assert out["loose"] == [("args=query='q'", False)]  # the nulls strict mode asked for never reach the server
    assert out["dotted_name"] == [("dotted.name", False)]
    assert out["echo"][1][1] and "the arguments do not match the parameters of tool 'echo'" in out["echo"][1][0]
    first, second = (int(o.split()[0]) for o, _ in out["calls"])
    assert second == first + 2  # the same process answered before and after the hung call (counted too)
    assert out["hang"] == [("error: tool 'hang' timed out after 1.5 s", True)]
    crash, is_error = out["crash"][0]
    assert is_error and crash.startswith("error: MCP server 'fx' stopped during the call (")
    assert crash.endswith("its last stderr line: fixture: crashing on purpose")
    after, is_error = out["echo"][2]
    assert is_error and after.startswith("error: MCP server 'fx' is not running (")
    assert close_seconds < 30  # bounded even after a crash (a hang here would time the test out)


def test_two_hundred_tools_are_filtered(tmp_path):
    path = workflow(tmp_path, stdio_source("picked", extra_args='--many, "200"', more="""\
        include: [tool_007, echo]
        prefix: a_
        """) + stdio_source("everything", extra_args='--many, "200"', more="prefix: b_\n"))

    async def scenario():
        mcp, notes = await started(path)
        try:
            dispatcher = Dispatcher(mcp.workflow, mcp=mcp, approvals=YES)
            result = await dispatcher.run_one(ToolCall("c", "b_tool_199", "{}"))
            return [t.name for t in mcp.tools], notes, result
        finally:
            await mcp.aclose()

    names, notes, result = asyncio.run(scenario())
    assert names[:2] == ["a_echo", "a_tool_007"] or names[:2] == ["a_tool_007", "a_echo"]
    assert sorted(names[:2]) == ["a_echo", "a_tool_007"]
    assert len(names) == 2 + 211 and names[-1] == "b_tool_199"
    assert ("warning", "MCP server 'everything' offers 211 tools; a model chooses worse among many tools: list "
            "the ones it needs under include:") in notes
    assert not any("'picked' offers" in m for _, m in notes)
    assert (result.output, result.is_error) == ("tool_199", False)


def test_streamable_http_server_on_loopback(tmp_path, monkeypatch):
    server = HttpFixture()
    try:
        monkeypatch.setenv("FIXTURE_TOKEN", "tok-123456789-secret")
        path = workflow(tmp_path, f"""\
  - mcp:
      name: web
      url: {server.url}
      headers: {{Authorization: "Bearer ${{{{ env.FIXTURE_TOKEN }}}}"}}
      allow_private_network: true
    include: [echo, add]
  - mcp: {{name: guarded, url: "{server.url}"}}
""")

        async def scenario():
            wf = load_workflow(path)
            with pytest.raises(McpUnavailable) as refused:
                await McpTools(wf, env=dict(os.environ)).start()
            mcp = McpTools(wf, env=dict(os.environ), mocks={"guarded": {}})
            await mcp.start()
            try:
                dispatcher = Dispatcher(mcp.workflow, mcp=mcp, approvals=YES)
                echo = await dispatcher.run_one(ToolCall("c", "echo", '{"text": "over http"}'))
                add = await dispatcher.run_one(ToolCall("c", "add", '{"a": 2, "b": 3}'))
                return refused.value, [t.name for t in mcp.tools], echo, add
            finally:
                await mcp.aclose()

        refused, names, echo, add = asyncio.run(scenario())
    finally:
        server.stop()
    assert str(refused).startswith("MCP server 'guarded' did not start: host 127.0.0.1 is a loopback address; "
                                   "blocked (set allow_private_network: true under mcp: to allow it)")
    assert refused.exit_code == 3
    assert names == ["echo", "add"]
    assert (echo.output, echo.is_error) == ("over http", False)
    assert (add.output, add.is_error) == ('{"sum":5}', False)


def test_a_server_that_cannot_start_is_one_line_and_exit_3(tmp_path):
    path = workflow(tmp_path, stdio_source(extra_args="--fail-start"), tests="""\
tests:
  - name: t
    turns: [{tool_calls: [{name: echo, arguments: {text: x}}]}, {text: done}]
""")
    quiet = invoke(str(path), "--offline")
    assert quiet.exit_code == 3
    lines = [l for l in quiet.stderr.splitlines() if not l.startswith("flowrun: warning: OFFLINE")]
    assert lines[-1].startswith("flowrun: error: MCP server 'fx' did not start: ")
    assert lines[-1].endswith("(run with -v to see its stderr)")
    assert "cannot open the database" not in quiet.stderr
    verbose = invoke(str(path), "--offline", "-v")
    assert verbose.exit_code == 3
    assert "flowrun: debug: MCP server 'fx' stderr:" in verbose.stderr
    assert "fixture: cannot open the database /nonexistent/db.sqlite" in verbose.stderr
    runs = json.loads(invoke("logs", "--json").output)
    assert [r["exit_code"] for r in runs] == [3, 3]
    quiet_run = runs[-1]
    shown = invoke("logs", "show", quiet_run["run_id"])
    assert "fixture: cannot open the database /nonexistent/db.sqlite" in shown.output + shown.stderr


def test_offline_runs_on_all_three_apis_and_record_keeps_mcp_outputs(tmp_path):
    path = workflow(tmp_path, stdio_source(more="include: [echo, add, fail, picture]\nprefix: fx_\n"), tests="""\
tests:
  - name: four calls in one turn
    turns:
      - tool_calls:
          - {name: fx_echo, arguments: {text: hello}}
          - {name: fx_add, arguments: {a: 1, b: 2}}
          - {name: fx_fail}
          - {name: fx_picture}
      - text: "sum ${{ outputs.fx_add }}"
    expect:
      outputs:
        fx_echo: {equals: hello}
        fx_add: {json: {pointer: /sum, equals: 3}}
        fx_fail: {equals: "error: the fixture always fails"}
        fx_picture: {contains: "[image: image/png"}
      final_text: {equals: 'sum {"sum":3}'}
      error_outputs: [fx_fail]
""")
    tested = invoke("test", str(path), "--api", "all")
    assert tested.exit_code == 0, tested.output + tested.stderr
    assert "3 passed, 0 failed" in tested.output
    recorded = tmp_path / "mcp_test.test.yaml"
    run = invoke(str(path), "--offline", "--record", str(recorded))
    assert run.exit_code == 0, run.stderr
    case = yaml.safe_load(recorded.read_text())["tests"][0]
    assert case["mock_mcp"] == {"fx": {
        "fx_echo": {"text": "hello"}, "fx_add": {"text": '{"sum":3}'},
        "fx_fail": {"text": "the fixture always fails", "is_error": True},
        "fx_picture": {"text": "a caption\n[image: image/png, 32 bytes]"}}}
    replay = invoke("test", str(recorded))
    assert replay.exit_code == 0, replay.output + replay.stderr
    assert "2 passed, 0 failed" in replay.output  # the workflow's own case and the recorded one


def test_third_party_time_server_end_to_end_on_all_three_apis():
    tested = invoke("test", str(REPO / "workflows" / "world_time.yaml"), "--api", "all")
    assert tested.exit_code == 0, tested.output + tested.stderr
    assert "6 passed, 0 failed" in tested.output
    listed = invoke("tools", "list", str(REPO / "workflows" / "world_time.yaml"))
    assert listed.exit_code == 0, listed.stderr
    assert listed.output.splitlines()[0].split()[:2] == ["time_get_current_time", "mcp:time"]
    called = invoke("tools", "call", str(REPO / "workflows" / "world_time.yaml"), "time_convert_time", "--args",
                    '{"source_timezone": "Asia/Tokyo", "time": "09:30", "target_timezone": "Asia/Kolkata"}')
    assert called.exit_code == 0, called.stderr
    assert json.loads(called.output)["target"]["datetime"].endswith("T06:00:00+05:30")


def test_validate_resolve_tools_call_and_the_trust_switch(tmp_path):
    path = workflow(tmp_path, stdio_source(more="include: [echo, ech0]\noverrides: {ech0: {timeout: 2}}\n"))
    checked = invoke("validate", "--resolve", str(path))
    assert checked.exit_code == 2
    assert f"{path}:9:21: MCP server 'fx' has no tool 'ech0' (did you mean 'echo'?) (where: $.tools[0].include[1])" \
        in checked.stderr
    assert "(where: $.tools[0].overrides.ech0)" in checked.stderr
    assert invoke("validate", str(path)).exit_code == 0  # without --resolve nothing is started
    refused = invoke("tools", "call", str(path), "echo", "--no-local-code")
    assert refused.exit_code == 2
    assert "MCP server 'fx' runs a local command" in refused.stderr and "--no-local-code" in refused.stderr
    assert invoke("tools", "call", str(path), "echo", "--no-python").exit_code == 2
    good = workflow(tmp_path, stdio_source(more="include: [echo]\n"), name="good")
    called = invoke("tools", "call", str(good), "echo", "--args", '{"text": "straight"}')
    assert (called.exit_code, called.output) == (0, "straight\n")


def test_batch_shares_one_server_across_its_runs(tmp_path):
    path = workflow(tmp_path, stdio_source(more="include: [calls]\n"), tests="""\
tests:
  - name: t
    turns: [{tool_calls: [{name: calls}]}, {text: done}]
""")
    inputs = tmp_path / "in.jsonl"
    inputs.write_text("".join(json.dumps({"message": f"m{i}"}) + "\n" for i in range(4)))
    out = tmp_path / "out.jsonl"
    result = invoke("batch", str(path), "--inputs", str(inputs), "--out", str(out), "--offline", "-c", "2")
    assert result.exit_code == 0, result.stderr
    outputs = [json.loads(line)["tool_calls"][0]["output"] for line in out.read_text().splitlines()]
    counts = sorted(int(o.split()[0]) for o in outputs)
    assert counts == [1, 2, 3, 4]
    assert len({o.split()[1] for o in outputs}) == 1  # one server process answered every run


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_during_a_call_stops_the_server(tmp_path):
    pid_file = tmp_path / "server.pid"
    path = workflow(tmp_path, stdio_source(more="include: [hang]\ntimeout: 600\n").replace(
        "      args:", "      env: [FIXTURE_PID_FILE]\n      args:"), tests="""\
tests:
  - name: t
    turns: [{tool_calls: [{name: hang}]}, {text: never}]
""")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env["FIXTURE_PID_FILE"] = str(pid_file)
    proc = subprocess.Popen([sys.executable, "-m", "runner", str(path), "--offline", "--no-log"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        deadline = time.monotonic() + 120
        while not pid_file.exists() or not pid_file.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() is not None else "slow start"
            time.sleep(0.2)
        server_pid = int(pid_file.read_text())
        time.sleep(3)  # the server lists its tools and the scripted model asks for the hanging call
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    for _ in range(50):
        try:
            os.kill(server_pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the MCP server (pid {server_pid}) outlived the run")


def test_a_server_that_never_answers_at_start_times_out(tmp_path):
    path = workflow(tmp_path, f"""\
  - mcp:
      name: mute
      command: {sys.executable}
      args: ["-c", "import sys, time; sys.stderr.write('mute: listening to nobody\\\\n'); sys.stderr.flush(); time.sleep(600)"]
      startup_timeout: 2
""")

    async def scenario():
        started_at = time.monotonic()
        with pytest.raises(McpUnavailable) as failed:
            await McpTools(load_workflow(path), env=dict(os.environ)).start()
        return failed.value, time.monotonic() - started_at

    failure, seconds = asyncio.run(scenario())
    assert str(failure).startswith("MCP server 'mute' did not start: did not answer within 2 s (startup_timeout)")
    assert failure.stderr in ("", "mute: listening to nobody\n")  # what it wrote before the deadline, if anything
    assert seconds < 60  # the process was stopped, not waited for
