"""The approval prompt in a real terminal (a pseudo-terminal and a real flowrun process): what
is shown, each answer, parallel calls asked one by one, and nothing a model sends can hide or
repaint what is being approved."""

from __future__ import annotations

import json
import re

import pytest

from support.petstore_server import PetstoreServer
from support.pets_workflow import petstore_workflow
from support.pty_session import PtySession
from runner.scripted import ScriptedServer
from runner.workflow.model import ScriptedCall, ScriptedTurn

KEY = {"OPENAI_API_KEY": "sk-test-approvals-tty"}
TOKEN = "pet-token-0c1d2e3f4a5b"


def session(tmp_path, api, *calls):
    pets = PetstoreServer().__enter__()
    model = ScriptedServer([
        ScriptedTurn(tool_calls=tuple(ScriptedCall("create_pet", c) for c in calls)),
        ScriptedTurn(text="Result: ${{ outputs.create_pet }}"),
    ]).__enter__()
    path = petstore_workflow(tmp_path, pets.base, headers='{X-Token: "${{ env.PET_TOKEN }}"}')
    tty = PtySession([str(path), "--api", api, "--base-url", model.base_url, "--no-log"], {**KEY, "PET_TOKEN": TOKEN})
    return tty, pets, model


def close(pets, model):
    pets.__exit__(None, None, None)
    model.__exit__(None, None, None)


@pytest.mark.parametrize("api", ["responses", "chat", "assistants"])
def test_yes_at_the_prompt_runs_the_tool_once_after_showing_exactly_what_it_will_do(tmp_path, api):
    tty, pets, model = session(tmp_path, api, {"id": 7, "name": "Rex"})
    try:
        tty.expect("Approve create_pet")
        tty.expect("(http POST can change things, so it asks by default)")
        tty.expect(f"POST {pets.base}/v1/pets")
        tty.expect('"name": "Rex"')
        tty.expect("Run it? [y]es, [n]o, [a]lways for this tool in this run, [r] no with a reason: ")
        assert [s.method for s in pets.seen] == []  # nothing before the answer
        tty.send("y")
        code = tty.finish()
    finally:
        close(pets, model)
    assert code == 0, tty.text()
    assert [s.body for s in pets.seen if s.method == "POST"] == [{"id": 7, "name": "Rex"}]
    assert 'Result: {"id": 7, "name": "Rex"}' in tty.text()
    screen = tty.text()
    asking = screen[screen.index("Approve create_pet"):screen.index("Run it?")]
    assert not re.search("[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]", asking)  # the spinner never draws over the prompt


def test_always_answers_the_later_calls_of_the_same_tool_but_each_is_shown_first(tmp_path):
    tty, pets, model = session(tmp_path, "chat", {"id": 7, "name": "Rex"}, {"id": 8, "name": "Tom"})
    try:
        tty.expect('"name": "Rex"')
        tty.expect("Run it?")
        tty.send("a")
        code = tty.finish()
    finally:
        close(pets, model)
    assert code == 0, tty.text()
    assert tty.text().count("Run it?") == 1
    assert sorted(s.body["name"] for s in pets.seen if s.method == "POST") == ["Rex", "Tom"]


def test_parallel_calls_are_asked_one_after_another(tmp_path):
    tty, pets, model = session(tmp_path, "responses", {"id": 7, "name": "Rex"}, {"id": 8, "name": "Tom"})
    try:
        tty.expect('"name": "Rex"')
        tty.expect("Run it?")
        tty.send("n")
        tty.expect('"name": "Tom"')
        tty.expect("Run it?")
        tty.send("y")
        code = tty.finish()
    finally:
        close(pets, model)
    assert code == 0, tty.text()
    assert [s.body["name"] for s in pets.seen if s.method == "POST"] == ["Tom"]


def test_no_with_a_reason_reaches_the_model_as_the_tools_output(tmp_path):
    tty, pets, model = session(tmp_path, "assistants", {"id": 7, "name": "Rex"})
    try:
        tty.expect("Run it?")
        tty.send("r")
        tty.expect("Reason (the model reads it): ")
        tty.send("we already have a Rex")
        code = tty.finish()
        sent = json.dumps([r.body for r in model.requests], default=str)
    finally:
        close(pets, model)
    assert code == 0, tty.text()
    assert not [s for s in pets.seen if s.method == "POST"]
    assert "the user declined to run it: we already have a Rex" in sent


def test_the_prompt_shows_hidden_characters_and_masks_secrets(tmp_path):
    hostile = "Rex\u202e\x1b[2K" + TOKEN
    tty, pets, model = session(tmp_path, "chat", {"id": 7, "name": hostile})
    try:
        tty.expect("Run it?")
        tty.send("n")
        code = tty.finish()
    finally:
        close(pets, model)
    screen = tty.text()
    assert code == 0, screen
    prompt = screen[screen.index("Approve create_pet"):screen.index("Run it?")]
    assert "\u202e" not in prompt and "\x1b[2K" not in prompt
    assert "\\u202e" in prompt and "\\u001b[2K" in prompt
    assert TOKEN not in screen


def test_jsonl_at_a_terminal_pauses_instead_of_prompting(tmp_path):
    """``-o jsonl`` sends the events to a program, which cannot answer a prompt, even when a person
    started it at a terminal: the run pauses (exit 4) with nothing run, as it does without one."""
    pets = PetstoreServer().__enter__()
    model = ScriptedServer([
        ScriptedTurn(tool_calls=(ScriptedCall("create_pet", {"id": 7, "name": "Rex"}),)),
        ScriptedTurn(text="done"),
    ]).__enter__()
    path = petstore_workflow(tmp_path, pets.base)
    tty = PtySession([str(path), "--api", "chat", "--base-url", model.base_url, "-o", "jsonl",
                      "--log-db", str(tmp_path / "runs.db")], KEY)
    try:
        code = tty.finish()
    finally:
        close(pets, model)
    assert code == 4, tty.text()
    assert "Run it?" not in tty.text()
    assert [s.method for s in pets.seen if s.method == "POST"] == []
    events = [json.loads(line) for line in tty.text().splitlines() if line.startswith("{")]
    assert [e["type"] for e in events if e["type"].startswith("run.")][-2:] == ["run.paused", "run.failed"]
