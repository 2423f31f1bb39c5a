"""The scripted server driven by the real ``openai`` SDK: the three APIs through two-turn tool
loops, the recorded OpenAI streams, turn selection, the request log and the API invariants."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest
from openai import AssistantEventHandler, AsyncOpenAI, OpenAI

from runner.scripted import RawSSE, ScriptedServer, TurnContext
from runner.workflow.model import ScriptedCall, ScriptedTurn
from support.scripted_http import CHAT_TOOLS, RESPONSES_TOOLS, recorded_chat_files, text_turn, tool_turn

TWO_TURNS = [tool_turn(("get_temp", {"city": "Paris"}), ("get_rain", {"city": "Paris"})),
             text_turn("It is ${{ outputs.get_temp }} with ${{ outputs.get_rain }} rain.")]
OUTPUTS = {"get_temp": "21C", "get_rain": "10%"}
USER = [{"role": "user", "content": "weather in Paris?"}]


def client(server: ScriptedServer, **kw) -> OpenAI:
    return OpenAI(base_url=server.base_url, api_key="sk-test", **kw)


def accumulate_chat(stream) -> tuple[str, list[dict], str | None]:
    """The robust accumulator of docs/protocols.md §3.4: key on index, concatenate only arguments."""
    text, calls, finish = "", {}, None
    for chunk in stream:
        for choice in chunk.choices:
            text += choice.delta.content or ""
            for tc in choice.delta.tool_calls or []:
                entry = calls.setdefault(tc.index, {"id": tc.id, "name": tc.function.name, "arguments": ""})
                entry["arguments"] += tc.function.arguments or ""
            finish = choice.finish_reason or finish
    return text, [calls[i] for i in sorted(calls)], finish


def test_chat_tool_loop_through_the_sdk():
    with ScriptedServer(TWO_TURNS) as server:
        c = client(server)
        stream = c.chat.completions.create(model="gpt-4o", messages=USER, tools=CHAT_TOOLS, stream=True,
                                           stream_options={"include_usage": True})
        text, calls, finish = accumulate_chat(stream)
        assert (text, finish) == ("", "tool_calls")
        assert [(x["name"], json.loads(x["arguments"])) for x in calls] == [
            ("get_temp", {"city": "Paris"}), ("get_rain", {"city": "Paris"})]
        messages = USER + [{"role": "assistant", "content": None, "tool_calls": [
            {"id": x["id"], "type": "function", "function": {"name": x["name"], "arguments": x["arguments"]}}
            for x in calls]}] + [{"role": "tool", "tool_call_id": x["id"], "content": OUTPUTS[x["name"]]}
                                 for x in calls]
        with c.chat.completions.stream(model="gpt-4o", messages=messages, tools=CHAT_TOOLS) as s:
            final = s.get_final_completion()
        assert final.choices[0].message.content == "It is 21C with 10% rain."
        log = server.requests_for("/chat/completions")
    assert [r.turn_index for r in log] == [0, 1]
    assert log[1].body["messages"][-1] == {"role": "tool", "tool_call_id": calls[1]["id"], "content": "10%"}
    assert log[0].headers["authorization"] == "Bearer sk-test"
    assert log[0].api == "chat" and log[0].method == "POST" and log[0].query == {}


def test_chat_rejects_unanswered_tool_calls_like_openai():
    with ScriptedServer(TWO_TURNS) as server:
        messages = USER + [{"role": "assistant", "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "get_temp", "arguments": "{}"}},
            {"id": "call_b", "type": "function", "function": {"name": "get_rain", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_a", "content": "21C"}]
        with pytest.raises(openai.BadRequestError, match="did not have response messages: call_b"):
            client(server).chat.completions.create(model="m", messages=messages)
        with pytest.raises(openai.BadRequestError, match="must be a response to a preceeding message"):
            client(server).chat.completions.create(
                model="m", messages=USER + [{"role": "tool", "tool_call_id": "call_x", "content": "1"}])


@pytest.mark.parametrize("path", recorded_chat_files(), ids=lambda p: p.stem)
def test_recorded_streams_served_raw_parse_in_the_sdk(path):
    expected = {  # from tests/fixtures/recorded/README.md
        "one_tool_call_nonstrict": [("call_4XzlGBLtUe9dy3GVNV4jhq7h", "get_weather", {"city": "New York City"})],
        "one_tool_call_strict": [("call_CTf1nWJLqSeRgDqaCG27xZ74", "get_weather",
                                  {"city": "San Francisco", "state": "CA"})],
        "one_tool_call_edinburgh": [("call_c91SqDXlYFuETYv8mUHzz6pp", "GetWeatherArgs",
                                     {"city": "Edinburgh", "country": "UK", "units": "c"})],
        "two_parallel_tool_calls": [
            ("call_JMW1whyEaYG438VE1OIflxA2", "GetWeatherArgs", {"city": "Edinburgh", "country": "GB", "units": "c"}),
            ("call_DNYTawLBoN8fj3KN6qU9N1Ou", "get_stock_price", {"ticker": "AAPL", "exchange": "NASDAQ"})],
        "plain_text_answer": [],
    }[path.stem]
    with ScriptedServer([RawSSE(path.read_bytes())] * 2) as server:
        stream = client(server).chat.completions.create(model="gpt-4o", messages=USER, stream=True)
        text, calls, finish = accumulate_chat(stream)
        assert [(x["id"], x["name"], json.loads(x["arguments"])) for x in calls] == expected
        assert finish == ("tool_calls" if expected else "stop")
        assert text.startswith("I'm unable to provide real-time weather") == (not expected)
        with client(server).chat.completions.stream(model="gpt-4o", messages=USER) as s:
            final = s.get_final_completion()
    assert [c.id for c in final.choices[0].message.tool_calls or []] == [e[0] for e in expected]


def test_responses_stateful_tool_loop_with_the_stream_helper():
    with ScriptedServer(TWO_TURNS) as server:
        c = client(server)
        with c.responses.stream(model="gpt-4o", input="weather?", tools=RESPONSES_TOOLS) as s:
            deltas = [e.delta for e in s if e.type == "response.function_call_arguments.delta"]
            first = s.get_final_response()
        assert len(deltas) == 6  # 3 fragments per call
        calls = [o for o in first.output if o.type == "function_call"]
        outputs = [{"type": "function_call_output", "call_id": o.call_id, "output": OUTPUTS[o.name]} for o in calls]
        raw = c.responses.create(model="gpt-4o", input=outputs, previous_response_id=first.id, stream=True)
        events = list(raw)
        assert events[-1].type == "response.completed"
        assert events[-1].response.output_text == "It is 21C with 10% rain."
        assert c.responses.retrieve(first.id).status == "completed"
        log = server.requests_for("/responses")
    assert [r.turn_index for r in log[:2]] == [0, 1]
    assert log[1].body["input"] == outputs


def test_responses_stateless_replay_and_store_false():
    with ScriptedServer(TWO_TURNS) as server:
        c = client(server)
        first = c.responses.create(model="m", input=[{"role": "user", "content": "hi"}], store=False,
                                   tools=RESPONSES_TOOLS)  # non-streaming
        calls = [o for o in first.output if o.type == "function_call"]
        assert len(calls) == 2
        with pytest.raises(openai.NotFoundError):
            c.responses.retrieve(first.id)  # not stored
        with pytest.raises(openai.BadRequestError, match=f"Previous response with id '{first.id}' not found."):
            c.responses.create(model="m", input="x", previous_response_id=first.id)
        replay = [{"role": "user", "content": "hi"}] + [o.model_dump(exclude_none=True) for o in calls]
        outputs = [{"type": "function_call_output", "call_id": o.call_id, "output": OUTPUTS[o.name]} for o in calls]
        with pytest.raises(openai.BadRequestError, match=f"No tool output found for function call {calls[1].call_id}"):
            c.responses.create(model="m", input=replay + outputs[:1], store=False)
        second = c.responses.create(model="m", input=replay + outputs, store=False, stream=True)
        assert [e for e in second][-1].response.output_text == "It is 21C with 10% rain."


def test_responses_background_stream_can_be_resumed_after_a_cursor():
    with ScriptedServer([text_turn("one two three four five six")]) as server:
        c = client(server)
        events = list(c.responses.create(model="m", input="go", background=True, stream=True))
        assert [e.type for e in events[:3]] == ["response.created", "response.queued", "response.in_progress"]
        rid = events[0].response.id
        tail = list(c.responses.retrieve(rid, stream=True, starting_after=5))
        assert [e.sequence_number for e in tail] == [e.sequence_number for e in events[6:]]
        with c.responses.stream(response_id=rid, starting_after=5) as s:
            resumed = list(s)
            final = s.get_final_response()
        assert [e.sequence_number for e in resumed] == [e.sequence_number for e in events[6:]]
        assert final.output_text == "one two three four five six"
        assert server.requests_for(f"/responses/{rid}")[0].query == {"starting_after": "5", "stream": "true"}
        with pytest.raises(openai.BadRequestError, match="Cannot cancel a response with status 'completed'"):
            c.responses.cancel(rid)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_assistants_tool_loop_with_the_stream_helpers():
    with ScriptedServer(TWO_TURNS) as server:
        c = client(server)
        asst = c.beta.assistants.create(model="gpt-4o", tools=CHAT_TOOLS)
        thread = c.beta.threads.create(messages=USER)
        h1 = AssistantEventHandler()
        with c.beta.threads.runs.stream(thread_id=thread.id, assistant_id=asst.id, event_handler=h1) as s:
            s.until_done()
        run = h1.current_run
        assert run.status == "requires_action"
        calls = run.required_action.submit_tool_outputs.tool_calls
        with pytest.raises(openai.BadRequestError, match="already has an active run"):
            c.beta.threads.runs.create(thread_id=thread.id, assistant_id=asst.id)
        outputs = [{"tool_call_id": x.id, "output": OUTPUTS[x.function.name]} for x in calls]
        with pytest.raises(openai.BadRequestError, match="single request"):
            c.beta.threads.runs.submit_tool_outputs(run.id, thread_id=thread.id, tool_outputs=outputs[:1])
        with pytest.raises(openai.BadRequestError, match="Duplicate tool outputs"):
            c.beta.threads.runs.submit_tool_outputs(run.id, thread_id=thread.id, tool_outputs=outputs + outputs[:1])
        h2 = AssistantEventHandler()
        with c.beta.threads.runs.submit_tool_outputs_stream(thread_id=thread.id, run_id=run.id,
                                                            tool_outputs=outputs, event_handler=h2) as s:
            text = "".join(s.text_deltas)
        assert text == "It is 21C with 10% rain."
        assert h2.current_run.status == "completed"
        messages = c.beta.threads.messages.list(thread_id=thread.id)
        assert [m.role for m in messages.data] == ["assistant", "user"]
        assert c.beta.threads.runs.list(thread_id=thread.id).data[0].status == "completed"
        submits = server.requests_for("/submit_tool_outputs")
    assert [r.turn_index for r in server.requests_for("/runs") if r.turn_index is not None] == [0, 1]
    assert [r.body["tool_outputs"] for r in submits][-1] == outputs
    assert submits[-1].headers["openai-beta"] == "assistants=v2"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_assistants_raw_stream_poll_cancel_and_create_and_run():
    turns = [tool_turn(("get_temp", {"city": "Paris"})), text_turn("${{ outputs.get_temp }}")]
    with ScriptedServer(turns) as server:
        c = client(server)
        asst = c.beta.assistants.create(model="gpt-4o", tools=CHAT_TOOLS)
        assert c.beta.assistants.retrieve(asst.id).id == asst.id
        events = list(c.beta.threads.create_and_run(assistant_id=asst.id, stream=True,
                                                    thread={"messages": USER}))
        assert events[0].event == "thread.created" and events[-1].event == "thread.run.requires_action"
        run = events[-1].data
        assert c.beta.threads.runs.cancel(run.id, thread_id=run.thread_id).status == "cancelling"
        assert c.beta.threads.runs.retrieve(run.id, thread_id=run.thread_id).status == "cancelled"
        thread = c.beta.threads.create(messages=USER)
        polled = c.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=asst.id)
        assert polled.status == "requires_action"
        call = polled.required_action.submit_tool_outputs.tool_calls[0]
        done = c.beta.threads.runs.submit_tool_outputs_and_poll(
            run_id=polled.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": call.id, "output": "18C"}])
        assert done.status == "completed"
        assert c.beta.threads.messages.list(thread_id=thread.id).data[0].content[0].text.value == "18C"
        with pytest.raises(openai.NotFoundError, match="No thread found"):
            c.beta.threads.runs.list(thread_id="thread_missing")


def test_script_function_sees_the_conversation():
    seen: list[TurnContext] = []

    def script(ctx: TurnContext):
        seen.append(ctx)
        if ctx.turn_index == 0:
            return ScriptedTurn(tool_calls=(ScriptedCall("echo", {"said": ctx.user_message}),))
        return ScriptedTurn(text=f"{ctx.api}: ${{{{ outputs.echo.said }}}} / {ctx.calls[0].output}")

    with ScriptedServer(script) as server:
        c = client(server)
        first = c.responses.create(model="m", input="hello there")
        out = [{"type": "function_call_output", "call_id": first.output[0].call_id, "output": '{"said": "HI"}'}]
        second = c.responses.create(model="m", input=out, previous_response_id=first.id)
    assert second.output_text == 'responses: HI / {"said": "HI"}'
    assert [(s.turn_index, s.user_message) for s in seen] == [(0, "hello there"), (1, "hello there")]
    assert seen[1].outputs == {"echo": '{"said": "HI"}'} and seen[1].request.body["input"] == out


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_exhausted_script_is_an_in_protocol_error_not_retried():
    with ScriptedServer([text_turn("only one")]) as server:
        c = client(server)
        exhausted = r"scripted model has no turn 1 \(the script has 1 turns\)"
        with pytest.raises(openai.InternalServerError, match=exhausted):
            c.chat.completions.create(model="m", messages=USER + [{"role": "assistant", "content": "x"},
                                                                 {"role": "user", "content": "again"}])
        assert len(server.requests) == 1  # x-should-retry: false
        asst = c.beta.assistants.create(model="m")
        thread = c.beta.threads.create(messages=USER)
        run = c.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=asst.id)
        assert run.status == "completed"
        run = c.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=asst.id)
        assert run.status == "failed" and "has no turn 1" in run.last_error.message


def test_async_client_and_unknown_routes():
    async def main(url: str) -> str:
        c = AsyncOpenAI(base_url=url, api_key="x")
        stream = await c.chat.completions.create(model="m", messages=USER, stream=True)
        text = "".join([ch.choices[0].delta.content or "" async for ch in stream if ch.choices])
        with pytest.raises(openai.NotFoundError, match=r"Invalid URL \(POST /v1/embeddings\)"):
            await c.embeddings.create(model="m", input="x")
        await c.close()
        return text

    with ScriptedServer([text_turn("hello async world")]) as server:
        assert asyncio.run(main(server.base_url)) == "hello async world"


def test_a_stopped_server_refuses_connections_and_serves_again_on_its_port_with_its_state():
    with ScriptedServer(TWO_TURNS) as server:
        sdk = client(server, max_retries=0)
        thread = sdk.beta.threads.create()
        port = server.port
        server.stop()
        with pytest.raises(openai.APIConnectionError):
            sdk.beta.threads.retrieve(thread.id)
        server.start()
        assert server.port == port
        assert sdk.beta.threads.retrieve(thread.id).id == thread.id  # what it held is still there
