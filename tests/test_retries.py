"""Visible retries of a request's start, and the error messages people see (docs/reliability.md §E 56-57)."""

from __future__ import annotations

import email.utils
import ssl

import httpx2
import openai
import pytest

from support.providers import API_KEY, FakeClock, closed_port, collect, last_result, run, settings
from runner.errors import ProviderError
from runner.events import Notice
from runner.providers.api_errors import ASSISTANTS_GONE, map_api_error
from runner.providers.retry_policy import parse_retry_after, retry_delay, with_retries
from runner.providers.factory import create_provider
from runner.secrets.masker import Masker
from support.sse_replay import Canned, ReplayServer, error_response, sse

URL = "http://127.0.0.1:9/v1/chat/completions"


def status_error(status: int, headers: dict | None = None, body: dict | None = None, url: str = URL) -> openai.APIStatusError:
    request = httpx2.Request("POST", url)
    response = httpx2.Response(status, headers=headers or {}, request=request)
    body = body or {"message": "nope", "type": "error", "code": None}
    client = openai.AsyncOpenAI(api_key="x", base_url="http://127.0.0.1:9/v1")
    return client._make_status_error(f"Error code: {status} - {body.get('message')}", body={"error": body}, response=response)


def no_rand() -> float:
    return 0.0


# --- parse_retry_after / retry_delay ----------------------------------------------------------

def test_parse_retry_after_forms():
    assert parse_retry_after({"retry-after-ms": "1500"}) == 1.5
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    when = email.utils.formatdate(1_800_000_010, usegmt=True)
    assert parse_retry_after({"retry-after": when}, now=lambda: 1_800_000_000.0) == pytest.approx(10.0)
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


def test_429_with_retry_after_waits_the_advised_delay():
    assert retry_delay(status_error(429, {"retry-after": "3"}), 0, 2) == (3.0, "rate limited (HTTP 429)")


def test_retry_after_above_the_cap_fails_fast():
    assert retry_delay(status_error(429, {"retry-after": "600"}), 0, 2) is None


def test_insufficient_quota_is_never_retried():
    exc = status_error(429, body={"message": "You exceeded your quota", "type": "insufficient_quota", "code": "insufficient_quota"})
    assert retry_delay(exc, 0, 2) is None


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503])
def test_retryable_statuses_back_off_exponentially(status):
    delays = [retry_delay(status_error(status), n, 5, rand=no_rand)[0] for n in range(3)]
    assert delays == [0.5, 1.0, 2.0]
    jittered = retry_delay(status_error(status), 0, 5, rand=lambda: 1.0)[0]
    assert jittered == pytest.approx(0.375)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_not_retried(status):
    assert retry_delay(status_error(status), 0, 2) is None


def test_x_should_retry_header_decides():
    assert retry_delay(status_error(500, {"x-should-retry": "false"}), 0, 2) is None
    assert retry_delay(status_error(400, {"x-should-retry": "true"}), 0, 2, rand=no_rand) == (0.5, "error (HTTP 400)")


def test_connection_errors_are_retried_and_attempts_are_capped():
    exc = openai.APIConnectionError(request=httpx2.Request("POST", URL))
    assert retry_delay(exc, 0, 2, rand=no_rand) == (0.5, "connection failed")
    assert retry_delay(exc, 2, 2) is None
    assert retry_delay(ValueError("bug"), 0, 2) is None


# --- with_retries -----------------------------------------------------------------------------

def test_with_retries_reports_each_retry_and_returns_the_value():
    clock, messages, calls = FakeClock(), [], []

    async def start():
        calls.append(1)
        if len(calls) < 3:
            raise status_error(429, {"retry-after": "3"})
        return "ok"

    value = run(with_retries(start, max_retries=2, on_retry=messages.append, sleep=clock.sleep))
    assert value == "ok"
    assert messages == ["rate limited (HTTP 429); retrying in 3.0s (1/2)", "rate limited (HTTP 429); retrying in 3.0s (2/2)"]
    assert clock.sleeps == [3.0, 3.0]


def test_with_retries_raises_the_last_error_when_out_of_retries():
    clock, messages = FakeClock(), []

    async def start():
        raise status_error(503)

    with pytest.raises(openai.InternalServerError):
        run(with_retries(start, max_retries=2, on_retry=messages.append, sleep=clock.sleep, rand=no_rand))
    assert clock.sleeps == [0.5, 1.0] and len(messages) == 2


# --- through the real SDK ----------------------------------------------------------------------

TEXT_STREAM = sse(
    (None, {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}]}),
    done=True,
)


def chat_turn(server: ReplayServer, clock: FakeClock, **overrides):
    async def go():
        provider = create_provider(settings("chat", server.base_url, **overrides), sleep=clock.sleep)
        try:
            return await collect(provider.send_message("hello"))
        finally:
            await provider.aclose()

    return run(go())


