"""The fast paths (issue 7) keep their promises: connections are reused, shared things are
shared, and the bounded waits stay bounded. Nothing here measures speed."""

from __future__ import annotations

import asyncio

import httpx2
import openai
import pytest
from jsonschema.exceptions import SchemaError

from support.providers import APIS, SCRIPT, loop, settings
from runner.batch.rate_gate import POOL_SHARD, RateGate, shared_clients
from runner.providers import stream_reader as stream_reader_mod
from runner.providers.api_errors import StreamIdle
from runner.providers.sdk_client import SDKClientCache, build_client
from runner.providers.stream_reader import open_stream
from runner.providers.raw_stream import _segment
from runner.scripted import server as server_mod
from runner.tools.dispatcher import validator_for
from runner.tools.http_tool import ssl_context
from runner.scripted import ScriptedServer

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.mark.parametrize("api", APIS)
def test_a_whole_conversation_uses_one_connection(api, monkeypatch):
    """Streams are read to their end after the terminal event, so HTTP/1.1 keep-alive works:
    a closed half-read response would cost a new connection per turn."""
    opened = []
    setup = server_mod._Handler.setup

    def counting_setup(self):
        opened.append(self.client_address)
        setup(self)

    monkeypatch.setattr(server_mod._Handler, "setup", counting_setup)
    with ScriptedServer(SCRIPT) as s:
        events = loop(s, api)
        requests = len(s.requests)
    assert events and requests >= 2
    assert len(opened) == 1, f"{requests} requests over {len(opened)} connections"


class Stream:
    """An SDK-like stream: each event arrives after its delay; then the end."""

    def __init__(self, timed):
        self.timed, self.closed = list(timed), False

    async def __anext__(self):
        if not self.timed:
            raise StopAsyncIteration
        delay, event = self.timed.pop(0)
        await asyncio.sleep(delay)
        return event

    async def close(self):
        self.closed = True


async def _ready(value):
    return value


def test_drain_reads_the_rest_of_a_stream_to_its_end():
    async def go():
        stream = Stream([(0, "terminal"), (0, "late"), (0, "later")])
        opened = await open_stream(lambda: _ready(stream), idle=5)
        await opened.drain()
        return stream, [e async for e in opened]

    stream, rest = asyncio.run(asyncio.wait_for(go(), 10))
    assert stream.timed == [] and rest == []


def test_drain_gives_up_on_a_stream_that_stays_open(monkeypatch):
    monkeypatch.setattr(stream_reader_mod, "DRAIN_SECONDS", 0.05)

    async def go():
        stream = Stream([(0, "terminal"), (30, "never")])
        opened = await open_stream(lambda: _ready(stream), idle=60)
        await opened.drain()  # returns, without the event
        await opened.close()
        return stream

    stream = asyncio.run(asyncio.wait_for(go(), 10))
    assert stream.closed and stream.timed == []


def test_the_idle_limit_is_per_event_not_per_stream():
    async def go():
        stream = Stream([(0, 0)] + [(0.04, i) for i in range(1, 7)])
        opened = await open_stream(lambda: _ready(stream), idle=0.15)
        return [e async for e in opened]

    assert asyncio.run(asyncio.wait_for(go(), 10)) == list(range(7))  # 0.24 s in all, no gap of 0.15


def test_a_stall_after_some_events_is_still_given_up():
    async def go():
        stream = Stream([(0, "a"), (0.01, "b"), (0.01, "c"), (30, "d")])
        opened = await open_stream(lambda: _ready(stream), idle=0.1)
        got = []
        with pytest.raises(StreamIdle):
            async for event in opened:
                got.append(event)
        await opened.close()
        return got, asyncio.current_task().cancelling()

    got, cancelling = asyncio.run(asyncio.wait_for(go(), 10))
    assert got == ["a", "b", "c"] and cancelling == 0  # the idle timer's cancellation was retracted


def test_a_cancellation_from_outside_is_not_mistaken_for_an_idle_stream():
    async def go():
        stream = Stream([(0, "a"), (30, "b")])
        opened = await open_stream(lambda: _ready(stream), idle=5)

        async def read_all():
            return [e async for e in opened]

        task = asyncio.ensure_future(read_all())
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(asyncio.wait_for(go(), 10))


