"""Keep file descriptor 1 for flowrun's own output.

Python tools run inside the flowrun process. ``sys.stdout`` is guarded (``runner.tools.stdout_guard``),
but a tool's subprocess inherits descriptor 1, and ``os.write(1, ...)`` or a C library bypass
``sys.stdout`` altogether: either would put stray bytes into ``-o jsonl``. So the command gives its
stdout a descriptor of its own and points descriptor 1 at stderr. Kept out of ``runner.tools`` so
that ``flowrun --help`` imports nothing heavy.
"""

from __future__ import annotations

import io
import os
import sys


def keep_fd1() -> None:
    """Give flowrun's stdout a descriptor of its own and point descriptor 1 at stderr.

    For the ``flowrun`` process only (``runner.cli.main``), before anything holds ``sys.stdout``.
    Anything that writes to descriptor 1 without going through ``sys.stdout`` (``os.write(1,
    ...)``, a subprocess, a C library) then lands on stderr and cannot corrupt ``-o jsonl``."""
    old = sys.stdout
    try:
        if old.fileno() != 1:
            return  # stdout is not descriptor 1 (a caller captures it): nothing to protect
        old.flush()
        fd = os.dup(1)  # not inheritable: tool subprocesses never get it
    except (AttributeError, OSError, ValueError):
        return  # no usable stdout: nothing to protect
    try:
        os.dup2(2, 1)
    except OSError:  # no stderr either: descriptor 1 goes nowhere
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.close(null)
    sys.stdout = io.open(fd, "w", encoding=getattr(old, "encoding", None) or "utf-8",
                         errors=getattr(old, "errors", None) or "strict",
                         buffering=1 if getattr(old, "line_buffering", False) else -1)
