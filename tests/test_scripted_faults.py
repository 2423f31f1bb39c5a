"""Injected faults, each observed through the real SDK the way a client of OpenAI would see it."""

from __future__ import annotations

import time

import httpx2
import openai
import pytest
from openai import AssistantEventHandler, OpenAI

from runner.scripted import Fault, ScriptedServer
from support.scripted_http import call, parse_sse, text_turn, tool_turn

USER = [{"role": "user", "content": "weather?"}]
TEXT = [text_turn("The weather in Paris is mild and dry today.")]
CALL_THEN_TEXT = [tool_turn(("get_temp", {"city": "Paris"})), text_turn("It is ${{ outputs.get_temp }}.")]


def client(server: ScriptedServer, **kw) -> OpenAI:
    return OpenAI(base_url=server.base_url, api_key="sk-test", **kw)


def chat_text(c: OpenAI, **kw) -> str:
    stream = c.chat.completions.create(model="m", messages=USER, stream=True, **kw)
    return "".join(ch.choices[0].delta.content or "" for ch in stream if ch.choices)


def test_429_with_retry_after_then_success_is_retried_by_the_sdk():
    fault = Fault(kind="http_error", status=429, headers={"retry-after-ms": "10"}, times=2)
    with ScriptedServer(TEXT, faults=[fault]) as server:
        assert chat_text(client(server)) == TEXT[0].text
        attempts = server.requests_for("/chat/completions")
    assert [r.headers.get("x-stainless-retry-count") for r in attempts] == ["0", "1", "2"]
    assert [r.turn_index for r in attempts] == [0, 0, 0]


def test_http_error_body_headers_and_no_retry():
    fault = Fault(kind="http_error", status=429, headers={"retry-after": "1", "x-should-retry": "false"},
                  body={"error": {"message": "You exceeded your current quota.", "type": "insufficient_quota",
                                  "param": None, "code": "insufficient_quota"}})
    with ScriptedServer(TEXT, faults=[fault]) as server:
        with pytest.raises(openai.RateLimitError) as info:
            chat_text(client(server))
        assert len(server.requests) == 1
    assert info.value.code == "insufficient_quota"
    assert info.value.response.headers["retry-after"] == "1"


