"""The raw Chat Completions accumulator, on recorded OpenAI streams and on local-server quirks."""

from __future__ import annotations

import pytest
from openai.types.chat import ChatCompletionChunk

from support.chat_chunks import RECORDED_CALLS, call, chunk
from support.paths import RECORDED
from support.providers import parse_sse_data
from runner.errors import ProviderError
from runner.events import TextDelta
from runner.calls import ToolCall
from runner.providers.chat_stream import ChatStreamAccumulator


def feed_all(chunks: list[dict], *, validate: bool = True) -> ChatStreamAccumulator:
    acc = ChatStreamAccumulator()
    for c in chunks:
        if validate and all("index" in tc for ch in c["choices"] for tc in ch["delta"].get("tool_calls") or ()):
            ChatCompletionChunk.model_validate(c)
        acc.feed(c)
    return acc


@pytest.mark.parametrize("name", sorted(RECORDED_CALLS))
def test_recorded_tool_call_streams(name):
    acc = feed_all(parse_sse_data((RECORDED / "chat" / name).read_bytes()))
    result = acc.result()
    assert result.status == "tool_calls"
    assert [(c.call_id, c.name, c.arguments) for c in result.tool_calls] == RECORDED_CALLS[name]


def test_recorded_plain_text_answer():
    chunks = parse_sse_data((RECORDED / "chat" / "plain_text_answer.sse").read_bytes())
    acc = ChatStreamAccumulator()
    deltas = [e for c in chunks for e in acc.feed(c)]
    result = acc.result()
    assert result.status == "completed" and result.tool_calls == ()
    assert result.text.startswith("I'm unable to provide real-time weather updates")
    assert "".join(d.text for d in deltas) == result.text
    assert all(isinstance(d, TextDelta) for d in deltas)
    assert result.usage == {"input_tokens": 14, "output_tokens": 30, "total_tokens": 44}


def test_ollama_whole_call_in_one_chunk_with_finish_reason():
    acc = feed_all([
        chunk({"role": "assistant", "content": ""}),
        chunk({"tool_calls": [call(0, "call_x", "get_weather", '{"city":"Paris"}')]}, finish="tool_calls"),
    ])
    assert acc.result().tool_calls == (ToolCall("call_x", "get_weather", '{"city":"Paris"}'),)


def test_index_missing():
    acc = feed_all([
        chunk({"tool_calls": [call(None, "call_a", "f", '{"a":')]}),
        chunk({"tool_calls": [call(None, None, None, "1}")]}),
        chunk({"tool_calls": [call(None, "call_b", "g", "{}")]}),
        chunk(finish="tool_calls"),
    ], validate=False)
    assert [(c.call_id, c.name, c.arguments) for c in acc.result().tool_calls] == [
        ("call_a", "f", '{"a":1}'), ("call_b", "g", "{}")]


def test_all_index_zero_with_different_ids():
    acc = feed_all([
        chunk({"tool_calls": [call(0, "call_a", "get_weather", '{"city":"Paris"}')]}),
        chunk({"tool_calls": [call(0, "call_b", "get_weather", '{"city":')]}),
        chunk({"tool_calls": [call(0, None, None, '"Rome"}')]}),
        chunk(finish="tool_calls"),
    ])
    assert [(c.call_id, c.arguments) for c in acc.result().tool_calls] == [
        ("call_a", '{"city":"Paris"}'), ("call_b", '{"city":"Rome"}')]


def test_index_zero_without_ids_but_different_names_are_two_calls():
    acc = feed_all([
        chunk({"tool_calls": [call(0, None, "get_weather", "{}")]}),
        chunk({"tool_calls": [call(0, None, "get_time", "{}")]}),
        chunk(finish="tool_calls"),
    ])
    calls = acc.result().tool_calls
    assert [c.name for c in calls] == ["get_weather", "get_time"]
    assert len({c.call_id for c in calls}) == 2


def test_index_starting_at_one():
    acc = feed_all([
        chunk({"tool_calls": [call(1, "call_a", "f", "")]}),
        chunk({"tool_calls": [call(1, None, None, '{"x":2}')]}),
        chunk(finish="tool_calls"),
    ])
    assert acc.result().tool_calls == (ToolCall("call_a", "f", '{"x":2}'),)


def test_repeated_id_and_name_on_every_fragment_are_not_concatenated():
    acc = feed_all([
        chunk({"tool_calls": [call(0, "call_a", "get_weather", '{"city"')]}),
        chunk({"tool_calls": [call(0, "call_a", "get_weather", ':"Oslo"}')]}),
        chunk(finish="tool_calls"),
    ])
    assert acc.result().tool_calls == (ToolCall("call_a", "get_weather", '{"city":"Oslo"}'),)


def test_missing_ids_are_synthesized_and_unique():
    acc = feed_all([
        chunk({"tool_calls": [call(0, None, "f", "{}")]}),
        chunk({"tool_calls": [call(1, "call_0", "g", "{}")]}),  # a server id that collides
        chunk(finish="tool_calls"),
    ])
    ids = [c.call_id for c in acc.result().tool_calls]
    assert ids[1] == "call_0" and ids[0].startswith("call_") and len(set(ids)) == 2


def test_llama_cpp_first_delta_carries_everything_and_id_inside_function():
    acc = feed_all([
        chunk({"tool_calls": [{"index": 0, "function": {"id": "call_l", "name": "f", "arguments": "{"}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": '"a":1}'}}]}),
        chunk(finish="tool_calls"),
    ])
    assert acc.result().tool_calls == (ToolCall("call_l", "f", '{"a":1}'),)


def test_stop_with_calls_means_call_tools_and_empty_arguments_become_an_object():
    acc = feed_all([chunk({"tool_calls": [call(0, "call_a", "now", "")]}), chunk(finish="stop")])
    result = acc.result()
    assert result.status == "tool_calls"
    assert result.tool_calls == (ToolCall("call_a", "now", "{}"),)


def test_stream_without_finish_reason_is_truncation():
    acc = feed_all([chunk({"tool_calls": [call(0, "call_a", "f", '{"city":"Par')]})])
    with pytest.raises(ProviderError, match="no finish_reason"):
        acc.result()


@pytest.mark.parametrize("reason", ["length", "content_filter"])
def test_length_and_content_filter_are_incomplete(reason):
    acc = feed_all([chunk({"content": "partial"}), chunk(finish=reason)])
    result = acc.result()
    assert (result.status, result.error_code, result.text) == ("incomplete", reason, "partial")
    assert reason in result.error


def test_usage_from_trailing_chunk():
    acc = feed_all([
        chunk({"content": "hi"}), chunk(finish="stop"),
        chunk(choices=False, usage={"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}),
    ])
    assert acc.result().usage == {"input_tokens": 3, "output_tokens": 2, "total_tokens": 5}


def test_other_choices_are_ignored():
    acc = ChatStreamAccumulator()
    body = chunk({"content": "a"}, finish="stop")
    body["choices"].append({"index": 1, "delta": {"content": "b"}, "finish_reason": "stop"})
    acc.feed(body)
    assert acc.result().text == "a"
