"""Pure builders for Assistants requests (docs/protocols.md §1.2). No I/O, no SDK calls."""

from __future__ import annotations

import re
from typing import Any, Sequence

from runner.calls import ToolCall, ToolResult

from runner.providers.base import ModelSettings
from runner.providers.chat_convert import response_format, tool_param  # same nested shapes as Chat
from runner.providers.common import given, pair_results

_ACTIVE_RUN = re.compile(r"active run|while a run|run is active", re.IGNORECASE)
_RUN_ID = re.compile(r"\brun_[A-Za-z0-9]+")


def assistant_params(settings: ModelSettings, *, name: str) -> dict[str, Any]:
    """Keyword arguments for ``beta.assistants.create`` from the workflow's model settings."""
    params: dict[str, Any] = {"model": settings.model, "name": name}
    if settings.instructions:
        params["instructions"] = settings.instructions
    if settings.tools:
        params["tools"] = [tool_param(t) for t in settings.tools]
    if settings.output:
        params["response_format"] = response_format(settings.output)
    return params | given(temperature=settings.temperature, top_p=settings.top_p)


def run_params(settings: ModelSettings, *, assistant_id: str, reused: bool) -> dict[str, Any]:
    """Keyword arguments for ``runs.create`` (besides the thread id). A reused assistant gets the
    workflow's instructions and tools as run overrides, so the tools we can resolve are the ones
    the model sees."""
    params: dict[str, Any] = {"assistant_id": assistant_id, "stream": True}
    if reused:
        if settings.instructions:
            params["instructions"] = settings.instructions
        if settings.tools:
            params["tools"] = [tool_param(t) for t in settings.tools]
    params |= given(
        temperature=settings.temperature,
        top_p=settings.top_p,
        max_completion_tokens=settings.max_output_tokens,
    )
    if settings.output:  # on the run too: a reused assistant may have none, or another
        params["response_format"] = response_format(settings.output)
    if settings.tools:
        params |= given(parallel_tool_calls=settings.parallel_tool_calls, tool_choice=settings.tool_choice)
    return params


def tool_outputs(calls: Sequence[ToolCall], results: Sequence[ToolResult]) -> tuple[list[dict[str, str]], list[str]]:
    """Every output of one ``requires_action``, for a single submission (§1.8 G12)."""
    pairs, warnings = pair_results(calls, results)
    return [{"tool_call_id": c.call_id, "output": output} for c, output in pairs], warnings


def active_run_in(message: str) -> str | None:
    """For an error saying the thread already has an active run: that run's id, or "" when the
    message does not name it. None for any other error."""
    if not _ACTIVE_RUN.search(message or ""):
        return None
    found = _RUN_ID.search(message)
    return found.group(0) if found else ""
