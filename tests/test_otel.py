"""OpenTelemetry: a recorded run sent as GenAI spans to a real OTLP/HTTP receiver on 127.0.0.1,
decoded with the official protobuf definitions and checked against the semantic conventions."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("opentelemetry.sdk", reason="the otel extra is not installed: pip install -e '.[test]'")
pytest.importorskip("opentelemetry.proto", reason="opentelemetry-proto is not installed: pip install -e '.[test]'")

from click.testing import CliRunner  # noqa: E402

from support.cli import flowrun  # noqa: E402
from support.otlp_receiver import Receiver  # noqa: E402
from runner.events import (RunFailed, RunStarted, TextDelta, ToolCallCompleted,  # noqa: E402
                           ToolCallRequested, TurnCompleted, TurnStarted)
from runner.runlog.log import RunLog  # noqa: E402
from runner.secrets.masker import Masker  # noqa: E402

INTERNAL, CLIENT = 1, 3  # opentelemetry.proto Span.SpanKind
ERROR = 2  # Status.StatusCode
SECRET = "sk-live-9f8e7d6c5b4a"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> tuple[Path, str]:
    """The weather workflow run through the real run path (offline), recorded in a fresh log."""
    log = tmp_path_factory.mktemp("otel") / "runs.sqlite3"
    result = flowrun("workflows/weather.yaml", "--offline", "--log-db", str(log))
    assert result.code == 0, result.err
    run_id = sqlite3.connect(log).execute("SELECT run_id FROM runs").fetchone()[0]
    return log, run_id


def export(log: Path, run_id: str, endpoint: str, **env):
    return flowrun("logs", "export", run_id, "--otlp", "--log-db", str(log),
                   env={"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, **env})


def by_op(spans, op):
    return [s for s in spans if s["attributes"].get("gen_ai.operation.name") == op]


def test_a_recorded_run_arrives_as_genai_spans(recorded):
    log, run_id = recorded
    with Receiver() as receiver:
        result = export(log, run_id, receiver.endpoint)
        assert result.code == 0, result.err
        assert receiver.paths and set(receiver.paths) == {"/v1/traces"}
        spans = receiver.spans()
    assert f"sent run {run_id}" in result.out

    [agent] = by_op(spans, "invoke_agent")
    chats = by_op(spans, "chat")
    tools = by_op(spans, "execute_tool")
    assert len(spans) == 1 + len(chats) + len(tools)
    assert len(chats) == 2 and len(tools) == 2  # the weather case: two tools in parallel, then the answer

    assert agent["name"] == "invoke_agent weather" and agent["parent"] == "" and agent["kind"] == INTERNAL
    assert agent["resource"]["service.name"] == "flowrun"
    for span in spans:
        a = span["attributes"]
        assert span["trace_id"] == agent["trace_id"]
        assert a["gen_ai.provider.name"] == "openai"
        assert a["gen_ai.request.model"] == "gpt-4o-mini"
        assert a["gen_ai.conversation.id"] == run_id
        assert agent["start"] <= span["start"] <= span["end"] <= agent["end"]
        if span is not agent:
            assert span["parent"] == agent["span_id"]
    for chat in chats:
        assert chat["name"] == "chat gpt-4o-mini" and chat["kind"] == CLIENT
        assert isinstance(chat["attributes"]["gen_ai.usage.input_tokens"], int)
        assert isinstance(chat["attributes"]["gen_ai.usage.output_tokens"], int)
    assert chats[0]["attributes"]["gen_ai.response.finish_reasons"] == ["tool_calls"]
    assert sorted(t["attributes"]["gen_ai.tool.name"] for t in tools) == ["get_current_temperature",
                                                                          "get_rain_probability"]
    for tool in tools:
        assert tool["name"] == "execute_tool " + tool["attributes"]["gen_ai.tool.name"]
        assert tool["attributes"]["gen_ai.tool.call.id"]
        assert tool["start"] >= chats[0]["end"]  # the tools ran after the model asked for them
    # The run's usage is the sum of its turns'.
    assert agent["attributes"]["gen_ai.usage.input_tokens"] == sum(c["attributes"]["gen_ai.usage.input_tokens"] for c in chats)
    # No message content unless asked for.
    assert not any(k.startswith(("gen_ai.input", "gen_ai.output", "gen_ai.tool.call.arg", "gen_ai.tool.call.res"))
                   for s in spans for k in s["attributes"])


def test_content_only_when_asked_and_masked(tmp_path):
    log = tmp_path / "runs.sqlite3"
    run_id = "run_secret_1"
    with RunLog.open(log, masker=Masker([SECRET])) as recorder:  # masks as the real run's log does
        recorder.start_run(run_id=run_id, workflow_path="w.yaml", workflow_sha256="0" * 64, api="chat",
                           model="m1", input=f"use key {SECRET}", offline=False)
        for event in (RunStarted(run_id, "w.yaml", "chat", "m1", f"use key {SECRET}"), TurnStarted(1),
                      TurnCompleted(1, "tool_calls", {"input_tokens": 3, "output_tokens": 1}),
                      ToolCallRequested("c1", "fetch", '{"q": "x"}'),
                      ToolCallCompleted("c1", "fetch", f"HTTP 401 for token {SECRET}", True, 12.0),
                      TurnStarted(2), TextDelta("sorry, "), TextDelta("no access"),
                      TurnCompleted(2, "completed", {"input_tokens": 5, "output_tokens": 2}),
                      RunFailed(run_id, "failed", "tool failed", 1, "sorry, no access", 2, 1, None, 40.0)):
            recorder.record(run_id, event)
    with Receiver() as receiver:
        result = export(log, run_id, receiver.endpoint, OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="true")
        assert result.code == 0, result.err
        spans = receiver.spans()
    [agent] = by_op(spans, "invoke_agent")
    [tool] = by_op(spans, "execute_tool")
    assert '"content": "use key ***"' in agent["attributes"]["gen_ai.input.messages"]
    assert tool["attributes"]["gen_ai.tool.call.result"] == "HTTP 401 for token ***"
    assert tool["attributes"]["gen_ai.tool.call.arguments"] == '{"q": "x"}'
    assert tool["status"] == ERROR and tool["attributes"]["error.type"] == "tool_error"
    assert agent["status"] == ERROR and agent["attributes"]["error.type"] == "failed"
    assert '"sorry, no access"' in by_op(spans, "chat")[1]["attributes"]["gen_ai.output.messages"]
    assert all(SECRET not in str(s) for s in spans)


def test_a_refusing_collector_is_an_error(recorded):
    log, run_id = recorded
    with Receiver(status=400) as receiver:
        result = export(log, run_id, receiver.endpoint)
    assert result.code == 1
    assert f"the collector at {receiver.endpoint}/v1/traces did not take the spans" in result.err
    assert "Traceback" not in result.err


def test_without_the_extra_the_export_says_how_to_get_it(recorded, monkeypatch):
    from runner.commands.logs import logs_group

    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # as if it were not installed
    for name in [m for m in sys.modules if m.startswith("runner.otel.")]:
        monkeypatch.delitem(sys.modules, name)
    log, run_id = recorded
    result = CliRunner().invoke(logs_group, ["export", run_id, "--otlp", "--log-db", str(log)])
    assert result.exit_code == 2
    assert "pip install 'flowrun[otel]'" in result.output


def test_opentelemetry_is_never_imported_otherwise():
    code = ("import sys, runner.cli, runner.commands.logs, runner.commands.run, runner.run.session; "
            "print(sorted(m for m in sys.modules if m.startswith(('opentelemetry', 'runner.otel'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1]).stdout
    assert out.strip() == "[]"


def test_the_live_sink_takes_a_real_runs_events(monkeypatch):
    """OtelSink, as a run's fan-out would call it, fed the events of a real offline run (-o jsonl)."""
    from runner.otel.export import OtelSink

    result = flowrun("workflows/weather.yaml", "--offline", "--no-log", "-o", "jsonl")
    assert result.code == 0, result.err
    events = result.jsonl()
    with Receiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        sink = OtelSink()
        for event in events:
            sink(event)
        sink.close()
        spans = receiver.spans()
    assert [len(by_op(spans, op)) for op in ("invoke_agent", "chat", "execute_tool")] == [1, 2, 2]
    run_id = next(e["run_id"] for e in events if e["type"] == "run.started")
    assert {s["attributes"]["gen_ai.conversation.id"] for s in spans} == {run_id}


