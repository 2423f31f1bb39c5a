"""Assistants v2 wire format (docs/protocols.md §1.3-1.5): object builders (Assistant, Thread, Message,
Run, RunStep) and the event sequence of one run leg.

A leg is what one streaming request sees: run creation (leg 1) or a ``submit_tool_outputs``
(leg 2+). It ends with ``thread.run.requires_action`` when the turn calls tools, otherwise with a
terminal run event, and always with ``event: done`` / ``data: [DONE]``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from .faults import Fault
from .script import PreparedTurn
from .wire import Event, estimate_tokens, new_id, split_fragments, text_deltas

ACTIVE = ("queued", "in_progress", "requires_action", "cancelling")
DONE_EVENT = Event("[DONE]", "done")


def assistant_object(asst_id: str, body: dict, created_at: int, model: str) -> dict:
    return {
        "id": asst_id, "object": "assistant", "created_at": created_at,
        "name": body.get("name"), "description": body.get("description"),
        "model": body.get("model") or model, "instructions": body.get("instructions"),
        "tools": body.get("tools") or [], "tool_resources": body.get("tool_resources") or {},
        "metadata": body.get("metadata") or {}, "temperature": body.get("temperature", 1.0),
        "top_p": body.get("top_p", 1.0), "response_format": body.get("response_format", "auto"),
    }


def thread_object(thread_id: str, created_at: int, body: dict) -> dict:
    return {"id": thread_id, "object": "thread", "created_at": created_at,
            "metadata": body.get("metadata") or {}, "tool_resources": body.get("tool_resources") or {}}


def text_content(text: str, *, plain: bool = False) -> list[dict]:
    """A message's content; ``plain``: the text as a bare string (quirk ``text_as_string``)."""
    return [{"type": "text", "text": text if plain else {"value": text, "annotations": []}}]


def message_object(msg_id: str, thread_id: str, role: str, content: list, created_at: int, *,
                   status: str = "completed", run_id: str | None = None, assistant_id: str | None = None,
                   attachments: list | None = None, metadata: dict | None = None) -> dict:
    return {
        "id": msg_id, "object": "thread.message", "created_at": created_at,
        "assistant_id": assistant_id, "thread_id": thread_id, "run_id": run_id, "status": status,
        "incomplete_details": None, "incomplete_at": None,
        "completed_at": created_at if status == "completed" else None,
        "role": role, "content": content, "attachments": attachments or [], "metadata": metadata or {},
    }


def run_object(run_id: str, thread_id: str, assistant: dict, body: dict, created_at: int, ttl: int) -> dict:
    """A new Run (``queued``); settings from the request, else from the assistant."""
    return {
        "id": run_id, "object": "thread.run", "created_at": created_at,
        "assistant_id": assistant["id"], "thread_id": thread_id, "status": "queued",
        "started_at": None, "expires_at": created_at + ttl, "cancelled_at": None, "failed_at": None,
        "completed_at": None, "required_action": None, "last_error": None,
        "model": body.get("model") or assistant["model"],
        "instructions": body.get("instructions") or assistant.get("instructions") or "",
        "tools": body.get("tools") if body.get("tools") is not None else assistant.get("tools") or [],
        "metadata": body.get("metadata") or {},
        "temperature": body.get("temperature", assistant.get("temperature", 1.0)),
        "top_p": body.get("top_p", assistant.get("top_p", 1.0)),
        "max_completion_tokens": body.get("max_completion_tokens"),
        "max_prompt_tokens": body.get("max_prompt_tokens"),
        "truncation_strategy": body.get("truncation_strategy") or {"type": "auto", "last_messages": None},
        "incomplete_details": None, "usage": None,
        "response_format": body.get("response_format") or assistant.get("response_format") or "auto",
        "tool_choice": body.get("tool_choice") or "auto",
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
    }