def test_tool_validators_are_built_once_per_schema_object():
    schema = {"type": "object", "properties": {"x": {"type": "integer"}}}
    assert validator_for(schema) is validator_for(schema)
    assert validator_for(dict(schema)) is not validator_for(schema)  # an equal copy is another schema
    with pytest.raises(SchemaError):
        validator_for({"type": "no-such-type"})
    with pytest.raises(SchemaError):  # never cached as valid
        validator_for({"type": "no-such-type"})


def test_runs_on_a_batch_pool_share_one_sdk_client_per_configuration():
    async def go():
        pools = shared_clients(RateGate(40), 40)  # two pools
        cache = SDKClientCache()  # the batch's, passed to every run
        try:
            a = build_client(settings("chat", "http://127.0.0.1:9/v1"), http_client=pools[0], sdk_clients=cache)
            b = build_client(settings("chat", "http://127.0.0.1:9/v1"), http_client=pools[0], sdk_clients=cache)
            other_key = build_client(settings("chat", "http://127.0.0.1:9/v1", api_key="sk-other-key-xyz"),
                                     http_client=pools[0], sdk_clients=cache)
            other_pool = build_client(settings("chat", "http://127.0.0.1:9/v1"), http_client=pools[1],
                                      sdk_clients=cache)
            async with httpx2.AsyncClient() as own:  # no cache given: a client per conversation
                c = build_client(settings("chat", "http://127.0.0.1:9/v1"), http_client=own)
                d = build_client(settings("chat", "http://127.0.0.1:9/v1"), http_client=own)
            return a, b, other_key, other_pool, c, d
        finally:
            for p in pools:
                await p.shutdown()

    a, b, other_key, other_pool, c, d = asyncio.run(go())
    assert isinstance(a, openai.AsyncOpenAI) and a is b and other_key is not a
    assert other_pool is not a  # an SDK client never crosses to another pool
    assert c is not d


def test_a_batch_passes_its_sdk_client_cache_to_every_run(tmp_path, monkeypatch, capsys):
    import json

    from runner.cli import main
    from runner.providers import sdk_client
    from support.batch import WORKFLOW, echo_script

    built = []
    real = sdk_client._new_client

    def counted(*args):
        built.append(real(*args))
        return built[-1]

    monkeypatch.setattr(sdk_client, "_new_client", counted)
    (tmp_path / "echo.yaml").write_text(WORKFLOW)
    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"city": f"C{i}"}) + "\n" for i in range(8)))
    with ScriptedServer(echo_script) as server, pytest.raises(SystemExit) as done:
        main(["batch", str(tmp_path / "echo.yaml"), "--inputs", str(tmp_path / "in.jsonl"),
              "--out", str(tmp_path / "out.jsonl"), "--concurrency", "4", "--base-url", server.base_url])
    assert done.value.code == 0, capsys.readouterr().err
    assert len(built) == 1  # eight runs, one pool, one configuration


def test_a_big_batch_spreads_its_workers_over_small_pools():
    async def go():
        pools = shared_clients(RateGate(100), 100)
        try:
            return len(pools), {id(p) for p in pools}
        finally:
            for p in pools:
                await p.shutdown()

    count, ids = asyncio.run(go())
    assert count == -(-100 // POOL_SHARD) and len(ids) == count
    assert len(asyncio.run(_pools(1))) == 1


async def _pools(n):
    pools = shared_clients(RateGate(n), n)
    for p in pools:
        await p.shutdown()
    return pools


def test_the_tls_context_of_http_tools_is_made_once():
    assert ssl_context() is ssl_context()


@pytest.mark.parametrize("bad", ["", ".", ".."])
def test_ids_in_raw_request_paths_must_be_real_segments(bad):
    with pytest.raises(ValueError):
        _segment(bad, "thread_id")


def test_ids_in_raw_request_paths_are_escaped():
    assert _segment("thread_a/b?c", "thread_id") == "thread_a%2Fb%3Fc"
