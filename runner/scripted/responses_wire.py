"""Responses API wire format (docs/protocols.md §2.2): a prepared turn as the typed event sequence,
each with ``event:`` line and increasing ``sequence_number``, ending with the full Response in
``response.completed`` (or ``response.failed`` / ``response.incomplete``). No ``[DONE]``.
"""

from __future__ import annotations

import copy

from .faults import Fault
from .script import PreparedTurn
from .wire import Event, estimate_tokens, now, split_fragments, text_deltas


def response_object(*, resp_id: str, created_at: int, model: str, body: dict, status: str) -> dict:
    """A Response echoing the request's settings, with every field the live API sends."""
    return {
        "id": resp_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": bool(body.get("background", False)),
        "completed_at": None,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"),
        "model": model,
        "output": [],
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "prompt_cache_key": body.get("prompt_cache_key"),
        "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
        "safety_identifier": body.get("safety_identifier"),
        "service_tier": "default",
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_logprobs": body.get("top_logprobs", 0),
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "usage": None,
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


def usage(input_tokens: int, output_tokens: int) -> dict:
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    }


def _message(item_id: str, text: str, status: str) -> dict:
    part = {"type": "output_text", "annotations": [], "logprobs": [], "text": text}
    return {"id": item_id, "type": "message", "status": status, "content": [part] if status != "in_progress" else [],
            "role": "assistant"}


def _call(call, arguments: str, status: str) -> dict:
    return {"id": call.item_id, "type": "function_call", "status": status, "arguments": arguments,
            "call_id": call.call_id, "name": call.name}


def events(turn: PreparedTurn, skeleton: dict, *, message_id: str, input_tokens: int, chunk_arguments: int,
           terminal: str | None = None, fault: Fault | None = None) -> tuple[list[Event], dict]:
    """The stream for one turn and the final Response. ``skeleton`` is ``response_object(...)``
    with status ``in_progress`` (``queued`` first for background requests)."""
    out: list[Event] = []

    def emit(type_: str, **fields) -> None:
        out.append(Event({"type": type_, "sequence_number": len(out), **fields}, type_))

    def snapshot(status: str, output: list | None = None, **extra) -> dict:
        r = copy.deepcopy(skeleton)
        r.update(status=status, output=copy.deepcopy(output or []), **extra)
        return r

    background = skeleton.get("background")
    emit("response.created", response=snapshot("queued" if background else "in_progress"))
    if background:
        emit("response.queued", response=snapshot("queued"))
    emit("response.in_progress", response=snapshot("in_progress"))
    if terminal == "failed":
        error = {"code": fault.code if fault else "server_error",
                 "message": fault.message if fault else "The model failed to produce a response."}
        final = snapshot("failed", error=error)
        emit("response.failed", response=final)
        return out, final
    cut = terminal == "incomplete"
    done_status = "incomplete" if cut else "completed"
    items: list[dict] = []
    if turn.text or not turn.calls:
        text = turn.text or ""
        deltas = text_deltas(text)
        if cut:
            deltas = deltas[: max(1, len(deltas) // 2)] if deltas else []
        full = "".join(deltas)
        idx = len(items)
        emit("response.output_item.added", output_index=idx, item=_message(message_id, "", "in_progress"))
        where = {"item_id": message_id, "output_index": idx, "content_index": 0}
        emit("response.content_part.added", **where,
             part={"type": "output_text", "annotations": [], "logprobs": [], "text": ""})
        for d in deltas:
            emit("response.output_text.delta", **where, delta=d, logprobs=[])
        emit("response.output_text.done", **where, text=full, logprobs=[])
        emit("response.content_part.done", **where,
             part={"type": "output_text", "annotations": [], "logprobs": [], "text": full})
        item = _message(message_id, full, done_status)
        emit("response.output_item.done", output_index=idx, item=item)
        items.append(item)
    for call in turn.calls:
        if cut and items:
            break
        fragments = split_fragments(call.arguments, chunk_arguments)
        if cut:
            fragments = fragments[: len(fragments) // 2]
        args = "".join(fragments)
        idx = len(items)
        emit("response.output_item.added", output_index=idx, item=_call(call, "", "in_progress"))
        for f in fragments:
            emit("response.function_call_arguments.delta", item_id=call.item_id, output_index=idx, delta=f)
        emit("response.function_call_arguments.done", item_id=call.item_id, output_index=idx, arguments=args)
        item = _call(call, args, done_status)
        emit("response.output_item.done", output_index=idx, item=item)
        items.append(item)
    produced = "".join(i.get("arguments", "") + "".join(p["text"] for p in i.get("content", [])) for i in items)
    extra = {"usage": usage(input_tokens, estimate_tokens(produced))}
    if cut:
        final = snapshot("incomplete", items, incomplete_details={"reason": "max_output_tokens"}, **extra)
        emit("response.incomplete", response=final)
    else:
        final = snapshot("completed", items, completed_at=now(), **extra)
        emit("response.completed", response=final)
    return out, final


def error_event(fault: Fault, sequence_number: int) -> list[Event]:
    """The standalone ``error`` event; the SDK yields it as ``ResponseErrorEvent``."""
    return [Event({"type": "error", "code": fault.code, "message": fault.message, "param": None,
                   "sequence_number": sequence_number}, "error")]