def step_object(run: dict, step_type: str, details: dict, created_at: int) -> dict:
    return {
        "id": new_id("step_"), "object": "thread.run.step", "created_at": created_at,
        "run_id": run["id"], "assistant_id": run["assistant_id"], "thread_id": run["thread_id"],
        "type": step_type, "status": "in_progress", "cancelled_at": None, "completed_at": None,
        "expired_at": None, "failed_at": None, "last_error": None, "step_details": details,
        "usage": None, "metadata": {},
    }


def _usage(prompt: int, completion: int) -> dict:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


@dataclass
class Leg:
    """A leg's events and the state it leaves: the run, the assistant message (if any) and the
    open tool-calls step waiting for outputs (if any)."""

    events: list[Event] = field(default_factory=list)
    run: dict = field(default_factory=dict)
    message: dict | None = None
    tool_step: dict | None = None

    def emit(self, name: str, obj: Any) -> None:
        self.events.append(Event(copy.deepcopy(obj), name))


def leg(run: dict, turn: PreparedTurn | None, *, now: int, first: bool, chunk_arguments: int,
        prompt_tokens: int, done_step: dict | None = None, thread: dict | None = None,
        terminal: str | None = None, fault: Fault | None = None, quirks: frozenset[str] = frozenset()) -> Leg:
    """Events for one leg. ``done_step`` is the previous leg's tool step, now completed with the
    submitted outputs; ``thread`` is set for create-thread-and-run (``thread.created`` first).
    ``turn`` None with ``terminal="failed"`` reports a script error as a failed run."""
    out = Leg(run=copy.deepcopy(run))
    r = out.run
    if thread is not None:
        out.emit("thread.created", thread)
    r.update(status="queued", required_action=None)
    if first:
        out.emit("thread.run.created", r)
    out.emit("thread.run.queued", r)
    r.update(status="in_progress", started_at=r["started_at"] or now)
    out.emit("thread.run.in_progress", r)
    if done_step is not None:
        out.emit("thread.run.step.completed", done_step)
    if terminal in ("failed", "expired", "cancelled") or turn is None or (terminal == "incomplete" and not turn.text):
        _end(out, terminal or "failed", now, fault)
        return out
    completion = estimate_tokens((turn.text or "") + "".join(c.arguments for c in turn.calls))
    if turn.text or not turn.calls:
        if _message_step(out, turn.text or "", now, prompt_tokens, cut=terminal == "incomplete",
                         plain="text_as_string" in quirks):
            return out
    if turn.calls and "calls_in_steps_only" in quirks:
        _calls_in_step_only(out, turn, now)
    elif turn.calls:
        step = step_object(r, "tool_calls", {"type": "tool_calls", "tool_calls": []}, now)
        out.emit("thread.run.step.created", step)
        out.emit("thread.run.step.in_progress", step)
        for index, c in enumerate(turn.calls):
            opening = {"index": index, "id": c.call_id, "type": "function",
                       "function": {"name": c.name, "arguments": "", "output": None}}
            out.emit("thread.run.step.delta", _step_delta(step["id"], opening))
            for fragment in split_fragments(c.arguments, chunk_arguments):
                piece = {"index": index, "type": "function", "function": {"arguments": fragment}}
                out.emit("thread.run.step.delta", _step_delta(step["id"], piece))
        calls = [{"id": c.call_id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                 for c in turn.calls]
        step["step_details"]["tool_calls"] = [
            {"id": c["id"], "type": "function", "function": {**c["function"], "output": None}} for c in calls]
        out.tool_step = step
        r.update(status="requires_action",
                 required_action={"type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": calls}})
        out.emit("thread.run.requires_action", r)
    else:
        r.update(status="completed", completed_at=now, expires_at=None, usage=_usage(prompt_tokens, completion))
        out.emit("thread.run.completed", r)
    out.events.append(DONE_EVENT)
    return out


