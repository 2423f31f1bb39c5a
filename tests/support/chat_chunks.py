"""Chat Completions stream chunks for the tests: builders for one chunk and one tool-call
fragment, and the calls the recorded OpenAI streams in fixtures/recorded/chat carry."""

from __future__ import annotations


def chunk(delta: dict | None = None, finish: str | None = None, usage: dict | None = None, choices: bool = True) -> dict:
    """One chunk, checked against the SDK's type so the fakes stay honest."""
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}] if choices else [],
    }
    if usage is not None:
        body["usage"] = usage
    return body


def call(index: int | None = None, id: str | None = None, name: str | None = None, args: str | None = None) -> dict:
    fragment: dict = {}
    if index is not None:
        fragment["index"] = index
    if id is not None:
        fragment["id"] = id
        fragment["type"] = "function"
    function = {}
    if name is not None:
        function["name"] = name
    if args is not None:
        function["arguments"] = args
    if function:
        fragment["function"] = function
    return fragment


RECORDED_CALLS = {
    "one_tool_call_nonstrict.sse": [("call_4XzlGBLtUe9dy3GVNV4jhq7h", "get_weather", '{"city":"New York City"}')],
    "one_tool_call_strict.sse": [("call_CTf1nWJLqSeRgDqaCG27xZ74", "get_weather", '{"city":"San Francisco","state":"CA"}')],
    "one_tool_call_edinburgh.sse": [
        ("call_c91SqDXlYFuETYv8mUHzz6pp", "GetWeatherArgs", '{"city":"Edinburgh","country":"UK","units":"c"}')
    ],
    "two_parallel_tool_calls.sse": [
        ("call_JMW1whyEaYG438VE1OIflxA2", "GetWeatherArgs", '{"city": "Edinburgh", "country": "GB", "units": "c"}'),
        ("call_DNYTawLBoN8fj3KN6qU9N1Ou", "get_stock_price", '{"ticker": "AAPL", "exchange": "NASDAQ"}'),
    ],
}
