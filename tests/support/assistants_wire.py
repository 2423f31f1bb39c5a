"""Assistants API objects and streams for the provider tests, each checked against the SDK's
pydantic types so the fakes cannot drift from what the real API sends (docs/protocols.md §1.4/§1.5)."""

from __future__ import annotations

from typing import Any

from openai.types.beta import Assistant, AssistantStreamEvent, Thread
from openai.types.beta.threads import Message, Run
from pydantic import TypeAdapter

from runner.calls import ToolResult
from support.sse_replay import Canned, json_response, sse

EVENT = TypeAdapter(AssistantStreamEvent)
T0 = 1_800_000_000
RESULTS = [ToolResult("call_A", "get_temp", "21C"), ToolResult("call_B", "get_rain", "10%")]


def run_obj(status: str, rid: str = "run_1", **extra: Any) -> dict:
    obj = {"id": rid, "object": "thread.run", "created_at": T0, "assistant_id": "asst_1", "thread_id": "thread_1",
           "status": status, "instructions": "", "model": "gpt-test", "parallel_tool_calls": True, "tools": [],
           "expires_at": T0 + 600, "last_error": None, "required_action": None, "usage": None}
    obj.update(extra)
    Run.model_validate(obj)
    return obj


def requires_action(rid: str = "run_1") -> dict:
    calls = [{"id": "call_A", "type": "function", "function": {"name": "get_temp", "arguments": '{"location":"Paris"}'}},
             {"id": "call_B", "type": "function", "function": {"name": "get_rain", "arguments": '{"location":"Paris"}'}}]
    return run_obj("requires_action", rid, required_action={"type": "submit_tool_outputs",
                                                            "submit_tool_outputs": {"tool_calls": calls}})


def message(text: str, status: str = "completed") -> dict:
    obj = {"id": "msg_1", "object": "thread.message", "created_at": T0, "thread_id": "thread_1", "role": "assistant",
           "status": status, "run_id": "run_1", "assistant_id": "asst_1",
           "content": [{"type": "text", "text": {"value": text, "annotations": []}}] if text else []}
    Message.model_validate(obj)
    return obj


def step(sid: str, kind: str, status: str = "in_progress") -> dict:
    details = ({"type": "tool_calls", "tool_calls": []} if kind == "tool_calls"
               else {"type": "message_creation", "message_creation": {"message_id": "msg_1"}})
    return {"id": sid, "object": "thread.run.step", "created_at": T0, "assistant_id": "asst_1", "thread_id": "thread_1",
            "run_id": "run_1", "type": kind, "status": status, "step_details": details}


class Leg:
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def add(self, name: str, data: Any) -> "Leg":
        EVENT.validate_python({"event": name, "data": data})
        self.events.append((name, data))
        return self

    def body(self, done: bool = True) -> bytes:
        return sse(*self.events, *([("done", "[DONE]")] if done else []))


def leg1() -> Leg:
    leg = Leg().add("thread.run.created", run_obj("queued")).add("thread.run.queued", run_obj("queued"))
    leg.add("thread.run.in_progress", run_obj("in_progress", started_at=T0))
    leg.add("thread.run.step.created", step("step_1", "tool_calls")).add("thread.run.step.in_progress", step("step_1", "tool_calls"))
    for frag in ({"index": 0, "id": "call_A", "type": "function", "function": {"name": "get_temp", "arguments": "", "output": None}},
                 {"index": 0, "type": "function", "function": {"arguments": '{"location":"Paris"}'}},
                 {"index": 1, "id": "call_B", "type": "function", "function": {"name": "get_rain", "arguments": '{"location":"Paris"}'}}):
        leg.add("thread.run.step.delta", {"id": "step_1", "object": "thread.run.step.delta",
                                          "delta": {"step_details": {"type": "tool_calls", "tool_calls": [frag]}}})
    return leg.add("thread.run.requires_action", requires_action())


def leg2(*parts: str) -> Leg:
    leg = Leg().add("thread.run.queued", run_obj("queued")).add("thread.run.in_progress", run_obj("in_progress"))
    leg.add("thread.run.step.completed", step("step_1", "tool_calls", "completed"))
    leg.add("thread.run.step.created", step("step_2", "message_creation")).add("thread.message.created", message("", "in_progress"))
    for p in parts:
        leg.add("thread.message.delta", {"id": "msg_1", "object": "thread.message.delta",
                                         "delta": {"content": [{"index": 0, "type": "text", "text": {"value": p}}]}})
    leg.add("thread.message.completed", message("".join(parts)))
    leg.add("thread.run.step.completed", step("step_2", "message_creation", "completed"))
    usage = {"prompt_tokens": 30, "completion_tokens": 6, "total_tokens": 36}
    return leg.add("thread.run.completed", run_obj("completed", expires_at=None, completed_at=T0 + 5, usage=usage))


def assistant() -> Canned:
    obj = {"id": "asst_1", "object": "assistant", "created_at": T0, "model": "gpt-test", "tools": []}
    Assistant.model_validate(obj)
    return json_response(obj)


def thread() -> Canned:
    obj = {"id": "thread_1", "object": "thread", "created_at": T0, "metadata": {}, "tool_resources": None}
    Thread.model_validate(obj)
    return json_response(obj)


def setup(reuse: bool = False) -> list[Canned]:
    return ([] if reuse else [assistant()]) + [thread(), json_response(message("hi", "completed"))]


DELETED = json_response({"id": "asst_1", "object": "assistant.deleted", "deleted": True})
