"""The dispatcher's contract: one result per call, in call order, errors as outputs, never raising."""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap
from pathlib import Path

import pytest

from runner.calls import ToolCall
from runner.secrets.masker import Masker
from runner.tools.dispatcher import Dispatcher
from runner.workflow.model import HttpResolver, ModelSpec, PythonResolver, StaticResolver, ToolSpec, Workflow

WEATHER_PARAMS = {
    "type": "object",
    "properties": {
        "location": {"type": "string"},
        "unit": {"type": "string", "enum": ["Celsius", "Fahrenheit"]},
        "days": {"type": "integer", "minimum": 1},
    },
    "required": ["location"],
    "additionalProperties": False,
}

TOOLS_PY = '''
import asyncio, datetime, decimal, json, sys, time, threading
CALLS = []
RUNNING = [0]
PEAK = [0]
RELEASE = threading.Event()

def record(**kwargs):
    CALLS.append(kwargs)
    return "recorded"

async def sleep_then(value, delay):
    await asyncio.sleep(delay)
    return value

async def gauge(delay=0.05):
    RUNNING[0] += 1
    PEAK[0] = max(PEAK[0], RUNNING[0])
    await asyncio.sleep(delay)
    RUNNING[0] -= 1
    return "done"

def hang_sync():
    RELEASE.wait(30)
    return "released"

async def hang_async():
    await asyncio.sleep(3600)

def exits():
    sys.exit(0)

def interrupts():
    raise KeyboardInterrupt

async def exits_async():
    raise SystemExit(3)

async def cancels_itself():
    raise asyncio.CancelledError()

def fails(message):
    raise ValueError(message)

class Thing:
    def __str__(self):
        return "a thing"

def odd(kind):
    if kind == "datetime":
        return {"at": datetime.datetime(2025, 1, 2, 3, 4, 5)}
    if kind == "bytes":
        return b"caf\\xc3\\xa9"
    if kind == "set":
        return {3, 1, 2}
    if kind == "decimal":
        return decimal.Decimal("1.10")
    if kind == "nan":
        return [float("nan"), float("inf"), 1.5]
    if kind == "object":
        return Thing()
    if kind == "none":
        return None
    if kind == "circular":
        a = []
        a.append(a)
        return a
    if kind == "big":
        return "x" * 50
    if kind == "tuplekey":
        return {(1, 2): "v", 3: "w"}
'''


def make_workflow(tmp_path: Path, *tools: ToolSpec) -> Workflow:
    (tmp_path / "disp_tools.py").write_text(textwrap.dedent(TOOLS_PY), encoding="utf-8")
    return Workflow(path=tmp_path / "wf.yaml", name="t", model=ModelSpec(), tools=tools)


def py(name: str, func: str, params: dict | None = None, timeout: float = 60.0) -> ToolSpec:
    return ToolSpec(name, "test tool", params or {"type": "object"}, PythonResolver(f"disp_tools:{func}"),
                    timeout=timeout)


def static(name: str, value, params: dict | None = None) -> ToolSpec:
    return ToolSpec(name, "test tool", params or {"type": "object"}, StaticResolver(value))


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))  # a hang fails the test instead of blocking it


def call_one(workflow: Workflow, name: str, arguments: str = "{}", **kwargs):
    async def go():
        d = Dispatcher(workflow, env=kwargs.pop("env", {}), **kwargs)
        try:
            return await d.run_one(ToolCall("c1", name, arguments))
        finally:
            await d.aclose()

    return run(go())


def tools_module(tmp_path: Path):
    """The test module as the python resolver loaded it, or None if it was never imported."""
    target = str(tmp_path / "disp_tools.py")
    return next((m for m in list(sys.modules.values()) if getattr(m, "__file__", None) == target), None)


# --- arguments -----------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ['{"location": "Par', '{"a":1}{"b":2}', "{'a': 1}", '{"a": NaN}',
                                 '{"a": 1, "a": 2}', "[" * 100_000])
def test_invalid_json_is_an_error_output_and_the_tool_does_not_run(tmp_path, raw):
    wf = make_workflow(tmp_path, py("record", "record"))
    result = call_one(wf, "record", raw)
    assert result.is_error
    assert result.output.startswith("error: the arguments are not valid JSON (")
    assert result.output.endswith("Send a JSON object that matches the tool's parameters.")
    assert result.call_id == "c1" and result.name == "record"


@pytest.mark.parametrize("raw,kind", [("[]", "an array"), ('"x"', "a string"), ("null", "null"),
                                      ("3", "a number"), ("true", "a boolean"), ('""', "a string")])
def test_json_that_is_not_an_object_is_refused(tmp_path, raw, kind):
    wf = make_workflow(tmp_path, static("s", "ok"))
    result = call_one(wf, "s", raw)
    assert result.is_error
    assert result.output == f"error: expected a JSON object with the tool's parameters, got {kind}."


@pytest.mark.parametrize("raw", ["", "   "])
def test_empty_arguments_mean_an_empty_object(tmp_path, raw):
    wf = make_workflow(tmp_path, static("s", "ok"))
    result = call_one(wf, "s", raw)
    assert (result.output, result.is_error) == ("ok", False)


