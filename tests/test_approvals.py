"""Ask before a tool acts: the file's policy, the command line's answers, and what happens
without a terminal, through the real CLI on all three APIs against a real loopback Petstore
(the tool must not reach it unless approved) and the scripted model server (which must receive
each refusal as the tool's output)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.cli import flowrun
from support.petstore_server import PetstoreServer
from support.pets_workflow import petstore_workflow
from runner.scripted import ScriptedServer
from runner.tools.approval_policy import kind_default, matches, verdict
from runner.workflow.model import (
    ApprovalRule,
    ApprovalSpec,
    HttpResolver,
    McpResolver,
    PythonResolver,
    ScriptedCall,
    ScriptedTurn,
    StaticResolver,
    ToolSpec,
)

APIS = ["responses", "chat", "assistants"]
KEY = {"OPENAI_API_KEY": "sk-test-approvals"}


def tool(resolver=None, approval=None, read_only=None, name="t") -> ToolSpec:
    return ToolSpec(name, "d", {"type": "object"}, resolver or StaticResolver("x"), approval=approval,
                    read_only=read_only)


# --- the policy -----------------------------------------------------------------------------------


@pytest.mark.parametrize("resolver, read_only, expected", [
    (StaticResolver("x"), None, "allow"),
    (PythonResolver("m:f"), None, "allow"),
    (HttpResolver("https://a.example/x"), None, "allow"),
    (HttpResolver("https://a.example/x", method="head"), None, "allow"),
    (HttpResolver("https://a.example/x", method="POST"), None, "ask"),
    (HttpResolver("https://a.example/x", method="DELETE"), None, "ask"),
    (McpResolver("s", "t"), True, "allow"),
    (McpResolver("s", "t"), False, "ask"),
])
def test_tools_that_only_read_run_and_the_others_ask(resolver, read_only, expected):
    assert kind_default(tool(resolver, read_only=read_only))[0] == expected


def test_the_tool_then_the_file_then_the_kind_decide_when_no_rule_matches():
    post = HttpResolver("https://a.example/x", method="POST")

    class File:
        approval = "deny"

    assert verdict(tool(post), {}).action == "ask"
    assert verdict(tool(post), {}, File()).action == "deny"
    assert verdict(tool(post, ApprovalSpec(default="allow")), {}, File()).action == "allow"
    assert verdict(tool(StaticResolver("x")), {}, File()).action == "deny"


def test_deny_rules_win_over_an_earlier_allow_and_otherwise_the_first_match_wins():
    spec = ApprovalSpec(default="ask", rules=(
        ApprovalRule("allow", {"path": "tmp/**"}),
        ApprovalRule("deny", {"path": "tmp/secret/*"}),
        ApprovalRule("ask", {"path": "tmp/*"}),
    ))
    t = tool(approval=spec, name="delete_file")
    assert verdict(t, {"path": "tmp/secret/key"}).action == "deny"
    assert verdict(t, {"path": "tmp/secret/key"}).why == "rule 2 of tool 'delete_file' (deny path: \"tmp/secret/*\")"
    assert verdict(t, {"path": "tmp/a.txt"}).action == "allow"  # rule 1 before rule 3
    assert verdict(t, {"path": "home/a.txt"}) .action == "ask"
    assert verdict(t, {"path": "home/a.txt"}).by == "default"


@pytest.mark.parametrize("value, hit", [
    ("tmp/a.txt", True),
    ("tmp/a/b.txt", False),  # * stays inside one segment
    ("tmp/../etc/passwd", False),  # never walked out of
    ("tmp/..", False),
    ("tmp/a\nb", False),  # no control characters
    ("TMP/a.txt", False),  # case matters
    ("tmp/", True),
])
def test_star_stays_in_one_segment_and_traversal_never_matches(value, hit):
    assert matches(ApprovalRule("allow", {"path": "tmp/*"}), {"path": value}) is hit


def test_a_negated_pattern_refuses_what_is_outside_and_what_is_disguised():
    rule = ApprovalRule("deny", {"to": "!*@example.com"})
    assert not matches(rule, {"to": "bob@example.com"})
    assert matches(rule, {"to": "eve@evil.test"})
    assert matches(rule, {"to": "bob@example.com\r\nBcc: eve@evil.test"})
    assert matches(rule, {})  # no address given: not inside the domain either
    assert matches(rule, {"to": ["bob@example.com"]})  # not text: not the pattern


def test_pointers_lists_numbers_and_booleans_match_exactly():
    assert matches(ApprovalRule("allow", {"/to/0/email": "*@example.com"}), {"to": [{"email": "a@example.com"}]})
    assert not matches(ApprovalRule("allow", {"/to/1/email": "*@example.com"}), {"to": [{"email": "a@example.com"}]})
    assert matches(ApprovalRule("allow", {"amount": [1, 2, 3]}), {"amount": 2})
    assert not matches(ApprovalRule("allow", {"amount": 1}), {"amount": True})
    assert not matches(ApprovalRule("allow", {"force": True}), {"force": 1})
    assert matches(ApprovalRule("allow", {"force": False}), {"force": False})
    assert not matches(ApprovalRule("allow", {"amount": "1"}), {"amount": 1})


# --- the file -------------------------------------------------------------------------------------


@pytest.mark.parametrize("approval,where,says", [
    ("    approval: sometimes\n", ":6:15", "allow, ask or deny"),  # a misspelled approval, where it is
    ("    approval:\n      rules:\n        - {allow: {p: a}, deny: {p: b}}\n", ":8:", ""),  # a rule with two actions
])
def test_a_wrong_approval_is_refused_where_it_is(tmp_path, approval, where, says):
    path = tmp_path / "w.yaml"
    path.write_text("version: 1\nname: w\ntools:\n  - name: t\n    description: d\n" + approval
                    + "    resolve: {static: x}\n")
    result = flowrun("validate", str(path))
    assert result.code == 2
    assert f"{path}{where}" in result.err
    assert says in result.err


# --- runs through the CLI -------------------------------------------------------------------------


def turns(*calls: dict) -> list[ScriptedTurn]:
    return [
        ScriptedTurn(tool_calls=tuple(ScriptedCall("create_pet", c) for c in calls)),
        ScriptedTurn(text="Result: ${{ outputs.create_pet }}"),
    ]


def run_pets(tmp_path, api, *flags, calls=({"id": 7, "name": "Rex"},), approval=""):
    with PetstoreServer() as pets, ScriptedServer(turns(*calls)) as model:
        path = petstore_workflow(tmp_path, pets.base, approval)
        result = flowrun(str(path), "--api", api, "--base-url", model.base_url, "--no-log", *flags, env=KEY)
        posted = [s for s in pets.seen if s.method == "POST"]
        sent = json.dumps([r.body for r in model.requests], default=str)
    return result, posted, sent


@pytest.mark.parametrize("api", APIS)
def test_without_a_terminal_a_post_tool_does_not_run_and_the_model_and_the_user_are_told(tmp_path, api):
    result, posted, sent = run_pets(tmp_path, api)
    assert result.code == 0, result.err
    assert posted == []  # the Petstore never saw the request
    assert "was not run: it needs a person's approval (http POST can change things" in sent
    assert "flowrun: warning: tool 'create_pet' was not run: it needs approval" in result.err
    assert "--approve create_pet or --yes" in result.err
    assert "✗ create_pet" in result.err


@pytest.mark.parametrize("api", APIS)
def test_yes_and_approve_run_the_tool_once_and_the_model_gets_its_real_result(tmp_path, api):
    for flags in (["--yes"], ["--approve", "create_*"]):
        result, posted, sent = run_pets(tmp_path, api, *flags)
        assert result.code == 0, result.err
        assert [p.body for p in posted] == [{"id": 7, "name": "Rex"}]
        assert "Result: {\"id\": 7, \"name\": \"Rex\"}" in result.out
        assert "approved create_pet (command line)" in result.err


@pytest.mark.parametrize("api", APIS)
def test_deny_refuses_and_the_events_say_who_decided(tmp_path, api):
    result, posted, sent = run_pets(tmp_path, api, "--deny", "create_pet", "-o", "jsonl")
    assert result.code == 0, result.err
    assert posted == []
    events = result.jsonl()
    asked = [e for e in events if e["type"] == "approval.requested"]
    decided = [e for e in events if e["type"] == "approval.decided"]
    assert len(asked) == 1 and json.loads(asked[0]["arguments"]) == {"id": 7, "name": "Rex"}
    assert asked[0]["target"].startswith("POST http://127.0.0.1:") and asked[0]["target"].endswith("/v1/pets")
    assert (decided[0]["decision"], decided[0]["by"]) == ("denied", "flag")
    done = next(e for e in events if e["type"] == "tool_call.completed")
    assert done["is_error"] and "the user refused it (--deny)" in done["output"]
    assert "the user refused it (--deny)" in sent


def test_parallel_calls_are_decided_one_by_one_never_as_one(tmp_path):
    approval = ("    approval:\n      default: ask\n      rules:\n"
                "        - deny: {name: \"!R*\"}\n        - allow: {name: \"Rex\"}\n")
    result, posted, _ = run_pets(tmp_path, "chat", "-o", "jsonl",
                                 calls=({"id": 7, "name": "Rex"}, {"id": 8, "name": "Tom"}, {"id": 9, "name": "Rover"}),
                                 approval=approval)
    assert result.code == 0, result.err
    assert [p.body["name"] for p in posted] == ["Rex"]  # Tom denied by rule; Rover asked, nobody to ask
    decided = [(e["name"], e["decision"], e["by"]) for e in result.jsonl() if e["type"] == "approval.decided"]
    assert decided == [("create_pet", "approved", "rule"), ("create_pet", "denied", "rule"),
                       ("create_pet", "denied", "default")]
    outputs = [e["output"] for e in result.jsonl() if e["type"] == "tool_call.completed"]
    assert "the workflow file refuses this call (rule 1 of tool 'create_pet' (deny name: \"!R*\"))" in " ".join(outputs)


def test_a_malformed_call_is_never_put_to_anyone(tmp_path):
    result, posted, _ = run_pets(tmp_path, "responses", "--yes", "-o", "jsonl", calls=({"id": "seven"},))
    assert posted == []
    types = [e["type"] for e in result.jsonl()]
    assert "approval.requested" not in types and "approval.decided" not in types
    done = next(e for e in result.jsonl() if e["type"] == "tool_call.completed")
    assert "do not match the parameters" in done["output"]


def test_the_file_can_let_a_post_tool_run_without_asking(tmp_path):
    result, posted, _ = run_pets(tmp_path, "responses", approval="    approval: allow\n")
    assert result.code == 0, result.err
    assert len(posted) == 1
    assert "approval" not in result.err


def test_yes_never_overrides_a_tool_the_file_refuses(tmp_path):
    result, posted, sent = run_pets(tmp_path, "assistants", "--yes", approval="    approval: deny\n")
    assert posted == []
    assert "the workflow file refuses this call (tool 'create_pet' says approval: deny)" in sent


def test_the_run_log_and_logs_show_keep_every_decision(tmp_path):
    db = tmp_path / "runs.sqlite3"
    with PetstoreServer() as pets, ScriptedServer(turns({"id": 7, "name": "Rex"})) as model:
        path = petstore_workflow(tmp_path, pets.base)
        ran = flowrun(str(path), "--api", "chat", "--base-url", model.base_url, "--log-db", str(db),
                      "--deny", "create_pet", env=KEY)
    assert ran.code == 0, ran.err
    listing = flowrun("logs", "--log-db", str(db))
    run_id = next(w for w in listing.out.split() if w.startswith("run_"))
    shown = flowrun("logs", "show", run_id, "--log-db", str(db))
    assert shown.code == 0, shown.err
    assert f"? approval asked for create_pet POST {pets.base}/v1/pets (http POST can change things" in shown.out
    assert "  denied create_pet (by flag): refused with --deny on the command line" in shown.out


def mcp_workflow(tmp_path, source: str) -> Path:
    path = tmp_path / "mcp.yaml"
    path.write_text(f"""version: 1
