"""Test cases answer approvals (``approvals:`` in a case) and can expect refusals
(``expect.refused``): the file's checks, the case's prompter and the expectations."""

from __future__ import annotations

import asyncio

import pytest

from support.cli import flowrun
from runner.calls import ToolCall
from runner.events import ToolCallCompleted
from runner.run.case_answers import CasePrompter
from runner.testing.expect import check
from runner.tools.approval import ApprovalRequest
from runner.workflow.model import CaseAnswer, CaseAnswers

WORKFLOW = """\
version: 1
name: mail
model: {api: chat, name: m}
input: hi
tools:
  - name: send_email
    description: Send an email
    parameters: {type: object, properties: {to: {type: string}}}
    approval: ask
    resolve: {static: sent}
  - name: lookup
    description: Look a contact up
    resolve: {static: found}
tests:
  - name: case
    turns:
      - text: hi
"""


def write(tmp_path, case_lines: str):
    path = tmp_path / "mail.yaml"
    path.write_text(WORKFLOW + case_lines)
    return path


# --- the file ---------------------------------------------------------------------------------

def test_case_answers_are_read_into_the_case(tmp_path):
    from runner.workflow.validate import load_workflow

    path = write(tmp_path, "    approvals:\n      send_email: {deny: not today}\n      lookup: approve\n"
                           "    expect: {refused: [send_email]}\n")
    case = load_workflow(path).tests[0]
    assert case.approvals == {"send_email": CaseAnswers(CaseAnswer("deny", "not today")),
                              "lookup": CaseAnswers(CaseAnswer("approve"))}
    assert case.expect["refused"] == ["send_email"]


@pytest.mark.parametrize("lines,says", [
    ("    approvals: {send_email: aprove}\n",
     "mail.yaml:18:29: must be one of approve, deny (got 'aprove'); did you mean 'approve'? "
     "(where: $.tests[0].approvals.send_email) -- write approve or deny, or {deny: \"the reason the model reads\"}"),
    ("    approvals: {send_email: {deny: 3}}\n",
     "mail.yaml:18:36: expected text, got number 3 (where: $.tests[0].approvals.send_email.deny) "
     "-- quote it to keep it as text, e.g. \"1.10\""),
    ("    approvals: {send_email: []}\n",
     "mail.yaml:18:29: an empty list answers no call (where: $.tests[0].approvals.send_email) "
     "-- give one answer per call, in the order they ask, e.g. [approve, deny]; or one answer for every call"),
    ("    approvals: {send_email: 7}\n",  # no form takes a number: each form is named
     "mail.yaml:18:29: expected text, a mapping (key: value lines) or a list, got number 7 "
     "(where: $.tests[0].approvals.send_email) -- write approve or deny, or {deny: \"the reason the model reads\"}"),
    ("    approvals: {send_email: [approve, aprove]}\n",
     "mail.yaml:18:39: must be one of approve, deny (got 'aprove'); did you mean 'approve'? "
     "(where: $.tests[0].approvals.send_email[1])"),
    ("    approvals: {send_mail: deny}\n",
     "mail.yaml:18:17: the workflow has no tool 'send_mail' (did you mean 'send_email'?) "
     "(where: $.tests[0].approvals.send_mail) -- name one of the workflow's tools"),
    ("    expect: {refused: [send_mail]}\n",
     "mail.yaml:18:24: the workflow has no tool 'send_mail' (did you mean 'send_email'?) "
     "(where: $.tests[0].expect.refused[0]) -- name one of the workflow's tools"),
    ("    expect: {refused: send_email}\n",
     "mail.yaml:18:23: expected true or false or a list, got text 'send_email' (where: $.tests[0].expect.refused)"),
])
def test_mistakes_in_case_approvals_are_located_and_explained(tmp_path, lines, says):
    path = write(tmp_path, lines)
    r = flowrun("validate", "mail.yaml", cwd=tmp_path)
    assert r.code == 2
    assert r.err.splitlines()[0].startswith(says), r.err


@pytest.mark.parametrize("tool,answer,says", [
    ("lookup", "approve", "the case answers the approval of 'lookup', but it always runs (static tools run by default)"),
    ("lookup\n    approval: deny", "deny", "but it is always refused (tool 'lookup' says approval: deny)"),
    ("lookup\n    approval: {default: allow, rules: [{deny: {q: 'x*'}}]}", "approve",
     "but none of its rules asks and, when none matches, it runs (tool 'lookup' says approval: allow)"),
])
def test_an_answer_for_a_tool_that_never_asks_is_a_warning(tmp_path, tool, answer, says):
    path = tmp_path / "mail.yaml"
    text = WORKFLOW.replace("  - name: lookup\n", f"  - name: {tool}\n").replace(
        "    resolve: {static: found}", "    parameters: {type: object, properties: {q: {type: string}}}\n    resolve: {static: found}")
    path.write_text(text + f"    approvals: {{lookup: {answer}, send_email: approve}}\n")
    r = flowrun("validate", "mail.yaml", cwd=tmp_path)
    assert r.code == 0, r.err
    [warning] = [line for line in r.err.splitlines() if "warning:" in line]
    assert warning.startswith("mail.yaml:") and says in warning and "so the answer is never used" in warning
    assert "(where: $.tests[0].approvals.lookup) -- remove the answer, or make the tool ask" in warning


