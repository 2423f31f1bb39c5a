"""The Responses provider through the real SDK against a loopback server.

No recorded Responses streams exist; these are written from docs/protocols.md §2.2 and every event is
validated against the SDK's own pydantic types, so the fakes cannot drift from the real shapes.
"""

from __future__ import annotations

from typing import Any

import pytest
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from support.providers import WEATHER_TOOL, FakeClock, collect, last_result, run, settings
from runner.errors import ProviderError
from runner.events import Notice, TextDelta
from runner.calls import ToolResult
from runner.providers.factory import create_provider
from runner.providers.responses import ResponsesProvider
from support.sse_replay import Canned, ReplayServer, sse

EVENT = TypeAdapter(ResponseStreamEvent)
USAGE = {"input_tokens": 20, "output_tokens": 8, "total_tokens": 28,
         "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
         "output_tokens_details": {"reasoning_tokens": 0}}


def response(rid: str, status: str, output: list | None = None, **extra: Any) -> dict:
    return {"id": rid, "object": "response", "created_at": 1_800_000_000, "model": "gpt-test", "status": status,
            "output": output or [], "parallel_tool_calls": True, "tool_choice": "auto", "tools": [], **extra}


def fc_item(item_id: str, call_id: str, name: str, arguments: str, status: str = "completed") -> dict:
    return {"type": "function_call", "id": item_id, "call_id": call_id, "name": name, "arguments": arguments, "status": status}


def msg_item(msg_id: str, text: str, status: str = "completed") -> dict:
    content = [{"type": "output_text", "text": text, "annotations": []}] if status == "completed" else []
    return {"type": "message", "id": msg_id, "role": "assistant", "status": status, "content": content}


class Stream:
    """Builds one response's events in the documented order, with sequence numbers."""

    def __init__(self, rid: str = "resp_1", seq: int = 0):
        self.rid, self.seq, self.events, self.output = rid, seq, [], []
        self.add("response.created", response=response(rid, "in_progress"))
        self.add("response.in_progress", response=response(rid, "in_progress"))

    def add(self, type_: str, **fields: Any) -> "Stream":
        event = {"type": type_, "sequence_number": self.seq, **fields}
        EVENT.validate_python(event)  # honest fakes
        self.events.append(event)
        self.seq += 1
        return self

    def call(self, index: int, call_id: str, name: str, *parts: str, done: bool = True) -> "Stream":
        item_id = f"fc_{index}"
        self.add("response.output_item.added", output_index=index, item=fc_item(item_id, call_id, name, "", "in_progress"))
        for p in parts:
            self.add("response.function_call_arguments.delta", item_id=item_id, output_index=index, delta=p)
        if done:
            self.add("response.function_call_arguments.done", item_id=item_id, output_index=index, arguments="".join(parts))
            item = fc_item(item_id, call_id, name, "".join(parts))
            self.add("response.output_item.done", output_index=index, item=item)
            self.output.append(item)
        return self

    def text(self, index: int, *parts: str) -> "Stream":
        mid = f"msg_{index}"
        self.add("response.output_item.added", output_index=index, item=msg_item(mid, "", "in_progress"))
        self.add("response.content_part.added", item_id=mid, output_index=index, content_index=0,
                 part={"type": "output_text", "text": "", "annotations": []})
        for p in parts:
            self.add("response.output_text.delta", item_id=mid, output_index=index, content_index=0, delta=p, logprobs=[])
        full = "".join(parts)
        self.add("response.output_text.done", item_id=mid, output_index=index, content_index=0, text=full, logprobs=[])
        self.add("response.output_item.done", output_index=index, item=msg_item(mid, full))
        self.output.append(msg_item(mid, full))
        return self

    def completed(self, output: list | None = None) -> "Stream":
        out = self.output if output is None else output
        return self.add("response.completed", response=response(self.rid, "completed", out, usage=USAGE))

    def body(self, events: list | None = None) -> bytes:
        return sse(*[(e["type"], e) for e in (self.events if events is None else events)])

    def canned(self, **kw: Any) -> Canned:
        return Canned(body=self.body(), **kw)


