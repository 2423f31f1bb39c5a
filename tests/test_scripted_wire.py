"""Wire fidelity: what the scripted server puts on the wire, read with an independent SSE parser
and checked against OpenAI's recorded chunks and the SDK's own pydantic types."""

from __future__ import annotations

import json

import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.beta import Assistant, AssistantStreamEvent, Thread
from openai.types.beta.threads import Message, Run
from openai.types.beta.threads.runs import RunStep
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from runner.scripted import RawSSE, ScriptedServer
from support.scripted_http import (
    CHAT_TOOLS, RESPONSES_TOOLS, call, collapse, parse_sse, recorded_chat_files, shape, stream, text_turn,
    tool_turn, unknown_fields,
)

RESPONSE_EVENTS = TypeAdapter(ResponseStreamEvent)
# The live Response object carries "store"; this SDK version's type does not declare it.
UNDECLARED_RESPONSE_FIELDS = {"store"}
ASSISTANT_EVENTS = TypeAdapter(AssistantStreamEvent)
USER = [{"role": "user", "content": "weather in Paris?"}]


def _recorded(name: str) -> list[dict]:
    path = next(p for p in recorded_chat_files() if p.name == name)
    return [json.loads(d) for _, d in parse_sse(path.read_text()) if d != "[DONE]"]


def _chat(turns, *, include_usage: bool) -> list:
    with ScriptedServer(turns, chunk_arguments=4) as server:
        body = {"model": "gpt-4o", "messages": USER, "stream": True, "tools": CHAT_TOOLS}
        if include_usage:
            body["stream_options"] = {"include_usage": True}
        return stream(server.base_url, "/chat/completions", body)


def _without_null_usage(chunk: dict) -> dict:
    return {k: v for k, v in chunk.items() if not (k == "usage" and v is None)}


@pytest.mark.parametrize("recording, turn", [
    ("one_tool_call_nonstrict.sse", tool_turn(("get_weather", {"city": "New York City"}))),
    ("two_parallel_tool_calls.sse", tool_turn(("GetWeatherArgs", {"city": "Edinburgh"}),
                                              ("get_stock_price", {"ticker": "AAPL"}))),
    ("plain_text_answer.sse", text_turn("I'm unable to provide real-time weather updates.")),
])
def test_chat_chunks_have_the_recorded_shape(recording, turn):
    recorded = [shape(c) for c in _recorded(recording)]
    events = _chat([turn], include_usage=True)
    assert [n for n, _ in events] == [None] * len(events)
    assert events[-1][1] == "[DONE]"
    chunks = [d for _, d in events[:-1]]
    # OpenAI documents "usage": null on every other chunk when include_usage is set; the recordings
    # predate that field, so it is the one difference allowed.
    assert all(c["usage"] is None for c in chunks[:-1]) and chunks[-1]["usage"]
    assert collapse([shape(_without_null_usage(c)) for c in chunks]) == collapse(recorded)
    for c in chunks:
        assert unknown_fields(ChatCompletionChunk.model_validate(c)) == []