name: mcp
model: {{name: scripted}}
input: go
tools:
{source}
tests:
  - name: one call
    turns:
      - tool_calls:
          - name: {"fx_echo" if "fx" in source else "time_get_current_time"}
            arguments: {{{"text: hi" if "fx" in source else "timezone: UTC"}}}
      - text: "got ${{{{ outputs.{"fx_echo" if "fx" in source else "time_get_current_time"} }}}}"
""")
    return path


def test_an_mcp_tool_the_server_does_not_mark_read_only_asks(tmp_path):
    from support.mcp_files import stdio_source

    path = mcp_workflow(tmp_path, stdio_source(more="prefix: fx_\ninclude: [echo]\n", approval=None))
    refused = flowrun(str(path), "--offline", "--no-log")
    assert refused.code == 0, refused.err
    assert "not run: it needs a person's approval (MCP tools ask unless their server marks them read-only)" in refused.out
    approved = flowrun(str(path), "--offline", "--no-log", "--approve", "fx_echo")
    assert approved.out == "got hi\n", approved.err


@pytest.mark.parametrize("more,approval,says", [
    ("", "deny", "(the MCP server 'fx' says approval: deny)"),
    ("overrides: {echo: {approval: deny}}\n", None, "(the MCP server 'fx''s override for 'echo' says approval: deny)"),
])
def test_a_refusal_set_on_an_mcp_source_says_where_it_was_written(tmp_path, more, approval, says):
    from support.mcp_files import stdio_source

    path = mcp_workflow(tmp_path, stdio_source(more="prefix: fx_\ninclude: [echo]\n" + more, approval=approval))
    refused = flowrun(str(path), "--offline", "--no-log", "--yes")
    assert refused.code == 0, refused.err
    assert f"the workflow file refuses this call {says}" in refused.out
    assert "tool 'fx_echo' says" not in refused.out + refused.err


def test_a_tool_the_real_time_server_marks_read_only_runs_without_asking(tmp_path):
    source = "  - mcp: {name: time, command: mcp-server-time, args: [--local-timezone=UTC]}\n    prefix: time_\n"
    path = mcp_workflow(tmp_path, source)
    result = flowrun(str(path), "--offline", "--no-log", "-o", "jsonl")
    assert result.code == 0, result.err
    types = [e["type"] for e in result.jsonl()]
    assert "approval.requested" not in types
    done = next(e for e in result.jsonl() if e["type"] == "tool_call.completed")
    assert not done["is_error"] and json.loads(done["output"])["timezone"] == "UTC"


def test_batch_refuses_calls_that_ask_unless_told_and_runs_them_once_when_approved(tmp_path):
    inputs = tmp_path / "in.jsonl"
    inputs.write_text('{"message": "Add Rex"}\n{"message": "Add Rex again"}\n')
    for flags, runs in (([], 0), (["--approve", "create_pet"], 2)):
        out = tmp_path / f"out{runs}.jsonl"
        with PetstoreServer() as pets, ScriptedServer(turns({"id": 7, "name": "Rex"})) as model:
            path = petstore_workflow(tmp_path, pets.base)
            result = flowrun("batch", str(path), "--inputs", str(inputs), "--out", str(out), "--api", "chat",
                             "--base-url", model.base_url, "--workers", "1", *flags, env=KEY)
            posted = [s for s in pets.seen if s.method == "POST"]
        assert result.code == 0, result.err
        assert len(posted) == runs
        answers = [json.loads(line)["final_text"] for line in out.read_text().splitlines()]
        marker = "not run: it needs a person's approval" if not runs else 'Result: {"id": 7, "name": "Rex"}'
        assert all(marker in a for a in answers), answers


def test_a_rule_on_an_argument_the_tool_does_not_declare_is_an_error(tmp_path):
    path = tmp_path / "w.yaml"
    path.write_text("version: 1\nname: t\ntools:\n  - name: send_email\n    description: Send\n    parameters:\n"
                    "      type: object\n      properties:\n        to: {type: string}\n    approval:\n      rules:\n"
                    "        - deny: {too: \"!*@example.com\"}\n        - allow: {/to/0: x}\n    resolve: {static: ok}\n")
    result = flowrun("validate", str(path))
    assert result.code == 2
    assert (f"{path}:12:18: rule 1 of tool 'send_email' names 'too', which its parameters do not declare "
            "(did you mean 'to'?): the rule would never match") in result.err
    assert "(1 error)" in result.err  # the pointer /to/0 names a declared argument
