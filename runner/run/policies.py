"""Run policies (``policies:`` in the file, ``--policy`` on the command line): what the loop
says when one ends a run, or only warns. The loop decides when; this module words why.

Names come from the model and outputs from tools: both are hostile, so names are quoted and cut
short and an error output is quoted only in part (it was masked by the dispatcher already).
"""

from __future__ import annotations

from typing import Any, Sequence

from runner.calls import ToolCall, ToolResult
from runner.suggest import suggest


def empty_answer(tool_calls: int, *, fatal: bool = False) -> str:
    """What to say when the model ended the run without a word for the user: the warning of
    ``on_empty_answer: warn``, or (``fatal``) why the run failed."""
    calls = f"{tool_calls} tool call{'s' if tool_calls != 1 else ''}"
    if fatal:
        what = f"its last turn had no text (after {calls})" if tool_calls else "no text and no tool call"
        return (f"the model ended the run without an answer: {what}. To let such a run complete "
                "with a warning instead, set policies: on_empty_answer: warn (or run with --policy on_empty_answer=warn)")
    if tool_calls:
        return f"the run completed, but the model's last turn had no text (after {calls}): nothing to print"
    return "the run completed with no text and no tool call: the model gave an empty answer"


MAX_SHOWN_ERROR = 500  # characters of a tool's error output quoted in the run's failure message
MAX_LISTED_TOOLS = 30  # tool names listed when the model called one that does not exist


def tool_error_failure(errors: Sequence[ToolResult]) -> str:
    """Why ``on_tool_error: fail`` ended the run: the first failing tool (call order) and its
    error output (masked by the dispatcher), and how many more failed in the same round."""
    first = errors[0]
    output = first.output if len(first.output) <= MAX_SHOWN_ERROR else first.output[:MAX_SHOWN_ERROR] + "…"
    more = ""
    if len(errors) > 1:
        others = ", ".join(dict.fromkeys(_shown_name(e.name) for e in errors[1:]))
        more = f" ({len(errors) - 1} more call{'s' if len(errors) > 2 else ''} of that round failed too: {others})"
    return (f"tool {_shown_name(first.name)} failed, and policies say on_tool_error: fail, so the run stops "
            f"without sending the outputs to the model{more}: {output}")


def unknown_tool_failure(names: Sequence[str], known: Sequence[str]) -> str:
    """Why ``on_unknown_tool: fail`` ended the run before any tool of the round ran."""
    shown = ", ".join(dict.fromkeys(_shown_name(n) for n in names))
    close = suggest(names[0], list(known)) if names[0] else None
    hint = f" (did you mean {close!r}?)" if close else ""
    tools = ", ".join(known[:MAX_LISTED_TOOLS]) or "none"
    if len(known) > MAX_LISTED_TOOLS:
        tools += f" and {len(known) - MAX_LISTED_TOOLS} more"
    return (f"the model called {shown}{hint}, which the workflow does not have, and policies say "
            f"on_unknown_tool: fail, so the run stops before any tool of that round runs. "
            f"The tools are: {tools}")


def _shown_name(name: str) -> str:
    """A tool name as the model sent it, for a message: quoted, cut short, never empty."""
    if not name or not name.strip():
        return "a tool with no name"
    return repr(name if len(name) <= 100 else name[:100] + "…")


def unknown_tools(calls: Sequence[ToolCall], workflow: Any) -> list[str]:
    """The names of ``calls`` that name no tool of ``workflow`` (the run's tools, MCP ones
    included), read as the dispatcher reads them: a blank name is no tool."""
    return [c.name for c in calls if not (c.name and c.name.strip()) or workflow.tool(c.name) is None]
