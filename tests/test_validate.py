"""Workflow validation: every problem at once, each located and explained; the frozen Workflow;
the ``validate`` and ``schema`` commands; the schema itself."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from runner.errors import WorkflowError
from runner.workflow.model import HttpResolver, PythonResolver, StaticResolver
from runner.workflow.schema_check import SCHEMA_PATH, workflow_schema
from runner.workflow.semantic import subschemas
from runner.workflow.validate import load_workflow, validate_file
from runner.commands.validate import schema_command, validate_command

ROOT = Path(__file__).resolve().parent.parent
INVALID = Path(__file__).resolve().parent / "invalid"
MODELINE = "# yaml-language-server: $schema=../schemas/workflow.schema.json"

# Every file in tests/invalid/, with every error it must produce: (line, column, message fragment).
INVALID_TABLE = {
    "alias_bomb.yaml": [(2, 1, "YAML aliases exceed limit (10000)")],
    "api_key_literal.yaml": [(6, 3, "'api_key': a literal key or secret must never be in the workflow file")],
    "bad_entrypoint_syntax.yaml": [(13, 15, "python must be a module:function reference (got 'a:b:c')")],
    "bad_tool_name.yaml": [(5, 11, "tool name must match ^[a-zA-Z0-9_-]{1,64}$ (got 'get weather!')")],
    "control_char.yaml": [(3, 11, "character #x0007 is not allowed in YAML")],
    "duplicate_key.yaml": [(16, 9, "duplicate key 'url' (first at line 14)")],
    "duplicate_tool_name.yaml": [(8, 11, "duplicate tool name 'search' (lines 5, 8)")],
    "duplicate_tools_block.yaml": [(6, 1, "duplicate key 'tools' (first at line 4)")],
    "empty.yaml": [(0, 0, "workflow file is empty")],
    "invalid_regex.yaml": [(9, 29, "invalid regular expression: missing ), unterminated subpattern")],
    "long_tool_name.yaml": [(5, 11, "tool name must match ^[a-zA-Z0-9_-]{1,64}$")],
    "merge_key.yaml": [(7, 5, "YAML merge keys (<<) are not supported")],
    "missing_resolve.yaml": [(5, 5, "missing required key 'resolve'")],
    "mock_http_static_tool.yaml": [(19, 7, "mock_http is for http tools; 'get_weather' uses static")],
    "multi_document.yaml": [(4, 1, "expected a single YAML document, found a second one")],
    "nested_too_deep.yaml": [(4, 107, "nesting deeper than 100 levels")],
    "not_utf8.yaml": [(3, 10, "file is not UTF-8 text (byte 0xe9 at line 3, column 10)")],
    "parameters_bad_type.yaml": [(10, 22, "tool 't' parameters: must be one of array, boolean, integer, null, "
                                          "number, object, string (got 'strng'); did you mean 'string'?")],
    "parameters_not_object.yaml": [(8, 13, "a tool's parameters must have type: object at the root")],
    "parameters_ref_cycle.yaml": [(10, 19, "tool 't' parameters: $ref cycle: #/$defs/a -> #/$defs/b -> #/$defs/a")],
    "parameters_remote_ref.yaml": [(10, 19, "$ref 'https://example.com/s.json' points outside the tool's parameters")],
    "python_name_tag.yaml": [(4, 15, "unsupported YAML tag '!!python/name:os.system' (line 4)")],
    "python_tag.yaml": [(4, 8, "unsupported YAML tag '!!python/object/apply:os.system' (line 4)")],
    "recursive_alias.yaml": [(4, 8, "recursive YAML alias")],
    "strict_open_object.yaml": [(8, 5, "strict tools need additionalProperties: false on every object")],
    "tab_indent.yaml": [(4, 1, "tab character at line 4, column 1")],
    "temperature_range.yaml": [(5, 16, "must be at most 2 (got 3)")],
    "template_bad_context.yaml": [(13, 15, "unknown context 'secrets' in '${{ secrets.KEY }}'")],
    "template_outputs_outside_test.yaml": [(13, 15, "outputs is only available in the text of a test turn")],
    "template_unclosed.yaml": [(4, 15, "an expression opened with ${{ is never closed with }}")],
    "template_unknown_arg.yaml": [(15, 20, "expression names argument 'cityy' that the tool's parameters do not "
                                           "declare (did you mean 'city'?)")],
    "template_unknown_input.yaml": [(6, 8, "expression names input 'town' that inputs does not declare")],
    "test_turn_both.yaml": [(17, 9, "a turn has exactly one of tool_calls or text (found tool_calls, text)")],
    "test_unknown_output_tool.yaml": [(20, 9, "the workflow has no tool 'get_wether' (did you mean 'get_weather'?)")],
    "timeout_string.yaml": [(14, 14, "expected a number, got text 'ten'")],
    "top_level_list.yaml": [(2, 1, "the workflow must be a mapping of keys")],
    "two_resolvers.yaml": [(12, 5, "resolve needs exactly one of static, python or http (found python, http)")],
    "unclosed_bracket.yaml": [(5, 6, "expected ',' or ']', but got ':'")],
    "unknown_api.yaml": [(5, 8, "must be one of responses, chat, assistants (got 'assistants_v3'); "
                                "did you mean 'assistants'?")],
    "unknown_key_typo.yaml": [(13, 7, "missing required key 'url'"),
                              (14, 9, "unknown key 'urll' (did you mean 'url'?)")],
    "url_host_from_args.yaml": [(13, 14, "model argument in URL scheme/host/port position: ${{ args.host }} "
                                         "(tool 'fetch')")],
    "version_missing.yaml": [(2, 1, "missing required key 'version'")],
    "version_wrong.yaml": [(2, 10, "version must be 1")],
}

HEADER = "version: 1\nname: t\n"
TOOL = """\
tools:
  - name: get_weather
    description: Weather for a city
    parameters:
      type: object
      properties:
        city: {type: string}
        unit: {type: string}
      required: [city]
    resolve:
