"""Keep what Python tools print off flowrun's stdout.

``flowrun -o jsonl`` writes one event per line to stdout; a tool's stray ``print()`` there would
corrupt it. Redirecting file descriptor 1 is not an option while other threads (and flowrun
itself) keep writing, so we replace ``sys.stdout`` once with a proxy that sends writes made
*inside a tool* (a context variable marks them; it is set in the tool's worker thread and in the
task of an async tool) to ``sys.stderr``, and everything else to the real stdout.

What a tool prints is masked with every masker a live dispatcher registered (``add_masker``): a
tool that prints a secret it read from the environment must not put it on the terminal.

File descriptor 1 is kept for flowrun too: the ``flowrun`` command (``runner.stdout_fd.keep_fd1``, first
thing in ``runner.cli.main``) moves its stdout to a duplicate descriptor and points descriptor 1 at stderr,
so a tool's ``os.write(1, ...)`` or a subprocess that inherits descriptor 1 writes to stderr.
A tool calling ``sys.stdout.close()`` closes nothing (the answer still has to be printed).

Not covered: what goes to stderr by those routes, or a tool writing to ``sys.stderr`` itself, is
not masked.
"""

from __future__ import annotations

import contextvars
import sys
import threading
from typing import Any, TextIO

in_tool: contextvars.ContextVar[bool] = contextvars.ContextVar("flowrun_in_tool", default=False)
_lock = threading.Lock()
_maskers: list[Any] = []  # objects with .mask(str) -> str, one per live dispatcher


def add_masker(masker: Any) -> None:
    with _lock:
        _maskers.append(masker)


def remove_masker(masker: Any) -> None:
    with _lock:
        for i, m in enumerate(_maskers):
            if m is masker:
                del _maskers[i]
                break


def mask_printed(text: str) -> str:
    """What a tool printed, masked with every live dispatcher's masker."""
    return _mask(text)


def _mask(text: str) -> str:
    for masker in list(_maskers):
        text = masker.mask(text)
    return text


class ToolStdout:
    """A stand-in for sys.stdout that routes writes from tool code to stderr."""

    def __init__(self, real: TextIO):
        self._real = real

    def _target(self) -> TextIO:
        if in_tool.get():
            err = sys.stderr
            return err if err is not None and err is not self else sys.__stderr__
        return self._real

    def write(self, text: str) -> int:
        if in_tool.get():
            self._target().write(_mask(text) if isinstance(text, str) else text)
            return len(text)
        return self._real.write(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._target().flush()

    def close(self) -> None:
        """A tool cannot close flowrun's stdout; flowrun itself still can."""
        if in_tool.get():
            self.flush()
        else:
            self._real.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def install() -> None:
    """Put the proxy in place if sys.stdout is not already one. Idempotent and thread-safe."""
    with _lock:
        if not isinstance(sys.stdout, ToolStdout) and sys.stdout is not None:
            sys.stdout = ToolStdout(sys.stdout)  # type: ignore[assignment]

