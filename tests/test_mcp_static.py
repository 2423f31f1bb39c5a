"""MCP tool sources without any server: the file format and its checks, schema rewriting for the
APIs, result conversion, and that validate/--help never import the SDK."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from support.mcp_files import FIXTURE, stdio_source, workflow
from runner.tools.mcp_servers.results import NO_CONTENT, convert, from_mock
from runner.tools.mcp_servers.schemas import drop_added_nulls, normalize
from runner.workflow.validate import validate_file

LOOSE = {
    "type": "object",
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "properties": {
        "query": {"type": "string", "default": "x", "format": "regex"},
        "limit": {"type": "integer", "minimum": 1},
        "tags": {"type": "array"},
        "mode": {"oneOf": [{"const": "fast"}, {"const": "slow"}]},
    },
    "required": ["query"],
}


def problems_of(tmp_path, text: str) -> list[str]:
    path = tmp_path / "wf.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    _, problems = validate_file(path)
    return [f"{p.line}:{p.column} {p.severity} {p.message}" for p in problems]


def test_a_valid_source_builds_its_spec(tmp_path):
    path = workflow(tmp_path, stdio_source(more="""\
        include: [echo, add]
        prefix: fx_
        timeout: 7
        strict: true
        overrides:
          echo: {description: Say it back., timeout: 2}
        """) + "  - mcp: {name: remote, url: 'https://mcp.example.com/mcp', headers: {Authorization: 'Bearer ${{ env.MCP_TOKEN }}'}}\n")
    wf, problems = validate_file(path)
    assert problems == [] and wf is not None
    assert wf.tools == ()
    local, remote = wf.mcp
    assert local.server.name == "fx" and local.server.transport == "stdio" and local.server.args[-1] == "stdio"
    assert local.include == ("echo", "add") and local.prefix == "fx_" and local.timeout == 7.0 and local.strict
    assert local.overrides["echo"].description == "Say it back." and local.overrides["echo"].timeout == 2.0
    assert remote.server.transport == "http" and remote.include is None
    assert remote.server.headers == {"Authorization": "Bearer ${{ env.MCP_TOKEN }}"}


def test_static_checks_point_at_the_line(tmp_path):
    found = problems_of(tmp_path, """\
        version: 1
        name: t
        tools:
          - name: local
            description: x
            resolve: {static: "1"}
          - mcp:
              name: time
              command: python
              env: [FOO=bar]
              headers: {A: b}
            include: [get_current_time, local]
            overrides:
              get_curent_time: {timeout: 3}
          - mcp:
              name: time
              url: http://127.0.0.1:1/mcp
              headers: {Authorization: "Bearer ${{ inputs.x }}"}
          - mcp: {name: both, command: x, url: "http://a/b"}
          - mcp: {name: neither}
        tests:
          - name: a
            turns: [{text: hi}]
            mock_mcp:
              tim: {x: {text: hi}}
              time: {get_current_tim: {text: a}}
        """)
    assert found == [
        "10:13 error env lists the NAMES of environment variables, not values (got 'FOO=bar')",
        "11:7 error headers only applies to a server given by url",
        "12:33 error MCP tool 'local' has the name of a tool of this file",
        "14:7 error overrides 'get_curent_time', which include does not list (did you mean 'get_current_time'?)",
        "16:13 error duplicate MCP server name 'time' (also at line 8)",
        "18:32 error ${{ inputs.x }}: an MCP server's headers can only use env (they are filled once, when the server is connected)",
        "19:5 error an MCP server needs exactly one of command or url (found both)",
        "20:5 error an MCP server needs exactly one of command or url (found neither)",
        "25:7 error mock_mcp names server 'tim', which the workflow does not declare (did you mean 'time'?)",
        "26:14 error server 'time' does not include a tool 'get_current_tim' (did you mean 'get_current_time'?)",
    ]


def test_tests_may_name_tools_a_server_brings(tmp_path):
    found = problems_of(tmp_path, """\
        version: 1
        name: t
        tools:
          - mcp: {name: fx, command: x}
            include: [echo]
            prefix: fx_
        tests:
          - name: a
            turns:
              - tool_calls: [{name: fx_echo, arguments: {text: hi}}, {name: fx_ecko}]
              - text: "${{ outputs.fx_echo }}"
            mock_http: {fx_echo: {body: x}}
            expect:
              outputs: {fx_echo: {equals: hi}}
        """)
    assert found == [
        "10:69 warning the workflow has no tool 'fx_ecko' (did you mean 'fx_echo'?)",
        "12:17 error mock_http is for http tools; 'fx_echo' would come from an MCP server",
    ]


def test_an_env_value_or_unknown_key_is_refused_by_the_schema(tmp_path):
    found = problems_of(tmp_path, """\
        version: 1
        name: t
        tools:
          - mcp: {name: fx, command: x, token: abc}
            inclde: [a]
        """)
    assert any("'token': a literal key or secret must never be in the workflow file" in p for p in found)
    assert any("unknown key 'inclde' (did you mean 'include'?)" in p for p in found)


def test_basic_normalization_keeps_the_schema_usable_non_strict():
    result = normalize(LOOSE, strict=None)
    assert result.strict is None
    assert "$schema" not in result.parameters and result.parameters["properties"]["tags"]["items"] == {}
    assert result.changes == ["dropped $schema", "/properties/tags: array without items given items: {}"]
    assert LOOSE["properties"]["tags"] == {"type": "array"}  # the server's own schema is untouched


def test_strict_normalization_says_what_changed():
    result = normalize(LOOSE, strict=True)
    p = result.parameters
    assert result.strict is True
    assert p["additionalProperties"] is False
    assert p["required"] == ["query", "limit", "tags", "mode"]
    assert p["properties"]["query"] == {"type": "string"}  # default and format regex dropped
    assert p["properties"]["limit"] == {"type": ["integer", "null"], "minimum": 1}
    assert p["properties"]["mode"] == {"anyOf": [{"anyOf": [{"const": "fast"}, {"const": "slow"}]}, {"type": "null"}]}
    assert "/properties/mode: oneOf read as anyOf" in result.changes
    assert "/: optional limit, tags, mode made required and nullable" in result.changes


def test_a_schema_strict_mode_cannot_express_is_sent_non_strict():
    for schema, reason in [
        ({"type": "object", "properties": {"a": {"allOf": [{"type": "string"}]}}}, "/properties/a uses allOf"),
        ({"type": "object", "anyOf": [{"required": ["a"]}], "properties": {"a": {}}}, "anyOf at the root"),
        ({"type": "object", "properties": {"m": {"type": "object", "additionalProperties": {"type": "string"}}}},
         "/properties/m is a map with free keys (additionalProperties)"),
    ]:
        result = normalize(schema, strict=True)
        assert result.strict is False and result.changes[-1] == f"sent non-strict: {reason}"


def test_nulls_added_for_strict_mode_are_dropped_before_the_call():
    args = {"query": "q", "limit": None, "tags": None, "mode": "fast"}
    assert drop_added_nulls(args, LOOSE) == {"query": "q", "mode": "fast"}
    nullable = {"type": "object", "properties": {"a": {"type": ["string", "null"]}}}
    assert drop_added_nulls({"a": None}, nullable) == {"a": None}


def test_results_become_one_text():
    assert convert({"content": [{"type": "text", "text": "hi"}, {"type": "text", "text": "there"}]}) == ("hi\nthere", False)
    structured = {"content": [{"type": "text", "text": '{"sum": 3}'}], "structuredContent": {"sum": 3}}
    assert convert(structured) == ('{"sum":3}', False)
    assert convert({"content": [{"type": "text", "text": "no"}], "isError": True}) == ("error: no", True)
    assert convert({"content": [], "isError": True}) == ("error: the tool reported an error without a message", True)
    assert convert({"content": []}) == (NO_CONTENT, False)
    assert convert("nonsense") == ("error: the MCP server sent a result flowrun cannot read", True)
    image = {"type": "image", "data": "aGVsbG8=", "mimeType": "image/png"}
    link = {"type": "resource_link", "name": "report", "uri": "file:///r.pdf", "mimeType": "application/pdf"}
    text_res = {"type": "resource", "resource": {"uri": "file:///a.txt", "text": "abc"}}
    blob_res = {"type": "resource", "resource": {"uri": "file:///b.bin", "blob": "AAAA", "mimeType": "application/zip"}}
    output, is_error = convert({"content": [image, link, text_res, blob_res, {"type": "hologram"}]})
    assert not is_error
    assert output.splitlines() == [
        "[image: image/png, 5 bytes]",
        "[resource link: report file:///r.pdf, application/pdf]",
        "[resource file:///a.txt]", "abc",
        "[resource file:///b.bin: application/zip, 3 bytes]",
        "[hologram content, not shown]",
    ]


def test_canned_results_go_through_the_same_conversion():
    assert convert(from_mock({"structured": {"a": 1}})) == ('{"a":1}', False)
    assert convert(from_mock({"text": "boom", "is_error": True})) == ("error: boom", True)
    assert convert(from_mock({"text": "x", "structured": [1]})) == ("[1]\nx", False)


def test_validate_and_help_never_import_the_sdk(tmp_path):
    path = workflow(tmp_path, stdio_source())
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from runner.cli import cli\n"
        f"r = CliRunner().invoke(cli, ['validate', {str(path)!r}])\n"
        "assert r.exit_code == 0, r.output\n"
        "h = CliRunner().invoke(cli, ['--help'])\n"
        "assert h.exit_code == 0\n"
        "t = CliRunner().invoke(cli, ['tools', 'call', '--help'])\n"
        "assert '--no-local-code' in t.output, t.output\n"
        "loaded = sorted(m for m in sys.modules if m == 'mcp' or m.startswith(('mcp.', 'mcp_types')))\n"
        "print(loaded)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
    assert FIXTURE.is_file()


def test_remote_requests_go_to_the_checked_address_with_the_name_kept():
    import asyncio

    import httpx2

    from runner.tools.mcp_servers.remote import RemoteRefused, guarded_client

    async def scenario():
        client = await guarded_client("http://localhost:9/mcp", {"Authorization": "Bearer x"}, allow_private=True)
        hook = client.event_hooks["request"][0]
        request = client.build_request("POST", "http://localhost:9/mcp")
        await hook(request)
        elsewhere = client.build_request("POST", "http://example.org/mcp")
        try:
            await hook(elsewhere)
        except RemoteRefused as e:
            refused = str(e)
        await client.aclose()
        return request, refused

    request, refused = asyncio.run(scenario())
    assert str(request.url) in ("http://127.0.0.1:9/mcp", "http://[::1]:9/mcp")
    assert request.headers["Host"] == "localhost:9" and request.headers["Authorization"] == "Bearer x"
    assert refused == "the MCP session tried to reach example.org, not localhost; refused"
    assert isinstance(request, httpx2.Request)