"""


def cli() -> click.Group:
    return click.Group(commands=[validate_command, schema_command])


def write(tmp_path: Path, body: str, name: str = "w.yaml") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + textwrap.dedent(body), encoding="utf-8")
    return path


def errors_of(path: Path, **kw) -> list:
    workflow, problems = validate_file(path, **kw)
    errors = [p for p in problems if p.severity == "error"]
    assert (workflow is None) == bool(errors)
    return errors


def warnings_of(path: Path) -> list:
    return [p for p in validate_file(path)[1] if p.severity == "warning"]


# --- the table of invalid files ---------------------------------------------------------------


def test_every_invalid_file_is_in_the_table():
    files = {p.name for p in INVALID.glob("*.yaml")}
    assert files == set(INVALID_TABLE)
    assert len(files) >= 25


@pytest.mark.parametrize("name", sorted(INVALID_TABLE))
def test_invalid_file(name):
    path = INVALID / name
    workflow, problems = validate_file(path)
    assert workflow is None
    errors = [p for p in problems if p.severity == "error"]
    assert len(errors) == len(INVALID_TABLE[name]), [p.format() for p in errors]
    for problem, (line, column, fragment) in zip(errors, INVALID_TABLE[name]):
        assert (problem.line, problem.column) == (line, column), problem.format()
        assert fragment in problem.message, problem.format()
        assert problem.file == str(path)
        assert problem.path.startswith("$")


def test_load_workflow_raises_with_every_problem():
    with pytest.raises(WorkflowError) as info:
        load_workflow(INVALID / "unknown_key_typo.yaml")
    assert info.value.exit_code == 2
    assert len(info.value.problems) == 2
    assert "unknown key 'urll'" in str(info.value)


# --- the shipped workflows and the schema ----------------------------------------------------


@pytest.mark.parametrize("path", sorted((ROOT / "workflows").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_workflows_are_valid_and_carry_the_modeline(path):
    assert path.read_text(encoding="utf-8").splitlines()[0] == MODELINE
    workflow, problems = validate_file(path)
    assert [p.format() for p in problems if p.severity == "error"] == []
    assert workflow is not None


def test_schema_symlink_and_meta_schema():
    link = ROOT / "schemas" / "workflow.schema.json"
    assert link.resolve() == SCHEMA_PATH
    Draft202012Validator.check_schema(workflow_schema())


def _schemas(schema):
    """(JSON Pointer, schema object) for every schema inside the workflow schema."""
    for path, node in subschemas(schema):
        yield "".join(f"/{step}" for step in path), node


def test_every_schema_property_has_a_description():
    missing, seen = [], 0
    for pointer, node in _schemas(workflow_schema()):
        for name, sub in node.get("properties", {}).items():
            seen += 1
            if not sub.get("description"):
                missing.append(f"{pointer}/properties/{name}")
    assert missing == []
    assert seen > 80


def test_schema_examples_are_valid():
    schema = workflow_schema()
    registry = Registry().with_resource(schema["$id"], Resource.from_contents(schema))
    checked = 0
    for pointer, node in _schemas(schema):
        if "examples" not in node:
            continue
        validator = Draft202012Validator({"$ref": f"{schema['$id']}#{pointer}"}, registry=registry)
        for example in node["examples"]:
            assert list(validator.iter_errors(example)) == [], (pointer, example)
            checked += 1
    assert checked > 10


# --- the Workflow that comes out ---------------------------------------------------------------


def test_weather_builds_the_frozen_workflow():
    workflow = load_workflow(ROOT / "workflows" / "weather.yaml")
    assert workflow.name == "weather" and workflow.version == 1
    assert workflow.model.api == "responses" and workflow.model.temperature == 0.2
    assert workflow.model.api_key_env == "OPENAI_API_KEY" and workflow.model.timeout == 600.0
    assert [t.name for t in workflow.tools] == ["get_current_temperature", "get_rain_probability"]
    assert workflow.tools[0].resolver == StaticResolver("57")
    assert workflow.tools[0].line == 23 and workflow.tools[1].line == 40
    assert len(workflow.source_sha256) == 64
    case = workflow.tests[0]
    assert case.line == 54 and len(case.turns) == 2
    assert case.turns[0].tool_calls[1].arguments == {"location": "San Francisco, CA"}
    assert "${{ outputs.get_current_temperature }}" in case.turns[1].text
    assert case.expect["final_text"] == {"contains": "57°F"}


def test_http_and_python_resolvers_and_defaults(tmp_path):
    path = write(tmp_path, TOOL + """\
      http:
        url: https://api.example.com/weather
        query: {q: "${{ args.city }}", units: metric}
        headers: {Authorization: "Bearer ${{ env.WEATHER_TOKEN }}"}
        expect_status: 200
        allow_hosts: [api.example.com]
  - name: local
    description: A local function
    resolve: {python: "helpers.weather:forecast"}
    timeout: 5
    strict: false
