"""Pure builders for Chat Completions requests (docs/protocols.md §3.1, §3.3). No I/O, no SDK calls."""

from __future__ import annotations

from typing import Any, Sequence

from runner.calls import ToolCall, ToolResult

from runner.providers.base import ModelSettings
from runner.providers.common import given, is_openai, json_schema_format, pair_results


def tool_param(tool: dict[str, Any]) -> dict[str, Any]:
    """A flowrun tool as a Chat tool; ``strict`` only when the workflow set it (§4 rule 4)."""
    function: dict[str, Any] = {"name": tool["name"]}
    if tool.get("description"):
        function["description"] = tool["description"]
    function["parameters"] = tool.get("parameters") or {"type": "object", "properties": {}}
    if tool.get("strict") is not None:
        function["strict"] = bool(tool["strict"])
    return {"type": "function", "function": function}


def response_format(output: dict[str, Any]) -> dict[str, Any]:
    """Structured output as Chat (and Assistants) take it; it constrains only the final message,
    so tool calls go on as before."""
    return {"type": "json_schema", "json_schema": json_schema_format(output)}


def initial_messages(settings: ModelSettings) -> list[dict[str, Any]]:
    """The conversation before the first user message: the instructions as a system message."""
    if settings.instructions:
        return [{"role": "system", "content": settings.instructions}]
    return []


def user_message(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def assistant_message(text: str, calls: Sequence[ToolCall]) -> dict[str, Any]:
    """The model's turn as it must be replayed: ids, names and arguments exactly as received."""
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = [
            {"id": c.call_id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in calls
        ]
    return message


def tool_messages(calls: Sequence[ToolCall], results: Sequence[ToolResult]) -> tuple[list[dict[str, Any]], list[str]]:
    """One tool message per call id, in call order; plus warnings about repaired results."""
    pairs, warnings = pair_results(calls, results)
    messages = [{"role": "tool", "tool_call_id": c.call_id, "content": output} for c, output in pairs]
    return messages, warnings


def build_request(settings: ModelSettings, messages: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Keyword arguments for ``client.chat.completions.create``. Optional settings are sent only
    when set, so local servers that reject unknown or unsupported fields are not bothered."""
    kwargs: dict[str, Any] = {
        "model": settings.model,
        "messages": list(messages),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if settings.tools:
        kwargs["tools"] = [tool_param(t) for t in settings.tools]
        kwargs |= given(tool_choice=settings.tool_choice, parallel_tool_calls=settings.parallel_tool_calls)
    if settings.output:
        kwargs["response_format"] = response_format(settings.output)
    # OpenAI's reasoning models accept only the new name; local servers know the old one.
    max_key = "max_completion_tokens" if is_openai(settings.base_url) else "max_tokens"
    kwargs |= given(temperature=settings.temperature, top_p=settings.top_p, seed=settings.seed)
    kwargs |= given(**{max_key: settings.max_output_tokens})
    return kwargs
