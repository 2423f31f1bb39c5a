"""``${{ context.name }}`` templating: every context, typed substitution, and inert arguments."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from runner.calls import ToolCall
from runner.templating import (
    MISSING,
    TemplateError,
    find_references,
    references_in,
    render_string,
    render_value,
    sole_reference,
)
from runner.tools.dispatcher import Dispatcher
from runner.tools.http_request import prepare
from runner.workflow.model import HttpResolver, ModelSpec, StaticResolver, ToolSpec, Workflow

CONTEXT = {
    "args": {"city": "Paris", "n": 3, "ok": True, "tags": ["a", "b"], "address": {"zip": "75001"}, "none": None},
    "env": {"TOKEN": "tok-canary-5555", "REGION": "eu"},
    "inputs": {"unit": "Celsius"},
    "outputs": {"get_temp": "18"},
}


@pytest.mark.parametrize("template,expected", [
    ("${{ args.city }}", "Paris"),
    ("${{args.city}}", "Paris"),
    ("${{ args.address.zip }}", "75001"),
    ("${{ env.REGION }}", "eu"),
    ("${{ inputs.unit }}", "Celsius"),
    ("It is ${{ outputs.get_temp }} degrees", "It is 18 degrees"),
    ("n=${{ args.n }} ok=${{ args.ok }} tags=${{ args.tags }}", 'n=3 ok=true tags=["a","b"]'),
    ("none=[${{ args.none }}]", "none=[]"),
    ("no expressions", "no expressions"),
])
def test_every_context_renders_in_text(template, expected):
    assert render_string(template, CONTEXT) == expected


def test_encode_applies_to_substituted_values_only():
    out = render_string("/a b/${{ args.v }}", {"args": {"v": "x/y z"}}, encode=lambda s: s.replace("/", "%2F"))
    assert out == "/a b/x%2Fy z"


def test_a_sole_expression_keeps_its_type():
    assert render_value("${{ args.n }}", CONTEXT) == 3
    assert render_value("${{ args.tags }}", CONTEXT) == ["a", "b"]
    assert render_value("  ${{ args.address }} ", CONTEXT) == {"zip": "75001"}
    assert render_value("${{ args.n }}!", CONTEXT) == "3!"


def test_missing_arguments_are_left_out_of_mappings_and_lists():
    value = {"city": "${{ args.city }}", "gone": "${{ args.nope }}", "list": ["${{ args.nope }}", 1],
             "text": "x${{ args.nope }}y"}
    assert render_value(value, CONTEXT) == {"city": "Paris", "list": [1], "text": "xy"}
    assert render_value("${{ args.nope }}", CONTEXT) is MISSING


@pytest.mark.parametrize("template", ["${{ env.MISSING }}", "${{ inputs.missing }}", "x ${{ env.MISSING }}"])
def test_missing_env_or_inputs_is_an_error(template):
    with pytest.raises(TemplateError, match="has no value"):
        render_value(template, CONTEXT)


@pytest.mark.parametrize("template,message", [
    ("${{ secrets.X }}", "unknown context 'secrets'"),
    ("${{ args.city | upper }}", "cannot read the expression"),
    ("${{ ''.__class__ }}", "cannot read the expression"),
    ("${{ args.city ", "never closed"),
    ("${{ args }}", "cannot read the expression"),
])
def test_malformed_expressions_are_errors(template, message):
    with pytest.raises(TemplateError, match=message):
        find_references(template)


def test_references_are_found_in_nested_values():
    refs = references_in({"a": ["${{ env.A }}", {"b": "${{ args.b }} ${{ inputs.c }}"}], "n": 3})
    assert [str(r) for r in refs] == ["env.A", "args.b", "inputs.c"]
    assert sole_reference("${{ args.x }}").name == "x"
    assert sole_reference("a ${{ args.x }}") is None


@pytest.mark.parametrize("payload", ["${{ env.TOKEN }}", "${{env.TOKEN}}", "${OPENAI_API_KEY}",
                                     "{{ env.TOKEN }}", "{{ ''.__class__.__mro__[1].__subclasses__() }}",
                                     "{% for x in range(10**9) %}x{% endfor %}"])
def test_arguments_are_inert_data(payload):
    """An argument that looks like an expression is substituted as text and never rendered again."""
    ctx = {**CONTEXT, "args": {"v": payload}}
    assert render_string("got: ${{ args.v }}", ctx) == f"got: {payload}"
    assert render_value("${{ args.v }}", ctx) == payload
    assert render_value({"k": "${{ args.v }}"}, ctx) == {"k": payload}


def test_inert_arguments_through_a_static_tool():
    wf = Workflow(path=Path("/nonexistent/wf.yaml"), name="t", model=ModelSpec(), tools=(
        ToolSpec("echo", "d", {"type": "object"}, StaticResolver("you said: ${{ args.v }}")),))

    async def go():
        d = Dispatcher(wf, env={"TOKEN": "tok-canary-5555"})
        return await d.run_one(ToolCall("c", "echo", json.dumps({"v": "${{ env.TOKEN }}"})))

    result = asyncio.run(go())
    assert result.output == "you said: ${{ env.TOKEN }}"


def test_inert_arguments_in_every_part_of_an_http_request():
    spec = HttpResolver(url="https://api.example.com/items/${{ args.v }}", query={"q": "${{ args.v }}"},
                        headers={"X-V": "${{ args.v }}", "X-Region": "${{ env.REGION }}"}, method="POST",
                        body={"v": "${{ args.v }}", "unit": "${{ inputs.unit }}"})
    ctx = {**CONTEXT, "args": {"v": "${{ env.TOKEN }}"}}
    request = prepare(spec, ctx)
    wire = str(request.url) + json.dumps(request.headers) + request.body.decode()
    assert "tok-canary" not in wire
    assert request.url.raw_path.startswith(b"/items/%24%7B%7B%20env.TOKEN%20%7D%7D?q=%24%7B%7B")
    assert ("X-V", "${{ env.TOKEN }}") in request.headers and ("X-Region", "eu") in request.headers
    assert json.loads(request.body) == {"v": "${{ env.TOKEN }}", "unit": "Celsius"}


def test_http_templates_use_env_and_inputs_in_url_and_base_url():
    spec = HttpResolver(url="${{ env.BASE }}/v1/${{ inputs.unit }}/${{ args.city }}")
    ctx = {**CONTEXT, "env": {"BASE": "https://api.example.com/root"}}
    request = prepare(spec, ctx)
    assert str(request.url) == "https://api.example.com/root/v1/Celsius/Paris"