inputs:
  city: {description: City, default: Paris}
tests:
  - name: raw arguments
    vars: {city: Rome}
    turns:
      - tool_calls: [{name: get_weather, arguments: '{"city": "Par'}]
      - text: done
    mock_http:
      get_weather: {status: 500, body: {error: x}}
""")
    workflow = load_workflow(path)
    http = workflow.tools[0].resolver
    assert isinstance(http, HttpResolver)
    assert http.expect_status == (200,) and http.allow_hosts == ("api.example.com",)
    assert http.method == "GET" and http.timeout == 30.0 and http.max_redirects == 0 and http.retries == 2
    assert http.query == {"q": "${{ args.city }}", "units": "metric"}
    local = workflow.tools[1]
    assert local.resolver == PythonResolver("helpers.weather:forecast")
    assert local.parameters == {"type": "object", "properties": {}}
    assert local.timeout == 5.0 and local.strict is False and local.line == 19
    assert workflow.inputs[0].name == "city" and workflow.inputs[0].default == "Paris"
    case = workflow.tests[0]
    assert case.turns[0].tool_calls[0].arguments == '{"city": "Par'
    assert case.vars == {"city": "Rome"} and case.mock_http["get_weather"]["status"] == 500


# --- every problem at once, and no traceback ever -----------------------------------------------


def test_all_problems_in_one_pass(tmp_path):
    path = write(tmp_path, """\
