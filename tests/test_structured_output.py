"""Structured output (issue 16): the `output:` section, through the CLI on all three APIs.

The scripted server plays the model and ignores the schema it is sent, like many local servers:
so every answer here is checked by flowrun itself, which is what these tests are about.
"""

from __future__ import annotations

import json

import pytest

from support.cli import flowrun
from support.events import check_event
from runner.scripted import ScriptedServer
from runner.workflow.model import ScriptedCall, ScriptedTurn

APIS = ["responses", "chat", "assistants"]
EXAMPLE = "workflows/invoice_extract.yaml"
KEY = {"OPENAI_API_KEY": "sk-test-key-for-loopback-0000"}
VALID = {
    "number": "INV-1042", "customer": "Acme Corp", "currency": "EUR", "total": 100.0,
    "lines": [{"item": "Widget", "quantity": 2, "unit_price": 12.5}, {"item": "Gadget", "quantity": 1, "unit_price": 75.0}],
}
LOOKUP = ScriptedTurn(tool_calls=(ScriptedCall("get_invoice", {"number": "INV-1042"}),))
PROSE = "Sure! Invoice INV-1042 is for Acme Corp, 100 EUR in total."  # a server that ignores the schema
WRONG = json.dumps({**VALID, "total": "one hundred", "currency": "YEN"})


def _turns(*answers: str) -> list[ScriptedTurn]:
    return [LOOKUP] + [ScriptedTurn(text=a) for a in answers]


def _format_sent(api: str, server) -> list[dict]:
    """The schema each model request carried, in the API's own field."""
    found = []
    for req in server.requests:
        body = req.body if isinstance(req.body, dict) else {}
        if req.method != "POST":
            continue
        if api == "responses" and req.path.endswith("/responses"):
            found.append(body["text"]["format"])
        elif api == "chat" and req.path.endswith("/chat/completions"):
            found.append(body["response_format"])
        elif api == "assistants" and (req.path.endswith("/assistants") or req.path.endswith("/runs")):
            found.append(body["response_format"])
    return found


def _user_texts(api: str, server) -> list[str]:
    """Every user message sent, in order (the repair requests among them)."""
    texts = []
    for req in server.requests:
        body = req.body if isinstance(req.body, dict) else {}
        if req.method != "POST":
            continue
        if api == "responses" and req.path.endswith("/responses"):
            texts += [i["content"] for i in body.get("input", []) if isinstance(i, dict) and i.get("role") == "user"]
        elif api == "chat" and req.path.endswith("/chat/completions"):
            users = [m["content"] for m in body["messages"] if m.get("role") == "user"]
            texts += [u for u in users if u not in texts]
        elif api == "assistants" and req.path.endswith("/messages"):
            texts.append(body["content"] if isinstance(body["content"], str) else json.dumps(body["content"]))
    return texts


@pytest.mark.parametrize("api", APIS)
def test_a_valid_first_answer_is_the_json_on_stdout(api):
    with ScriptedServer(_turns(json.dumps(VALID))) as server:
        r = flowrun(EXAMPLE, "--api", api, "--base-url", server.base_url, "--no-log", env=KEY)
    assert r.code == 0, r.err
    assert r.out.count("\n") == 1 and json.loads(r.out) == VALID  # piped: one compact line
    assert "get_invoice" in r.err  # the tool ran in the same run
    sent = _format_sent(api, server)
    assert sent, "no request carried the schema"
    for fmt in sent:
        inner = fmt if api == "responses" else fmt["json_schema"]
        assert fmt["type"] == "json_schema"
        assert inner["name"] == "invoice" and inner["strict"] is True
        assert inner["schema"]["required"] == ["number", "customer", "currency", "total", "lines"]


@pytest.mark.parametrize("api", APIS)
def test_jsonl_final_event_carries_the_parsed_value(api):
    with ScriptedServer(_turns(json.dumps(VALID))) as server:
        r = flowrun(EXAMPLE, "--api", api, "--base-url", server.base_url, "--no-log", "-o", "jsonl", env=KEY)
    assert r.code == 0, r.err
    events = r.jsonl()
    for ev in events:
        check_event(ev)
    assert events[-1]["type"] == "run.completed"
    assert events[-1]["output"] == VALID


@pytest.mark.parametrize("api", APIS)
def test_an_invalid_answer_is_repaired_on_retry(api):
    with ScriptedServer(_turns(WRONG, json.dumps(VALID))) as server:
        r = flowrun(EXAMPLE, "--api", api, "--base-url", server.base_url, "--no-log", "-o", "jsonl", env=KEY)
    assert r.code == 0, r.err
    events = r.jsonl()
    assert events[-1]["type"] == "run.completed" and events[-1]["output"] == VALID
    notices = [e["message"] for e in events if e["type"] == "notice"]
    assert any("asking again (1 of 2)" in n and "/total" in n for n in notices), notices
    users = _user_texts(api, server)
    assert len(users) == 2, users
    assert "does not match the required JSON schema" in users[1]
    assert "at /total" in users[1] and "at /currency" in users[1]


