"""What a person sees in a real terminal: a pseudo-terminal (stdlib ``pty``) records the screen
bytes of a real ``flowrun`` process, as tmux or pexpect would."""

from __future__ import annotations

import re

from support.pty_session import PtySession, run_in_pty
from support.cli import flowrun
from support.paths import REPO
from runner.scripted import ScriptedServer
from runner.workflow.model import ScriptedCall, ScriptedTurn

TURNS = [
    ScriptedTurn(
        tool_calls=(
            ScriptedCall("get_current_temperature", {"location": "San Francisco, CA", "unit": "Fahrenheit"}),
            ScriptedCall("get_rain_probability", {"location": "San Francisco, CA"}),
        )
    ),
    ScriptedTurn(text="It is ${{ outputs.get_current_temperature }}°F."),
]
KEY = {"OPENAI_API_KEY": "sk-test-tty"}


def test_on_a_tty_a_spinner_runs_then_one_line_per_tool():
    with ScriptedServer(TURNS, latency_per_turn=0.6) as server:
        code, screen = run_in_pty(["workflows/weather.yaml", "--base-url", server.base_url], KEY)
    text = screen.decode("utf-8", "replace")
    assert code == 0, text
    assert "waiting for the model…" in text  # the spinner's label while the model thinks
    assert re.search("[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]", text)  # spinner frames
    assert "\r\x1b[2K" in text  # the spinner line is erased, not left behind
    assert re.search(r"\x1b\[32m✓\x1b\[0m get_current_temperature\(location=\"San Francisco, CA\", unit=\"Fahrenheit\"\) → 57", text)
    assert "It is 57°F." in text
    assert "completed · 2 turns · 2 tool calls" in text


def test_no_color_on_a_tty_keeps_the_spinner_but_drops_colour():
    with ScriptedServer(TURNS, latency_per_turn=0.3) as server:
        code, screen = run_in_pty(["workflows/weather.yaml", "--base-url", server.base_url], {**KEY, "NO_COLOR": "1"})
    text = screen.decode("utf-8", "replace")
    assert code == 0, text
    assert "\x1b[32m" not in text
    assert "✓ get_current_temperature" in text


def test_the_same_run_piped_is_plain_and_stable():
    outputs = []
    for _ in range(2):
        with ScriptedServer(TURNS, latency_per_turn=0.3) as server:
            r = flowrun("workflows/weather.yaml", "--base-url", server.base_url, env=KEY)
        assert r.code == 0, r.err
        assert "\x1b" not in r.out + r.err and "\r" not in r.out + r.err
        outputs.append(re.sub(r"\(\d+ ms\)|\d+(\.\d+)? s\b|\d+ ms\b", "(T)", r.err))
    assert outputs[0] == outputs[1]  # nothing but timings changes between runs
    assert outputs[0].splitlines()[0].startswith("✓ get_current_temperature(")


def test_the_chat_prompt_edits_the_line_and_ctrl_d_ends_cleanly():
    """`you>` on a terminal: the left arrow moves the cursor (readline) instead of typing ^[[D, and
    Ctrl-D at the prompt ends the run with exit 0 on a line of its own."""
    turns = [ScriptedTurn(text="First answer."), ScriptedTurn(text="Second answer.")]
    with ScriptedServer(turns) as server:
        tty = PtySession(["workflows/weather.yaml", "--api", "chat", "--base-url", server.base_url, "--chat",
                          "-M", "hello", "--no-log"],
                         {**KEY, "INPUTRC": "/dev/null", "HOME": str(REPO / "tests")})  # no personal readline set-up
        tty.expect("you> ")
        tty.write(b"Pars\x1b[Di\r")  # "Pars", left arrow, "i": "Paris"
        tty.expect("you> ")
        tty.write(b"\x04")  # Ctrl-D
        code = tty.finish(30)
        screen = tty.screen
        sent = [q.body["messages"][-1]["content"] for q in server.requests if q.turn_index is not None]
    assert code == 0, screen
    assert sent == ["hello", "Paris"], sent
    assert b"^[[D" not in screen
    assert screen.endswith(b"you> \r\n"), screen[-40:]