model:
  api: chat
  timeout: -1
tools:
  - name: a
    description: x
    resolve: {static: 1}
    timeoutt: 3
  - name: b
    description: x
    resolve: {http: {url: "https://x.example/${{ args.nope }}", method: FETCH}}
""")
    got = [(p.line, p.message.split(" (")[0]) for p in errors_of(path)]
    assert got == [
        (5, "must be greater than 0"),
        (10, "unknown key 'timeoutt'"),
        (13, "expression names argument 'nope' that the tool's parameters do not declare"),
        (13, "must be one of GET, POST, PUT, PATCH, DELETE, HEAD"),
    ]


ODD_SHAPES = [
    "tools: 5", "tools: [5, null, []]", "tools: [{resolve: 5}]", "tools: [{resolve: {http: 5}}]",
    "tools: [{resolve: {http: {url: 5, query: 5, headers: [1]}}}]", "tools: [{parameters: 5}]",
    "tools: [{parameters: {properties: 5, required: 5}}]", "tools: [{parameters: {type: object, $ref: 5}}]",
    "tools: [{name: [1], parameters: {type: object, properties: {a: {$ref: '#/x/y'}}}}]",
    "tests: 5", "tests: [5]", "tests: [{turns: 5, expect: 5, mock_http: 5, vars: 5}]",
    "tests: [{turns: [{tool_calls: 5}, {tool_calls: [5]}, 5], expect: {outputs: 5, tool_calls: [5]}}]",
    "tests: [{turns: [{text: '${{ outputs }}'}], expect: {final_text: {matches: 5}}}]",
    "model: []", "model: {api: 5, store: 5}", "inputs: [a]", "inputs: {a: 5}", "input: {a: 1}",
    "instructions: '${{ env.X }} ${{ args.y }}'", "name: [1]\nversion: '1'", "'': x", "tools: [{name: '${{ x }}'}]",
]


@pytest.mark.parametrize("body", ODD_SHAPES)
def test_odd_shapes_give_problems_not_tracebacks(tmp_path, body):
    path = write(tmp_path, body + "\n")
    errors = errors_of(path)
    assert errors
    assert not any("internal error" in p.message for p in errors), [p.format() for p in errors]


def test_no_traceback_from_the_command_for_any_invalid_file():
    result = CliRunner().invoke(cli(), ["validate", *sorted(str(p) for p in INVALID.glob("*.yaml"))])
    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr


# --- tools and parameters ----------------------------------------------------------------------


def test_duplicate_tool_names_and_test_names(tmp_path):
    path = write(tmp_path, """\
tools:
  - {name: search, description: x, resolve: {static: 1}}
  - {name: search, description: y, resolve: {static: 2}}
tests:
  - {name: same, turns: [{text: a}]}
  - {name: same, turns: [{text: b}]}