@pytest.mark.parametrize("api", APIS)
def test_a_server_that_ignores_the_schema_gets_the_errors_back(api):
    with ScriptedServer(_turns(PROSE, json.dumps(VALID))) as server:
        r = flowrun(EXAMPLE, "--api", api, "--base-url", server.base_url, "--no-log", env=KEY)
    assert r.code == 0, r.err
    assert json.loads(r.out) == VALID
    assert PROSE not in r.out  # the rejected answer never reaches stdout
    assert "not valid JSON" in _user_texts(api, server)[1]


@pytest.mark.parametrize("api", APIS)
def test_an_answer_that_never_becomes_valid_fails_the_run(api, tmp_path):
    db = tmp_path / "runs.sqlite3"
    with ScriptedServer(_turns(PROSE, WRONG, WRONG)) as server:
        r = flowrun(EXAMPLE, "--api", api, "--base-url", server.base_url, "--log-db", str(db), env=KEY)
    assert r.code == 1, r.err
    assert r.out == ""  # stdout holds JSON or nothing
    assert "does not match the output schema after 3 answers" in r.err
    assert "/total" in r.err
    assert len(_user_texts(api, server)) == 3  # the message, then attempts: 2 repairs
    runs = json.loads(flowrun("logs", "--json", "--log-db", str(db)).out)
    assert runs[0]["status"] == "invalid_output"
    shown = flowrun("logs", "show", runs[0]["run_id"], "--json", "--log-db", str(db))
    assert shown.code == 0, shown.err
    assert "one hundred" in shown.out and "YEN" in shown.out  # the invalid text stays in the run log


def test_attempts_zero_fails_on_the_first_invalid_answer(tmp_path):
    wf = tmp_path / "w.yaml"
    wf.write_text((_example_text()).replace("attempts: 2", "attempts: 0"))
    with ScriptedServer(_turns(WRONG, json.dumps(VALID))) as server:
        r = flowrun(str(wf), "--base-url", server.base_url, "--no-log", env=KEY)
    assert r.code == 1
    assert "does not match the output schema: " in r.err


def test_a_fenced_json_answer_is_accepted():
    with ScriptedServer(_turns("```json\n" + json.dumps(VALID) + "\n```")) as server:
        r = flowrun(EXAMPLE, "--base-url", server.base_url, "--no-log", env=KEY)
    assert r.code == 0, r.err
    assert json.loads(r.out) == VALID


def _example_text() -> str:
    from support.paths import REPO

    return (REPO / EXAMPLE).read_text().replace("../schemas", str(REPO / "schemas"))


# ---- flowrun validate ---------------------------------------------------------------------

BAD = """\
version: 1
name: bad
model: {api: chat}
input: hi
output:
  schema:
    type: object
    properties:
      a: {type: string}
      b: {type: object, properties: {c: {type: integer}}, required: [c]}
      d: {type: strin}
      e: {allOf: [{type: string}]}
    required: [a]
"""


def test_validate_accepts_the_example():
    r = flowrun("validate", EXAMPLE)
    assert r.code == 0, r.err


