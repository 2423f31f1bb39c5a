"""Keep what Python tools print off flowrun's stdout.

``flowrun -o jsonl`` writes one event per line to stdout; a tool's stray ``print()`` there would
corrupt it. Redirecting file descriptor 1 is not an option while other threads (and flowrun
itself) keep writing, so we replace ``sys.stdout`` once with a proxy that sends writes made
*inside a tool* (a context variable marks them; it is set in the tool's worker thread and in the
task of an async tool) to ``sys.stderr``, and everything else to the real stdout.

Not covered: a tool that writes to file descriptor 1 directly (``os.write(1, ...)``) or starts a
subprocess that inherits it.
"""

from __future__ import annotations

import contextvars
import sys
import threading
from typing import Any, TextIO

in_tool: contextvars.ContextVar[bool] = contextvars.ContextVar("flowrun_in_tool", default=False)
_lock = threading.Lock()


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
        return self._target().write(text)

    def writelines(self, lines: Any) -> None:
        self._target().writelines(lines)

    def flush(self) -> None:
        self._target().flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def install() -> None:
    """Put the proxy in place if sys.stdout is not already one. Idempotent and thread-safe."""
    with _lock:
        if not isinstance(sys.stdout, ToolStdout) and sys.stdout is not None:
            sys.stdout = ToolStdout(sys.stdout)  # type: ignore[assignment]