def test_faults_match_api_and_turn_and_count_per_conversation():
    faults = [Fault(kind="http_error", status=503, api="chat", turn=1, times=1, headers={"retry-after-ms": "5"}),
              Fault(kind="http_error", status=400, api="responses")]
    with ScriptedServer(CALL_THEN_TEXT * 2, faults=faults) as server:
        c = client(server, max_retries=1)
        msgs = USER + [{"role": "assistant", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_temp", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "20C"}]
        assert chat_text(c) == ""  # turn 0: a tool call, no fault
        assert c.chat.completions.create(model="m", messages=msgs).choices[0].message.content == "It is 20C."
        other = msgs[:1] + [{"role": "user", "content": "another conversation"}] + msgs[1:]
        assert c.chat.completions.create(model="m", messages=other).choices[0].message.content == "It is 20C."
        with pytest.raises(openai.BadRequestError):
            c.responses.create(model="m", input="x")
        statuses = [r.turn_index for r in server.requests_for("/chat/completions")]
    assert statuses == [0, 1, 1, 1, 1]  # each conversation's turn 1 failed once, then succeeded


@pytest.mark.parametrize("partial", [0, 25])
def test_drop_after_n_events_raises_connection_error(partial):
    with ScriptedServer(TEXT, faults=[Fault(kind="drop_after", after=3, partial_bytes=partial, times=1)]) as server:
        c = client(server)
        got = []
        with pytest.raises(openai.APIConnectionError):
            for ch in c.chat.completions.create(model="m", messages=USER, stream=True):
                got.append(ch)
        assert len(got) == 3
        assert chat_text(c) == TEXT[0].text  # times=1: the re-issued turn streams whole


@pytest.mark.parametrize("partial", [0, 10])
def test_drop_before_a_json_answer_is_retried_by_the_sdk(partial):
    with ScriptedServer(TEXT, faults=[Fault(kind="drop_after", partial_bytes=partial, times=1)]) as server:
        done = client(server).chat.completions.create(model="m", messages=USER)
        assert done.choices[0].message.content == TEXT[0].text
        assert len(server.requests) == 2


def test_drop_after_on_responses_stream_leaves_no_terminal_event():
    with ScriptedServer(TEXT, faults=[Fault(kind="drop_after", api="responses", after=5)]) as server:
        seen = []
        with pytest.raises(openai.APIConnectionError):
            for event in client(server).responses.create(model="m", input="x", stream=True):
                seen.append(event.type)
    assert seen[-2:] == ["response.content_part.added", "response.output_text.delta"]
    assert len(seen) == 5 and "response.completed" not in seen


def test_stall_with_and_without_keepalives():
    silent = Fault(kind="stall", after=2, seconds=5.0)  # stop() cuts the stall short
    with ScriptedServer(TEXT, faults=[silent]) as server:
        with pytest.raises(openai.APITimeoutError):
            chat_text(client(server, timeout=httpx2.Timeout(0.2, connect=2), max_retries=0))
    pings = Fault(kind="stall", after=2, seconds=0.4, keepalive=0.04)
    with ScriptedServer(TEXT, faults=[pings]) as server:
        # the comments keep the read timeout from firing; the SDK skips them
        assert chat_text(client(server, timeout=httpx2.Timeout(0.2, connect=2))) == TEXT[0].text
        status, _, body = call(server.base_url, "POST", "/chat/completions", {"messages": USER, "stream": True})
    assert ": keepalive" in body and parse_sse(body)[-1][1] == "[DONE]"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_error_event_in_each_api():
    fault = Fault(kind="error_event", after=3, code="server_error", message="boom mid-stream")
    with ScriptedServer(TEXT * 3, faults=[fault]) as server:
        c = client(server)
        with pytest.raises(openai.APIError, match="boom mid-stream"):
            chat_text(c)
        events = list(c.responses.create(model="m", input="x", stream=True))
        assert events[-1].type == "error" and events[-1].message == "boom mid-stream"
        assert events[-1].sequence_number == 3
        assert c.responses.retrieve(events[0].response.id).status == "failed"
        asst = c.beta.assistants.create(model="m")
        thread = c.beta.threads.create(messages=USER)
        run_events = list(c.beta.threads.runs.create(thread_id=thread.id, assistant_id=asst.id, stream=True))
        assert run_events[-1].event == "error" and run_events[-1].data.message == "boom mid-stream"
        run = c.beta.threads.runs.list(thread_id=thread.id).data[0]
    assert run.status == "failed" and run.last_error.message == "boom mid-stream"


def test_bad_json_line_makes_the_sdk_fail():
    with ScriptedServer(TEXT, faults=[Fault(kind="bad_json", after=1)]) as server:
        with pytest.raises(ValueError):
            chat_text(client(server))


def test_chat_terminal_length_and_content_filter():
    faults = [Fault(kind="terminal", terminal="length", turn=0), Fault(kind="terminal", terminal="content_filter")]
    with ScriptedServer(TEXT * 2, faults=faults[:1]) as server:
        with client(server).chat.completions.stream(model="m", messages=USER) as s:
            with pytest.raises(openai.LengthFinishReasonError):
                s.get_final_completion()
    with ScriptedServer(TEXT, faults=faults[1:]) as server:
        done = client(server).chat.completions.create(model="m", messages=USER)
    assert done.choices[0].finish_reason == "content_filter"
    assert TEXT[0].text.startswith(done.choices[0].message.content) and done.choices[0].message.content != TEXT[0].text


@pytest.mark.parametrize("terminal", ["failed", "incomplete"])
def test_responses_terminal_events(terminal):
    with ScriptedServer(TEXT, faults=[Fault(kind="terminal", terminal=terminal, message="model fell over")]) as server:
        with client(server).responses.stream(model="m", input="x") as s:
            last = list(s)[-1]
            with pytest.raises(RuntimeError, match="response.completed"):
                s.get_final_response()
    assert last.type == f"response.{terminal}" and last.response.status == terminal
    if terminal == "failed":
        assert last.response.error.message == "model fell over"
    else:
        assert last.response.incomplete_details.reason == "max_output_tokens"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("terminal", ["failed", "expired", "cancelled", "incomplete"])
def test_assistants_terminal_runs(terminal):
    fault = Fault(kind="terminal", terminal=terminal, code="rate_limit_exceeded", message="slow down")
    with ScriptedServer(CALL_THEN_TEXT, faults=[fault]) as server:
        c = client(server)
        asst = c.beta.assistants.create(model="m")
        thread = c.beta.threads.create(messages=USER)
        h = AssistantEventHandler()
        with c.beta.threads.runs.stream(thread_id=thread.id, assistant_id=asst.id, event_handler=h) as s:
            s.until_done()
        assert h.current_run.status == terminal
        if terminal == "failed":
            assert h.current_run.last_error.code == "rate_limit_exceeded"
        assert c.beta.threads.runs.retrieve(h.current_run.id, thread_id=thread.id).status == terminal
        # the thread is free again
        assert c.beta.threads.messages.create(thread_id=thread.id, role="user", content="again").role == "user"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_assistants_late_submission_is_rejected_and_the_run_expires():
    with ScriptedServer(CALL_THEN_TEXT, run_ttl=0) as server:
        c = client(server)
        asst = c.beta.assistants.create(model="m")
        thread = c.beta.threads.create(messages=USER)
        run = list(c.beta.threads.runs.create(thread_id=thread.id, assistant_id=asst.id, stream=True))[-1].data
        assert run.status == "requires_action" and run.expires_at == run.created_at
        time.sleep(0.01)
        with pytest.raises(openai.BadRequestError, match='Runs in status "expired" do not accept tool outputs'):
            c.beta.threads.runs.submit_tool_outputs(run.id, thread_id=thread.id, tool_outputs=[
                {"tool_call_id": run.required_action.submit_tool_outputs.tool_calls[0].id, "output": "x"}])
        assert c.beta.threads.runs.retrieve(run.id, thread_id=thread.id).status == "expired"


def test_latency_is_applied():
    with ScriptedServer(TEXT, latency_per_turn=0.2, latency_per_event=0.01) as server:
        start = time.monotonic()
        assert chat_text(client(server)) == TEXT[0].text
    assert time.monotonic() - start >= 0.2 + 0.01 * 5


def test_fault_validation():
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault(kind="explode")
    with pytest.raises(ValueError, match="terminal="):
        Fault(kind="terminal", terminal="exploded")


def test_match_faults_hit_requests_without_a_turn():
    faults = [Fault(kind="http_error", status=500, match="/threads", times=1, headers={"retry-after-ms": "1"}),
              Fault(kind="drop_after", match="/responses/resp_", after=1)]
    with ScriptedServer(TEXT, faults=faults) as server:
        c = client(server)
        with pytest.warns(DeprecationWarning):
            assert c.beta.threads.create().object == "thread"
        assert len(server.requests_for("/threads", "POST")) == 2
        rid = list(c.responses.create(model="m", input="x", background=True, stream=True))[0].response.id
        got = []
        with pytest.raises(openai.APIConnectionError):
            for event in c.responses.retrieve(rid, stream=True, starting_after=2):
                got.append(event.sequence_number)
    assert got == [3]


def test_cancelling_a_background_response_ends_its_stream():
    with ScriptedServer(TEXT, latency_per_event=0.02) as server:
        c = client(server)
        stream = c.responses.create(model="m", input="x", background=True, stream=True)
        first = next(iter(stream))
        assert c.responses.cancel(first.response.id).status == "cancelled"
        rest = [e.type for e in stream]
        assert "response.completed" not in rest
        assert c.responses.retrieve(first.response.id).status == "cancelled"
        assert c.responses.cancel(first.response.id).status == "cancelled"  # idempotent