def two_calls(rid: str = "resp_1") -> Stream:
    return (Stream(rid).call(0, "call_A", "get_weather", '{"city"', ':"Paris"}')
            .call(1, "call_B", "get_rain", '{"city":"Paris"}').completed())


RESULTS = [ToolResult("call_A", "get_weather", "21C"), ToolResult("call_B", "get_rain", "10%")]


def conversation(server: ReplayServer, steps, background: bool = False, **overrides):
    async def go():
        provider = create_provider(settings("responses", server.base_url, background=background, **overrides),
                                   sleep=FakeClock().sleep)
        assert isinstance(provider, ResponsesProvider)
        try:
            return [await collect(getattr(provider, m)(a)) for m, a in steps]
        finally:
            await provider.aclose()

    return run(go())


def test_two_parallel_calls_then_text_with_stored_continuation():
    leg2 = Stream("resp_2").text(0, "It is ", "21C.").completed()
    with ReplayServer([two_calls().canned(), leg2.canned()]) as s:
        first, second = conversation(s, [("send_message", "Paris?"), ("submit_tool_outputs", RESULTS)],
                                     instructions="Be brief.", tools=(WEATHER_TOOL,))
    r1 = last_result(first)
    assert r1.status == "tool_calls" and r1.meta["response_id"] == "resp_1"
    assert [(c.call_id, c.name, c.arguments) for c in r1.tool_calls] == [
        ("call_A", "get_weather", '{"city":"Paris"}'), ("call_B", "get_rain", '{"city":"Paris"}')]
    body1, body2 = s.requests[0].body, s.requests[1].body
    assert s.requests[0].path == "/v1/responses"
    assert body1["input"] == [{"role": "user", "content": "Paris?"}] and body1["stream"] is True
    assert "previous_response_id" not in body1 and "store" not in body1
    assert body1["tools"] == [{"type": "function", "name": "get_weather", "description": WEATHER_TOOL["description"],
                               "parameters": WEATHER_TOOL["parameters"], "strict": False}]
    assert body2["previous_response_id"] == "resp_1" and body2["instructions"] == "Be brief."
    assert body2["input"] == [{"type": "function_call_output", "call_id": "call_A", "output": "21C"},
                              {"type": "function_call_output", "call_id": "call_B", "output": "10%"}]
    r2 = last_result(second)
    assert r2.status == "completed" and r2.text == "It is 21C."
    assert [e.text for e in second if isinstance(e, TextDelta)] == ["It is ", "21C."]
    assert r2.usage == {"input_tokens": 20, "output_tokens": 8, "total_tokens": 28}


def test_stateless_mode_replays_the_full_input():
    leg1 = Stream("resp_1")
    leg1.add("response.output_item.added", output_index=0, item={"type": "reasoning", "id": "rs_0", "summary": []})
    leg1.add("response.output_item.done", output_index=0,
             item={"type": "reasoning", "id": "rs_0", "summary": [], "encrypted_content": "enc"})
    leg1.output.append({"type": "reasoning", "id": "rs_0", "summary": [], "encrypted_content": "enc"})
    leg1.call(1, "call_A", "get_weather", '{"city":"Paris"}').completed()
    with ReplayServer([leg1.canned(), Stream("resp_2").text(0, "Warm.").completed().canned()]) as s:
        conversation(s, [("send_message", "Paris?"), ("submit_tool_outputs", RESULTS[:1])],
                     store=False, tools=(WEATHER_TOOL,))
    body2 = s.requests[1].body
    assert body2["store"] is False and "previous_response_id" not in body2
    assert body2["input"] == [
        {"role": "user", "content": "Paris?"},
        {"type": "reasoning", "id": "rs_0", "summary": [], "encrypted_content": "enc"},
        {"type": "function_call", "call_id": "call_A", "name": "get_weather", "arguments": '{"city":"Paris"}', "id": "fc_1"},
        {"type": "function_call_output", "call_id": "call_A", "output": "21C"},
    ]
    assert "include" not in body2  # only asked of OpenAI itself