""")
    assert [p.message for p in errors_of(path)] == [
        "duplicate tool name 'search' (lines 4, 5)",
        "duplicate test name 'same' (lines 7, 8)",
    ]


@pytest.mark.parametrize(
    "parameters, fragment",
    [
        ("{type: object, properties: {a: {type: string, pattern: '('}}}", "invalid regular expression '('"),
        ("{type: object, properties: {a: {type: string}}, required: [b]}", "required lists 'b'"),
        ("{type: object, properties: {a: {minLength: -1}}}", "must be at least 0"),
        ("{type: object, anyOf: [{required: [a]}], properties: {a: {type: string}}, required: [a],"
         " additionalProperties: false}", "strict tools cannot use anyOf at the root"),
        ("{type: object, properties: {a: {type: string}, b: {type: string}}, required: [a],"
         " additionalProperties: false}", "strict tools must list every property in required (missing: b)"),
        ("{type: object, properties: {a: {type: object, additionalProperties: {type: string}}}, required: [a],"
         " additionalProperties: false}", "strict tools need additionalProperties: false on every object"),
    ],
)
def test_parameter_schema_problems_name_the_tool(tmp_path, parameters, fragment):
    strict = "strict tools" in fragment
    path = write(tmp_path, f"tools:\n  - name: t\n    description: x\n    strict: {str(strict).lower()}\n"
                           f"    parameters: {parameters}\n    resolve: {{static: x}}\n")
    errors = errors_of(path)
    assert len(errors) == 1, [p.format() for p in errors]
    assert fragment in errors[0].message
    assert errors[0].message.startswith("tool 't' parameters: ")
    assert errors[0].path.startswith("$.tools[0].parameters")


def test_recursive_parameters_through_properties_are_fine(tmp_path):
    path = write(tmp_path, """\
tools:
  - name: tree
    description: x
    parameters:
      type: object
      properties:
        node: {$ref: '#/$defs/node'}
      $defs:
        node:
          type: object
          properties:
            children: {type: array, items: {$ref: '#/$defs/node'}}
    resolve: {static: x}
""")
    assert errors_of(path) == []


# --- templates -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, flagged",
    [
        ("https://${{ args.host }}/x", True),
        ("${{ args.url }}", True),
        ("https://api.example.com${{ args.path }}", True),
        ("https://api.example.com:${{ args.port }}/x", True),
        ("${{ args.scheme }}://api.example.com/x", True),
        ("https://${{ args.user }}@api.example.com/x", True),
        ("https://api.example.com/${{ args.path }}", False),
        ("https://api.example.com/x?q=${{ args.q }}", False),
        ("https://api.example.com#${{ args.frag }}", False),
        ("${{ env.BASE_URL }}/items/${{ args.id }}", False),
        ("${{ inputs.base }}/items/${{ args.id }}", False),
        ("https://${{ inputs.host }}/x", False),
    ],
)
def test_model_chosen_url_authority(tmp_path, url, flagged):
    names = ["host", "url", "path", "port", "scheme", "user", "q", "frag", "id"]
    props = ", ".join(f"{n}: {{type: string}}" for n in names)
    body = (f"inputs: {{base: {{default: 'https://x.example'}}, host: {{default: x.example}}}}\n"
            f"tools:\n  - name: fetch\n    description: x\n"
            f"    parameters: {{type: object, properties: {{{props}}}, required: [{', '.join(names)}]}}\n"
            f"    resolve:\n      http:\n        url: '{url}'\n")
    errors = errors_of(write(tmp_path, body))
    assert [("URL scheme/host/port" in p.message) for p in errors] == ([True] if flagged else [])
    allowed = write(tmp_path, body + "        allow_hosts: [api.example.com]\n", "allowed.yaml")
    assert errors_of(allowed) == []


def test_secret_in_url_query_and_literal_auth_header_are_warnings(tmp_path):
    path = write(tmp_path, TOOL + """\
      http:
        url: "https://api.example.com/x?key=${{ env.WEATHER_KEY }}"
        query: {token: "${{ env.OTHER }}"}
        headers: {X-Api-Key: abc123}
        body: '{"city": "${{ args.city }}"}'
        method: POST