def test_a_cut_run_still_ends_its_spans(monkeypatch):
    from runner.otel.export import OtelSink

    with Receiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        sink = OtelSink()
        for event in (RunStarted("run_cut", "w.yaml", "chat", "m1", "hi"), TurnStarted(1), TextDelta("par")):
            sink(event)
        sink.close()  # Ctrl-C before the last event
        spans = receiver.spans()
    [agent] = by_op(spans, "invoke_agent")
    assert agent["status"] == ERROR and agent["attributes"]["error.type"] == "interrupted"
    assert len(by_op(spans, "chat")) == 1


@pytest.mark.parametrize("how", ["--otel", "env"])
def test_a_live_run_sends_its_spans(tmp_path, how):
    """`flowrun FILE --otel` (the collector named by OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), or just
    OTEL_EXPORTER_OTLP_ENDPOINT set."""
    with Receiver() as receiver:
        if how == "--otel":
            env = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.endpoint + "/v1/traces"}
            args = ["--otel"]
        else:
            env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint}
            args = []
        result = flowrun("workflows/weather.yaml", "--offline", "--log-db", str(tmp_path / "r.db"), *args, env=env)
        assert result.code == 0, result.err
        spans = receiver.spans()
    assert [len(by_op(spans, op)) for op in ("invoke_agent", "chat", "execute_tool")] == [1, 2, 2]
    run_id = sqlite3.connect(tmp_path / "r.db").execute("SELECT run_id FROM runs").fetchone()[0]
    assert {s["attributes"]["gen_ai.conversation.id"] for s in spans} == {run_id}


def test_a_run_without_otel_imports_none_of_it(tmp_path):
    probe = ("import sys, runpy; sys.argv = ['flowrun', *sys.argv[1:]]\n"
             "try:\n    runpy.run_module('runner', run_name='__main__')\nexcept SystemExit:\n    pass\n"
             "sys.stderr.write('LOADED=%s' % sorted(m for m in sys.modules if m.startswith(('opentelemetry', 'runner.otel', 'runner.view'))))")
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run([sys.executable, "-c", probe, "workflows/weather.yaml", "--offline", "-q",
                           "--log-db", str(tmp_path / "r.db")], capture_output=True, text=True, env=env,
                          cwd=Path(__file__).resolve().parents[1], timeout=120)
    assert "LOADED=[]" in done.stderr, done.stderr
