"""What real self-hosted servers sent (llama.cpp's llama-server, LLAMPHouse), replayed by the
scripted server's quirks and faults, on the wire, through the real SDK (issue 13)."""

from __future__ import annotations

import warnings

import pytest

from support.providers import FakeClock, collect, last_result, run, settings
from runner.calls import ToolResult
from runner.errors import ProviderError
from runner.events import Notice, TextDelta
from runner.providers.api_errors import ASSISTANTS_GONE
from runner.providers.assistants_stream import NO_CALLS, result_from_run
from runner.providers.factory import create_provider
from runner.scripted import Fault, ScriptedServer
from runner.workflow.model import ScriptedCall, ScriptedTurn

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

TEMP_TOOL = {"name": "get_temp", "description": "Temperature", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
SCRIPT = [ScriptedTurn(tool_calls=(ScriptedCall("get_temp", {"city": "Paris"}),)),
          ScriptedTurn(text="It is ${{ outputs.get_temp }} in Paris.")]
ANSWER = "It is 57 F in Paris."


def conversation(server: ScriptedServer, api: str, messages=("Weather in Paris?",), clock: FakeClock | None = None,
                 **overrides):
    """Each message to its end, answering every call with "57 F"; all events in order."""
    clock = clock or FakeClock()

    async def go():
        provider = create_provider(settings(api, server.base_url, tools=(TEMP_TOOL,), **overrides),
                                   sleep=clock.sleep, now=clock.now)
        events = []
        try:
            for text in messages:
                turn = await collect(provider.send_message(text))
                events += turn
                while last_result(turn).status == "tool_calls":
                    results = [ToolResult(c.call_id, c.name, "57 F") for c in last_result(turn).tool_calls]
                    turn = await collect(provider.submit_tool_outputs(results))
                    events += turn
            return events
        finally:
            await provider.aclose()

    return run(go())


def text_of(events) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def warnings_in(events) -> list[str]:
    return [e.message for e in events if isinstance(e, Notice)]


def results(events):
    return [e for e in events if not isinstance(e, (TextDelta, Notice))]


# --- 1. stateless Responses turns: every replayed item has its type -------------------------

def test_stateless_responses_second_turn_is_accepted_by_a_server_that_dispatches_on_type():
    script = [ScriptedTurn(text="Hello."), ScriptedTurn(text="Again.")]
    with ScriptedServer(script, quirks=["typed_input_items"]) as s:
        events = conversation(s, "responses", messages=("hi", "again"), store=False)
        second = s.requests_for("/responses")[1].body["input"]
    assert [r.status for r in results(events)] == ["completed", "completed"]
    assert {"type": "message", "role": "assistant", "content": "Hello."} in second


def test_the_quirk_refuses_an_untyped_assistant_item_as_llama_cpp_does():
    import openai
    with ScriptedServer([ScriptedTurn(text="x")], quirks=["typed_input_items"]) as s:
        client = openai.OpenAI(base_url=s.base_url, api_key="x", max_retries=0)
        with pytest.raises(openai.BadRequestError, match="Cannot determine type of 'item'"):
            client.responses.create(model="m", input=[{"role": "user", "content": "hi"},
                                                      {"role": "assistant", "content": "Hello."}])


# --- 2. tool_choice required holds for the first request of a user turn only ---------------

@pytest.mark.parametrize("api,path", [("chat", "/chat/completions"), ("responses", "/responses")])
def test_required_tool_choice_falls_back_to_auto_after_the_first_tool_round(api, path):
    with ScriptedServer(SCRIPT * 2) as s:
        events = conversation(s, api, messages=("Paris?", "And now?"), tool_choice="required")
        sent = [r.body["tool_choice"] for r in s.requests_for(path)]
    assert [r.status for r in results(events)] == ["tool_calls", "completed", "tool_calls", "completed"]
    assert sent == ["required", "auto", "required", "auto"]  # each user message starts forced again


@pytest.mark.parametrize("api,path", [("chat", "/chat/completions"), ("responses", "/responses")])
def test_keep_tool_choice_keeps_forcing(api, path):
    with ScriptedServer(SCRIPT) as s:
        conversation(s, api, tool_choice="required", keep_tool_choice=True)
        sent = [r.body["tool_choice"] for r in s.requests_for(path)]
    assert sent == ["required", "required"]


# --- 4. message text as a plain string ----------------------------------------------------

def test_assistants_text_sent_as_a_plain_string_is_read_from_the_stream():
    with ScriptedServer(SCRIPT, quirks=["text_as_string"]) as s:
        events = conversation(s, "assistants")
        delta = next(e for e in s.requests_for("/submit_tool_outputs"))
    assert delta and text_of(events) == ANSWER
    assert results(events)[-1].text == ANSWER


def test_assistants_text_sent_as_a_plain_string_is_read_when_recovered_from_messages_list():
    drop = Fault(kind="drop_after", api="assistants", turn=1, after=3, times=1)  # before any text
    with ScriptedServer(SCRIPT, quirks=["text_as_string"], faults=[drop]) as s:
        events = conversation(s, "assistants")
        listed = s.requests_for("/messages", method="GET")
    assert listed, "the text must come from messages.list"
    assert text_of(events) == ANSWER and results(events)[-1].status == "completed"


# --- 5. tool calls announced only in run steps ------------------------------------------

def test_assistants_calls_announced_only_in_run_steps_are_answered_with_a_warning():
    with ScriptedServer(SCRIPT, quirks=["calls_in_steps_only"]) as s:
        events = conversation(s, "assistants")
        submitted = s.requests_for("/submit_tool_outputs")
    assert [r.status for r in results(events)] == ["tool_calls", "completed"]
    assert results(events)[0].tool_calls[0].name == "get_temp"
    assert submitted[0].body["tool_outputs"][0]["output"] == "57 F"
    assert any("only in run steps" in w for w in warnings_in(events))
    assert text_of(events) == ANSWER


def test_calls_in_a_run_step_are_acted_on_while_the_server_holds_the_stream_open():
    # LLAMPHouse keeps the run stream open while its agent waits for the outputs: reading on
    # would only end at the idle limit (or never), so the step itself ends the leg
    hold = Fault(kind="stall", api="assistants", turn=0, after=4, seconds=5, times=1)
    with ScriptedServer(SCRIPT, quirks=["calls_in_steps_only"], faults=[hold]) as s:
        events = conversation(s, "assistants", timeout=2.0)
    assert [r.status for r in results(events)] == ["tool_calls", "completed"]
    assert not any("stream ended" in w or "no event" in w for w in warnings_in(events)), warnings_in(events)


def test_requires_action_without_any_call_is_a_failure_naming_the_deviation_never_success():
    result = result_from_run({"id": "run_1", "status": "requires_action", "required_action": None})
    assert result.status == "failed" and result.error == NO_CALLS


# --- 6. submit_tool_outputs answered with JSON -----------------------------------------------

def test_assistants_json_answer_to_a_streamed_submission_is_continued_without_a_warning():
    with ScriptedServer(SCRIPT, quirks=["submit_answers_json"]) as s:
        events = conversation(s, "assistants")
        polls = s.requests_for("/runs/", method="GET")
    assert [r.status for r in results(events)] == ["tool_calls", "completed"]
    assert text_of(events) == ANSWER
    assert not any("stream ended" in w for w in warnings_in(events)), warnings_in(events)
    assert polls, "the run the JSON answer named is followed on the server"


# --- 7. recovery polling is bounded ----------------------------------------------------------

def test_a_run_left_in_progress_without_expiry_ends_at_model_timeout_naming_its_state():
    clock = FakeClock()
    with ScriptedServer(SCRIPT, quirks=["stuck_after_submit", "no_expiry"]) as s:
        with pytest.raises(ProviderError) as info:
            conversation(s, "assistants", clock=clock, timeout=1.0, max_retries=1)
        polls = len(s.requests_for("/runs/", method="GET"))
    assert info.value.exit_code == 3
    assert "the server left it in_progress" in info.value.message
    assert "model.timeout is 1s" in info.value.message
    assert 2 <= polls < 200


def test_a_run_left_in_progress_ends_at_its_expiry():
    clock = FakeClock()
    with ScriptedServer(SCRIPT, quirks=["stuck_after_submit"], run_ttl=4) as s:
        with pytest.raises(ProviderError) as info:
            conversation(s, "assistants", clock=clock, timeout=600.0, max_retries=1)
    assert "the server left it in_progress" in info.value.message
    assert "expires_at passed" in info.value.message
    assert clock.t - 1_800_000_000.0 < 10  # four seconds of the run's life, not model.timeout's ten minutes


# --- 8. objects that differ from the SDK's types do not warn --------------------------------

def test_iso_timestamps_neither_warn_nor_break_the_run():
    with ScriptedServer(SCRIPT, quirks=["iso_timestamps", "calls_in_steps_only"]) as s:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            events = conversation(s, "assistants")
        run_bodies = [r for r in s.requests_for("/runs/", method="GET")]
    assert run_bodies, "the recovery path parses Run objects"
    assert text_of(events) == ANSWER
    user_warnings = [w for w in caught if issubclass(w.category, UserWarning)
                     and not issubclass(w.category, DeprecationWarning)]
    assert user_warnings == [], [str(w.message) for w in user_warnings]


# --- 9. 404 and 405 with the server's own words -------------------------------------------------

def test_a_404_with_the_servers_message_shows_it():
    fault = Fault(kind="http_error", status=404, match="/threads", body={"detail": "Assistant not found."})
    with ScriptedServer(SCRIPT, faults=[fault]) as s:
        s.add_assistant("asst_kept")
        with pytest.raises(ProviderError) as info:
            conversation(s, "assistants", assistant_id="asst_kept")
    assert "Assistant not found." in info.value.message
    assert info.value.message != ASSISTANTS_GONE and "shut it down" not in info.value.message


def test_a_bare_404_on_creating_an_assistant_still_says_the_api_is_gone():
    fault = Fault(kind="http_error", status=404, match="/assistants", body=b"")
    with ScriptedServer(SCRIPT, faults=[fault]) as s:
        with pytest.raises(ProviderError) as info:
            conversation(s, "assistants", max_retries=0)
    assert info.value.message.startswith(ASSISTANTS_GONE)


def test_a_405_on_creating_an_assistant_points_at_assistant_id():
    fault = Fault(kind="http_error", status=405, match="/assistants", body={"detail": "Method Not Allowed"})
    with ScriptedServer(SCRIPT, faults=[fault]) as s:
        with pytest.raises(ProviderError) as info:
            conversation(s, "assistants", max_retries=0)
    assert "cannot create assistants" in info.value.message
    assert "model.assistant_id" in (info.value.hint or "")


# --- 3. a completed run with no text is never a silent success --------------------------------

@pytest.mark.parametrize("api", ["responses", "chat", "assistants"])
@pytest.mark.parametrize("policy,code", [("on_empty_answer=fail", 1), ("on_empty_answer=warn", 0)])
def test_a_run_that_completed_with_no_text_and_no_tool_call_says_so_on_stderr_and_in_the_log(api, policy, code, tmp_path):
    from support.cli import flowrun
    env = {"OPENAI_API_KEY": "sk-test-key-for-loopback-0000", "FLOWRUN_LOG_DB": str(tmp_path / "l.sqlite3")}
    with ScriptedServer([ScriptedTurn(text="")]) as s:
        r = flowrun("workflows/weather.yaml", "--api", api, "--base-url", s.base_url, "-M", "hi", "--policy", policy,
                    env=env)
    assert r.out == "" and r.code == code, r.err
    assert "no text and no tool call" in r.err, r.err
    listing = flowrun("logs", env=env)
    run_id = next(word for word in listing.out.split() if word.startswith("run_"))
    record = flowrun("logs", "show", run_id, "--json", env=env)
    assert "no text and no tool call" in record.out, record.out