""")
    workflow, problems = validate_file(path)
    assert workflow is not None
    assert [(p.severity, p.path, p.message.split(":")[0]) for p in problems] == [
        ("warning", "$.tools[0].resolve.http.url", "${{ env.* }} in the URL query"),
        ("warning", "$.tools[0].resolve.http.query.token", "${{ env.* }} in the URL query"),
        ("warning", "$.tools[0].resolve.http.headers.X-Api-Key", "header 'X-Api-Key' holds a literal value"),
        ("warning", "$.tools[0].resolve.http.body", "the JSON body is written as text with arguments spliced in"),
    ]


def test_template_contexts_by_place(tmp_path):
    path = write(tmp_path, TOOL + """\
      static: "${{ args.city }} ${{ env.HOME }} ${{ inputs.city }}"
inputs:
  city: {default: Paris}
instructions: "Answer about ${{ inputs.city }}; ${{ args.city }}"
input: "${{ inputs.city }} ${{ env.HOME }}"
description: "not filled: ${{ inputs.city }}"
tests:
  - name: t
    input: "Weather in ${{ inputs.city }}?"
    turns:
      - tool_calls: [{name: get_weather, arguments: {city: Paris}}]
      - text: "It is ${{ outputs.get_weather }}; ${{ outputs.get_wether }}"
      - text: "${{ inputs.city }}"
""")
    workflow, problems = validate_file(path)
    got = [(p.severity, p.path, p.message) for p in problems]
    assert got == [
        ("error", "$.instructions", "${{ args.city }}: args is only available in a tool's resolve"),
        ("error", "$.input", "${{ env.HOME }}: env is only available in a tool's resolve"),
        ("warning", "$.description", "${{ }} is not filled in here; this text is used as is"),
        ("error", "$.tests[0].turns[1].text",
         "expression names tool 'get_wether' that the workflow does not define (did you mean 'get_weather'?)"),
        ("error", "$.tests[0].turns[2].text", "${{ inputs.city }}: inputs is not available in a test turn's text"),
    ]


def test_short_env_value_is_a_warning_and_never_shown(tmp_path, monkeypatch):
    monkeypatch.setenv("TINY_SECRET", "q7z")
    path = write(tmp_path, TOOL + "      static: '${{ env.TINY_SECRET }}'\n")
    workflow, problems = validate_file(path)
    assert workflow is not None
    assert [p.message for p in problems] == [
        "environment variable TINY_SECRET is shorter than 4 characters, too short to redact reliably"
    ]
    assert "q7z" not in problems[0].format()


# --- tests section ---------------------------------------------------------------------------------


def test_test_cases_refer_to_tools_and_inputs(tmp_path):
    path = write(tmp_path, TOOL + """\
      static: sunny
inputs:
  city: {default: Paris}
tests:
  - name: t
    vars: {cty: Rome}
    turns:
      - tool_calls: [{name: hallucinated_tool}]
      - text: ok
    expect:
      tool_calls: [{name: get_weathr}]
      outputs: {nope: {contains: x}}
      final_text: {matches: "[unclosed"}
    mock_http: {get_weather: {status: 200}, ghost: {}}
""")
    workflow, problems = validate_file(path)
    got = [(p.severity, p.path, p.message.split(" (")[0]) for p in problems]
    assert got == [
        ("error", "$.tests[0].vars.cty", "vars sets 'cty', which inputs does not declare"),
        ("warning", "$.tests[0].turns[0].tool_calls[0].name", "the workflow has no tool 'hallucinated_tool'"),
        ("warning", "$.tests[0].expect.tool_calls[0].name", "the workflow has no tool 'get_weathr'"),
        ("error", "$.tests[0].expect.outputs.nope", "the workflow has no tool 'nope'"),
        ("error", "$.tests[0].expect.final_text.matches", "invalid regular expression: unterminated character set at position 0"),
        ("error", "$.tests[0].mock_http.get_weather", "mock_http is for http tools; 'get_weather' uses static"),
        ("error", "$.tests[0].mock_http.ghost", "the workflow has no tool 'ghost'"),
    ]


def test_api_specific_model_settings_warn(tmp_path):
    path = write(tmp_path, "model: {api: chat, store: false, assistant_id: asst_1}\n")
    workflow, problems = validate_file(path)
    assert workflow is not None
    assert [p.message for p in problems] == [
        "store only applies to api: responses; it is ignored with api: chat",
        "assistant_id only applies to api: assistants; it is ignored with api: chat",
    ]


# --- secrets -----------------------------------------------------------------------------------------


def test_pasted_key_never_reaches_the_output(tmp_path):
    key = "sk-" + "canary" * 6
    path = write(tmp_path, f"""\