# --- the prompter -----------------------------------------------------------------------------

def ask(prompter: CasePrompter, tool: str):
    request = ApprovalRequest(ToolCall("c1", tool, "{}"), tool, {}, why="it asks")
    return asyncio.run(prompter.decide(request))


def test_the_case_prompter_answers_from_the_case_and_remembers_what_it_could_not():
    prompter = CasePrompter({"send_email": CaseAnswers(CaseAnswer("deny", "not today")),
                             "lookup": CaseAnswers(CaseAnswer("approve"))})
    denied, approved, missing = ask(prompter, "send_email"), ask(prompter, "lookup"), ask(prompter, "delete_file")
    assert (denied.answer, denied.by, denied.reason) == ("deny", "case", "not today")
    assert (approved.answer, approved.by) == ("approve", "case")
    assert (missing.answer, missing.by) == ("unanswered", "case")
    ask(prompter, "delete_file")
    assert ask(prompter, "send_email").answer == "deny"  # one answer: every call of the tool
    assert prompter.unanswered == [("delete_file", 0)]


def test_answers_listed_per_call_answer_the_calls_in_the_order_asked():
    prompter = CasePrompter({"send_email": CaseAnswers(per_call=(CaseAnswer("approve"), CaseAnswer("deny", "enough")))})
    first, second, third = (ask(prompter, "send_email") for _ in range(3))
    assert first.answer == "approve"
    assert (second.answer, second.reason) == ("deny", "enough")
    assert third.answer == "unanswered"
    assert prompter.unanswered == [("send_email", 2)]


# --- the expectations -------------------------------------------------------------------------

REFUSAL = "error: tool 'send_email' was not run: the user declined to run it."


def outcome(expect, *, refused=("c1",), unanswered=()):
    completed = [ToolCallCompleted("c1", "send_email", REFUSAL, True, 0.0),
                 ToolCallCompleted("c2", "lookup", "found", False, 0.0)]
    return [m.format() for m in check({"status": "completed", **expect}, requested=[], completed=completed,
                                      final_text="", status="completed", refused=set(refused),
                                      unanswered=list(unanswered))]


def test_an_expected_refusal_passes_and_is_not_an_error_output():
    assert outcome({"refused": ["send_email"]}) == []
    assert outcome({"refused": True}) == []


def test_a_refusal_the_case_did_not_expect_fails_it():
    assert outcome({}) == [
        f"call of send_email: expected to run\n                    got      refused: {REFUSAL!r}\n"
        "                    (if this refusal is what the case tests, add expect.refused: [send_email])"]


def test_a_listed_tool_that_was_not_refused_fails_the_case():
    assert outcome({"refused": ["send_email", "lookup"]}) == [
        "call of lookup: expected a refusal (listed in expect.refused)\n                got      it ran"]
    assert outcome({"refused": ["send_email"]}, refused=()) == [
        f"output of send_email: expected no error\n                      got      {REFUSAL!r}\n"
        "                      (if this error is what the case tests, add expect.error_outputs: [send_email])",
        "call of send_email: expected a refusal (listed in expect.refused)\n                    got      it ran"]


def test_an_unanswered_call_names_the_key_to_add():
    assert outcome({"refused": ["send_email"]}, unanswered=[("send_email", 0)]) == [
        "approval of send_email: expected an answer in the case's approvals:\n"
        "                        got      none, so the call was refused\n"
        "                        (add approvals: {send_email: approve} (or deny) to the case)"]
    assert outcome({"refused": ["send_email"]}, unanswered=[("send_email", 2)])[0].endswith(
        "(the case's approvals: lists 2 answers for send_email, and call 3 of it asked too: add an answer for it to the list)")


# --- flowrun --record ---------------------------------------------------------------------------

