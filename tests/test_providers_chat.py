"""The Chat Completions provider through the real SDK against a loopback server."""

from __future__ import annotations

import pytest

from support.paths import RECORDED
from support.providers import API_KEY, WEATHER_TOOL, FakeClock, collect, last_result, run, settings
from runner.errors import ProviderError
from runner.events import Notice, TextDelta
from runner.calls import ToolResult
from runner.providers.factory import create_provider
from runner.providers.chat import ChatProvider
from support.sse_replay import Canned, ReplayServer, error_response, sse
from support.chat_chunks import RECORDED_CALLS, call, chunk


def stream(*chunks: dict) -> Canned:
    return Canned(body=sse(*[(None, c) for c in chunks], done=True))


def text_stream(text: str) -> Canned:
    return stream(chunk({"content": text}), chunk(finish="stop"))


async def turn(provider, method: str, arg) -> list:
    return await collect(getattr(provider, method)(arg))


def conversation(server: ReplayServer, steps, **overrides):
    """Run ``steps`` [(method, arg), ...] on one provider; return each step's events."""

    async def go():
        provider = create_provider(settings("chat", server.base_url, **overrides), sleep=FakeClock().sleep)
        assert isinstance(provider, ChatProvider)
        try:
            return [await turn(provider, m, a) for m, a in steps]
        finally:
            await provider.aclose()

    return run(go())


@pytest.mark.parametrize("name", sorted(RECORDED_CALLS))
def test_recorded_streams_give_the_recorded_calls(name):
    with ReplayServer([Canned(body=(RECORDED / "chat" / name).read_bytes())]) as s:
        [events] = conversation(s, [("send_message", "weather?")], tools=(WEATHER_TOOL,))
    result = last_result(events)
    assert result.status == "tool_calls"
    assert [(c.call_id, c.name, c.arguments) for c in result.tool_calls] == RECORDED_CALLS[name]
    assert result.usage and result.usage["total_tokens"] > 0


def test_recorded_plain_text_streams_as_deltas():
    with ReplayServer([Canned(body=(RECORDED / "chat" / "plain_text_answer.sse").read_bytes())]) as s:
        [events] = conversation(s, [("send_message", "weather in SF?")])
    result = last_result(events)
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert result.status == "completed" and len(deltas) > 5 and "".join(deltas) == result.text


def test_first_request_body():
    strict_tool = {**WEATHER_TOOL, "name": "strict_one", "strict": True}
    with ReplayServer([text_stream("ok")]) as s:
        conversation(s, [("send_message", "hi")], instructions="Be brief.", tools=(WEATHER_TOOL, strict_tool))
    body = s.requests[0].body
    assert s.requests[0].path == "/v1/chat/completions"
    assert body["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["tools"][0] == {"type": "function", "function": {
        "name": "get_weather", "description": WEATHER_TOOL["description"], "parameters": WEATHER_TOOL["parameters"]}}
    assert body["tools"][1]["function"]["strict"] is True
    for key in ("temperature", "top_p", "max_tokens", "max_completion_tokens", "seed", "tool_choice", "parallel_tool_calls"):
        assert key not in body
    assert s.requests[0].headers["authorization"] == f"Bearer {API_KEY}"


def test_sampling_settings_are_sent_when_set():
    with ReplayServer([text_stream("ok")]) as s:
        conversation(s, [("send_message", "hi")], tools=(WEATHER_TOOL,), temperature=0.2, top_p=0.9,
                     max_output_tokens=50, seed=7, tool_choice="required", parallel_tool_calls=False,
                     extra_headers=(("X-Team", "blue"),))
    body = s.requests[0].body
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["seed"]) == (0.2, 0.9, 50, 7)
    assert body["tool_choice"] == "required" and body["parallel_tool_calls"] is False
    assert s.requests[0].headers["x-team"] == "blue"


def test_tool_round_trip_replays_the_calls_and_one_tool_message_per_call_in_order():
    two = (RECORDED / "chat" / "two_parallel_tool_calls.sse").read_bytes()
    results = [  # out of order, plus a duplicate and a stranger
        ToolResult("call_DNYTawLBoN8fj3KN6qU9N1Ou", "get_stock_price", "190.5"),
        ToolResult("call_JMW1whyEaYG438VE1OIflxA2", "GetWeatherArgs", "12C"),
        ToolResult("call_JMW1whyEaYG438VE1OIflxA2", "GetWeatherArgs", "13C"),
        ToolResult("call_nobody", "x", "?"),
    ]
    with ReplayServer([Canned(body=two), text_stream("Done.")]) as s:
        first, second = conversation(s, [("send_message", "weather and AAPL"), ("submit_tool_outputs", results)])
    assert last_result(first).status == "tool_calls"
    notices = [e.message for e in second if isinstance(e, Notice)]
    assert len(notices) == 2 and "second output" in notices[0] and "unknown call id call_nobody" in notices[1]
    messages = s.requests[1].body["messages"]
    assert messages[1] == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_JMW1whyEaYG438VE1OIflxA2", "type": "function",
         "function": {"name": "GetWeatherArgs", "arguments": '{"city": "Edinburgh", "country": "GB", "units": "c"}'}},
        {"id": "call_DNYTawLBoN8fj3KN6qU9N1Ou", "type": "function",
         "function": {"name": "get_stock_price", "arguments": '{"ticker": "AAPL", "exchange": "NASDAQ"}'}},
    ]}
    assert messages[2:] == [
        {"role": "tool", "tool_call_id": "call_JMW1whyEaYG438VE1OIflxA2", "content": "12C"},
        {"role": "tool", "tool_call_id": "call_DNYTawLBoN8fj3KN6qU9N1Ou", "content": "190.5"},
    ]
    assert last_result(second).text == "Done."


