"""Ask the person at the terminal whether a tool call may run.

The prompt shows what is approved, all of it: the tool, why it asks, the exact method and URL of
an http tool, and the full arguments (pretty, secrets masked, control and direction characters
shown as escapes, so a model cannot hide or repaint what is approved). The answers: yes, no, always (this tool, for the rest
of this run) and no with a reason the model receives. Anything else asks again; end of input
(Ctrl-D) is a no. The renderer stops its spinner when ``approval.requested`` arrives, before this
prompt is written, so the two never share the line.
"""

from __future__ import annotations

import json
from typing import Callable, TextIO

from runner.daemon_thread import in_daemon_thread
from runner.terminal_text import show_controls, strip_controls
from runner.calls import ApprovalRequest, Decision

MAX_SHOWN_LINES = 400  # longer arguments are cut, and the prompt says how much is not shown
ANSWERS = "[y]es, [n]o, [a]lways for this tool in this run, [r] no with a reason"


def read_terminal_line(prompt: str) -> str | None:
    """``input()`` with line editing where readline exists; None at end of input."""
    try:
        import readline  # noqa: F401 - importing it gives input() line editing
    except ImportError:
        pass
    try:
        return input(prompt)
    except EOFError:
        return None


class TerminalPrompter:
    def __init__(self, err: TextIO, *, mask: Callable[[str], str] = lambda t: t,
                 read_line: Callable[[str], str | None] = read_terminal_line, color: bool = False):
        self.err = err
        self.mask = mask
        self.read_line = read_line
        self.color = color

    async def decide(self, request: ApprovalRequest) -> Decision:
        self.err.write(self.describe(request))
        self.err.flush()
        for _ in range(5):
            answer = await in_daemon_thread(self.read_line, f"  Run it? {ANSWERS}: ")
            if answer is None:
                self.err.write("\n")
                return Decision("deny", "prompt", "no answer was given")
            word = answer.strip().lower()
            if word in ("y", "yes"):
                return Decision("approve", "prompt")
            if word in ("a", "always"):
                return Decision("approve", "prompt", always=True)
            if word in ("n", "no"):
                return Decision("deny", "prompt")
            if word in ("r", "reason") or word.startswith(("r ", "no ")):
                reason = answer.strip().split(" ", 1)[1].strip() if " " in answer.strip() else None
                if not reason:
                    reason = await in_daemon_thread(self.read_line, "  Reason (the model reads it): ")
                reason = (reason or "").strip()
                return Decision("deny", "prompt", self.mask(reason)[:2000] or None)
            self.err.write("  Please answer y, n, a or r.\n")
            self.err.flush()
        return Decision("deny", "prompt", "no clear answer was given")

    def describe(self, request: ApprovalRequest) -> str:
        """The block shown before the question: nothing about the call left out or disguised."""
        bold = (lambda t: f"\x1b[1m{t}\x1b[0m") if self.color else (lambda t: t)
        lines = [f"\n? {bold('Approve ' + clean(request.tool))} ({clean(request.why)})"]
        if request.target:
            lines.append(f"    {show_controls(self.mask(request.target))}")
        shown = json.dumps(request.arguments, ensure_ascii=False, indent=2, sort_keys=True)
        body = [show_controls(line) for line in self.mask(shown).splitlines()]
        if len(body) > MAX_SHOWN_LINES:
            hidden = len(body) - MAX_SHOWN_LINES
            body = body[:MAX_SHOWN_LINES] + [f"… {hidden} more line{'s' if hidden != 1 else ''} not shown "
                                             "(-o jsonl or the run log has them all)"]
        lines += ["    " + line for line in body]
        return "\n".join(lines) + "\n"


def clean(text: str) -> str:
    """No escape sequence, carriage return or other control reaches the terminal."""
    return strip_controls(text).replace("\r", "")
