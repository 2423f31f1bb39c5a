"""What a person sees in a real terminal: a pseudo-terminal (stdlib ``pty``) records the screen
bytes of a real ``flowrun`` process, as tmux or pexpect would."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time

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


def run_in_pty(args: list[str], env: dict, timeout: float = 30) -> tuple[int, bytes]:
    master, slave = pty.openpty()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_") and k != "NO_COLOR"}
    full_env.update(env, TERM="xterm-256color")
    proc = subprocess.Popen([sys.executable, "-m", "runner", *args], stdin=slave, stdout=slave, stderr=slave, env=full_env, cwd=REPO, close_fds=True)
    os.close(slave)
    screen = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            screen += chunk
        elif proc.poll() is not None:
            break
    code = proc.wait(timeout=5)
    os.close(master)
    return code, screen


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
        master, slave = pty.openpty()
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_") and k != "NO_COLOR"}
        env.update(KEY, TERM="xterm-256color", INPUTRC="/dev/null", HOME=str(REPO / "tests"))  # no personal readline set-up
        proc = subprocess.Popen([sys.executable, "-m", "runner", "workflows/weather.yaml", "--api", "chat",
                                 "--base-url", server.base_url, "--chat", "-M", "hello", "--no-log"],
                                stdin=slave, stdout=slave, stderr=slave, env=env, cwd=REPO, close_fds=True)
        os.close(slave)
        screen = b""

        def read_until(needle: bytes, count: int) -> None:
            nonlocal screen
            deadline = time.monotonic() + 60
            while screen.count(needle) < count:
                assert time.monotonic() < deadline and proc.poll() is None, screen
                ready, _, _ = select.select([master], [], [], 0.1)
                if ready:
                    screen += os.read(master, 65536)

        try:
            read_until(b"you> ", 1)
            os.write(master, b"Pars\x1b[Di\r")  # "Pars", left arrow, "i": "Paris"
            read_until(b"you> ", 2)
            os.write(master, b"\x04")  # Ctrl-D
            code = proc.wait(timeout=30)
            while select.select([master], [], [], 0.1)[0]:
                try:
                    screen += os.read(master, 65536)
                except OSError:
                    break
        finally:
            if proc.poll() is None:
                proc.kill()
            os.close(master)
        sent = [q.body["messages"][-1]["content"] for q in server.requests if q.turn_index is not None]
    assert code == 0, screen
    assert sent == ["hello", "Paris"], sent
    assert b"^[[D" not in screen
    assert screen.endswith(b"you> \r\n"), screen[-40:]