def test_a_missing_output_becomes_an_error_message_for_that_call():
    one = (RECORDED / "chat" / "one_tool_call_strict.sse").read_bytes()
    with ReplayServer([Canned(body=one), text_stream("ok")]) as s:
        conversation(s, [("send_message", "SF?"), ("submit_tool_outputs", [])])
    assert s.requests[1].body["messages"][-1] == {
        "role": "tool", "tool_call_id": "call_CTf1nWJLqSeRgDqaCG27xZ74", "content": "error: no output was produced for this call"}


def test_synthesized_ids_are_replayed():
    nameless = stream(chunk({"tool_calls": [call(0, None, "get_weather", '{"city":"Oslo"}')]}), chunk(finish="tool_calls"))
    with ReplayServer([nameless, text_stream("ok")]) as s:
        first, _ = conversation(s, [("send_message", "Oslo?"), ("submit_tool_outputs", [ToolResult("call_0", "get_weather", "3C")])])
    assert last_result(first).tool_calls[0].call_id == "call_0"
    messages = s.requests[1].body["messages"]
    assert messages[1]["tool_calls"][0]["id"] == "call_0" and messages[2]["tool_call_id"] == "call_0"


def test_follow_up_message_continues_the_same_conversation():
    with ReplayServer([text_stream("Hello!"), text_stream("Bye!")]) as s:
        conversation(s, [("send_message", "hi"), ("send_message", "bye")])
    assert s.requests[1].body["messages"] == [
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "bye"}]


def test_stream_without_finish_reason_raises_and_runs_nothing():
    cut = stream(chunk({"tool_calls": [call(0, "call_a", "get_weather", '{"city":"Par')]}))
    with ReplayServer([cut]) as s:
        with pytest.raises(ProviderError, match="no finish_reason") as info:
            conversation(s, [("send_message", "hi")])
    assert info.value.exit_code == 3


def test_connection_dropped_mid_stream():
    body = sse((None, chunk({"content": "It is"})), (None, chunk({"content": " sunny"})), (None, chunk(finish="stop")), done=True)
    with ReplayServer([Canned(body=body, drop_after=len(body) // 2)]) as s:
        with pytest.raises(ProviderError, match="the stream from the server was cut before the turn finished"):
            conversation(s, [("send_message", "hi")])
    assert len(s.requests) == 1  # a started stream is never retried


def test_error_object_inside_the_stream_fails_the_turn():
    body = sse((None, chunk({"content": "par"})), (None, {"error": {"message": "engine crashed", "code": "server_error"}}), done=True)
    with ReplayServer([Canned(body=body)]) as s:
        [events] = conversation(s, [("send_message", "hi")])
    result = last_result(events)
    assert (result.status, result.error, result.error_code) == ("failed", "engine crashed", "server_error")


def test_401_and_404():
    with ReplayServer([error_response(401, f"Incorrect API key provided: {API_KEY}", code="invalid_api_key"),
                       error_response(404, "The model `gpt-test` does not exist", code="model_not_found")]) as s:
        with pytest.raises(ProviderError) as auth:
            conversation(s, [("send_message", "hi")])
        with pytest.raises(ProviderError) as missing:
            conversation(s, [("send_message", "hi")])
    assert API_KEY not in str(auth.value) and "key ends …abcd" in auth.value.message
    assert "model" in missing.value.message and "not found" in missing.value.message


def test_a_stalled_stream_hits_the_read_timeout():
    first = sse((None, chunk({"content": "It"})))
    body = first + sse((None, chunk(finish="stop")), done=True)
    with ReplayServer([Canned(body=body, stall=1.0, stall_after=len(first))]) as s:
        with pytest.raises(ProviderError, match="sent nothing within the read timeout"):
            conversation(s, [("send_message", "hi")], timeout=0.2)
    assert len(s.requests) == 1


def test_factory_rejects_unknown_apis_and_reports_a_missing_key():
    from runner.errors import UsageError

    with pytest.raises(UsageError, match="unknown api 'completions'"):
        create_provider(settings("completions", "http://127.0.0.1:9/v1"))
    with pytest.raises(ProviderError, match="cannot set up the API client"):
        create_provider(settings("chat", "http://127.0.0.1:9/v1", api_key=""))


def test_a_caller_supplied_http_client_is_not_closed():
    import httpx2

    async def go():
        client = httpx2.AsyncClient()
        provider = create_provider(settings("chat", "http://127.0.0.1:9/v1"), http_client=client)
        await provider.aclose()
        closed = client.is_closed
        await client.aclose()
        return closed

    assert run(go()) is False
