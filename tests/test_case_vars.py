"""A test case's ``vars:`` fill the workflow's inputs by one rule, whichever command plays the
case: ``flowrun FILE --offline``, ``flowrun test`` and ``flowrun batch --offline``. The values
become the text ``--var`` would give: YAML null is empty, booleans and numbers read as written."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from support.cli import flowrun
from runner.events import ToolCallCompleted
from runner.run.offline import var_text
from runner.testing.runner import run_case
from runner.workflow.validate import load_workflow

WORKFLOW = """\
version: 1
name: typed-vars
model: {api: chat, name: m}
input: go
inputs: {none: {}, flag: {}, off: {}, n: {}, x: {}}
tools:
  - name: show
    description: Show the inputs.
    parameters: {type: object, properties: {}}
    resolve:
      static:
        none: "${{ inputs.none }}"
        flag: "${{ inputs.flag }}"
        off: "${{ inputs.off }}"
        n: "${{ inputs.n }}"
        x: "${{ inputs.x }}"
        text: "[${{ inputs.none }}|${{ inputs.flag }}|${{ inputs.off }}|${{ inputs.n }}|${{ inputs.x }}]"
tests:
  - name: typed vars
    vars: {none: null, flag: true, off: false, n: 3, x: 2.5}
    turns:
      - tool_calls: [{name: show}]
      - text: done
"""

EXPECTED = {"none": "", "flag": "true", "off": "false", "n": "3", "x": "2.5", "text": "[|true|false|3|2.5]"}


@pytest.fixture
def workflow_file(tmp_path: Path) -> Path:
    path = tmp_path / "typed.yaml"
    path.write_text(WORKFLOW, encoding="utf-8")
    return path


def test_the_rule():
    assert [var_text(v) for v in (None, True, False, 3, 2.5, "as is", [1, "a"], {"k": None})] == [
        "", "true", "false", "3", "2.5", "as is", '[1,"a"]', '{"k":null}'
    ]
    assert [var_text(float(v)) for v in ("inf", "-inf", "nan")] == [".inf", "-.inf", ".nan"]


def test_run_offline(workflow_file):
    r = flowrun(str(workflow_file), "--offline", "--no-log", "-o", "jsonl")
    assert r.code == 0, r.err
    [output] = [e["output"] for e in r.jsonl() if e["type"] == "tool_call.completed"]
    assert json.loads(output) == EXPECTED


def test_flowrun_test(workflow_file):
    workflow = load_workflow(workflow_file)
    seen: list = []
    result = asyncio.run(run_case(workflow, workflow.tests[0], "chat", extra_sinks=[seen.append]))
    assert result.passed, result.report()
    [output] = [e.output for e in seen if isinstance(e, ToolCallCompleted)]
    assert json.loads(output) == EXPECTED


def test_batch_offline(workflow_file, tmp_path):
    inputs, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    inputs.write_text("{}\n", encoding="utf-8")
    r = flowrun("batch", str(workflow_file), "--inputs", str(inputs), "--out", str(out), "--offline")
    assert r.code == 0, r.err
    [record] = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    [call] = record["tool_calls"]
    assert json.loads(call["output"]) == EXPECTED
