"""Run policies (``policies:`` in the file, ``--policy NAME=VALUE``): a tool error that fails the
run, an empty answer that fails it (the default) or only warns, a call to an unknown tool that is
fatal before any tool of its round runs. Through the real CLI on all three APIs, ``flowrun test``,
``batch`` and the validator."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from support.cli import flowrun
from support.events import check_event
from support.reliability import APIS, ENV, completed, logged_run, notes, python_tool, submissions, write_workflow
from runner.calls import ToolCall, ToolResult
from runner.events import RunCompleted, RunFailed
from runner.providers.base import TurnResult
from runner.run.loop import RunLoop
from runner.scripted import ScriptedServer
from runner.workflow.model import POLICY_CHOICES, RunPolicies, ScriptedCall, ScriptedTurn, Workflow, ModelSpec
from runner.workflow.schema_check import workflow_schema

NOTE = python_tool("note", "note", params="{type: object, properties: {text: {type: string}}}")
BOOM = python_tool("boom", "boom", params="{type: object, properties: {why: {type: string}}}")
TOOLS = NOTE + BOOM


def workflow(tmp_path: Path, policies: str = "", api: str = "chat") -> Path:
    """A workflow with ``note`` (records that it ran) and ``boom`` (raises), and ``policies``
    (YAML lines under ``policies:``) if given."""
    path = write_workflow(tmp_path, TOOLS, api=api)
    if policies:
        path.write_text(path.read_text().replace("input: hi\n", "input: hi\npolicies:\n" + policies))
    return path


def cancelled_on_server(server) -> bool:
    return any(r.method == "POST" and r.path.endswith("/cancel") for r in server.requests)


def round_of(*calls: tuple[str, dict]) -> ScriptedTurn:
    return ScriptedTurn(tool_calls=tuple(ScriptedCall(name, args) for name, args in calls))


# --- on_tool_error ----------------------------------------------------------------------------

@pytest.mark.parametrize("api", APIS)
def test_on_tool_error_fail_ends_the_run_after_the_round_and_sends_nothing_back(api, tmp_path):
    path = workflow(tmp_path, "  on_tool_error: fail\n")
    turns = [round_of(("note", {"text": "a"}), ("boom", {"why": "db down"})), ScriptedTurn(text="never")]
    with ScriptedServer(turns) as server:
        r = flowrun(str(path), "--api", api, "--base-url", server.base_url, "-o", "jsonl", env=ENV)
    assert r.code == 1, r.err
    events = r.jsonl()
    for ev in events:
        check_event(ev)
    end = events[-1]
    assert end["type"] == "run.failed" and end["status"] == "tool_error" and end["exit_code"] == 1
    assert end["message"] == ("tool 'boom' failed, and policies say on_tool_error: fail, so the run stops without "
                              "sending the outputs to the model: error: the tool raised ValueError: db down")
    assert [(e["name"], e["is_error"]) for e in completed(events)] == [("note", False), ("boom", True)]
    assert notes(tmp_path) == ["a"]  # the round's other call ran to its end
    assert submissions(server, api) == []  # nothing went back to the model
    assert len([q for q in server.requests if q.turn_index is not None]) == 1  # no second turn
    if api == "assistants":
        assert cancelled_on_server(server)  # the server's run does not wait for outputs that never come
    assert logged_run(end["run_id"])["status"] == "tool_error"


@pytest.mark.parametrize("api", APIS)
def test_by_default_a_tool_error_goes_to_the_model(api, tmp_path):
    path = workflow(tmp_path)
    turns = [round_of(("boom", {"why": "db down"})), ScriptedTurn(text="sorry: ${{ outputs.boom }}")]
    with ScriptedServer(turns) as server:
        r = flowrun(str(path), "--api", api, "--base-url", server.base_url, env=ENV)
    assert r.code == 0, r.err
    assert r.out == "sorry: error: the tool raised ValueError: db down\n"
    assert len(submissions(server, api)) == 1


def test_the_terminal_names_the_tool_and_its_error(tmp_path):
    path = workflow(tmp_path, "  on_tool_error: fail\n")
    with ScriptedServer([round_of(("boom", {"why": "disk full"}))]) as server:
        r = flowrun(str(path), "--base-url", server.base_url, env=ENV)
    assert r.code == 1 and r.out == ""
    assert ("flowrun: error: tool 'boom' failed, and policies say on_tool_error: fail, so the run stops without "
            "sending the outputs to the model: error: the tool raised ValueError: disk full") in r.err
    assert "tool_error · 1 turn · 1 tool call" in r.err


def test_several_failing_calls_are_counted_and_the_first_is_quoted(tmp_path):
    path = workflow(tmp_path, "  on_tool_error: fail\n")
    turns = [round_of(("boom", {"why": "first"}), ("note", {}), ("boom", {"why": "second"}), ("nope", {}))]
    with ScriptedServer(turns) as server:
        r = flowrun(str(path), "--base-url", server.base_url, "-o", "jsonl", env=ENV)
    end = r.jsonl()[-1]
    assert r.code == 1 and end["status"] == "tool_error"
    # an unknown tool's error output counts too when on_unknown_tool stays continue
    assert end["message"].startswith("tool 'boom' failed, and policies say on_tool_error: fail, so the run stops "
                                     "without sending the outputs to the model (2 more calls of that round "
                                     "failed too: 'boom', 'nope'): error: the tool raised ValueError: first")


def test_a_long_error_output_is_cut_in_the_message(tmp_path):
    path = workflow(tmp_path, "  on_tool_error: fail\n")
    with ScriptedServer([round_of(("boom", {"why": "x" * 5000}))]) as server:
        r = flowrun(str(path), "--base-url", server.base_url, "-o", "jsonl", env=ENV)
    end = r.jsonl()[-1]
    assert end["status"] == "tool_error"
    assert end["message"].endswith("x…") and len(end["message"]) < 700
    done = completed(r.jsonl())[0]
    assert len(done["output"]) > 2000  # the tool call's own output keeps what the dispatcher kept


def test_a_secret_in_the_error_is_masked_in_the_message(tmp_path):
    (tmp_path / "tools.py").write_text("import os\ndef leak():\n    raise RuntimeError('token ' + os.environ['SVC_TOKEN'])\n")
    path = tmp_path / "wf.yaml"
    path.write_text("version: 1\nname: m\nmodel: {api: chat, name: m}\ninput: hi\npolicies: {on_tool_error: fail}\n"
                    "tools:\n  - name: leak\n    description: d\n    resolve: {python: 'tools:leak'}\n"
                    "  - name: uses_token\n    description: d\n    resolve: {static: '${{ env.SVC_TOKEN }}'}\n")
    with ScriptedServer([round_of(("leak", {}))]) as server:
        r = flowrun(str(path), "--base-url", server.base_url, "-o", "jsonl", env={**ENV, "SVC_TOKEN": "s3cr3t-value-123"})
    assert r.code == 1
    assert r.jsonl()[-1]["message"].endswith("error: the tool raised RuntimeError: token ***")
    assert "s3cr3t-value-123" not in r.out + r.err


@pytest.mark.parametrize("file_says,flag,status", [
    ("", "on_tool_error=fail", "tool_error"),  # the flag turns it on for this run
    ("  on_tool_error: fail\n", "on_tool_error=continue", "completed"),  # and off again over the file
])
def test_policy_flag_overrides_the_file(tmp_path, file_says, flag, status):
    path = workflow(tmp_path, file_says)
    with ScriptedServer([round_of(("boom", {})), ScriptedTurn(text="recovered")]) as server:
        r = flowrun(str(path), "--base-url", server.base_url, "--policy", flag, "-o", "jsonl", env=ENV)
    assert r.jsonl()[-1]["status"] == status
    assert r.code == (0 if status == "completed" else 1)


@pytest.mark.parametrize("api", APIS)
def test_a_call_refused_by_an_approval_is_not_a_tool_error(api, tmp_path):
    """on_tool_error: fail, and the one call of the round is refused (--deny): the model is told
    and the run goes on to its answer."""
    path = workflow(tmp_path, "  on_tool_error: fail\n")
    path.write_text(path.read_text().replace("  - name: note\n", "  - name: note\n    approval: ask\n"))
    turns = [round_of(("note", {"text": "x"})), ScriptedTurn(text="told: ${{ outputs.note }}")]
    with ScriptedServer(turns) as server:
        r = flowrun(str(path), "--api", api, "--base-url", server.base_url, "--deny", "note", "-o", "jsonl", env=ENV)
    assert r.code == 0, r.err
    end = r.jsonl()[-1]
    assert end["status"] == "completed" and end["final_text"].startswith("told: error: tool 'note' was not run")
    assert notes(tmp_path) == []
    assert len(submissions(server, api)) == 1


class _Provider:
    """A provider that asks for ``calls`` once, then answers "done"; records what it got back."""

    api = "chat"

    def __init__(self, calls):
        self.calls = calls
        self.submitted = []
        self.cancelled = False

    async def send_message(self, text):
        yield TurnResult(status="tool_calls", tool_calls=tuple(self.calls))

    async def submit_tool_outputs(self, results):
        self.submitted.append(list(results))
        yield TurnResult(status="completed", text="done")

    async def cancel(self):
        self.cancelled = True


class _Dispatcher:
    """Answers every call with what ``answer(call)`` gives, as the dispatcher would."""

    def __init__(self, answer):
        self.answer = answer
        self.workflow = Workflow(path=Path("x.yaml"), name="x", model=ModelSpec(), tools=())

    async def run_all(self, calls, *, on_start=None, on_done=None, deadline=None):
        return [self.answer(c) for c in calls]


def drive(calls, answer, policies: RunPolicies):
    provider = _Provider(calls)
    events = []
    loop = RunLoop(provider, _Dispatcher(answer), events.append, run_id="run_x", policies=policies)
    end = asyncio.run(loop.run("hi"))
    return end, provider


def test_a_refused_call_is_not_a_tool_error():
    """A call the approval gate refused goes to the model (it is told why), whatever on_tool_error says."""
    refused = lambda c: ToolResult(c.call_id, c.name, "error: not approved: the user said no", True, 0.0, refused=True)  # noqa: E731
    end, provider = drive([ToolCall("c1", "send_email", "{}")], refused, RunPolicies(on_tool_error="fail"))
    assert isinstance(end, RunCompleted) and end.final_text == "done"
    assert provider.submitted[0][0].refused and not provider.cancelled


def test_an_error_that_is_not_a_refusal_fails_the_run_in_the_same_loop():
    failed = lambda c: ToolResult(c.call_id, c.name, "error: boom", True, 0.0)  # noqa: E731
    end, provider = drive([ToolCall("c1", "send_email", "{}")], failed, RunPolicies(on_tool_error="fail"))
    assert isinstance(end, RunFailed) and end.status == "tool_error"
    assert provider.submitted == [] and provider.cancelled


# --- on_unknown_tool ----------------------------------------------------------------------------

@pytest.mark.parametrize("api", APIS)
def test_on_unknown_tool_fail_stops_before_any_tool_of_the_round_runs(api, tmp_path):
    path = workflow(tmp_path, "  on_unknown_tool: fail\n")
    turns = [round_of(("note", {"text": "must not run"}), ("bom", {})), ScriptedTurn(text="never")]
    with ScriptedServer(turns) as server:
        r = flowrun(str(path), "--api", api, "--base-url", server.base_url, "-o", "jsonl", env=ENV)
    assert r.code == 1, r.err
    events = r.jsonl()
    end = events[-1]
    assert end["status"] == "unknown_tool"
    assert end["message"] == ("the model called 'bom' (did you mean 'boom'?), which the workflow does not have, and "
                              "policies say on_unknown_tool: fail, so the run stops before any tool of that round "
                              "runs. The tools are: note, boom")
    assert notes(tmp_path) == []  # the known tool of the same round never ran
    assert [e["name"] for e in events if e["type"] == "tool_call.requested"] == ["note", "bom"]
    assert not any(e["type"] == "tool_call.completed" for e in events)
    assert submissions(server, api) == []
    if api == "assistants":
        assert cancelled_on_server(server)


def test_an_unknown_tool_stops_the_round_before_anyone_is_asked_to_approve(tmp_path):
    path = workflow(tmp_path, "  on_unknown_tool: fail\n")
    path.write_text(path.read_text().replace("  - name: note\n", "  - name: note\n    approval: ask\n"))
    with ScriptedServer([round_of(("note", {}), ("nope", {}))]) as server:
        r = flowrun(str(path), "--base-url", server.base_url, "--yes", "-o", "jsonl", env=ENV)
    events = r.jsonl()
    assert r.code == 1 and events[-1]["status"] == "unknown_tool"
    assert not [e for e in events if e["type"].startswith("approval.")]
    assert notes(tmp_path) == []


def test_an_unknown_tool_goes_to_the_model_by_default(tmp_path):
    path = workflow(tmp_path)
    with ScriptedServer([round_of(("bom", {})), ScriptedTurn(text="ok")]) as server:
        r = flowrun(str(path), "--base-url", server.base_url, "-o", "jsonl", env=ENV)
    assert r.code == 0, r.err
    done = completed(r.jsonl())
    assert done[0]["is_error"] and "there is no tool named 'bom'" in done[0]["output"]


def test_a_call_with_no_name_counts_as_unknown(tmp_path):
    path = workflow(tmp_path)
    with ScriptedServer([round_of(("  ", {})), ScriptedTurn(text="ok")]) as server:
        r = flowrun(str(path), "--base-url", server.base_url, "--policy", "on_unknown_tool=fail", "-o", "jsonl", env=ENV)
    end = r.jsonl()[-1]
    assert r.code == 1 and end["status"] == "unknown_tool"
    assert end["message"].startswith("the model called a tool with no name, which the workflow does not have")


# --- on_empty_answer ----------------------------------------------------------------------------

@pytest.mark.parametrize("api", APIS)
def test_an_empty_answer_fails_the_run_by_default(api, tmp_path):
    path = workflow(tmp_path)
    with ScriptedServer([round_of(("note", {})), ScriptedTurn(text="")]) as server:
        r = flowrun(str(path), "--api", api, "--base-url", server.base_url, env=ENV)
    assert r.code == 1 and r.out == ""
    assert ("flowrun: error: the model ended the run without an answer: its last turn had no text (after 1 tool "
            "call). To let such a run complete with a warning instead, set policies: on_empty_answer: warn (or run "
            "with --policy on_empty_answer=warn)") in r.err
    assert "empty_answer · 2 turns · 1 tool call" in r.err
    assert logged_run()["status"] == "empty_answer"


@pytest.mark.parametrize("api", APIS)
def test_on_empty_answer_warn_completes_with_a_warning(api, tmp_path):
    path = workflow(tmp_path, "  on_empty_answer: warn\n")
    with ScriptedServer([ScriptedTurn(text="   ")]) as server:
        r = flowrun(str(path), "--api", api, "--base-url", server.base_url, env=ENV)
    assert r.code == 0, r.err
    assert "flowrun: warning: the run completed with no text and no tool call: the model gave an empty answer" in r.err


def test_whitespace_is_no_answer_and_the_jsonl_end_says_why(tmp_path):
    path = workflow(tmp_path)
    with ScriptedServer([ScriptedTurn(text=" \n ")]) as server:
        r = flowrun(str(path), "--base-url", server.base_url, "-o", "jsonl", env=ENV)
    end = r.jsonl()[-1]
    check_event(end)
    assert end["type"] == "run.failed" and end["status"] == "empty_answer" and end["exit_code"] == 1
    assert end["message"].startswith("the model ended the run without an answer: no text and no tool call.")


# --- the command line and the file ----------------------------------------------------------------

@pytest.mark.parametrize("flag,says", [
    ("on_tool_eror=fail", "flowrun: error: --policy: there is no policy 'on_tool_eror' (did you mean 'on_tool_error'?)\n"
                          "  hint: the policies are on_tool_error, on_empty_answer, on_unknown_tool\n"),
    ("on_tool_error=stpo", "flowrun: error: --policy: on_tool_error cannot be 'stpo'\n"
                           "  hint: write --policy on_tool_error=continue or --policy on_tool_error=fail\n"),
    ("on_empty_answer=wran", "flowrun: error: --policy: on_empty_answer cannot be 'wran' (did you mean 'warn'?)\n"
                             "  hint: write --policy on_empty_answer=fail or --policy on_empty_answer=warn\n"),
    ("fail", "flowrun: error: --policy 'fail' is not NAME=VALUE\n  hint: write it as --policy on_tool_error=fail\n"),
])
def test_a_bad_policy_flag_is_exit_2_before_anything_is_sent(tmp_path, flag, says):
    path = workflow(tmp_path)
    with ScriptedServer([ScriptedTurn(text="hi")]) as server:
        r = flowrun(str(path), "--base-url", server.base_url, "--policy", flag, env=ENV)
    assert r.code == 2
    assert r.err == says
    assert server.requests == []


def test_validate_explains_policy_mistakes_with_line_and_column(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("version: 1\nname: p\npolicies:\n  on_tool_eror: fail\n  on_empty_answer: fial\n"
                    "  on_unknown_tool: yes\n")
    r = flowrun("validate", str(path))
    assert r.code == 2
    assert r.err.splitlines()[0::3] == [
        f"{path}:4:3: unknown key 'on_tool_eror' (did you mean 'on_tool_error'?) (where: $.policies.on_tool_eror) "
        "-- allowed keys here: on_tool_error, on_empty_answer, on_unknown_tool",
        f"{path}:5:20: must be one of fail, warn (got 'fial'); did you mean 'fail'? (where: $.policies.on_empty_answer) "
        "-- write on_empty_answer: fail or on_empty_answer: warn",
        f"{path}:6:20: must be one of continue, fail (got 'yes') (where: $.policies.on_unknown_tool) "
        "-- write on_unknown_tool: continue or on_unknown_tool: fail",
        f"{path}: invalid (3 errors)",
    ]


def test_a_misspelt_policies_key_is_named(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("version: 1\nname: p\npolicy:\n  on_tool_error: fail\n")
    r = flowrun("validate", str(path))
    assert r.code == 2
    assert r.err.startswith(f"{path}:3:1: unknown key 'policy' (did you mean 'policies'?) (where: $.policy)")


def test_the_schema_and_the_runner_know_the_same_policies():
    spec = workflow_schema()["$defs"]["policies"]["properties"]
    assert {name: tuple(p["enum"]) for name, p in spec.items()} == POLICY_CHOICES
    assert {name: p["default"] for name, p in spec.items()} == {n: v[0] for n, v in POLICY_CHOICES.items()}
    assert RunPolicies() == RunPolicies(**{n: v[0] for n, v in POLICY_CHOICES.items()})


def test_a_valid_policies_section_reaches_the_workflow(tmp_path):
    from runner.workflow.validate import load_workflow

    path = workflow(tmp_path, "  on_tool_error: fail\n  on_empty_answer: warn\n  on_unknown_tool: fail\n")
    assert load_workflow(path).policies == RunPolicies("fail", "warn", "fail")
    assert load_workflow(workflow(tmp_path)).policies == RunPolicies()


def test_logs_filter_by_a_policy_status(tmp_path):
    path = workflow(tmp_path, "  on_tool_error: fail\n")
    with ScriptedServer([round_of(("boom", {}))]) as server:
        assert flowrun(str(path), "--base-url", server.base_url, env=ENV).code == 1
    listing = flowrun("logs", "--status", "tool_error")
    assert listing.code == 0 and "tool_error" in listing.out, listing.out + listing.err


# --- flowrun test and batch -------------------------------------------------------------------

CASES = """\
tests:
  - name: a tool error fails the run
    turns:
      - tool_calls: [{name: boom, arguments: {why: quota}}]
      - text: never reached
    expect:
      status: tool_error
      error_outputs: [boom]
  - name: an unknown tool is fatal
    turns:
      - tool_calls: [{name: note}, {name: nope}]
    expect:
      status: unknown_tool
  - name: an empty answer fails
    turns:
      - text: ""
    expect:
      status: empty_answer