def test_follow_up_message_uses_the_last_response_id():
    with ReplayServer([Stream("resp_1").text(0, "Hi").completed().canned(),
                       Stream("resp_2").text(0, "Bye").completed().canned()]) as s:
        conversation(s, [("send_message", "hi"), ("send_message", "bye")])
    assert s.requests[1].body["previous_response_id"] == "resp_1"
    assert s.requests[1].body["input"] == [{"role": "user", "content": "bye"}]


def test_arguments_from_deltas_when_no_done_event_and_names_from_items():
    st = Stream().call(0, "call_A", "get_weather", '{"ci', 'ty":"Rome"}', done=False).completed(output=[])
    with ReplayServer([st.canned()]) as s:
        [events] = conversation(s, [("send_message", "Rome?")])
    assert [(c.call_id, c.name, c.arguments) for c in last_result(events).tool_calls] == [
        ("call_A", "get_weather", '{"city":"Rome"}')]


def test_text_only_in_the_final_output_is_still_shown():
    st = Stream().completed(output=[msg_item("msg_0", "Quiet server.")])
    with ReplayServer([st.canned()]) as s:
        [events] = conversation(s, [("send_message", "hi")])
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Quiet server."]
    assert last_result(events).text == "Quiet server."


@pytest.mark.parametrize("kind, status, error, code", [
    ("response.failed", "failed", "The model crashed", "server_error"),
    ("response.incomplete", "incomplete", "the response is incomplete (max_output_tokens)", "max_output_tokens"),
    ("error", "failed", "Rate limit reached", "rate_limit_exceeded"),
])
def test_failed_incomplete_and_error_events(kind, status, error, code):
    st = Stream().call(0, "call_A", "get_weather", '{"city":"Paris"}')
    if kind == "response.failed":
        st.add(kind, response=response("resp_1", "failed", error={"code": code, "message": error}))
    elif kind == "response.incomplete":
        st.add(kind, response=response("resp_1", "incomplete", incomplete_details={"reason": code}))
    else:
        st.add("error", code=code, message=error, param=None)
    with ReplayServer([st.canned()]) as s:
        [events] = conversation(s, [("send_message", "hi")])
    result = last_result(events)
    assert (result.status, result.error, result.error_code, result.tool_calls) == (status, error, code, ())


def test_stream_ending_without_a_terminal_event_raises():
    st = Stream().call(0, "call_A", "get_weather", '{"city":"Par', done=False)
    with ReplayServer([st.canned()]) as s:
        with pytest.raises(ProviderError, match="no response.completed"):
            conversation(s, [("send_message", "hi")])


def test_dropped_stream_without_background_is_a_provider_error():
    body = Stream().text(0, "It is", " warm").completed().body()
    with ReplayServer([Canned(body=body, drop_after=len(body) // 2)]) as s:
        with pytest.raises(ProviderError, match="the stream from the server was cut") as info:
            conversation(s, [("send_message", "hi")])
    assert info.value.exit_code == 3 and len(s.requests) == 1


def test_background_stream_resumes_after_the_last_sequence_number_without_duplicates():
    full = Stream().text(0, "one ", "two ", "three").completed()
    cut_at = 5  # created, in_progress, item.added, part.added, delta "one " -> last seen seq 4
    first = full.body(full.events[:cut_at])
    resumed = full.body(full.events[cut_at - 2:])  # the server replays two events we already have
    with ReplayServer([Canned(body=first + b"event: response.output_text.delta\ndata: {\"ty",
                              drop_after=len(first) + 20),
                       Canned(body=resumed)]) as s:
        [events] = conversation(s, [("send_message", "count")], background=True)
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["one ", "two ", "three"]
    assert any(isinstance(e, Notice) and "resuming response resp_1 after event 4" in e.message for e in events)
    assert last_result(events).text == "one two three"
    assert s.requests[0].body["background"] is True
    resume = s.requests[1]
    assert (resume.method, resume.path) == ("GET", "/v1/responses/resp_1")
    assert resume.query == {"starting_after": ["4"], "stream": ["true"]}


def test_background_is_ignored_without_storage():
    with ReplayServer([Stream().text(0, "x").completed().canned()]) as s:
        conversation(s, [("send_message", "hi")], background=True, store=False)
    assert "background" not in s.requests[0].body
