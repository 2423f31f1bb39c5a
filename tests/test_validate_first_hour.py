"""The mistakes a new author makes next (issue 10, section 3): each is caught by plain
`flowrun validate` with file:line:col, what is wrong and how to fix it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from runner.workflow.validate import validate_file

HEAD = """\
version: 1
name: t
model: {name: gpt-4o-mini}
instructions: x
tools:
  - name: get_order
    description: An order
"""


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "w.yaml"
    path.write_text(HEAD + textwrap.indent(textwrap.dedent(body), "    "), encoding="utf-8")
    return path


def formatted(path: Path, severity: str = "error") -> list[str]:
    return [p.format() for p in validate_file(path)[1] if p.severity == severity]


def test_misspelt_schema_keywords_in_parameters(tmp_path):
    path = write(tmp_path, """\
        parameters:
          type: object
          propertes: {id: {type: string}}
          requried: [id]
          properties:
            unit: {type: string, enmu: [c, f], descripton: Unit, x-note: mine}
        resolve: {static: ok}
    """)
    assert formatted(path) == [
        f"{path}:10:7: tool 'get_order' parameters: unknown JSON Schema keyword 'propertes' (did you mean 'properties'?)"
        " (where: $.tools[0].parameters.propertes) -- fix the spelling; an argument's name goes under properties:,"
        " and a note of your own can start with x-",
        f"{path}:11:7: tool 'get_order' parameters: unknown JSON Schema keyword 'requried' (did you mean 'required'?)"
        " (where: $.tools[0].parameters.requried) -- fix the spelling; an argument's name goes under properties:,"
        " and a note of your own can start with x-",
        f"{path}:13:30: tool 'get_order' parameters: unknown JSON Schema keyword 'enmu' (did you mean 'enum'?)"
        " (where: $.tools[0].parameters.properties.unit.enmu) -- fix the spelling; an argument's name goes under"
        " properties:, and a note of your own can start with x-",
        f"{path}:13:44: tool 'get_order' parameters: unknown JSON Schema keyword 'descripton' (did you mean"
        " 'description'?) (where: $.tools[0].parameters.properties.unit.descripton) -- fix the spelling; an"
        " argument's name goes under properties:, and a note of your own can start with x-",
    ]


def test_missing_python_function_is_found_without_running_the_module(tmp_path):
    canary = tmp_path / "imported"
    (tmp_path / "ops_tools.py").write_text(
        f"open({str(canary)!r}, 'w').close()\n\ndef lookup_order(id):\n    return id\n")
    path = write(tmp_path, """\
        parameters: {type: object, properties: {id: {type: string}}}
        resolve: {python: "ops_tools:lookup_ordr"}
    """)
    assert formatted(path) == [
        f"{path}:9:23: 'ops_tools' (ops_tools.py) defines no 'lookup_ordr' (in 'ops_tools:lookup_ordr');"
        " did you mean 'lookup_order'? (where: $.tools[0].resolve.python) -- check the name after the ':'"
    ]
    assert not canary.exists()
    resolved = [p.message for p in validate_file(path, resolve=True)[1]]
    assert resolved == ["'ops_tools' has no attribute 'lookup_ordr' (in 'ops_tools:lookup_ordr'); did you mean 'lookup_order'?"]
    assert canary.exists()


def test_python_function_checks_follow_the_runner_lookup(tmp_path):
    pkg = tmp_path / "ops"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "orders.py").write_text("from json import dumps as render\nasync def fetch(): pass\n")
    (tmp_path / "dynamic.py").write_text("def __getattr__(name): return print\n")
    for ref in ("ops.orders:fetch", "ops.orders:render", "dynamic:anything", "json:dumps", "sys:exit"):
        path = write(tmp_path, f"""\
            parameters: {{type: object}}
            resolve: {{python: "{ref}"}}
        """)
        assert formatted(path) == [], ref
    path = write(tmp_path, """\
        parameters: {type: object}
        resolve: {python: "ops.missing:fetch"}
    """)
    assert formatted(path) == [f"{path}:9:23: no module named 'ops.missing' in {tmp_path}"
                               " (where: $.tools[0].resolve.python) -- check the module path before the ':'"]
    path = write(tmp_path, """\
        parameters: {type: object}
        resolve: {python: "not_installed_anywhere_xyz:fetch"}
    """)
    assert formatted(path) == []
    assert [p.message for p in validate_file(path)[1]] == [
        "no module named 'not_installed_anywhere_xyz' (looked next to the workflow file and on the Python path)"]


def test_url_path_argument_must_be_required(tmp_path):
    path = write(tmp_path, """\
        parameters: {type: object, properties: {id: {type: string}, q: {type: string}}}
        resolve:
          http:
            url: "https://api.example.com/orders/${{ args.id }}?q=${{ args.q }}"
    """)
    assert formatted(path) == [
        f"{path}:11:14: argument 'id' is used in the URL path but is not in required (tool 'get_order')"
        " (where: $.tools[0].resolve.http.url) -- add id to the tool's parameters.required, or move it to query:"
    ]


def test_url_host_that_cannot_be_a_host(tmp_path):
    for host, why in [("api example.com", "it contains a space"), ("api..example.com", "it has an empty part between dots"),
                      ("api_x.example.com", "it may hold only letters, digits, '-' and '.'")]:
        path = write(tmp_path, f"""\
            parameters: {{type: object}}
            resolve: {{http: {{url: "https://{host}:8080/v1"}}}}
        """)
        assert formatted(path) == [
            f"{path}:9:27: URL host {host!r} cannot be a host name: {why} (tool 'get_order')"
            " (where: $.tools[0].resolve.http.url) -- write the host as names joined by dots, e.g. api.example.com"
        ]
    for good in ("https://localhost:8080/v1", "http://127.0.0.1/x", "https://[::1]:9/x", "https://u:p@a-b.example.com./x"):
        path = write(tmp_path, f"""\
            parameters: {{type: object}}
            resolve: {{http: {{url: "{good}"}}}}
        """)
        assert formatted(path) == [], good


def test_header_value_with_a_line_break(tmp_path):
    path = write(tmp_path, """\
        parameters: {type: object}
        resolve:
          http:
            url: https://api.example.com/x
            headers:
              Accept: |
                application/json
    """)
    assert formatted(path) == [
        f"{path}:13:19: header 'Accept' value contains a line break (where: $.tools[0].resolve.http.headers.Accept)"
        " -- write the value on one line (a YAML block with | or > ends in a line break: use |- or >-)"
    ]
    path = write(tmp_path, """\
        parameters: {type: object}
        resolve:
          http:
            url: https://api.example.com/x
            headers: {Accept: "application/json\\x07"}
    """)
    assert formatted(path) == [
        f"{path}:12:27: header 'Accept' value contains the control character '\\x07'"
        " (where: $.tools[0].resolve.http.headers.Accept) -- remove it: a header value is printable text"
        " (a server would refuse it)"
    ]


# --- YAML syntax: pointed at the mistake, not where the parser gave up ------------------------------

from runner.workflow.yaml_loader import load_text  # noqa: E402


def yaml_problems(text: str) -> list[str]:
    return [p.format() for p in load_text(text, file="w.yaml")[1]]


def test_unclosed_quote_is_reported_where_it_opens():
    text = 'version: 1\nname: t\ninstructions: "Be helpful\nmodel:\n  name: x\ntools: []\n'
    assert yaml_problems(text) == [
        'w.yaml:3:15: this string opened at line 3 is never closed (where: $) -- end the value with "; '
        'a " inside it is written \\"']
    single = "version: 1\nname: 'it''s\n"
    assert yaml_problems(single) == [
        "w.yaml:2:7: this string opened at line 2 is never closed (where: $) -- end the value with '; "
        "a ' inside it is written ''"]


def test_over_indented_key_is_not_told_to_quote():
    text = "version: 1\nname: t\nmodel:\n  name: x\n    api: chat\ntools: []\n"
    assert yaml_problems(text) == [
        "w.yaml:5:5: key 'api' is indented further than line 4, as if it were inside that line's value (where: $)"
        " -- line it up with the key above it (indent it 2 spaces)"]
    colon_in_value = "version: 1\nname: t\ninstructions: Note: be brief\n"
    assert "must be quoted" in yaml_problems(colon_in_value)[0]


def test_missing_dash_is_one_message():
    text = ("version: 1\ntools:\n  - name: a\n    description: x\n    resolve: {static: 1}\n"
            "    name: b\n    description: y\n    resolve: {static: 2}\n")
    assert yaml_problems(text) == [
        "w.yaml:6:5: key 'name' comes a second time in this list item (first at line 3): line 6 looks like the"
        " start of a new item without '- ' (where: $.tools[0].name) -- write '- name:' to start a new item,"
        " or remove the repeated keys"]
    outside_a_list = "version: 1\nname: a\nname: b\n"
    assert yaml_problems(outside_a_list) == [
        "w.yaml:3:1: duplicate key 'name' (first at line 2) (where: $.name) -- remove one of them: YAML would"
        " silently keep only the last"]


def test_stray_closing_quote_is_a_warning():
    doc, problems = load_text('version: 1\nname: t\ninstructions: Be helpful"\nnote: say "hi"\n', file="w.yaml")
    assert doc is not None
    assert [p.format() for p in problems] == [
        "w.yaml:3:15: warning: the value 'Be helpful\"' ends with a \" that no quote opens (where: $.instructions)"
        ' -- if the value is meant to be quoted, add the opening " where it starts; otherwise remove the last "']


def test_operators_in_expressions_are_refused_plainly(tmp_path):
    path = tmp_path / "w.yaml"
    path.write_text("version: 1\nname: t\nmodel: {name: m}\ninputs:\n  city: {default: Paris}\n"
                    "instructions: \"Weather for ${{ inputs.city || 'Berlin' }}\"\ntools: []\n")
    assert formatted(path) == [
        f"{path}:6:15: \"${{{{ inputs.city || 'Berlin' }}}}\" uses the operator '||': expressions name one value"
        " and have no operators (where: $.instructions)"
        " -- for a fallback, give the input a default (inputs: {city: {default: ...}}) and write ${{ inputs.city }}"]


@pytest.mark.parametrize("expression, hint", [
    ("${{ env.CITY || 'Berlin' }}",
     "an environment variable has no fallback in the file: set CITY before running, or use an input with a "
     "default: (inputs:) instead"),
    ("${{ args.city == 'Berlin' }}",
     "write one name, such as ${{ inputs.NAME }}; a decision or a calculation belongs in a python: tool"),
])
def test_each_operator_gets_the_fix_that_fits_it(tmp_path, expression, hint):
    path = tmp_path / "w.yaml"
    path.write_text("version: 1\nname: t\nmodel: {name: m}\ntools:\n  - name: get\n    description: d\n"
                    "    parameters: {type: object, properties: {city: {type: string}}, required: [city]}\n"
                    f"    resolve: {{static: \"{expression}\"}}\n")
    operator = "||" if "||" in expression else "=="
    assert formatted(path) == [
        f"{path}:8:23: \"{expression}\" uses the operator '{operator}': expressions name one value and have no "
        f"operators (where: $.tools[0].resolve.static) -- {hint}"]


def test_a_comma_inside_a_flow_mapping_value_is_explained(tmp_path):
    path = write(tmp_path, """\
        parameters:
          type: object
          properties:
            city: {type: string, description: The city, e.g. Paris}
        resolve: {static: ok}
    """)
    assert formatted(path) == [
        f"{path}:11:53: tool 'get_order' parameters: 'e.g. Paris' became a keyword of its own: inside {{ }} a comma"
        " ends the value before it (where: $.tools[0].parameters.properties.city['e.g. Paris']) -- quote that value,"
        ' e.g. description: "The city, e.g. Paris"']