def test_schema_violations_are_all_listed_with_paths_and_nothing_runs(tmp_path):
    wf = make_workflow(tmp_path, py("record", "record", WEATHER_PARAMS))
    result = call_one(wf, "record", json.dumps({"unit": "Kelvin", "days": 0, "extra": 1}))
    assert result.is_error
    out = result.output
    assert out.startswith("error: the arguments do not match the parameters of tool 'record':")
    assert "- $: 'location' is a required property" in out
    assert "- $.unit: 'Kelvin' is not one of ['Celsius', 'Fahrenheit']" in out
    assert "- $.days: 0 is less than the minimum of 1" in out
    assert "'extra' was unexpected" in out
    assert tools_module(tmp_path) is None  # the tool never ran: its module was not even imported


def test_valid_arguments_reach_the_python_tool_as_keywords(tmp_path):
    wf = make_workflow(tmp_path, py("record", "record", WEATHER_PARAMS))
    result = call_one(wf, "record", '{"location": "Paris", "unit": "Celsius"}')
    assert (result.output, result.is_error) == ("recorded", False)
    assert tools_module(tmp_path).CALLS[-1] == {"location": "Paris", "unit": "Celsius"}


def test_oversized_arguments_are_refused_before_parsing(tmp_path):
    wf = make_workflow(tmp_path, static("s", "ok"))
    result = call_one(wf, "s", json.dumps({"blob": "x" * 1_100_000}))
    assert result.is_error
    assert "too large" in result.output and "limit is 1000000 bytes" in result.output


def test_unknown_tool_suggests_the_closest_name_and_lists_all(tmp_path):
    wf = make_workflow(tmp_path, static("get_weather", "1"), static("get_time", "2"))
    result = call_one(wf, "get_wether")
    assert result.is_error
    assert result.output == ("error: there is no tool named 'get_wether'. Did you mean 'get_weather'? "
                             "Available tools: get_weather, get_time.")
    empty = call_one(wf, "")
    assert empty.is_error and empty.output == "error: the call names no tool. Available tools: get_weather, get_time."


# --- concurrency and ordering ----------------------------------------------------------------------


def test_results_come_back_in_call_order_with_one_per_call_even_for_duplicate_ids(tmp_path):
    wf = make_workflow(tmp_path, py("sleep", "sleep_then"), static("s", "static"))
    calls = [
        ToolCall("a", "sleep", '{"value": "slow", "delay": 0.2}'),
        ToolCall("b", "sleep", '{"value": "fast", "delay": 0}'),
        ToolCall("a", "s", "{}"),  # duplicate call_id: still answered
        ToolCall("c", "nope", "{}"),
        ToolCall("d", "sleep", '{"value": "mid", "delay": 0.1}'),
    ]
    started, done = [], []

    async def go():
        d = Dispatcher(wf, env={})
        return await d.run_all(calls, on_start=started.append, on_done=lambda r: done.append(r.output))

    results = run(go())
    assert [(r.call_id, r.name) for r in results] == [(c.call_id, c.name) for c in calls]
    assert [r.output for r in results[:3]] == ["slow", "fast", "static"]
    assert results[3].is_error and results[4].output == "mid"
    assert started == calls
    assert done.index("fast") < done.index("mid") < done.index("slow")  # finished out of order
    assert all(r.duration_ms >= 0 for r in results)
    assert results[0].duration_ms >= 150


def test_max_concurrency_bounds_calls_in_flight(tmp_path):
    wf = make_workflow(tmp_path, py("gauge", "gauge"))

    async def go():
        d = Dispatcher(wf, env={}, max_concurrency=2)
        return await d.run_all([ToolCall(str(i), "gauge", "{}") for i in range(6)])

    results = run(go())
    assert [r.output for r in results] == ["done"] * 6
    assert tools_module(tmp_path).PEAK[0] == 2


# --- failures inside tools -------------------------------------------------------------------------


@pytest.mark.parametrize("func,expected", [
    ("exits", "error: the tool raised SystemExit (the tool called sys.exit(0))"),
    ("interrupts", "error: the tool raised KeyboardInterrupt"),
    ("exits_async", "error: the tool raised SystemExit (the tool called sys.exit(3))"),
    ("cancels_itself", "error: the tool raised CancelledError: the tool cancelled itself"),
])
def test_base_exceptions_from_tools_become_outputs_and_the_loop_goes_on(tmp_path, func, expected):
    wf = make_workflow(tmp_path, py("bad", func), static("s", "still here"))

    async def go():
        d = Dispatcher(wf, env={})
        first = await d.run_all([ToolCall("1", "bad", "{}"), ToolCall("2", "s", "{}")])
        second = await d.run_one(ToolCall("3", "s", "{}"))
        return first + [second]

    results = run(go())
    assert results[0].is_error and results[0].output == expected
    assert [r.output for r in results[1:]] == ["still here", "still here"]


def test_exception_text_is_the_output(tmp_path):
    wf = make_workflow(tmp_path, py("fails", "fails"))
    result = call_one(wf, "fails", '{"message": "db down"}')
    assert result.is_error and result.output == "error: the tool raised ValueError: db down"


