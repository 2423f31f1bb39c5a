"""All three providers against the project's ScriptedServer (runner/scripted), with its faults.

The hand-written streams in the other provider tests pin exact wire shapes; these check that the
providers and the scripted model agree end to end, through the real SDK.
"""

from __future__ import annotations

import pytest

from support.providers import APIS, SCRIPT, FakeClock, last_result, loop
from runner.errors import ProviderError
from runner.events import Notice, TextDelta
from runner.scripted import Fault, ScriptedServer

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.mark.parametrize("api", APIS)
def test_tool_round_trip(api):
    with ScriptedServer(SCRIPT) as s:
        events = loop(s, api)
    results = [e for e in events if not isinstance(e, (TextDelta, Notice))]
    assert [r.status for r in results] == ["tool_calls", "completed"]
    assert [c.name for c in results[0].tool_calls] == ["get_temp", "get_rain"]
    assert results[1].text == "It is 21C with 10% rain."
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == results[1].text
    assert s.errors == []


@pytest.mark.parametrize("api", APIS)
def test_rate_limited_once_then_success(api):
    fault = Fault(kind="http_error", api=api, turn=0, times=1, status=429, headers={"retry-after": "2"})
    clock = FakeClock()
    with ScriptedServer(SCRIPT, faults=[fault]) as s:
        events = loop(s, api, clock=clock)
    notices = [e.message for e in events if isinstance(e, Notice)]
    assert notices == ["rate limited (HTTP 429); retrying in 2.0s (1/2)"]
    assert clock.sleeps == [2.0]
    assert last_result(events[-1:]).status == "completed"


@pytest.mark.parametrize("api", APIS)
def test_error_event_fails_the_turn(api):
    fault = Fault(kind="error_event", api=api, turn=0, after=2, code="server_error", message="model crashed")
    with ScriptedServer(SCRIPT, faults=[fault]) as s:
        events = loop(s, api)
    result = last_result(events)
    assert (result.status, result.error, result.tool_calls) == ("failed", "model crashed", ())


@pytest.mark.parametrize("api, terminal, status", [
    ("chat", "length", "incomplete"), ("chat", "content_filter", "incomplete"),
    ("responses", "failed", "failed"), ("responses", "incomplete", "incomplete"),
    ("assistants", "failed", "failed"), ("assistants", "expired", "expired"),
    ("assistants", "cancelled", "cancelled"), ("assistants", "incomplete", "incomplete"),
])
def test_terminal_states(api, terminal, status):
    with ScriptedServer(SCRIPT, faults=[Fault(kind="terminal", api=api, turn=1, terminal=terminal)]) as s:
        events = loop(s, api)
    result = last_result(events[-1:])
    assert result.status == status and result.error


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_a_dropped_stream_is_a_provider_error(api):
    with ScriptedServer(SCRIPT, faults=[Fault(kind="drop_after", api=api, turn=1, after=3, partial_bytes=10)]) as s:
        with pytest.raises(ProviderError, match="cut"):
            loop(s, api)


def test_a_dropped_assistants_stream_is_recovered_from_the_run():
    fault = Fault(kind="drop_after", api="assistants", turn=1, after=3, partial_bytes=10)
    with ScriptedServer(SCRIPT, faults=[fault]) as s:
        events = loop(s, "assistants")
    assert any(isinstance(e, Notice) and "checking the run" in e.message for e in events)
    assert last_result(events[-1:]).text == "It is 21C with 10% rain."
    assert len(s.requests_for("submit_tool_outputs", "POST")) == 1


def test_responses_stateless_mode_round_trip():
    with ScriptedServer(SCRIPT) as s:
        events = loop(s, "responses", store=False)
    assert last_result(events[-1:]).text == "It is 21C with 10% rain."
    second = s.requests_for("/v1/responses", "POST")[1].body
    assert "previous_response_id" not in second and second["store"] is False
    assert [i.get("type", "message") for i in second["input"]] == [
        "message", "function_call", "function_call", "function_call_output", "function_call_output"]