model:
  api_key_env: {key}
tools:
  - name: t
    description: x
    resolve:
      http:
        url: https://api.example.com/x
        headers: {{Authorization: "Bearer {key}"}}
""")
    errors = errors_of(path)
    assert [p.path for p in errors] == ["$.model.api_key_env", "$.tools[0].resolve.http.headers.Authorization"]
    assert "literal API key" in errors[1].message
    for fmt in ("text", "json"):
        result = CliRunner().invoke(cli(), ["validate", "--format", fmt, str(path)])
        assert result.exit_code == 2
        assert key not in result.stdout + result.stderr
        assert "canarycanary" not in result.stdout + result.stderr


# --- python entrypoints --------------------------------------------------------------------------------


def make_entrypoint_workflow(folder: Path, ref: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return write(folder, TOOL.replace("    resolve:\n", f"    resolve: {{python: '{ref}'}}\n"))


@pytest.mark.parametrize(
    "ref, fragment",
    [
        ("nosuchmod_xyz:fn", "no module named 'nosuchmod_xyz'"),
        ("json:nosuch", "'json' has no attribute 'nosuch'"),
        ("json:__version__", "'json:__version__' names a str, not a function"),
        ("json:dumps.nope", "'json.dumps' has no attribute 'nope'"),
        ("class:fn", "'class' is not a Python name"),
        ("broken_at_import:fn", "importing 'broken_at_import' failed: ZeroDivisionError: division by zero"),
        ("needs_missing_dep:fn", "importing 'needs_missing_dep' failed: ModuleNotFoundError"),
        ("exits_at_import:fn", "importing 'exits_at_import' failed: SystemExit"),
        ("tools.weather:get_forecast", "no module named 'tools.weather'"),
    ],
)
def test_bad_entrypoints_with_resolve(tmp_path, ref, fragment):
    (tmp_path / "broken_at_import.py").write_text("x = 1 / 0\n")
    (tmp_path / "needs_missing_dep.py").write_text("import nosuchdependency_xyz\n")
    (tmp_path / "exits_at_import.py").write_text("raise SystemExit(3)\n")
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "__init__.py").write_text("")
    path = make_entrypoint_workflow(tmp_path, ref)
    before = list(sys.path)
    errors = errors_of(path, resolve=True)
    assert sys.path == before
    assert len(errors) == 1 and fragment in errors[0].message, [p.format() for p in errors]
    assert (errors[0].line, errors[0].path) == (12, "$.tools[0].resolve.python")


def test_entrypoints_are_not_imported_without_resolve(tmp_path):
    canary = tmp_path / "imported"
    (tmp_path / "side_effect.py").write_text(f"open({str(canary)!r}, 'w').close()\ndef fn(): pass\n")
    path = make_entrypoint_workflow(tmp_path, "side_effect:fn")
    assert errors_of(path) == []
    assert not canary.exists()
    assert errors_of(path, resolve=True) == []
    assert canary.exists()


def test_local_modules_stay_apart_per_folder(tmp_path):
    from runner.workflow.entrypoints import load_entrypoint

    for name in ("one", "two"):
        pkg = tmp_path / name / "tools"
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "weather.py").write_text(f"from helper import tag\ndef get(**kw): return tag + '{name}'\n")
        (tmp_path / name / "helper.py").write_text(f"tag = 'helper-{name}-'\n")
        (tmp_path / name / "tools_flat.py").write_text(f"def get(): return '{name}'\n")
    before = list(sys.path)
    one = load_entrypoint("tools.weather:get", tmp_path / "one")
    two = load_entrypoint("tools.weather:get", tmp_path / "two")
    assert (one(), two()) == ("helper-one-one", "helper-two-two")
    assert load_entrypoint("tools_flat:get", tmp_path / "one")() == "one"
    assert load_entrypoint("tools_flat:get", tmp_path / "two")() == "two"
    assert load_entrypoint("json:dumps", tmp_path / "one") is json.dumps
    assert sys.path == before
    assert not {"tools", "tools_flat", "helper"} & set(sys.modules)


# --- the commands ------------------------------------------------------------------------------------


def test_validate_command_ok_and_error_lines(tmp_path):
    weather = str(ROOT / "workflows" / "weather.yaml")
    bad = str(INVALID / "unknown_key_typo.yaml")
    result = CliRunner().invoke(cli(), ["validate", weather, bad])
    assert result.exit_code == 2
    assert result.stdout == f"{weather}: OK (2 tools, 1 test case)\n"
    lines = result.stderr.splitlines()
    assert lines[0] == (f"{bad}:13:7: missing required key 'url' (where: $.tools[0].resolve.http) -- add url: "
                        "(The URL, e.g. https://api.example.com/v1/items/${{ args.id }}. A model argument may "
                        "choose the host only when allow_hosts lists the hosts it may reach.)")
    assert lines[1:3] == ["   13 |       http:", "      |       ^"]
    assert lines[3].startswith(f"{bad}:14:9: unknown key 'urll' (did you mean 'url'?) (where: $.tools[0].resolve.http.urll)")
    assert lines[-1] == f"{bad}: invalid (2 errors)"

    ok = CliRunner().invoke(cli(), ["validate", weather])
    assert (ok.exit_code, ok.stderr) == (0, "")


def test_validate_command_warnings_do_not_fail(tmp_path):
    path = write(tmp_path, "model: {api: chat, store: false}\n")
    result = CliRunner().invoke(cli(), ["validate", str(path)])
    assert result.exit_code == 0
    assert result.stdout == f"{path}: OK (0 tools, 0 test cases)\n"
    assert f"{path}:3:20: warning: store only applies to api: responses" in result.stderr
    strict = CliRunner().invoke(cli(), ["validate", "--strict", str(path)])
    assert strict.exit_code == 2
    assert (strict.stdout, strict.stderr.splitlines()[-1]) == ("", f"{path}: invalid (1 warning)")


def test_validate_command_json(tmp_path):
    bad = str(INVALID / "duplicate_key.yaml")
    result = CliRunner().invoke(cli(), ["validate", "--format", "json", bad, str(ROOT / "workflows" / "weather.yaml")])
    assert result.exit_code == 2
    report = json.loads(result.stdout)
    assert report["valid"] is False
    first, second = report["files"]
    assert (first["valid"], first["errors"], second["valid"], second["tools"]) == (False, 1, True, 2)
    assert first["problems"][0] == {
        "file": bad, "line": 16, "column": 9, "message": "duplicate key 'url' (first at line 14)",
        "path": "$.tools[0].resolve.http.url", "hint": "remove one of them: YAML would silently keep only the last",
        "severity": "error",
    }


def test_validate_command_needs_a_file():
    result = CliRunner().invoke(cli(), ["validate"])
    assert result.exit_code == 2 and "FILE..." in result.stderr


def test_validate_command_masks_secret_values_in_snippets(tmp_path):
    path = write(tmp_path, "model:\n  password: hunter2hunter2\n")
    result = CliRunner().invoke(cli(), ["validate", str(path)])
    assert result.exit_code == 2
    assert "hunter2" not in result.stderr
    assert "    4 |   password: ***" in result.stderr


def test_schema_command_prints_the_schema():
    result = CliRunner().invoke(cli(), ["schema"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == workflow_schema()