def _calls_in_step_only(out: Leg, turn: PreparedTurn, now: int) -> None:
    """LLAMPHouse's shape: the whole calls in ``thread.run.step.created``, the run left
    ``requires_action`` with ``required_action: null``, no ``thread.run.requires_action`` event."""
    calls = [{"id": c.call_id, "type": "function", "function": {"name": c.name, "arguments": c.arguments,
                                                                 "output": None}} for c in turn.calls]
    step = step_object(out.run, "tool_calls", {"type": "tool_calls", "tool_calls": calls}, now)
    out.emit("thread.run.step.created", step)
    out.tool_step = step
    out.run.update(status="requires_action", required_action=None)


def _step_delta(step_id: str, tool_call: dict) -> dict:
    return {"id": step_id, "object": "thread.run.step.delta",
            "delta": {"step_details": {"type": "tool_calls", "tool_calls": [tool_call]}}}


def _message_step(out: Leg, text: str, now: int, prompt_tokens: int, *, cut: bool, plain: bool = False) -> bool:
    """The message-creation step; True when it ended the run (``incomplete``)."""
    r = out.run
    msg = message_object(new_id("msg_"), r["thread_id"], "assistant", [], now, status="in_progress",
                         run_id=r["id"], assistant_id=r["assistant_id"])
    step = step_object(r, "message_creation", {"type": "message_creation",
                                               "message_creation": {"message_id": msg["id"]}}, now)
    out.emit("thread.run.step.created", step)
    out.emit("thread.run.step.in_progress", step)
    out.emit("thread.message.created", msg)
    out.emit("thread.message.in_progress", msg)
    deltas = text_deltas(text)
    if cut:
        deltas = deltas[: len(deltas) // 2]
    for i, d in enumerate(deltas):
        block: dict = {"index": 0, "type": "text", "text": d if plain else {"value": d}}
        if i == 0 and not plain:
            block["text"]["annotations"] = []
        out.emit("thread.message.delta", {"id": msg["id"], "object": "thread.message.delta",
                                          "delta": {"content": [block]}})
    full = "".join(deltas)
    usage = _usage(prompt_tokens, estimate_tokens(full))
    msg["content"] = text_content(full, plain=plain)
    if cut:
        msg.update(status="incomplete", incomplete_at=now, incomplete_details={"reason": "max_tokens"})
        out.emit("thread.message.incomplete", msg)
    else:
        msg.update(status="completed", completed_at=now)
        out.emit("thread.message.completed", msg)
    step.update(status="completed", completed_at=now, usage=usage)
    out.emit("thread.run.step.completed", step)
    out.message = msg
    if cut:
        r.update(status="incomplete", incomplete_details={"reason": "max_completion_tokens"}, usage=usage)
        out.emit("thread.run.incomplete", r)
        out.events.append(DONE_EVENT)
    return cut


def _end(out: Leg, terminal: str, now: int, fault: Fault | None) -> None:
    r = out.run
    if terminal == "failed":
        code = fault.code if fault else "server_error"
        message = fault.message if fault else "The run failed."
        r.update(status="failed", failed_at=now, expires_at=None, last_error={"code": code, "message": message})
        out.emit("thread.run.failed", r)
    elif terminal == "expired":
        r.update(status="expired")
        out.emit("thread.run.expired", r)
    elif terminal == "incomplete":
        r.update(status="incomplete", incomplete_details={"reason": "max_completion_tokens"})
        out.emit("thread.run.incomplete", r)
    else:
        r.update(status="cancelling")
        out.emit("thread.run.cancelling", r)
        r.update(status="cancelled", cancelled_at=now, expires_at=None)
        out.emit("thread.run.cancelled", r)
    out.events.append(DONE_EVENT)


def error_events(fault: Fault) -> list[Event]:
    """``event: error`` with a bare ErrorObject (the reference schema), then ``done``."""
    err = {"code": fault.code, "message": fault.message, "param": None, "type": "server_error"}
    return [Event(err, "error"), DONE_EVENT]