def test_a_recording_keeps_the_answers_given_and_expects_the_refusals():
    from runner.events import (ApprovalDecided, ApprovalRequested, RunCompleted, RunStarted, TextDelta,
                               ToolCallCompleted, ToolCallRequested, TurnStarted)
    from runner.render.recording import Recorder

    recorder = Recorder()
    events = [
        RunStarted("r", "w", "chat", "m", "hi"), TurnStarted(1),
        ToolCallRequested("c1", "send_email", '{"to": "a@b.c"}'), ToolCallRequested("c2", "lookup", "{}"),
        ToolCallRequested("c3", "delete_file", "{}"), ToolCallRequested("c4", "send_email", '{"to": "d@b.c"}'),
        ToolCallRequested("c5", "lookup", "{}"),
        ApprovalRequested("c1", "send_email", '{"to": "a@b.c"}', "", "it asks"),
        ApprovalDecided("c1", "send_email", "denied", "prompt", "not to customers"),
        ApprovalRequested("c2", "lookup", "{}", "", "it asks"),
        ApprovalDecided("c2", "lookup", "approved", "flag", ""),
        ApprovalRequested("c4", "send_email", '{"to": "d@b.c"}', "", "it asks"),
        ApprovalDecided("c4", "send_email", "approved", "prompt", ""),
        ApprovalRequested("c5", "lookup", "{}", "", "it asks"),
        ApprovalDecided("c5", "lookup", "approved", "flag", ""),
        ApprovalDecided("c3", "delete_file", "denied", "rule", "the workflow file refuses this call"),  # never asked
        ToolCallCompleted("c1", "send_email", "error: tool 'send_email' was not run: not to customers", True, 0.0),
        ToolCallCompleted("c2", "lookup", "found", False, 0.0),
        ToolCallCompleted("c3", "delete_file", "error: tool 'delete_file' was not run", True, 0.0),
        ToolCallCompleted("c4", "send_email", "sent", False, 0.0), ToolCallCompleted("c5", "lookup", "found", False, 0.0),
        TurnStarted(2), TextDelta("done"), RunCompleted("r", "completed", "done", 2, 3, None, 1.0),
    ]
    for event in events:
        recorder(event)
    case = recorder.case("c")
    # one answer per call where they differ, in the order asked; one for the tool where they agree
    assert case["approvals"] == {"send_email": [{"deny": "not to customers"}, "approve"], "lookup": "approve"}
    assert case["expect"]["refused"] == ["send_email", "delete_file"]
    assert case["expect"]["outputs"] == {"lookup": {"equals": "found"}, "send_email": {"equals": "sent"}}  # not the refusal
    assert case["expect"]["no_error_outputs"] is True and "error_outputs" not in case["expect"]


# --- through the CLI: flowrun test, --offline, --record, on all three APIs ----------------------

MAILER = """\
version: 1
name: mailer
model: {api: chat, name: m}
input: Mail bob
tools:
  - name: send_email
    description: Send an email
    parameters: {type: object, properties: {to: {type: string}}, required: [to]}
    resolve: {http: {url: "https://mail.example.com/send", method: POST, body: {to: "${{ args.to }}"}}}
tests:
"""
SENDS = """\
    turns:
      - tool_calls: [{name: send_email, arguments: {to: bob@example.com}}]
      - text: "said: ${{ outputs.send_email }}"
    mock_http:
      send_email: {status: 200, body: {sent: true}}
"""


def mailer(tmp_path, *cases: tuple[str, str]):
    """The mailer workflow with cases, each (name, extra YAML lines for the case)."""
    text = MAILER + "".join(f"  - name: {name}\n{extra}{SENDS}" for name, extra in cases)
    path = tmp_path / "mailer.yaml"
    path.write_text(text)
    return path


def test_cases_answer_approvals_and_the_scripted_model_reads_the_refusal_on_every_api(tmp_path):
    path = mailer(
        tmp_path,
        ("approved", "    approvals: {send_email: approve}\n    expect:\n      final_text: {equals: 'said: {\"sent\": true}'}\n"),
        ("denied with a reason", "    approvals: {send_email: {deny: not before Monday}}\n"
                                 "    expect:\n      refused: [send_email]\n"
                                 "      final_text: {contains: 'declined to run it: not before Monday'}\n"),
        ("denied", "    approvals: {send_email: deny}\n    expect:\n      refused: true\n"),
    )
    r = flowrun("test", str(path), "--api", "all")
    assert r.code == 0, r.out + r.err
    assert r.out.splitlines()[-1] == "9 passed, 0 failed"


TWICE = """\
    turns:
      - tool_calls: [{name: send_email, arguments: {to: bob@example.com}}]
      - tool_calls: [{name: send_email, arguments: {to: bob@example.com}}]
      - text: "last: ${{ outputs.send_email }}"
    mock_http:
      send_email: {status: 200, body: {sent: true}}
"""


