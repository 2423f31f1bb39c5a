"""Bound arguments on all three APIs: the model never receives them in a tool's schema, and a value
it sends anyway is ignored (with a warning) in favour of the file's."""

from __future__ import annotations

import json

import pytest

from support.cli import flowrun
from runner.scripted import ScriptedServer
from runner.workflow.model import ScriptedCall, ScriptedTurn

WORKFLOW = """\
version: 1
name: bound
inputs:
  tenant:
    description: The customer account every call is made for
    required: true
tools:
  - name: whoami
    description: Answer a query for the current account
    parameters:
      type: object
      properties:
        tenant: {type: string, description: Account id}
        region: {type: string}
        query: {type: string}
      required: [tenant, region, query]
      additionalProperties: false
    bind:
      tenant: ${{ inputs.tenant }}
      region: eu-west
    resolve:
      static: "tenant=${{ args.tenant }} region=${{ args.region }} query=${{ args.query }}"
"""

TURNS = [
    ScriptedTurn(tool_calls=(ScriptedCall("whoami", {"query": "q1", "tenant": "evil-corp", "region": "us"}),)),
    ScriptedTurn(tool_calls=(ScriptedCall("whoami", {"query": "q2"}),)),
    ScriptedTurn(text="done: ${{ outputs.whoami }}"),
]


def tool_schemas(bodies: list) -> list[dict]:
    """Every function schema found in the requests (chat and responses send them each turn,
    assistants when the assistant is created)."""
    found = []

    def walk(value):
        if isinstance(value, dict):
            if value.get("name") == "whoami" and isinstance(value.get("parameters"), dict):
                found.append(value["parameters"])
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    for body in bodies:
        walk(body)
    return found


@pytest.mark.parametrize("api", ["responses", "chat", "assistants"])
def test_the_model_never_sees_nor_sets_a_bound_argument(api, tmp_path):
    wf = tmp_path / "bound.yaml"
    wf.write_text(WORKFLOW)
    with ScriptedServer(TURNS) as server:
        r = flowrun(str(wf), "--api", api, "--base-url", server.base_url, "--var", "tenant=globex", "-M", "hello",
                    env={"OPENAI_API_KEY": "sk-bound-test"})
        bodies = [q.body for q in server.requests if q.body is not None]
    assert r.code == 0, r.err
    assert r.out.strip() == "done: tenant=globex region=eu-west query=q2"
    schemas = tool_schemas(bodies)
    assert schemas, "no tool definition reached the server"
    for schema in schemas:
        assert set(schema["properties"]) == {"query"}
        assert schema["required"] == ["query"]
    sent = json.dumps(bodies)
    assert "tenant=globex region=eu-west query=q1" in sent  # the first call's output, the file's values
    assert "tenant=evil-corp" not in sent and "region=us" not in sent
    assert "whoami" in r.err and "bound arguments tenant, region; ignored" in r.err


def test_bind_must_name_a_declared_argument(tmp_path):
    wf = tmp_path / "bad.yaml"
    wf.write_text(WORKFLOW.replace("      region: eu-west\n", "      regoin: eu-west\n"))
    r = flowrun("validate", str(wf))
    assert r.code == 2
    assert "binds 'regoin', which its parameters do not declare (did you mean 'region'?)" in r.err + r.out


def test_a_bound_value_cannot_read_the_model_arguments(tmp_path):
    wf = tmp_path / "bad.yaml"
    wf.write_text(WORKFLOW.replace("      region: eu-west\n", "      region: ${{ args.query }}\n"))
    r = flowrun("validate", str(wf))
    assert r.code == 2
    assert "args is only available in a tool's resolve" in r.err + r.out


def test_a_missing_input_is_an_error_output_not_a_crash(tmp_path):
    wf = tmp_path / "bound.yaml"
    wf.write_text(WORKFLOW.replace("    required: true\n", ""))
    r = flowrun("tools", "call", str(wf), "whoami", "--args", '{"query": "x"}')
    assert r.code == 1
    assert "cannot fill its bound argument 'tenant'" in r.err