def test_validate_reports_schema_and_strict_problems_with_positions(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text(BAD)
    r = flowrun("validate", str(f))
    assert r.code == 2
    assert f"{f}:6:3: output schema: strict schemas must list every property in required (missing: b, d, e)" in r.err
    assert f"{f}:6:3: output schema: strict schemas need additionalProperties: false" in r.err
    assert f"{f}:10:7: output schema: strict schemas need additionalProperties: false" in r.err
    assert f"{f}:11:17: output schema:" in r.err and "did you mean 'string'?" in r.err
    assert f"{f}:12:11: output schema: strict mode does not support allOf" in r.err
    assert "Traceback" not in r.err


def test_validate_without_strict_checks_only_json_schema(tmp_path):
    f = tmp_path / "loose.yaml"
    f.write_text(BAD.replace("output:\n", "output:\n  strict: false\n"))
    r = flowrun("validate", str(f))
    assert r.code == 2
    assert "strict schemas" not in r.err and "strict mode" not in r.err
    assert "did you mean 'string'?" in r.err and "1 error" in r.err


def test_validate_a_strict_schema_needs_an_object_root_and_a_good_name(tmp_path):
    f = tmp_path / "root.yaml"
    f.write_text("version: 1\nname: r\ninput: hi\noutput:\n  name: 'has space'\n  attempts: -1\n"
                 "  schema: {type: array, items: {type: string}}\n")
    r = flowrun("validate", str(f))
    assert r.code == 2
    assert "a strict output schema needs type: object at the root" in r.err
    assert f"{f}:5:" in r.err and f"{f}:6:" in r.err


# ---- batch and secrets --------------------------------------------------------------------

def test_batch_result_lines_carry_the_parsed_value(tmp_path):
    inputs = tmp_path / "in.jsonl"
    inputs.write_text('{"message": "Extract INV-1042", "id": "a"}\n{"message": "Extract it again", "id": "b"}\n')
    out = tmp_path / "out.jsonl"
    with ScriptedServer(_turns(json.dumps(VALID))) as server:
        r = flowrun("batch", EXAMPLE, "--inputs", str(inputs), "--out", str(out), "--base-url", server.base_url,
                    env=KEY)
    assert r.code == 0, r.err
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert sorted(x["id"] for x in lines) == ["a", "b"]
    for line in lines:
        assert line["status"] == "completed" and line["output"] == VALID


SECRET_WF = """\
version: 1
name: secret_out
input: what is the token?
tools:
  - name: get_token
    description: the token
    resolve: {static: "${{ env.SERVICE_TOKEN }}"}
output:
  schema:
    type: object
    properties: {token: {type: string}}
    required: [token]
    additionalProperties: false
"""


@pytest.mark.parametrize("output", ["text", "jsonl"])
def test_a_secret_inside_the_structured_answer_is_masked(tmp_path, output):
    wf = tmp_path / "secret.yaml"
    wf.write_text(SECRET_WF)
    secret = "tok-very-secret-value-123456"
    turns = [ScriptedTurn(tool_calls=(ScriptedCall("get_token", {}),)),
             ScriptedTurn(text='{"token": "${{ outputs.get_token }}"}')]
    with ScriptedServer(turns) as server:
        r = flowrun(str(wf), "--base-url", server.base_url, "--no-log", "-o", output,
                    env={**KEY, "SERVICE_TOKEN": secret})
    assert r.code == 0, r.err
    assert secret not in r.out + r.err
    value = json.loads(r.out) if output == "text" else r.jsonl()[-1]["output"]
    assert set(value) == {"token"} and value["token"] != secret


# ---- flowrun test and --offline -----------------------------------------------------------

@pytest.mark.parametrize("api", APIS)
def test_the_example_runs_offline(api):
    r = flowrun(EXAMPLE, "--offline", "--api", api, "--no-log")
    assert r.code == 0, r.err
    assert json.loads(r.out) == VALID


def test_the_example_passes_flowrun_test_on_all_apis():
    r = flowrun("test", EXAMPLE, "--api", "all")
    assert r.code == 0, r.out + r.err
    assert "12 passed, 0 failed" in r.out + r.err  # 4 cases, one of them a run policy


def _case_file(tmp_path, expect: str, answer: str = json.dumps(VALID), attempts: int = 2) -> str:
    wf = tmp_path / "inv.yaml"
    text = _example_text().replace("attempts: 2", f"attempts: {attempts}")
    text = text[: text.index("tests:")] + f"""tests:
  - name: the case
    turns:
      - tool_calls: [{{name: get_invoice, arguments: {{number: INV-1042}}}}]
      - text: '{answer}'
    expect:
{expect}"""
    wf.write_text(text)
    return str(wf)


def test_output_checks_that_fail_say_where_and_what(tmp_path):
    f = _case_file(tmp_path, """      output:
        - {pointer: /total, equals: 99}
        - {pointer: /customer, contains: Globex}
        - {pointer: /number, matches: '^X-'}
        - {pointer: /lines, contains: {item: Widget, quantity: 2, unit_price: 12.5}}
        - {pointer: /nowhere, equals: 1}
""")
    r = flowrun("test", f)
    assert r.code == 1
    text = r.out + r.err
    assert "output at /total: expected 99" in text and "got      100.0" in text
    assert 'output at /customer: expected to contain "Globex"' in text
    assert "output at /number: expected to match /^X-/" in text
    assert "output at /lines" not in text  # that element is there
    assert "output at /nowhere: expected 1" in text and "nothing there" in text


def test_a_case_fails_when_the_answer_never_matches_the_schema(tmp_path):
    f = _case_file(tmp_path, "      status: completed\n", answer='{"number": 5}', attempts=0)
    r = flowrun("test", f)
    assert r.code == 1
    text = r.out + r.err
    assert "status: expected 'completed'" in text and "'invalid_output'" in text
    assert "does not match the output schema" in text


def test_a_bad_regex_in_an_output_check_is_a_validation_error(tmp_path):
    f = _case_file(tmp_path, "      output:\n        - {pointer: /number, matches: '(unclosed'}\n")
    r = flowrun("validate", f)
    assert r.code == 2
    assert "invalid regular expression" in r.err and f"{f}:" in r.err


def test_the_default_schema_check_of_a_case_reports_a_non_matching_answer():
    from runner.testing.expect import schema_mismatch

    schema = {"type": "object", "properties": {"total": {"type": "number"}}, "required": ["total"]}
    assert schema_mismatch(schema, {"total": 3}) == []
    [m] = schema_mismatch(schema, {"total": "3"})
    assert m.what == "output" and "at /total" in m.note
