"""A real ``flowrun`` process on a pseudo-terminal that a test can talk to: wait for text on the
screen, type a line, read the whole screen at the end (what pexpect does, with the stdlib)."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time

from support.paths import REPO


class PtySession:
    def __init__(self, args: list[str], env: dict[str, str], cwd=REPO):
        """``env`` is added to ours (without OPENAI_* and NO_COLOR), on a terminal of TERM
        xterm-256color, with no personal flowrun config."""
        master, slave = pty.openpty()
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_") and k != "NO_COLOR"}
        full_env.update(env, TERM="xterm-256color")
        full_env["XDG_CONFIG_HOME"] = str(REPO / "tests" / "fixtures" / "no-user-config")
        self.proc = subprocess.Popen([sys.executable, "-m", "runner", *args], stdin=slave, stdout=slave,
                                     stderr=slave, env=full_env, cwd=cwd, close_fds=True)
        os.close(slave)
        self.master = master
        self.screen = b""
        self._mark = 0  # where the last expected text ended

    def _read(self, wait: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], wait)
        if not ready:
            return True
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # the child closed the terminal
            return False
        self.screen += chunk
        return bool(chunk)

    def expect(self, text: str, timeout: float = 60) -> None:
        """Wait until ``text`` is on the screen after what earlier calls waited for."""
        needle = text.encode()
        deadline = time.monotonic() + timeout
        while (at := self.screen.find(needle, self._mark)) < 0:
            if time.monotonic() > deadline or (not self._read(0.1) and self.proc.poll() is not None):
                raise AssertionError(f"{text!r} never appeared; the screen:\n{self.text()}")
        self._mark = at + len(needle)

    def send(self, line: str) -> None:
        self.write(line.encode() + b"\r")

    def write(self, keys: bytes) -> None:
        """Keys as typed, e.g. ``b"\\x1b[D"`` (left arrow) or ``b"\\x04"`` (Ctrl-D)."""
        os.write(self.master, keys)

    def finish(self, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._read(0.1) and self.proc.poll() is not None:
                break
            if self.proc.poll() is not None:
                while self._read(0.05) and select.select([self.master], [], [], 0)[0]:
                    pass
                break
        try:
            code = self.proc.wait(timeout=10)
        finally:
            if self.proc.poll() is None:  # never leave a process behind a failed test
                self.proc.kill()
            os.close(self.master)
        return code

    def text(self) -> str:
        return self.screen.decode("utf-8", "replace")


def run_in_pty(args: list[str], env: dict[str, str], timeout: float = 60) -> tuple[int, bytes]:
    """``flowrun ARGS`` to its end on a terminal nobody types into: the exit code and every byte
    the terminal received (spinner frames, colours, erased lines)."""
    session = PtySession(args, env)
    return session.finish(timeout), session.screen
