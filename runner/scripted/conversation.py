"""Read a Chat or Responses request body as a conversation: turn index, user text, tool results.

The same checks OpenAI applies to tool replies are enforced here (every call answered exactly once,
no orphan outputs), with OpenAI's own wording, so a client bug fails in tests as it would live.
"""

from __future__ import annotations

from typing import Any

from .script import Conversation
from .wire import ApiError, bad_request


def content_text(content: Any) -> str | None:
    """Text of a message ``content``: a string, or a list of text parts of any API's flavour."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict):
                value = part.get("text")
                if isinstance(value, dict):  # Assistants message content
                    value = value.get("value")
                if isinstance(value, str):
                    texts.append(value)
        return "".join(texts)
    return None


def output_text(value: Any) -> str:
    """A submitted tool output as the script sees it: strings as they are, parts joined."""
    if isinstance(value, str):
        return value
    text = content_text(value)
    return text if text is not None else ("" if value is None else str(value))


def chat_conversation(body: dict) -> Conversation:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("Missing required parameter: 'messages'.", "messages", "missing_required_parameter")
    conv = Conversation()
    pending: list[str] = []
    pending_at = 0
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise bad_request(f"Invalid type for 'messages[{i}]': expected an object.", f"messages[{i}]")
        role = m.get("role")
        if role == "tool":
            cid = m.get("tool_call_id")
            if cid not in pending:
                raise bad_request(
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding "
                    "message with 'tool_calls'.",
                    f"messages.[{i}].role",
                )
            pending.remove(cid)
            conv.answer(cid, output_text(m.get("content")))
            continue
        if pending:
            raise _unanswered_chat(pending, pending_at)
        if role == "assistant":
            conv.turn_index += 1
            for tc in m.get("tool_calls") or []:
                fn = tc.get("function") or {}
                conv.add_call(tc.get("id"), fn.get("name"), fn.get("arguments"))
                pending.append(tc.get("id"))
            pending_at = i
        elif role == "user":
            conv.user_message = content_text(m.get("content"))
    if pending:
        raise _unanswered_chat(pending, pending_at)
    return conv


def _unanswered_chat(pending: list[str], index: int) -> ApiError:
    return bad_request(
        "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
        f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(map(str, pending))}",
        f"messages.[{index}].role",
    )


_MODEL_ITEMS = ("function_call", "reasoning")


def responses_conversation(body: dict, previous: Conversation | None) -> Conversation:
    """``previous`` is the conversation as it stood after the response named by
    ``previous_response_id`` (its calls still pending), or None for a fresh or replayed one."""
    conv = previous.copy() if previous is not None else Conversation()
    conv.turn_index = previous.turn_index + 1 if previous is not None else 0
    raw = body.get("input")
    items = [{"role": "user", "content": raw}] if isinstance(raw, str) else raw
    if items is None:
        items = []
    if not isinstance(items, list):
        raise bad_request("Invalid type for 'input': expected a string or an array of input items.", "input")
    in_model_group = False
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise bad_request(f"Invalid type for 'input[{i}]': expected an object.", f"input[{i}]")
        kind = item.get("type") or ("message" if "role" in item else None)
        role = item.get("role")
        if kind in _MODEL_ITEMS or (kind == "message" and role == "assistant"):
            if not in_model_group:
                conv.turn_index += 1
                in_model_group = True
            if kind == "function_call":
                cid = item.get("call_id")
                if cid in conv.calls:
                    raise bad_request(f"Duplicate item found with id {item.get('id') or cid}.", "input")
                conv.add_call(cid, item.get("name"), item.get("arguments"))
            continue
        in_model_group = False
        if kind == "function_call_output":
            cid = item.get("call_id")
            if cid not in conv.pending():
                raise bad_request(f"No tool call found for function call output with call_id {cid}.", "input")
            conv.answer(cid, output_text(item.get("output")))
        elif role == "user":
            text = content_text(item.get("content"))
            if text is not None:
                conv.user_message = text
    missing = conv.pending()
    if missing:
        raise bad_request(f"No tool output found for function call {missing[0]}.", "input")
    return conv
