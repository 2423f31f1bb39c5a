"""Pure builders for Responses API requests (docs/protocols.md §2.1, §2.3). No I/O, no SDK calls.

``strict`` on function tools: the SDK's ``FunctionToolParam`` requires the key. We send the
workflow's value, or ``False`` when it says nothing. ``False`` means the same as Chat's default
(non-strict), so a tool behaves alike on every API; every server we know accepts a boolean,
while ``null`` is refused by strictly-typed compatible servers and an omitted key lets OpenAI
silently turn a schema strict (optional properties become required) (§2.1).
"""

from __future__ import annotations

from typing import Any, Sequence

from runner.calls import ToolCall, ToolResult

from runner.providers.base import ModelSettings
from runner.providers.common import given, is_openai, json_schema_format, pair_results


def tool_param(tool: dict[str, Any]) -> dict[str, Any]:
    """A flowrun tool as a flat Responses function tool."""
    param: dict[str, Any] = {"type": "function", "name": tool["name"]}
    if tool.get("description"):
        param["description"] = tool["description"]
    param["parameters"] = tool.get("parameters") or {"type": "object", "properties": {}}
    param["strict"] = bool(tool.get("strict"))
    return param


def user_item(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def assistant_item(text: str) -> dict[str, Any]:
    """A replayed assistant message. ``type`` is optional on OpenAI but servers that dispatch on
    it (llama.cpp: "Cannot determine type of 'item'") refuse the item without it."""
    return {"type": "message", "role": "assistant", "content": text}


def function_call_item(call: ToolCall, item_id: str | None = None) -> dict[str, Any]:
    """A call from the model's output, replayed (stateless mode only)."""
    item: dict[str, Any] = {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments}
    if item_id:
        item["id"] = item_id
    return item


def function_call_outputs(calls: Sequence[ToolCall], results: Sequence[ToolResult]) -> tuple[list[dict[str, Any]], list[str]]:
    """One ``function_call_output`` per call id, in call order; plus repair warnings."""
    pairs, warnings = pair_results(calls, results)
    items = [{"type": "function_call_output", "call_id": c.call_id, "output": output} for c, output in pairs]
    return items, warnings


def replay_items(output: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """A finished response's output as input for the next stateless request: reasoning items as
    received (OpenAI requires them next to their calls), function calls with their ids, and
    messages as plain assistant text."""
    items: list[dict[str, Any]] = []
    for item in output:
        kind = item.get("type")
        if kind == "reasoning":
            items.append({k: v for k, v in item.items() if v is not None and k != "status"})
        elif kind == "function_call":
            call = ToolCall(item.get("call_id") or "", item.get("name") or "", item.get("arguments") or "{}")
            items.append(function_call_item(call, item.get("id")))
        elif kind == "message":
            text = "".join(
                part.get("text") or part.get("refusal") or ""
                for part in item.get("content") or ()
                if isinstance(part, dict)
            )
            if text:
                items.append(assistant_item(text))
    return items


def build_request(
    settings: ModelSettings,
    input_items: Sequence[dict[str, Any]],
    *,
    previous_response_id: str | None = None,
    background: bool = False,
) -> dict[str, Any]:
    """Keyword arguments for ``client.responses.create``. ``instructions`` are sent every time:
    they are not carried over by ``previous_response_id``. ``previous_response_id`` is omitted,
    never sent as null. Chat's ``seed`` has no Responses equivalent and is not sent."""
    kwargs: dict[str, Any] = {"model": settings.model, "input": list(input_items), "stream": True}
    if settings.instructions:
        kwargs["instructions"] = settings.instructions
    if previous_response_id:
        kwargs["previous_response_id"] = previous_response_id
    if settings.tools:
        kwargs["tools"] = [tool_param(t) for t in settings.tools]
        kwargs |= given(tool_choice=settings.tool_choice, parallel_tool_calls=settings.parallel_tool_calls)
    if settings.output:
        kwargs["text"] = {"format": {"type": "json_schema", **json_schema_format(settings.output)}}
    kwargs |= given(
        temperature=settings.temperature,
        top_p=settings.top_p,
        max_output_tokens=settings.max_output_tokens,
        store=settings.store,
    )
    if settings.store is False and is_openai(settings.base_url):
        # without it, replayed reasoning items cannot be resolved when nothing is stored (§2.3)
        kwargs["include"] = ["reasoning.encrypted_content"]
    if background:
        kwargs["background"] = True
    return kwargs