def test_chat_without_include_usage_has_no_usage_at_all():
    events = _chat([tool_turn(("get_temp", {"city": "Paris"}))], include_usage=False)
    chunks = [d for _, d in events[:-1]]
    assert all("usage" not in c for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    recorded = _recorded("one_tool_call_nonstrict.sse")[:-1]  # without the usage chunk
    assert collapse([shape(c) for c in chunks]) == collapse([shape(c) for c in recorded])


def test_chat_chunks_accumulate_in_the_sdk_to_the_scripted_calls():
    raw_args = '{"city": "Par'  # invalid JSON is passed through as is
    turn = tool_turn(("get_temp", {"city": "Paris", "note": "a \"quoted\" word"}), ("get_rain", raw_args))
    events = _chat([turn], include_usage=False)
    fragments = [d["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                 for _, d in events[:-1] if d["choices"][0]["delta"].get("tool_calls")]
    assert len(fragments) == 2 + 4 + 4  # an empty opening per call, then chunk_arguments pieces each
    state = ChatCompletionStreamState()
    for _, d in events[:-1]:
        state.handle_chunk(ChatCompletionChunk.model_validate(d))
    msg = state.get_final_completion().choices[0].message
    assert [(c.function.name, c.function.arguments) for c in msg.tool_calls] == [
        ("get_temp", json.dumps({"city": "Paris", "note": 'a "quoted" word'})), ("get_rain", raw_args)]
    ids = [c.id for c in msg.tool_calls]
    assert len(set(ids)) == 2 and all(i.startswith("call_") and len(i) == 29 for i in ids)


def test_raw_sse_is_served_byte_for_byte():
    for path in recorded_chat_files():
        with ScriptedServer([RawSSE(path.read_bytes())]) as server:
            status, headers, text = call(server.base_url, "POST", "/chat/completions",
                                         {"model": "m", "messages": USER, "stream": True})
        assert (status, headers["content-type"]) == (200, "text/event-stream; charset=utf-8")
        assert text.encode() == path.read_bytes()
    crlf = b"data: {}\r\n\r\ndata: [DONE]\r\n\r\n"
    assert RawSSE(crlf).events() == [b"data: {}\r\n\r\n", b"data: [DONE]\r\n\r\n"]


def test_chat_non_stream_is_a_chat_completion():
    with ScriptedServer([text_turn("Hello there")]) as server:
        status, _, text = call(server.base_url, "POST", "/chat/completions", {"model": "m", "messages": USER})
    assert status == 200
    completion = ChatCompletion.model_validate_json(text)
    assert unknown_fields(completion) == []
    assert completion.choices[0].message.content == "Hello there"
    assert completion.choices[0].finish_reason == "stop"


RESPONSES_LEG1 = [
    "response.created", "response.in_progress",
    "response.output_item.added", "response.function_call_arguments.delta",
    "response.function_call_arguments.done", "response.output_item.done",
    "response.output_item.added", "response.function_call_arguments.delta",
    "response.function_call_arguments.done", "response.output_item.done", "response.completed",
]
RESPONSES_LEG2 = [
    "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
    "response.output_text.delta", "response.output_text.done", "response.content_part.done",
    "response.output_item.done", "response.completed",
]


def _check_response_events(events: list) -> list:
    parsed = []
    for i, (name, data) in enumerate(events):
        assert name == data["type"]
        assert data["sequence_number"] == i
        event = RESPONSE_EVENTS.validate_python(data)
        assert event.type == name
        extra = {p.rsplit(".", 1)[1] for p in unknown_fields(event) if p.startswith("$.response.")}
        assert extra <= UNDECLARED_RESPONSE_FIELDS, name
        assert [p for p in unknown_fields(event) if not p.startswith("$.response.")] == [], name
        parsed.append(event)
    return parsed


def test_responses_events_follow_the_documented_order_and_types():
    turns = [tool_turn(("get_temp", {"city": "Paris"}), ("get_rain", {"city": "Paris"})),
             text_turn("Warm and ${{ outputs.get_rain }} rain.")]
    with ScriptedServer(turns) as server:
        body = {"model": "gpt-4o", "input": "weather?", "tools": RESPONSES_TOOLS, "stream": True}
        leg1 = stream(server.base_url, "/responses", body)
        assert collapse([n for n, _ in leg1]) == RESPONSES_LEG1
        parsed = _check_response_events(leg1)
        final = parsed[-1].response
        assert final.status == "completed" and final.usage.total_tokens > 0
        assert [o.name for o in final.output] == ["get_temp", "get_rain"]
        outputs = [{"type": "function_call_output", "call_id": o.call_id, "output": "10%"} for o in final.output]
        leg2 = stream(server.base_url, "/responses",
                      {"model": "gpt-4o", "input": outputs, "previous_response_id": final.id, "stream": True})
    assert collapse([n for n, _ in leg2]) == RESPONSES_LEG2
    parsed2 = _check_response_events(leg2)
    assert parsed2[-1].response.output[0].content[0].text == "Warm and 10% rain."
    created = leg2[0][1]["response"]
    assert created["output"] == [] and created["status"] == "in_progress"
    assert created["previous_response_id"] == final.id
    required = {k for k, f in Response.model_fields.items() if f.is_required()}
    assert required <= set(created) <= set(Response.model_fields) | UNDECLARED_RESPONSE_FIELDS


ASSISTANTS_LEG1 = [
    "thread.run.created", "thread.run.queued", "thread.run.in_progress", "thread.run.step.created",
    "thread.run.step.in_progress", "thread.run.step.delta", "thread.run.requires_action", "done",
]
ASSISTANTS_LEG2 = [
    "thread.run.queued", "thread.run.in_progress", "thread.run.step.completed", "thread.run.step.created",
    "thread.run.step.in_progress", "thread.message.created", "thread.message.in_progress",
    "thread.message.delta", "thread.message.completed", "thread.run.step.completed", "thread.run.completed", "done",
]
EXACT_KEYS = {"thread.run": Run, "thread.message": Message, "thread.run.step": RunStep}


def _check_assistant_events(events: list) -> list:
    parsed = []
    for name, data in events:
        if name == "done":
            assert data == "[DONE]"
            continue
        event = ASSISTANT_EVENTS.validate_python({"event": name, "data": data})
        assert event.event == name
        assert unknown_fields(event) == [], name
        model = EXACT_KEYS.get(data.get("object"))
        if model is not None:  # the full object, every field present as the API sends it
            assert set(data) == set(model.model_fields), name
        parsed.append(event)
    return parsed


def test_assistants_run_legs_follow_the_documented_order_and_types():
    turns = [tool_turn(("get_temp", {"city": "Paris"}), ("get_rain", {"city": "Paris"})),
             text_turn("It is ${{ outputs.get_temp }}.")]
    with ScriptedServer(turns, chunk_arguments=2) as server:
        url = server.base_url
        status, _, text = call(url, "POST", "/assistants", {"model": "gpt-4o", "tools": CHAT_TOOLS})
        asst = json.loads(text)
        assert set(asst) == set(Assistant.model_fields) and unknown_fields(Assistant.model_validate(asst)) == []
        thread = json.loads(call(url, "POST", "/threads", {"messages": USER})[2])
        assert set(thread) == set(Thread.model_fields)
        leg1 = stream(url, f"/threads/{thread['id']}/runs", {"assistant_id": asst["id"], "stream": True})
        assert collapse([n for n, _ in leg1]) == ASSISTANTS_LEG1
        assert [n for n, _ in leg1].count("thread.run.step.delta") == 2 * (1 + 2)
        parsed = _check_assistant_events(leg1)
        run = parsed[-1].data
        assert run.expires_at == run.created_at + 600
        calls = run.required_action.submit_tool_outputs.tool_calls
        assert [c.function.name for c in calls] == ["get_temp", "get_rain"]
        outputs = [{"tool_call_id": c.id, "output": f"out-{c.function.name}"} for c in calls]
        leg2 = stream(url, f"/threads/{thread['id']}/runs/{run.id}/submit_tool_outputs",
                      {"tool_outputs": outputs, "stream": True})
    assert collapse([n for n, _ in leg2]) == ASSISTANTS_LEG2
    parsed2 = _check_assistant_events(leg2)
    tool_step = parsed2[2].data
    assert [c.function.output for c in tool_step.step_details.tool_calls] == ["out-get_temp", "out-get_rain"]
    assert parsed2[-1].data.status == "completed" and parsed2[-1].data.usage.total_tokens > 0
    message = next(e.data for e in parsed2 if e.event == "thread.message.completed")
    assert message.content[0].text.value == "It is out-get_temp."


def test_error_bodies_are_openai_shaped():
    with ScriptedServer([]) as server:
        status, headers, text = call(server.base_url, "POST", "/nowhere", {})
        assert status == 404 and headers["content-type"] == "application/json"
        error = json.loads(text)["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert error["message"] == "Invalid URL (POST /v1/nowhere)"
        status, _, text = call(server.base_url, "POST", "/chat/completions", b"{not json")
        assert status == 400 and "could not parse the JSON body" in json.loads(text)["error"]["message"]
        status, _, text = call(server.base_url, "POST", "/responses",
                               {"model": "m", "input": "x", "previous_response_id": "resp_nope"})
        assert status == 400
        assert json.loads(text)["error"]["message"] == "Previous response with id 'resp_nope' not found."