@pytest.mark.parametrize("func", ["hang_sync", "hang_async"])
def test_a_hanging_tool_times_out_and_is_abandoned(tmp_path, func):
    wf = make_workflow(tmp_path, py("hang", func, timeout=0.2), static("s", "ok"))

    async def go():
        d = Dispatcher(wf, env={})
        return await d.run_all([ToolCall("1", "hang", "{}"), ToolCall("2", "s", "{}")])

    try:
        results = run(go())
    finally:
        if func == "hang_sync":
            tools_module(tmp_path).RELEASE.set()
    assert results[0].is_error and results[0].output == "error: tool 'hang' timed out after 0.2 s"
    assert results[1].output == "ok"


def test_cancelling_the_dispatcher_propagates(tmp_path):
    wf = make_workflow(tmp_path, py("hang", "hang_async"))

    async def go():
        d = Dispatcher(wf, env={})
        task = asyncio.ensure_future(d.run_all([ToolCall("1", "hang", "{}")]))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return "cancelled"

    assert run(go()) == "cancelled"


# --- outputs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind,expected", [
    ("datetime", '{"at":"2025-01-02T03:04:05"}'),
    ("bytes", '"café"'),
    ("set", "[1,2,3]"),
    ("decimal", '"1.10"'),
    ("nan", "[null,null,1.5]"),
    ("object", '"a thing"'),
    ("none", "null"),
    ("tuplekey", '{"(1, 2)":"v","3":"w"}'),
])
def test_return_values_are_serialized_deterministically(tmp_path, kind, expected):
    wf = make_workflow(tmp_path, py("odd", "odd"))
    result = call_one(wf, "odd", json.dumps({"kind": kind}))
    assert (result.output, result.is_error) == (expected, False)


def test_a_value_that_cannot_be_serialized_is_an_error_output(tmp_path):
    wf = make_workflow(tmp_path, py("odd", "odd"))
    result = call_one(wf, "odd", '{"kind": "circular"}')
    assert result.is_error and "cannot be turned into JSON" in result.output


def test_outputs_are_truncated_with_a_marker(tmp_path):
    wf = make_workflow(tmp_path, py("odd", "odd"), static("obj", {"k": "y" * 30}))
    result = call_one(wf, "odd", '{"kind": "big"}', max_output_chars=10)
    assert result.output == "x" * 10 + "…[truncated 40 chars]"
    assert not result.is_error
    obj = call_one(wf, "obj", "{}", max_output_chars=10)
    assert obj.output.startswith('{"k":"yyyy') and obj.output.endswith("…[truncated 28 chars]")


def test_secrets_are_masked_in_outputs_and_error_text(tmp_path):
    secret = "tok-canary-1234567890"
    wf = make_workflow(tmp_path, py("fails", "fails"), py("record", "record"), static("echo", "${{ args.v }}"))
    masker = Masker([secret])
    ok = call_one(wf, "echo", json.dumps({"v": f"key={secret}"}), masker=masker)
    bad = call_one(wf, "fails", json.dumps({"message": f"auth failed for {secret}"}), masker=masker)
    assert ok.output == "key=***" and not ok.is_error
    assert bad.output == "error: the tool raised ValueError: auth failed for ***"


def test_environment_values_sent_by_http_tools_are_masked_without_a_masker(tmp_path):
    secret = "tok-canary-abcdefgh"
    http = ToolSpec("api", "d", {"type": "object"}, HttpResolver(
        url="https://api.example.com/x", headers={"X-Key": "${{ env.TOOL_TOKEN }}"}))
    wf = make_workflow(tmp_path, http, static("echo", "${{ args.v }}"))
    result = call_one(wf, "echo", json.dumps({"v": secret}), env={"TOOL_TOKEN": secret})
    assert result.output == "***"


def test_static_values_are_templated_and_objects_sent_as_json(tmp_path):
    wf = make_workflow(tmp_path, static("s", "${{ args.city }} in ${{ inputs.unit }} for ${{ env.WHO }}"),
                       static("o", {"city": "${{ args.city }}", "n": "${{ args.n }}", "gone": "${{ args.nope }}"}))
    text = call_one(wf, "s", '{"city": "Paris"}', env={"WHO": "me"}, inputs={"unit": "C"})
    assert text.output == "Paris in C for me"
    obj = call_one(wf, "o", '{"city": "Paris", "n": 3}')
    assert obj.output == '{"city":"Paris","n":3}'


def test_static_with_a_missing_env_value_is_an_error_output(tmp_path):
    wf = make_workflow(tmp_path, static("s", "${{ env.NOT_SET_ANYWHERE }}"))
    result = call_one(wf, "s")
    assert result.is_error and "env.NOT_SET_ANYWHERE has no value" in result.output


def test_python_resolvers_can_be_disabled(tmp_path):
    wf = make_workflow(tmp_path, py("record", "record"))
    result = call_one(wf, "record", "{}", allow_python=False)
    assert result.is_error and result.output == "error: python resolvers are disabled (--no-python)"
