"""Run flowrun on a real pseudo-terminal, as a person at a terminal would see it."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time

from support.paths import REPO


def run_in_pty(args: list[str], env: dict, timeout: float = 30) -> tuple[int, bytes]:
    """``python -m runner ARGS`` (from the repository) with a pseudo-terminal as stdin, stdout and
    stderr; its exit code and everything it showed."""
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