def test_answers_listed_per_call_answer_each_call_in_turn_on_every_api(tmp_path):
    path = tmp_path / "twice.yaml"
    path.write_text(MAILER + "  - name: one mail is enough\n"
                    "    approvals: {send_email: [approve, {deny: one is enough}]}\n"
                    "    expect:\n      refused: [send_email]\n"
                    "      final_text: {contains: 'declined to run it: one is enough'}\n" + TWICE
                    + "  - name: the list runs out\n    approvals: {send_email: [approve]}\n" + TWICE)
    r = flowrun("test", str(path), "--api", "all", "-k", "one mail is enough")
    assert r.code == 0, r.out + r.err
    assert r.out.splitlines()[-1] == "3 passed, 0 failed"
    short = flowrun("test", str(path), "-k", "the list runs out")
    assert short.code == 1
    assert ("(the case's approvals: lists 1 answer for send_email, and call 2 of it asked too: "
            "add an answer for it to the list)") in short.out


def test_an_unanswered_call_fails_the_case_with_the_key_to_add(tmp_path):
    path = mailer(tmp_path, ("forgot to answer", ""))
    r = flowrun("test", str(path))
    assert r.code == 1
    assert ("approval of send_email: expected an answer in the case's approvals:\n"
            "                        got      none, so the call was refused\n"
            "                        (add approvals: {send_email: approve} (or deny) to the case)") in r.out
    assert "1 failed" in r.out.splitlines()[-1]


def test_a_refusal_the_case_does_not_expect_fails_it(tmp_path):
    path = mailer(tmp_path, ("denied by surprise", "    approvals: {send_email: deny}\n"))
    r = flowrun("test", str(path))
    assert r.code == 1
    assert "call of send_email: expected to run" in r.out
    assert "(if this refusal is what the case tests, add expect.refused: [send_email])" in r.out


def test_an_approved_call_that_was_expected_to_be_refused_fails_the_case(tmp_path):
    path = mailer(tmp_path, ("hoped for a no", "    approvals: {send_email: approve}\n    expect: {refused: [send_email]}\n"))
    r = flowrun("test", str(path))
    assert r.code == 1
    assert "call of send_email: expected a refusal (listed in expect.refused)" in r.out


def test_offline_runs_take_the_cases_answers(tmp_path):
    path = mailer(tmp_path, ("approved", "    approvals: {send_email: approve}\n"),
                  ("denied", "    approvals: {send_email: {deny: no mail today}}\n"))
    ok = flowrun(str(path), "--offline", "--case", "approved")
    assert ok.code == 0 and ok.out == 'said: {"sent": true}\n', ok.err
    no = flowrun(str(path), "--offline", "--case", "denied")
    assert no.code == 0 and "declined to run it: no mail today" in no.out, no.err
    inputs = tmp_path / "in.jsonl"
    inputs.write_text('{"message": "a"}\n')
    batch = flowrun("batch", str(path), "--offline", "--case", "approved", "--inputs", str(inputs),
                    "--out", str(tmp_path / "out.jsonl"))
    assert batch.code == 0, batch.err
    import json

    result = json.loads((tmp_path / "out.jsonl").read_text())
    assert result["final_text"] == 'said: {"sent": true}'


NOTIFIER = """version: 1
name: notifier
model: {api: chat, name: m}
input: Tell the team
tools:
  - name: notify
    description: Post a note to the team
    parameters: {type: object, properties: {text: {type: string}}}
    approval: ask
    resolve: {static: "posted ${{ args.text }}"}
"""


@pytest.mark.parametrize("flag,answer", [("--approve", "approve"), ("--deny", "deny")])
def test_a_recorded_run_keeps_the_flags_answer_and_replays_on_every_api(tmp_path, flag, answer):
    from runner.scripted import ScriptedServer
    from runner.workflow.model import ScriptedCall, ScriptedTurn
    from support.reliability import ENV

    path = tmp_path / "notifier.yaml"
    path.write_text(NOTIFIER)
    turns = [ScriptedTurn(tool_calls=(ScriptedCall("notify", {"text": "hi"}),)), ScriptedTurn(text="done")]
    with ScriptedServer(turns) as server:
        r = flowrun(str(path), "--base-url", server.base_url, flag, "notify", "--record", "notifier.test.yaml",
                    env=ENV, cwd=tmp_path)
    assert r.code == 0, r.err
    from runner.workflow.validate import load_workflow

    (case,) = load_workflow(path).tests
    assert {k: v.every.answer for k, v in case.approvals.items()} == {"notify": answer}
    assert case.expect.get("refused") == (["notify"] if answer == "deny" else None)
    replay = flowrun("test", "notifier.yaml", "--api", "all", cwd=tmp_path)
    assert replay.code == 0, replay.out
    assert replay.out.splitlines()[-1] == "3 passed, 0 failed"