"""


def test_flowrun_test_runs_cases_under_the_files_policies(tmp_path):
    path = workflow(tmp_path, "  on_tool_error: fail\n  on_unknown_tool: fail\n")
    path.write_text(path.read_text() + CASES)
    r = flowrun("test", str(path), "--api", "all")
    assert r.code == 0, r.out + r.err
    assert r.out.splitlines()[-1] == "9 passed, 0 failed"
    assert notes(tmp_path) == []  # 'note' never ran: the unknown tool stopped its round first


def test_flowrun_test_reports_a_policy_failure_the_case_did_not_expect(tmp_path):
    path = workflow(tmp_path, "  on_tool_error: fail\n")
    path.write_text(path.read_text() + "tests:\n  - name: hoped to recover\n    turns:\n"
                    "      - tool_calls: [{name: boom, arguments: {why: quota}}]\n      - text: recovered\n"
                    "    expect:\n      error_outputs: [boom]\n")
    r = flowrun("test", str(path))
    assert r.code == 1
    assert "status: expected 'completed'" in r.out
    assert "got      'tool_error'" in r.out
    assert ("(tool 'boom' failed, and policies say on_tool_error: fail, so the run stops without sending the "
            "outputs to the model: error: the tool raised ValueError: quota)") in r.out


def test_batch_takes_the_policy_flag_for_every_run(tmp_path):
    path = workflow(tmp_path)
    inputs = tmp_path / "in.jsonl"
    inputs.write_text('{"message": "a"}\n{"message": "b"}\n')
    out = tmp_path / "out.jsonl"
    with ScriptedServer(lambda ctx: ScriptedTurn(text="")) as server:
        strict = flowrun("batch", str(path), "--inputs", str(inputs), "--out", str(out), "--base-url",
                         server.base_url, env=ENV)
        assert strict.code == 1
        assert [json.loads(line)["status"] for line in out.read_text().splitlines()] == ["empty_answer"] * 2
        out.unlink()
        lenient = flowrun("batch", str(path), "--inputs", str(inputs), "--out", str(out), "--base-url",
                          server.base_url, "--policy", "on_empty_answer=warn", env=ENV)
    assert lenient.code == 0, lenient.err
    assert [json.loads(line)["status"] for line in out.read_text().splitlines()] == ["completed"] * 2
    assert re.search(r"2 inputs: 2 completed, 0 failed", lenient.err)


def test_an_mcp_servers_tool_is_not_unknown():
    r = flowrun("workflows/world_time.yaml", "--offline", "--policy", "on_unknown_tool=fail", "-o", "jsonl")
    assert r.code == 0, r.err
    assert r.jsonl()[-1]["status"] == "completed"
    assert any(e["type"] == "tool_call.completed" and e["name"].startswith("time_") for e in r.jsonl())


def test_the_unknown_tool_message_stays_short_with_a_hostile_name_and_many_tools():
    from runner.run.policies import unknown_tool_failure

    message = unknown_tool_failure(["x" * 5000, "y"], [f"tool_{i}" for i in range(45)])
    assert message.startswith("the model called '" + "x" * 100 + "…', 'y', which the workflow does not have")
    assert message.endswith("tool_28, tool_29 and 15 more")
    assert len(message) < 800
