"""Shared pieces of the reliability tests (tests/test_reliability_*.py): workflows with Python
tools that misbehave on purpose, and readers for what a run left (notes, run log, submissions)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from support.cli import Result, flowrun

APIS = ["responses", "chat", "assistants"]
KEY = "sk-test-key-for-loopback-0000"
ENV = {"OPENAI_API_KEY": KEY}

# Python tools for the workflows below. ``note`` appends a line to $NOTES_FILE (or notes.txt
# beside the module), so a test can count how many times a tool really ran.
TOOLS_PY = '''
import os, sys, time, pathlib

def _notes():
    return pathlib.Path(os.environ.get("NOTES_FILE") or pathlib.Path(__file__).with_name("notes.txt"))

def note(text: str = "x"):
    with open(_notes(), "a") as f:
        f.write(text + "\\n")
    return "noted " + text

def slow(seconds: float = 1.0):
    time.sleep(seconds)
    with open(_notes(), "a") as f:
        f.write("slow done\\n")
    return "slept"

def chatty():
    print("TOOL SAYS HELLO ON STDOUT")
    sys.stdout.write("{not json either\\n")
    return "ok"

def hang():
    while True:
        time.sleep(0.05)

def boom(why: str = "db down"):
    raise ValueError(why)

def selfref():
    a = []
    a.append(a)
    return a

def when():
    import datetime
    return {"at": datetime.datetime(2030, 1, 2, 3, 4, 5), "tags": {"b", "a"}}
'''


def flowrun_with_key(*args: str, env: dict | None = None) -> Result:
    """``flowrun ARGS`` in this process with an API key set (see ``support.cli.flowrun``)."""
    return flowrun(*args, env={**ENV, **(env or {})})


def write_workflow(folder: Path, tools: str, *, api: str = "chat", model: str = "", name: str = "rel",
                   python: str | None = TOOLS_PY) -> Path:
    """A workflow in ``folder`` (tools given as the YAML of the ``tools:`` list) with
    ``tools.py`` beside it."""
    if python is not None:
        (folder / "tools.py").write_text(python)
    extra = f", {model}" if model else ""
    text = (f"version: 1\nname: {name}\nmodel: {{api: {api}, name: m{extra}}}\ninput: hi\ntools:\n"
            + textwrap.indent(textwrap.dedent(tools).strip("\n"), "  ") + "\n")
    path = folder / "wf.yaml"
    path.write_text(text)
    return path


def python_tool(name: str, func: str, *, params: str = "{type: object, properties: {}}", timeout: float | None = None) -> str:
    t = f"\n  timeout: {timeout}" if timeout is not None else ""
    return f"- name: {name}\n  description: {name}\n  parameters: {params}{t}\n  resolve: {{python: 'tools:{func}'}}\n"


def notes(folder: Path) -> list[str]:
    path = folder / "notes.txt"
    return path.read_text().splitlines() if path.exists() else []


def logged_run(run_id: str | None = None) -> dict:
    """A run from the run log ($FLOWRUN_LOG_DB, set per test by conftest): the newest, or ``run_id``."""
    import os

    from runner.runlog.log import RunLog

    reader = RunLog.open_reader(os.environ["FLOWRUN_LOG_DB"])
    try:
        if run_id is None:
            run_id = reader.list_runs(1)[0]["run_id"]
        return reader.get_run(run_id)
    finally:
        reader.close()


def same_events(logged: list[dict], printed: list[dict]) -> None:
    """The run log holds exactly the events ``-o jsonl`` printed, in the same order."""
    strip = [{k: v for k, v in e.items() if k != "seq"} for e in logged]
    assert [e["type"] for e in strip] == [e["type"] for e in printed]
    assert strip == printed


def submissions(server, api: str) -> list[dict]:
    """The tool outputs each request carried back to the model, as {call_id: output}."""
    found = []
    for req in server.requests:
        body = req.body if isinstance(req.body, dict) else {}
        if api == "assistants" and req.path.endswith("/submit_tool_outputs"):
            found.append({o["tool_call_id"]: o["output"] for o in body["tool_outputs"]})
        elif api == "responses" and req.path.endswith("/responses") and req.method == "POST":
            outs = {i["call_id"]: i["output"] for i in body.get("input", [])
                    if isinstance(i, dict) and i.get("type") == "function_call_output"}
            if outs:
                found.append(outs)
        elif api == "chat" and req.path.endswith("/chat/completions"):
            msgs = body.get("messages", [])
            last = max((i for i, m in enumerate(msgs) if m.get("role") == "assistant"), default=-1)
            outs = {m["tool_call_id"]: m["content"] for m in msgs[last + 1:] if m.get("role") == "tool"}
            if outs:
                found.append(outs)
    return found


def completed(events: list[dict]) -> list[dict]:
    """The ``tool_call.completed`` events in the order the calls were requested (they are
    printed in the order they finish)."""
    order = [e["call_id"] for e in events if e["type"] == "tool_call.requested"]
    done = {e["call_id"]: e for e in events if e["type"] == "tool_call.completed"}
    return [done[c] for c in order if c in done]


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("flowrun: error:")]
