"""The small parts behind the reliability fixes, tested directly: which connection failures are
retried, the idle timeout on stream events, and how a run's deadline bounds a tool."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time

import httpx2
import openai
import pytest

from runner.providers.api_errors import StreamIdle, is_permanent_connection_error, map_api_error
from runner.providers.retry_policy import retry_delay
from runner.providers.stream_reader import open_stream
from runner.secrets.masker import Masker
from runner.tools.dispatcher import DEADLINE_MARGIN, MIN_TOOL_SECONDS, time_limit

# The SDK warns on every Assistants call; flowrun hides that from users, but pytest resets the
# warning filters for each test, so say it again here.
pytestmark = [
    pytest.mark.filterwarnings("ignore:The Assistants API is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning"),
]


REQUEST = httpx2.Request("POST", "https://api.example.test/v1/chat/completions")


def connection_error(cause: BaseException) -> openai.APIConnectionError:
    exc = openai.APIConnectionError(request=REQUEST)
    exc.__cause__ = httpx2.ConnectError(str(cause))
    exc.__cause__.__cause__ = cause
    return exc


@pytest.mark.parametrize("cause,permanent", [
    (ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"), True),
    (ssl.SSLCertVerificationError(1, "certificate verify failed: self-signed certificate"), True),
    (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), True),
    (socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution"), False),
    (ConnectionRefusedError(111, "Connection refused"), False),
    (ssl.SSLEOFError(8, "EOF occurred in violation of protocol"), False),
])
def test_only_failures_that_waiting_cannot_fix_skip_the_retries(cause, permanent):
    exc = connection_error(cause)
    assert is_permanent_connection_error(exc) is permanent
    assert (retry_delay(exc, 0, 2, rand=lambda: 0.0) is None) is permanent


class SlowStream:
    """An SDK-like stream: ``events`` arrive after ``delays`` seconds each."""

    def __init__(self, events, delays):
        self.events, self.delays, self.closed = list(events), list(delays), False

    async def __anext__(self):
        if not self.events:
            raise StopAsyncIteration
        await asyncio.sleep(self.delays.pop(0))
        return self.events.pop(0)

    async def close(self):
        self.closed = True


def test_a_stream_with_no_event_within_the_idle_time_is_given_up():
    async def go():
        stream = SlowStream(["a", "b", "c"], [0.0, 0.01, 5.0])
        opened = await open_stream(lambda: _ready(stream), idle=0.2)
        got = [await opened.__anext__(), await opened.__anext__()]
        with pytest.raises(StreamIdle) as info:
            await opened.__anext__()
        return got, info.value

    got, idle = asyncio.run(asyncio.wait_for(go(), 10))
    assert got == ["a", "b"] and idle.idle == 0.2
    assert isinstance(idle, openai.APITimeoutError)  # retried before the first event, recovered after
    message = map_api_error(idle, Masker(), mid_stream=True).message
    assert message == ("the stream from the server was cut before the turn finished: the server sent nothing "
                       "within the read timeout (0.2s; keepalive comments do not count)")


def test_no_first_event_within_the_idle_time_closes_the_stream_and_raises():
    stream = SlowStream(["a"], [5.0])

    async def go():
        await open_stream(lambda: _ready(stream), idle=0.1)

    with pytest.raises(StreamIdle):
        asyncio.run(asyncio.wait_for(go(), 10))
    assert stream.closed


async def _ready(value):
    return value


def test_a_deadline_cuts_a_tools_timeout_and_leaves_a_margin():
    now = time.time()
    assert time_limit(60.0, None) == (60.0, False)
    assert time_limit(60.0, now + 600) == (60.0, False)
    limit, cut = time_limit(60.0, now + 30)
    assert cut and 30 - DEADLINE_MARGIN - 1 < limit <= 30 - DEADLINE_MARGIN
    assert time_limit(60.0, now - 5) == (MIN_TOOL_SECONDS, True)  # never less than a moment
    assert time_limit(0, now + 30)[1]  # "no timeout" still ends before the deadline


def test_the_assistants_deadline_is_on_our_clock_even_when_the_servers_clock_differs():
    from runner.providers.base import ModelSettings
    from runner.providers.factory import create_provider

    settings = ModelSettings(api="assistants", model="m", base_url="http://127.0.0.1:9/v1", api_key="k")
    provider = create_provider(settings, now=lambda: 1_000.0)
    server_now = 5_000  # the server's clock is 4,000 s ahead of ours
    provider._track({"id": "run_1", "status": "requires_action", "created_at": server_now,
                     "expires_at": server_now + 600})
    assert provider.expires_at == server_now + 600
    assert provider.deadline == 1_600.0  # ten minutes from when we saw the run
    asyncio.run(provider.aclose())


@pytest.mark.parametrize("api,background", [(None, True), ("chat", False), ("assistants", False)])
def test_background_reaches_the_model_settings_only_for_responses(api, background, tmp_path):
    from pathlib import Path

    from runner.run.settings import Overrides, model_settings
    from runner.workflow.validate import load_workflow

    weather = Path(__file__).resolve().parent.parent / "workflows" / "weather.yaml"
    wf = tmp_path / "bg.yaml"
    wf.write_text(weather.read_text().replace("  temperature: 0.2\n", "  temperature: 0.2\n  background: true\n"))
    settings = model_settings(load_workflow(wf), Overrides(api=api), {}, {"OPENAI_API_KEY": "sk-x"})
    assert settings.api == (api or "responses")
    assert settings.background is background
    plain = model_settings(load_workflow(weather), Overrides(api=api), {}, {"OPENAI_API_KEY": "sk-x"})
    assert plain.background is False
