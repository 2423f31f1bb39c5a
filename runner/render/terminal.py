"""The terminal view: the answer on stdout as it streams, everything else on stderr.

So ``flowrun x.yaml > answer.txt`` captures just the answer. On a TTY stderr shows a spinner while
the model thinks or tools run, then one compact line per finished call; piped, the same lines are
plain and stable (no colour, no carriage returns). ``NO_COLOR`` / ``--no-color`` are honoured.
"""

from __future__ import annotations

import json
import threading
import time
from typing import TextIO

from runner.events import (
    ApprovalDecided,
    ApprovalRequested,
    Event,
    Notice,
    RunCompleted,
    RunFailed,
    RunStarted,
    TextDelta,
    ToolCallCompleted,
    ToolCallRequested,
    TurnStarted,
)
from runner.terminal_text import strip_controls

FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def short(text: str, limit: int = 60) -> str:
    text = " ".join(strip_controls(text[: limit * 8]).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


PREVIEW_PARSE_CHARS = 10_000  # longer arguments are previewed as text, not parsed


def short_args(arguments: str, limit: int = 60) -> str:
    """``{"location": "Paris"}`` shown as ``location="Paris"``. Whatever the model sent (huge,
    nested thousands of levels deep, not JSON), this returns a preview and never raises."""
    if len(arguments) > PREVIEW_PARSE_CHARS:
        return short(arguments, limit)
    try:
        data = json.loads(arguments) if arguments.strip() else {}
        if not isinstance(data, dict):
            return short(arguments, limit)
        parts = [f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in data.items()]
    except (ValueError, RecursionError):
        return short(arguments, limit)
    return short(", ".join(parts), limit)


def seconds(ms: float) -> str:
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


class Style:
    def __init__(self, enabled: bool):
        self.enabled = enabled

    def _wrap(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.enabled else text

    def dim(self, t: str) -> str:
        return self._wrap("2", t)

    def red(self, t: str) -> str:
        return self._wrap("31", t)

    def green(self, t: str) -> str:
        return self._wrap("32", t)

    def yellow(self, t: str) -> str:
        return self._wrap("33", t)


class Spinner:
    """A one-line status on a TTY, redrawn by a background thread until stopped."""

    def __init__(self, err: TextIO, style: Style):
        self.err = err
        self.style = style
        self._label = ""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._shown = False

    def show(self, label: str) -> None:
        with self._lock:
            self._label = label
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._spin, daemon=True)
            self._thread.start()

    def _spin(self) -> None:
        i = 0
        while not self._stop.wait(0.08 if i else 0):
            with self._lock:
                self.err.write(f"\r\x1b[2K{self.style.dim(FRAMES[i % len(FRAMES)] + ' ' + self._label)}")
                self.err.flush()
                self._shown = True
            i += 1

    def clear(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            if self._shown:
                self.err.write("\r\x1b[2K")
                self.err.flush()
                self._shown = False


class TerminalRenderer:
    def __init__(
        self,
        out: TextIO,
        err: TextIO,
        *,
        tty: bool = False,
        color: bool = False,
        quiet: bool = False,
        verbose: bool = False,
        structured: bool = False,
    ):
        self.out = out
        # Structured output: stdout gets the parsed JSON once it matched the schema, never the
        # streamed text (an answer that fails the check and its retries must not reach a pipe).
        self.structured = structured
        self.err = err
        self.quiet = quiet
        self.verbose = verbose
        self.style = Style(color)
        self.spinner = Spinner(err, self.style) if tty and not quiet else None
        self._line_open = False  # stdout has text without a final newline
        self._out_tty = bool(getattr(out, "isatty", lambda: False)())  # a person reads the answer
        self._pending: dict[str, tuple[str, str]] = {}  # call id -> (name, arguments)
        self._asking = False  # an approval prompt is on the terminal

    def _say(self, line: str) -> None:
        if self.spinner:
            self.spinner.clear()
        if self._line_open and self.out is self.err:
            self.err.write("\n")
            self._line_open = False
        self.err.write(line + "\n")
        self.err.flush()

    def _spin(self, label: str) -> None:
        if self.spinner and not self._asking:
            self.spinner.show(label)

    def __call__(self, event: Event) -> None:
        if isinstance(event, TextDelta) and self.structured:
            self._spin("writing the answer…")
        elif isinstance(event, TextDelta):
            if self.spinner:
                self.spinner.clear()
            text = strip_controls(event.text) if self.spinner or self._out_tty else event.text
            self.out.write(text)
            self.out.flush()
            if text:
                self._line_open = not text.endswith("\n")
        elif isinstance(event, RunStarted):
            if self.verbose:
                self._say(self.style.dim(f"run {event.run_id}: {event.workflow} on {event.api} ({event.model})"))
        elif isinstance(event, TurnStarted):
            self._spin("waiting for the model…")
        elif isinstance(event, ToolCallRequested):
            self._pending[event.call_id] = (event.name, event.arguments)
            if self.verbose and not self.quiet:
                self._say(self.style.dim(f"→ {event.name}({strip_controls(event.arguments)})"))
            self._spin_tools()
        elif isinstance(event, ToolCallCompleted):
            self._tool_line(event)
        elif isinstance(event, ApprovalRequested):
            self._asking = True  # the prompt has the line: no spinner until the answer
            if self.spinner:
                self.spinner.clear()
        elif isinstance(event, ApprovalDecided):
            self._asking = False
            if event.by in ("flag", "rule", "resume") and not self.quiet:
                verb = {"approved": "approved", "denied": "refused", "paused": "waiting"}.get(event.decision, event.decision)
                how = {"flag": "command line", "rule": "workflow rule", "resume": "flowrun resume"}[event.by]
                self._say(self.style.dim(f"  {verb} {event.name} ({how})"))
            self._spin_tools()
        elif isinstance(event, Notice):
            if event.level == "debug" and not self.verbose:
                pass
            elif not self.quiet or event.level == "error":
                colour = self.style.red if event.level == "error" else self.style.yellow if event.level == "warning" else self.style.dim
                self._say(colour(f"flowrun: {event.level}: {strip_controls(event.message)}") if event.level != "info" else colour(f"flowrun: {strip_controls(event.message)}"))
        elif isinstance(event, RunCompleted):
            if self.structured:
                self._write_json(event.output)
            self._end_text()
            if not self.quiet:
                self._say(self.style.dim(self._summary("completed", event)))
        elif isinstance(event, RunFailed):
            self._end_text()
            if event.turns == 0:  # it stopped before asking the model: the command line says why
                return
            self._say(self.style.red(f"flowrun: error: {strip_controls(event.message)}"))
            if not self.quiet:
                self._say(self.style.dim(self._summary(event.status, event)))

    def _write_json(self, value) -> None:
        """Pretty for a person at a terminal, one compact line for a pipe (jq, a script, a file)."""
        if self.spinner:
            self.spinner.clear()
        pretty = bool(getattr(self.out, "isatty", lambda: False)())
        text = json.dumps(value, ensure_ascii=False, indent=2 if pretty else None)
        self.out.write((strip_controls(text) if pretty else text) + "\n")
        self.out.flush()

    def _spin_tools(self) -> None:
        if len(self._pending) == 1:
            name, args = next(iter(self._pending.values()))
            self._spin(f"calling {name}({short_args(args, 40)})…")
        elif self._pending:
            names = ", ".join(name for name, _ in self._pending.values())
            self._spin(f"calling {len(self._pending)} tools: {short(names, 50)}…")

    def _end_text(self) -> None:
        if self.spinner:
            self.spinner.clear()
        if self._line_open:
            self.out.write("\n")
            self.out.flush()
            self._line_open = False

    def _tool_line(self, e: ToolCallCompleted) -> None:
        _, args = self._pending.pop(e.call_id, ("", ""))
        if self.quiet:
            return
        output = strip_controls(e.output) if self.verbose else short(e.output, 60)
        mark = self.style.red("✗") if e.is_error else self.style.green("✓")
        line = f"{mark} {e.name}({short_args(args)}) → {output} {self.style.dim('(' + seconds(e.duration_ms) + ')')}"
        self._say(line)
        self._spin_tools()

    def _summary(self, status: str, e: RunCompleted | RunFailed) -> str:
        parts = [status, f"{e.turns} turn{'s' * (e.turns != 1)}", f"{e.tool_calls} tool call{'s' * (e.tool_calls != 1)}"]
        if e.usage and e.usage.get("total_tokens"):
            parts.append(f"{e.usage['total_tokens']} tokens")
        parts.append(seconds(e.duration_ms))
        return " · ".join(parts)

    def close(self) -> None:
        if self.spinner:
            self.spinner.clear()
