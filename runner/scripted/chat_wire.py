"""Chat Completions wire format: a prepared turn as ``chat.completion.chunk`` events or as one
``chat.completion`` object.

Shapes follow the chunks OpenAI sent in ``tests/fixtures/recorded/chat`` key for key: a first
chunk carrying ``role``/``content``/``refusal`` (and the call itself when there is only one),
argument fragments carrying only ``index`` and ``function.arguments``, an empty delta with the
``finish_reason``, the usage chunk with empty ``choices`` only when asked for, then ``[DONE]``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .faults import Fault
from .script import PreparedTurn
from .wire import DONE, Event, estimate_tokens, split_fragments, text_deltas


@dataclass(frozen=True)
class ChatMeta:
    completion_id: str
    created: int
    model: str
    fingerprint: str
    prompt_tokens: int


def usage(turn: PreparedTurn, meta: ChatMeta, *, detailed: bool = False) -> dict:
    completion = estimate_tokens((turn.text or "") + "".join(c.name + c.arguments for c in turn.calls))
    out = {
        "prompt_tokens": meta.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": meta.prompt_tokens + completion,
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
    if detailed:
        out["prompt_tokens_details"] = {"cached_tokens": 0, "audio_tokens": 0}
        out["completion_tokens_details"] = {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        }
    return out


def truncate(turn: PreparedTurn, terminal: str | None) -> tuple[PreparedTurn, str]:
    """The turn as the client will see it, and its finish_reason. ``length``/``content_filter``
    cut the output in half (arguments then are invalid JSON, as a real truncation leaves them)."""
    if terminal not in ("length", "content_filter"):
        return turn, "tool_calls" if turn.calls else "stop"
    text = turn.text[: len(turn.text) // 2] if turn.text else turn.text
    calls = tuple(type(c)(c.call_id, c.item_id, c.name, c.arguments[: len(c.arguments) // 2]) for c in turn.calls)
    return PreparedTurn(text, calls), terminal


def chunks(turn: PreparedTurn, meta: ChatMeta, *, include_usage: bool, chunk_arguments: int,
           terminal: str | None = None) -> list[Event]:
    turn, finish = truncate(turn, terminal)

    def chunk(delta: dict, finish_reason: str | None = None) -> Event:
        obj = {
            "id": meta.completion_id,
            "object": "chat.completion.chunk",
            "created": meta.created,
            "model": meta.model,
            "system_fingerprint": meta.fingerprint,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if include_usage:
            obj["usage"] = None
        return Event(obj)

    events: list[Event] = []
    if turn.text is not None and not (turn.calls and not turn.text):
        events.append(chunk({"role": "assistant", "content": "", "refusal": None}))
        events.extend(chunk({"content": d}) for d in text_deltas(turn.text))
        first_call_in_head = False
    elif len(turn.calls) == 1:
        first_call_in_head = True
    else:
        events.append(chunk({"role": "assistant", "content": None}))
        first_call_in_head = False
    for index, call in enumerate(turn.calls):
        opening = {"index": index, "id": call.call_id, "type": "function",
                   "function": {"name": call.name, "arguments": ""}}
        if index == 0 and first_call_in_head:
            events.append(chunk({"role": "assistant", "content": None, "tool_calls": [opening], "refusal": None}))
        else:
            events.append(chunk({"tool_calls": [opening]}))
        for fragment in split_fragments(call.arguments, chunk_arguments):
            events.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}))
    events.append(chunk({}, finish))
    if include_usage:
        events.append(Event({
            "id": meta.completion_id,
            "object": "chat.completion.chunk",
            "created": meta.created,
            "model": meta.model,
            "system_fingerprint": meta.fingerprint,
            "choices": [],
            "usage": usage(turn, meta),
        }))
    events.append(DONE)
    return events


def completion(turn: PreparedTurn, meta: ChatMeta, *, terminal: str | None = None) -> dict:
    """The non-streaming ``chat.completion`` object for the same turn."""
    turn, finish = truncate(turn, terminal)
    message: dict = {"role": "assistant", "content": turn.text if turn.text or not turn.calls else None,
                     "refusal": None, "annotations": []}
    if turn.calls:
        message["tool_calls"] = [
            {"id": c.call_id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in turn.calls
        ]
    return {
        "id": meta.completion_id,
        "object": "chat.completion",
        "created": meta.created,
        "model": meta.model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": usage(turn, meta, detailed=True),
        "service_tier": "default",
        "system_fingerprint": meta.fingerprint,
    }


def error_event(fault: Fault) -> list[Event]:
    """A mid-stream error as vLLM-style servers and OpenAI send it: a data line with ``error``.
    The SDK raises ``openai.APIError`` on it."""
    return [Event({"error": {"message": fault.message, "type": "server_error", "param": None, "code": fault.code}})]
