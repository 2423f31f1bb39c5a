"""Opt-in: the example workflows against a real server you run yourself (Ollama, vLLM,
llama.cpp's llama-server, LM Studio, an Assistants server such as LLAMPHouse).

Skipped, with the reason printed (``pytest -rs``), unless ``FLOWRUN_TEST_SERVER_URL`` is set:

    FLOWRUN_TEST_SERVER_URL=http://127.0.0.1:8080/v1 FLOWRUN_TEST_SERVER_API=chat \\
    FLOWRUN_TEST_SERVER_MODEL=smollm2 .venv/bin/python -m pytest -rs tests/test_real_server.py

FLOWRUN_TEST_SERVER_API           chat (default) | responses | assistants
FLOWRUN_TEST_SERVER_MODEL         the model name the server serves (default: the file's)
FLOWRUN_TEST_SERVER_KEY           sent as the API key (default: a placeholder; local servers ignore it)
FLOWRUN_TEST_SERVER_ASSISTANT_ID  Assistants servers that cannot create assistants: the one to reuse
FLOWRUN_TEST_SERVER_STORE         responses only: "false" for servers that keep no responses (llama.cpp, Ollama)

What a model answers is not checked (small local models answer anything); how flowrun behaves
is: exit 0, text on stdout, well-formed events, every tool call answered, no traceback and no
warning from the SDK's types on stderr.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from support.cli import flowrun_process
from support.paths import REPO

URL = os.environ.get("FLOWRUN_TEST_SERVER_URL", "").strip()
API = os.environ.get("FLOWRUN_TEST_SERVER_API", "chat").strip() or "chat"
MODEL = os.environ.get("FLOWRUN_TEST_SERVER_MODEL", "").strip()
KEY = os.environ.get("FLOWRUN_TEST_SERVER_KEY", "").strip() or "sk-local-placeholder"
ASSISTANT_ID = os.environ.get("FLOWRUN_TEST_SERVER_ASSISTANT_ID", "").strip()
STORE = os.environ.get("FLOWRUN_TEST_SERVER_STORE", "").strip().lower()

if not URL:
    pytest.skip("real-server tests are opt-in: set FLOWRUN_TEST_SERVER_URL (and FLOWRUN_TEST_SERVER_API) "
                "to run the example workflows against your server", allow_module_level=True)
if API not in ("chat", "responses", "assistants"):
    pytest.skip(f"FLOWRUN_TEST_SERVER_API={API!r}: use chat, responses or assistants", allow_module_level=True)

EXAMPLES = ["workflows/weather.yaml", "workflows/city_weather.yaml"]


def workflow_for_server(example: str, tmp_path: Path) -> Path:
    """A copy of ``example`` pointed at the server under test (beside its Python tools)."""
    doc = yaml.safe_load((REPO / example).read_text())
    model = doc.setdefault("model", {})
    model.update(api=API, base_url=URL, api_key_env="FLOWRUN_TEST_SERVER_KEY")
    if MODEL:
        model["name"] = MODEL
    if ASSISTANT_ID and API == "assistants":
        model["assistant_id"] = ASSISTANT_ID
    if STORE in ("false", "true") and API == "responses":
        model["store"] = STORE == "true"
    path = tmp_path / Path(example).name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    for tools in (REPO / example).parent.glob("*.py"):
        (tmp_path / tools.name).write_text(tools.read_text())
    return path


def run_flowrun(*args: str, tmp_path: Path, input: str | None = None):
    env = {"FLOWRUN_TEST_SERVER_KEY": KEY, "FLOWRUN_LOG_DB": str(tmp_path / "runs.sqlite3")}
    # checks flowrun, not the model: a small model's empty answer completes with a warning here
    args = (*args, "--policy", "on_empty_answer=warn")
    return flowrun_process(*args, env=env, input=input, timeout=600)  # a real process: its stderr as a user sees it


def assert_clean_stderr(err: str) -> None:
    assert "Traceback" not in err, err
    assert "UserWarning" not in err and "PydanticSerializationUnexpectedValue" not in err, err


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_workflow_runs_to_an_answer(example, tmp_path):
    path = workflow_for_server(example, tmp_path)
    r = run_flowrun(str(path), "-o", "jsonl", tmp_path=tmp_path)
    assert_clean_stderr(r.err)
    events = [json.loads(line) for line in r.out.splitlines() if line.strip()]
    kinds = [e["type"] for e in events]
    assert kinds and kinds[0] == "run.started" and kinds[-1] in ("run.completed", "run.failed"), kinds
    requested = {e["call_id"] for e in events if e["type"] == "tool_call.requested"}
    answered = {e["call_id"] for e in events if e["type"] == "tool_call.completed"}
    assert requested == answered, "every tool call the model asked for was answered"
    assert r.code == 0 and kinds[-1] == "run.completed", (r.code, events[-1], r.err)
    final = events[-1]["final_text"]
    assert final.strip() or "no text" in r.err, "an empty answer is said so on stderr, never silent"


def test_text_answer_goes_to_stdout(tmp_path):
    path = workflow_for_server("workflows/weather.yaml", tmp_path)
    r = run_flowrun(str(path), tmp_path=tmp_path)
    assert_clean_stderr(r.err)
    assert r.code == 0, r.err
    assert r.out.strip() or "no text" in r.err


def test_a_second_chat_turn_is_accepted(tmp_path):
    """Multi-turn: the replayed conversation (stateless Responses, Chat history, the thread) is
    accepted by the server on the second message."""
    path = workflow_for_server("workflows/weather.yaml", tmp_path)
    r = run_flowrun(str(path), "--chat", "-M", "Say hello.", tmp_path=tmp_path, input="And once more, briefly.\n")
    assert_clean_stderr(r.err)
    assert r.code == 0, r.err
    assert "HTTP 400" not in r.err, r.err