def test_429_then_success_streams_a_notice_then_the_answer():
    clock = FakeClock()
    with ReplayServer([error_response(429, "slow down", headers={"retry-after-ms": "1500"}), Canned(body=TEXT_STREAM)]) as s:
        events = chat_turn(s, clock)
    assert events[0] == Notice("warning", "rate limited (HTTP 429); retrying in 1.5s (1/2)", ts=events[0].ts)
    assert last_result(events).text == "hi"
    assert clock.sleeps == [1.5] and len(s.requests) == 2


def test_server_errors_exhaust_retries_then_fail_with_exit_3():
    clock = FakeClock()
    with ReplayServer([error_response(500, "boom")] * 3) as s:
        with pytest.raises(ProviderError) as info:
            chat_turn(s, clock)
    assert len(s.requests) == 3 and len(clock.sleeps) == 2
    assert info.value.exit_code == 3 and "server error (HTTP 500): boom" in info.value.message


def test_quota_exhausted_is_one_request():
    with ReplayServer([error_response(429, "quota", code="insufficient_quota", type_="insufficient_quota")]) as s:
        with pytest.raises(ProviderError, match="quota exhausted"):
            chat_turn(s, FakeClock())
    assert len(s.requests) == 1


def test_long_retry_after_fails_fast():
    with ReplayServer([error_response(429, "later", headers={"retry-after": "600"})]) as s:
        with pytest.raises(ProviderError, match="rate limited"):
            chat_turn(s, FakeClock())
    assert len(s.requests) == 1


def test_a_hangup_before_any_response_is_retried():
    clock = FakeClock()
    with ReplayServer([Canned(hangup=True), Canned(body=TEXT_STREAM)]) as s:
        events = chat_turn(s, clock)
    assert "connection failed; retrying" in events[0].message
    assert last_result(events).status == "completed"


def test_max_retries_zero_means_one_attempt():
    with ReplayServer([error_response(503, "busy")]) as s:
        with pytest.raises(ProviderError):
            chat_turn(s, FakeClock(), max_retries=0)
    assert len(s.requests) == 1


# --- map_api_error ----------------------------------------------------------------------------

def test_401_names_the_key_tail_and_never_echoes_the_key():
    exc = status_error(401, body={"message": f"Incorrect API key provided: {API_KEY[:8]}***{API_KEY[-4:]}", "code": "invalid_api_key"})
    err = map_api_error(exc, Masker([API_KEY]), api_key=API_KEY)
    assert err.message == f"the server rejected the API key (check OPENAI_API_KEY, key ends …{API_KEY[-4:]})"
    assert API_KEY[:8] not in str(err)


def test_messages_are_masked():
    exc = status_error(400, body={"message": f"bad header value {API_KEY}"})
    err = map_api_error(exc, Masker([API_KEY]))
    assert API_KEY not in str(err) and "***" in err.message


def test_404_on_assistants_paths_says_the_api_is_gone():
    # what OpenAI answers for a route it no longer serves (a server's own "not found" is shown as is)
    exc = status_error(404, url="http://127.0.0.1:9/v1/assistants",
                       body={"message": "Invalid URL (POST /v1/assistants)", "type": "invalid_request_error", "code": None})
    assert map_api_error(exc, Masker()).message == ASSISTANTS_GONE


def test_404_on_responses_suggests_chat():
    err = map_api_error(status_error(404, url="http://127.0.0.1:9/v1/responses"), Masker())
    assert "not found on this server" in err.message and "--api chat" in err.hint


def test_connection_refused_through_the_sdk():
    port = closed_port()

    async def go():
        provider = create_provider(settings("chat", f"http://127.0.0.1:{port}/v1", max_retries=0))
        try:
            await collect(provider.send_message("hi"))
        finally:
            await provider.aclose()

    with pytest.raises(ProviderError) as info:
        run(go())
    assert info.value.message == f"cannot reach http://127.0.0.1:{port}: is the server running?"


def test_tls_failure_and_timeouts_and_mid_stream_cuts():
    request = httpx2.Request("POST", "https://example.test/v1/chat/completions")
    tls = openai.APIConnectionError(request=request)
    tls.__cause__ = httpx2.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    tls.__cause__.__cause__ = ssl.SSLError("certificate verify failed")
    assert map_api_error(tls, Masker()).message.startswith("TLS failure talking to https://example.test")
    timeout = openai.APITimeoutError(request=request)
    assert "within the timeout (30s)" in map_api_error(timeout, Masker(), timeout=30).message
    cut = openai.APIConnectionError(request=request)
    assert map_api_error(cut, Masker(), mid_stream=True).message.startswith(
        "the stream from the server was cut before the turn finished")
