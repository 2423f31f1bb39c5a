"""The Assistants provider through the real SDK against a loopback server.

No recorded Assistants streams exist (the API was shut down); these follow docs/protocols.md §1.4/§1.5
and every event and object is validated against the SDK's pydantic types.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from runner.errors import ProviderError
from runner.events import Notice, TextDelta
from runner.providers.api_errors import ASSISTANTS_GONE
from runner.providers.assistants import AssistantsProvider
from runner.providers.factory import create_provider
from support.assistants_wire import DELETED, RESULTS, T0, Leg, leg1, leg2, message, requires_action, run_obj, setup
from support.paths import REPO, TESTS
from support.providers import WEATHER_TOOL, FakeClock, collect, last_result, run, settings
from support.sse_replay import Canned, ReplayServer, error_response, json_response, sse

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def conversation(server: ReplayServer, steps, clock: FakeClock | None = None, **overrides):
    clock = clock or FakeClock(T0 + 10)
    notices: list[Notice] = []

    async def go():
        provider = create_provider(settings("assistants", server.base_url, **overrides),
                                   sleep=clock.sleep, now=clock.now, on_notice=notices.append)
        assert isinstance(provider, AssistantsProvider)
        try:
            out = []
            for method, arg in steps:
                if method == "cancel":
                    await provider.cancel()
                    out.append([])
                elif method == "advance":
                    clock.t += arg
                    out.append([])
                else:
                    out.append(await collect(getattr(provider, method)(arg)))
            return out
        finally:
            await provider.aclose()

    return run(go()), notices


def paths(server: ReplayServer) -> list[str]:
    return [f"{r.method} {r.path}" for r in server.requests]


def test_two_calls_single_submit_then_text_and_the_assistant_is_deleted():
    with ReplayServer([*setup(), Canned(body=leg1().body()), Canned(body=leg2("It is ", "21C.").body()), DELETED]) as s:
        (first, second), notices = conversation(
            s, [("send_message", "Paris?"), ("submit_tool_outputs", RESULTS)], instructions="Be brief.", tools=(WEATHER_TOOL,))
    assert paths(s) == ["POST /v1/assistants", "POST /v1/threads", "POST /v1/threads/thread_1/messages",
                        "POST /v1/threads/thread_1/runs", "POST /v1/threads/thread_1/runs/run_1/submit_tool_outputs",
                        "DELETE /v1/assistants/asst_1"]
    assert s.requests[0].body == {"model": "gpt-test", "name": "flowrun", "instructions": "Be brief.", "tools": [
        {"type": "function", "function": {"name": "get_weather", "description": WEATHER_TOOL["description"],
                                          "parameters": WEATHER_TOOL["parameters"]}}]}
    assert s.requests[2].body == {"role": "user", "content": "Paris?"}
    assert s.requests[3].body == {"assistant_id": "asst_1", "stream": True}
    assert s.requests[3].headers["openai-beta"] == "assistants=v2"
    assert s.requests[4].body == {"stream": True, "tool_outputs": [
        {"tool_call_id": "call_A", "output": "21C"}, {"tool_call_id": "call_B", "output": "10%"}]}
    r1 = last_result(first)
    assert r1.status == "tool_calls" and r1.meta["expires_at"] == T0 + 600 and r1.meta["run_id"] == "run_1"
    assert [(c.call_id, c.name, c.arguments) for c in r1.tool_calls] == [
        ("call_A", "get_temp", '{"location":"Paris"}'), ("call_B", "get_rain", '{"location":"Paris"}')]
    r2 = last_result(second)
    assert [e.text for e in second if isinstance(e, TextDelta)] == ["It is ", "21C."]
    assert (r2.status, r2.text, r2.usage) == ("completed", "It is 21C.", {"input_tokens": 30, "output_tokens": 6, "total_tokens": 36})
    assert notices == []


def test_a_given_assistant_is_reused_with_overrides_and_never_deleted():
    with ReplayServer([*setup(reuse=True), Canned(body=leg2("Hi").body())]) as s:
        conversation(s, [("send_message", "hi")], assistant_id="asst_given", instructions="Be brief.",
                     tools=(WEATHER_TOOL,), temperature=0.1, max_output_tokens=99)
    assert paths(s) == ["POST /v1/threads", "POST /v1/threads/thread_1/messages", "POST /v1/threads/thread_1/runs"]
    body = s.requests[2].body
    assert body["assistant_id"] == "asst_given" and body["instructions"] == "Be brief."
    assert body["tools"][0]["function"]["name"] == "get_weather"
    assert (body["temperature"], body["max_completion_tokens"]) == (0.1, 99)


def test_error_event_fails_the_turn_and_cancels_the_run():
    leg = Leg().add("thread.run.created", run_obj("queued")).add("thread.run.in_progress", run_obj("in_progress"))
    leg.add("error", {"code": "server_error", "message": "Something went wrong", "param": None, "type": "server_error"})
    with ReplayServer([*setup(), Canned(body=leg.body()), json_response(run_obj("cancelling")), DELETED]) as s:
        ([events], _) = conversation(s, [("send_message", "hi")])
    result = last_result(events)
    assert (result.status, result.error, result.error_code) == ("failed", "Something went wrong", "server_error")
    assert "POST /v1/threads/thread_1/runs/run_1/cancel" in paths(s)


@pytest.mark.parametrize("status, extra, error, code", [
    ("failed", {"last_error": {"code": "rate_limit_exceeded", "message": "Slow down"}}, "Slow down", "rate_limit_exceeded"),
    ("incomplete", {"incomplete_details": {"reason": "max_completion_tokens"}},
     "the run is incomplete (max_completion_tokens)", "max_completion_tokens"),
    ("expired", {}, None, "expired"),
    ("cancelled", {}, "the run was cancelled", None),
])
def test_final_run_statuses(status, extra, error, code):
    leg = Leg().add("thread.run.created", run_obj("queued")).add(f"thread.run.{status}", run_obj(status, **extra))
    with ReplayServer([*setup(), Canned(body=leg.body()), DELETED]) as s:
        ([events], _) = conversation(s, [("send_message", "hi")])
    result = last_result(events)
    assert (result.status, result.error_code) == (status, code)
    if error:
        assert result.error == error
    else:
        assert "expired" in result.error


def test_stream_without_terminal_event_is_recovered_by_polling():
    leg = Leg().add("thread.run.created", run_obj("queued")).add("thread.run.in_progress", run_obj("in_progress"))
    clock = FakeClock(T0 + 10)
    with ReplayServer([*setup(), Canned(body=leg.body()),
                       json_response(run_obj("in_progress"), headers={"openai-poll-after-ms": "250"}),
                       json_response(requires_action()), DELETED]) as s:
        ([events], _) = conversation(s, [("send_message", "hi")], clock=clock)
    assert isinstance(events[0], Notice) and "ended before run run_1 finished" in events[0].message
    assert [c.call_id for c in last_result(events).tool_calls] == ["call_A", "call_B"]
    assert clock.sleeps == [0.25]
    assert paths(s)[4:6] == ["GET /v1/threads/thread_1/runs/run_1"] * 2


def test_cut_mid_text_recovers_the_rest_of_the_message():
    body = leg2("It is ", "21C.").body()
    cut = body.index(b'{"value": "21C."}') - 40  # inside the second delta's event
    with ReplayServer([*setup(), Canned(body=leg1().body()), Canned(body=body, drop_after=cut),
                       json_response(run_obj("completed")),
                       json_response({"object": "list", "data": [message("It is 21C.")], "first_id": "msg_1",
                                      "last_id": "msg_1", "has_more": False}), DELETED]) as s:
        (_, second), _ = conversation(s, [("send_message", "hi"), ("submit_tool_outputs", RESULTS)])
    assert [e.text for e in second if isinstance(e, TextDelta)] == ["It is ", "21C."]
    assert any(isinstance(e, Notice) and "checking the run on the server" in e.message for e in second)
    assert last_result(second).text == "It is 21C."
    assert paths(s).count("POST /v1/threads/thread_1/runs/run_1/submit_tool_outputs") == 1
    assert paths(s)[5:7] == ["GET /v1/threads/thread_1/runs/run_1", "GET /v1/threads/thread_1/messages"]
    assert s.requests[6].query == {"run_id": ["run_1"], "order": ["asc"]}


def test_a_retried_submission_checks_the_run_first_and_never_submits_twice():
    with ReplayServer([*setup(), Canned(body=leg1().body()), Canned(hangup=True),
                       json_response(run_obj("in_progress")),          # the retry's check: it got through
                       json_response(run_obj("completed")),            # polling
                       json_response({"object": "list", "data": [message("Done.")], "has_more": False}), DELETED]) as s:
        (_, second), _ = conversation(s, [("send_message", "hi"), ("submit_tool_outputs", RESULTS)])
    assert last_result(second).text == "Done."
    assert paths(s).count("POST /v1/threads/thread_1/runs/run_1/submit_tool_outputs") == 1
    assert any(isinstance(e, Notice) and "retrying" in e.message for e in second)


def test_an_active_run_is_cancelled_with_a_notice_then_the_run_is_retried_once():
    locked = error_response(400, "Thread thread_1 already has an active run run_old.", type_="invalid_request_error")
    with ReplayServer([*setup(), locked, json_response(run_obj("cancelling", "run_old")),
                       json_response(run_obj("cancelled", "run_old")), Canned(body=leg2("Hi").body()), DELETED]) as s:
        ([events], _) = conversation(s, [("send_message", "hi")])
    assert any(isinstance(e, Notice) and "thread thread_1 has an active run run_old; cancelling it" in e.message for e in events)
    assert paths(s)[3:7] == ["POST /v1/threads/thread_1/runs", "POST /v1/threads/thread_1/runs/run_old/cancel",
                             "GET /v1/threads/thread_1/runs/run_old", "POST /v1/threads/thread_1/runs"]
    assert last_result(events).text == "Hi"


def test_the_assistants_api_being_gone_is_explained():
    with ReplayServer([error_response(404, "Not found")]) as s:
        with pytest.raises(ProviderError) as info:
            conversation(s, [("send_message", "hi")])
    assert info.value.message == ASSISTANTS_GONE and info.value.exit_code == 3


def test_a_failed_delete_is_reported_as_a_notice():
    with ReplayServer([*setup(), Canned(body=leg2("Hi").body()), error_response(500, "nope")]) as s:
        _, notices = conversation(s, [("send_message", "hi")], max_retries=0)
    assert len(notices) == 1 and "could not delete assistant asst_1" in notices[0].message


def test_cancel_is_idempotent():
    with ReplayServer([*setup(), Canned(body=leg1().body()), json_response(run_obj("cancelling")), DELETED]) as s:
        conversation(s, [("send_message", "hi"), ("cancel", None), ("cancel", None)])
    assert paths(s).count("POST /v1/threads/thread_1/runs/run_1/cancel") == 1


def test_an_expired_run_is_reported_instead_of_submitting_late():
    with ReplayServer([*setup(), Canned(body=leg1().body()), json_response(run_obj("expired")), DELETED]) as s:
        (first, _, second), _ = conversation(
            s, [("send_message", "hi"), ("advance", 700), ("submit_tool_outputs", RESULTS)])
    assert last_result(first).status == "tool_calls"
    result = last_result(second)
    assert result.status == "expired" and "~10 min" in result.error
    assert "POST /v1/threads/thread_1/runs/run_1/submit_tool_outputs" not in paths(s)
    assert paths(s)[4] == "GET /v1/threads/thread_1/runs/run_1"


def test_deprecation_warnings_do_not_reach_users():
    script = textwrap.dedent(f"""
        import asyncio, sys
        sys.path.insert(0, {str(TESTS)!r})
        from support.assistants_wire import setup, leg2, DELETED
        from support.sse_replay import Canned, ReplayServer
        from support.providers import collect, settings
        from runner.providers.factory import create_provider

        async def go(url):
            p = create_provider(settings("assistants", url))
            events = await collect(p.send_message("hi"))
            await p.aclose()
            print(events[-1].status)

        with ReplayServer([*setup(), Canned(body=leg2("Hi").body()), DELETED]) as s:
            asyncio.run(go(s.base_url))
    """)
    # -W default prints every warning once per location: nothing may be printed at all
    proc = subprocess.run([sys.executable, "-W", "default", "-c", script], capture_output=True, text=True, timeout=60,
                          cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "completed" and "Warning" not in proc.stderr, proc.stderr


def test_an_empty_submission_stream_is_recovered_from_the_known_run():
    with ReplayServer([*setup(), Canned(body=leg1().body()), Canned(body=sse(("done", "[DONE]"))),
                       json_response(run_obj("completed")),
                       json_response({"object": "list", "data": [message("Done.")], "has_more": False}), DELETED]) as s:
        (_, second), _ = conversation(s, [("send_message", "hi"), ("submit_tool_outputs", RESULTS)])
    assert last_result(second).text == "Done."
    assert paths(s)[5] == "GET /v1/threads/thread_1/runs/run_1"
