"""Test cases in a sibling ``NAME.test.yaml``: loaded with the workflow, checked with the same
rigor and reported at their own positions; a test file validates against its workflow."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from support.cli import flowrun
from support.paths import REPO
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from runner.errors import WorkflowError
from runner.workflow.schema_check import SCHEMA_PATH, TESTS_SCHEMA_PATH, cases_schema
from runner.workflow.validate import load_workflow, validate_file
from runner.workflow.yaml_loader import load_file

FIXTURES = REPO / "tests" / "fixtures_test"

BAD_TESTS = """\
# yaml-language-server: $schema=../schemas/tests.schema.json
tests:
  - name: rain only
    turns:
      - tool_calls:
          - name: get_rain_probabilty
      - text: It is ${{ outputs.get_rain }}.
    expect:
      outputs:
        get_rain_probabilty: { equals: "0.06" }
      final_txt: { contains: x }
  - name: both tools in parallel, then the answer
    turns:
      - text: hi
"""


@pytest.fixture
def folder(tmp_path: Path, monkeypatch) -> Path:
    """A workflows/ folder with a copy of weather.yaml; the tests run from its parent, so paths
    in messages read as a user would type them."""
    (tmp_path / "workflows").mkdir()
    shutil.copy(REPO / "workflows" / "weather.yaml", tmp_path / "workflows" / "weather.yaml")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "workflows"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def errors(problems) -> list[str]:
    return [p.format() for p in problems if p.severity == "error"]


def test_cases_from_the_test_file_follow_the_workflows_own_and_know_their_file():
    workflow, problems = validate_file(FIXTURES / "sibling.yaml")
    assert problems == []
    assert [(c.name, Path(c.file).name) for c in workflow.tests] == [
        ("in the workflow file", "sibling.yaml"), ("in the test file", "sibling.test.yaml")]
    assert workflow.tests[1].line == 5 and workflow.tests[1].vars == {"city": "Lyon"}
    assert (FIXTURES / "sibling.test.yaml").read_text().splitlines()[0] == \
        "# yaml-language-server: $schema=../../schemas/tests.schema.json"


def test_problems_in_the_test_file_are_reported_at_their_own_positions(folder):
    write(folder / "weather.test.yaml", BAD_TESTS)
    workflow, problems = validate_file("workflows/weather.yaml")
    assert workflow is None
    assert [p.format() for p in problems] == [
        "workflows/weather.test.yaml:6:19: warning: the workflow has no tool 'get_rain_probabilty' (did you mean "
        "'get_rain_probability'?) (where: $.tests[0].turns[0].tool_calls[0].name) -- fine if the test checks how "
        "an unknown tool is handled; otherwise fix the name",
        "workflows/weather.test.yaml:7:15: expression names tool 'get_rain' that the workflow does not define "
        "(where: $.tests[0].turns[1].text) -- name one of the workflow's tools",
        "workflows/weather.test.yaml:10:9: the workflow has no tool 'get_rain_probabilty' (did you mean "
        "'get_rain_probability'?) (where: $.tests[0].expect.outputs.get_rain_probabilty) -- name one of the "
        "workflow's tools",
        "workflows/weather.test.yaml:11:7: unknown key 'final_txt' (did you mean 'final_text'?) "
        "(where: $.tests[0].expect.final_txt) -- allowed keys here: tool_calls, outputs, final_text, status, "
        "no_error_outputs, output, error_outputs, refused",
        "workflows/weather.test.yaml:12:11: duplicate test name 'both tools in parallel, then the answer' "
        "(also at workflows/weather.yaml:54) (where: $.tests[1].name) -- give each test case its own name, "
        "across the workflow and its test file",
    ]
    with pytest.raises(WorkflowError) as exc:
        load_workflow("workflows/weather.yaml")
    assert "workflows/weather.test.yaml:10:9: the workflow has no tool" in str(exc.value)


def test_the_workflows_problems_come_first_then_the_test_files(folder):
    text = (folder / "weather.yaml").read_text(encoding="utf-8").replace("temperature: 0.2", "temperature: 3")
    write(folder / "weather.yaml", text)
    write(folder / "weather.test.yaml", "tests:\n  - name: x\n    turns: []\n")
    _, problems = validate_file("workflows/weather.yaml")
    assert [(Path(p.file).name, p.line) for p in problems] == [("weather.yaml", 15), ("weather.test.yaml", 3)]


def test_a_test_file_validates_directly_against_its_workflow(folder):
    write(folder / "weather.test.yaml", "tests:\n  - name: rain\n    turns:\n      - text: ${{ outputs.get_rain_probability }}\n")
    workflow, problems = validate_file("workflows/weather.test.yaml")
    assert problems == [] and workflow.path == Path("workflows/weather.yaml")
    assert [c.name for c in workflow.tests] == ["both tools in parallel, then the answer", "rain"]

    write(folder / "weather.test.yaml", BAD_TESTS)
    workflow, problems = validate_file("workflows/weather.test.yaml")
    assert workflow is None and len(errors(problems)) == 4
    assert {p.file for p in problems} == {"workflows/weather.test.yaml"}


def test_a_test_file_whose_workflow_is_invalid_says_so_in_one_line(folder):
    text = (folder / "weather.yaml").read_text(encoding="utf-8").replace("version: 1", "version: 2")
    write(folder / "weather.yaml", text.replace("temperature: 0.2", "temperature: 9"))
    write(folder / "weather.test.yaml", "tests:\n  - name: rain\n    turns:\n      - text: hi\n")
    workflow, problems = validate_file("workflows/weather.test.yaml")
    assert workflow is None
    assert [p.format() for p in problems] == [
        "workflows/weather.test.yaml: its workflow workflows/weather.yaml has 2 errors (where: $) "
        "-- run flowrun validate workflows/weather.yaml"]


def test_a_test_file_without_its_workflow_is_still_schema_checked(folder):
    write(folder / "lonely.test.yaml", "tests:\n  - name: x\n")
    _, problems = validate_file("workflows/lonely.test.yaml")
    assert errors(problems) == [
        "workflows/lonely.test.yaml:2:5: missing required key 'turns' (where: $.tests[0]) -- add turns: "
        "(What the scripted model does, turn by turn: ask for tool calls, or answer with text.)",
        "workflows/lonely.test.yaml: no workflow file for this test file (looked for lonely.yaml and lonely.yml "
        "beside it) (where: $) -- a test file NAME.test.yaml holds the test cases of NAME.yaml in the same folder",
    ]


@pytest.mark.parametrize("text, expected", [
    ("tools: []\ntests: []\n", "workflows/weather.test.yaml:1:1: unknown key 'tools' (where: $.tools) -- "
                               "tools belongs in the workflow file; a test file holds only tests:"),
    ("name: rain\nturns: [{text: hi}]\n", "workflows/weather.test.yaml:1:1: unknown key 'name' (where: $.name) -- "
                                          "a test file lists its cases under tests:, so indent name under an item: "
                                          "tests:, then - name: ..."),
    ("tests:\n  - name: a\n    name: b\n    turns: [{text: hi}]\n",
     "workflows/weather.test.yaml:3:5: duplicate key 'name' (first at line 2) (where: $.tests[0].name) -- "
     "remove one of them: YAML would silently keep only the last"),
    ("tests: !!python/object:os.system [ls]\n", "workflows/weather.test.yaml:1:8: unsupported YAML tag "
                                                "'!!python/object:os.system' (line 1) (where: $.tests) -- remove the "
                                                "tag: workflow files hold plain data only"),
    ("- name: a\n", "workflows/weather.test.yaml:1:1: a test file must be a mapping with one key, tests: "
                    "(where: $) -- write tests: and the list of test cases under it, as in a workflow file"),
    ("# nothing yet\n", "workflows/weather.test.yaml: test file is empty (where: $) -- write tests: and a list "
                        "of test cases under it, or delete the file"),
])
def test_test_file_mistakes_are_explained(folder, text, expected):
    write(folder / "weather.test.yaml", text)
    _, problems = validate_file("workflows/weather.yaml")
    assert expected in errors(problems)


def test_a_key_pasted_into_a_test_file_is_an_error(folder):
    fake_key = "sk-" + "abcdefghijklmnopqrstuvwxyz123456"  # built here so no key-like text sits in the repo
    write(folder / "weather.test.yaml", f"tests:\n  - name: x\n    input: use {fake_key}\n"
                                        "    turns: [{text: hi}]\n")
    _, problems = validate_file("workflows/weather.yaml")
    assert [(p.line, p.message) for p in problems] == [
        (3, "this looks like a literal API key; keys must never be in the workflow file")]


def test_two_test_files_for_one_workflow_is_an_error(folder):
    write(folder / "weather.test.yaml", "tests: []\n")
    write(folder / "weather.test.yml", "tests: []\n")
    _, problems = validate_file("workflows/weather.yaml")
    assert errors(problems) == [
        "workflows/weather.test.yml: both workflows/weather.test.yaml and workflows/weather.test.yml hold test "
        "cases for workflows/weather.yaml (where: $) -- merge them into workflows/weather.test.yaml"]


def test_flowrun_validate_reports_the_test_files_problems_and_exits_2(folder):
    write(folder / "weather.test.yaml", BAD_TESTS)
    r = flowrun("validate", "workflows/weather.yaml", cwd=folder.parent)
    assert r.code == 2
    assert "workflows/weather.test.yaml:10:9: the workflow has no tool 'get_rain_probabilty'" in r.err
    assert "workflows/weather.yaml: invalid (4 errors, 1 warning)" in r.err
    ok = flowrun("validate", str(FIXTURES / "sibling.yaml"), str(FIXTURES / "sibling.test.yaml"))
    assert ok.code == 0, ok.err
    # the test file is checked with its workflow (listed too), so it is reported once, not twice
    assert ok.out.splitlines() == [f"{FIXTURES / 'sibling.yaml'}: OK (1 tool, 2 test cases)"]
    alone = flowrun("validate", str(FIXTURES / "sibling.test.yaml"))
    assert alone.out.splitlines() == [f"{FIXTURES / 'sibling.test.yaml'}: OK (1 tool, 2 test cases)"]


# --- the schema ---------------------------------------------------------------------------------

def test_the_tests_schema_is_valid_symlinked_and_refers_to_the_workflow_schemas_test_case():
    Draft202012Validator.check_schema(cases_schema())
    assert (REPO / "schemas" / "tests.schema.json").resolve() == TESTS_SCHEMA_PATH
    assert cases_schema()["properties"]["tests"] == {"$ref": "workflow.schema.json#/properties/tests"}


def test_an_editor_resolving_the_ref_beside_the_file_gets_the_same_rules():
    """What yaml-language-server does with the modeline: read tests.schema.json from schemas/ and
    resolve its relative $ref to the file beside it."""
    folder = (REPO / "schemas").resolve()

    def retrieve(uri: str) -> Resource:
        assert uri.startswith(folder.as_uri() + "/")
        return DRAFT202012.create_resource(json.loads(Path(uri[len("file://"):]).read_text()))

    validator = Draft202012Validator({"$ref": (folder / "tests.schema.json").as_uri()}, registry=Registry(retrieve=retrieve))
    good, _ = load_file(FIXTURES / "sibling.test.yaml")
    assert list(validator.iter_errors(good.data)) == []
    bad = {"tests": [{"name": "x", "turns": [{"text": "a", "tool_calls": []}]}]}
    assert [e.validator for e in validator.iter_errors(bad)] == ["maxProperties", "minItems"]
    assert SCHEMA_PATH.name == "workflow.schema.json"
