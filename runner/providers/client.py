"""The SDK client, and the retries we do ourselves so that each one is visible.

The SDK's own retries are switched off (``max_retries=0``): they are silent, and they would retry a
streamed POST whose response we may already have started to read. We retry only the *start* of a
request, before any stream event arrived, and report every retry as a ``Notice``. Failures that
waiting cannot fix (a TLS mismatch, an unknown host name) are not retried.

Streams are read with an idle timeout on *events* (``StreamIdle``, the model's ``timeout``): the
SDK's read timeout counts bytes, and a server sending only ``: keepalive`` comments would
otherwise hold a turn forever.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable, Generic, TypeVar

import httpx2
import openai

from runner.events import Notice
from runner.providers.api_errors import StreamIdle, is_quota_error, is_permanent_connection_error, map_api_error
from runner.providers.base import ModelSettings

__all__ = [
    "build_client",
    "with_retries",
    "retrying",
    "retry_delay",
    "parse_retry_after",
    "open_stream",
    "OpenedStream",
    "Started",
    "StreamIdle",
    "map_api_error",
]

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]

MAX_RETRY_AFTER = 60.0  # a server asking for a longer wait gets an error instead
INITIAL_DELAY = 0.5
MAX_DELAY = 8.0
RETRY_STATUSES = {408: "request timeout", 409: "conflict", 429: "rate limited"}


MAX_SHARED_SDK_CLIENTS = 64


def build_client(settings: ModelSettings, *, http_client: httpx2.AsyncClient | None = None) -> openai.AsyncOpenAI:
    """An ``AsyncOpenAI`` for one conversation, with SDK retries off (ours are visible).

    A pool that offers an ``sdk_clients`` dict (the batch's ``SharedClient``) gets one SDK client
    per distinct configuration, shared by every run on it: a new ``AsyncOpenAI`` detours through
    a worker thread on its first request (platform headers), which costs a batch of short runs
    more than the runs' own parsing. The pool owns those clients; providers never close them."""
    shared = getattr(http_client, "sdk_clients", None) if http_client is not None else None
    if not isinstance(shared, dict):
        return _new_client(settings, http_client)
    key = (settings.api_key, settings.base_url, settings.timeout, tuple(settings.extra_headers))
    client = shared.get(key)
    if client is None:
        if len(shared) >= MAX_SHARED_SDK_CLIENTS:
            shared.clear()  # per-input keys or headers: do not grow without end
        client = shared[key] = _new_client(settings, http_client)
    return client


def _new_client(settings: ModelSettings, http_client: httpx2.AsyncClient | None) -> openai.AsyncOpenAI:
    kwargs: dict[str, Any] = {
        "api_key": settings.api_key or None,
        "timeout": httpx2.Timeout(settings.timeout, connect=10.0),
        "max_retries": 0,
    }
    if settings.base_url:
        kwargs["base_url"] = settings.base_url
    if settings.extra_headers:
        kwargs["default_headers"] = dict(settings.extra_headers)
    if http_client is not None:
        kwargs["http_client"] = http_client
    return openai.AsyncOpenAI(**kwargs)


def parse_retry_after(headers: Any, *, now: Callable[[], float] = time.time) -> float | None:
    """Seconds the server asks us to wait: ``retry-after-ms``, then ``retry-after`` (seconds or
    an HTTP date). None when absent or unreadable."""
    if headers is None:
        return None
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return float(value) / divisor
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return when.timestamp() - now()


def _backoff(attempt: int, rand: Callable[[], float]) -> float:
    return min(INITIAL_DELAY * 2.0**attempt, MAX_DELAY) * (1 - 0.25 * rand())


def retry_delay(
    exc: BaseException,
    attempt: int,
    max_retries: int,
    *,
    rand: Callable[[], float] = random.random,
    now: Callable[[], float] = time.time,
) -> tuple[float, str] | None:
    """(delay, reason) when ``exc`` from the start of a request deserves retry number
    ``attempt + 1``; None when it must be reported instead."""
    if attempt >= max_retries:
        return None
    advised: float | None = None
    if isinstance(exc, openai.APIStatusError):
        if is_quota_error(exc):
            return None
        headers = exc.response.headers
        advised = parse_retry_after(headers, now=now)
        if advised is not None and advised > MAX_RETRY_AFTER:
            return None
        should = (headers.get("x-should-retry") or "").lower()
        status = exc.status_code
        if should == "false":
            return None
        if should != "true" and status not in RETRY_STATUSES and status < 500:
            return None
        label = RETRY_STATUSES.get(status, "server error" if status >= 500 else "error")
        reason = f"{label} (HTTP {status})"
    elif isinstance(exc, openai.APITimeoutError):
        reason = "the server did not answer in time"
    elif isinstance(exc, openai.APIConnectionError):
        if is_permanent_connection_error(exc):
            return None  # a TLS mismatch or an unknown host name: waiting will not fix it
        reason = "connection failed"
    else:
        return None
    if advised is not None and advised > 0:
        return advised, reason
    return _backoff(attempt, rand), reason


@dataclass(frozen=True)
class Started(Generic[T]):
    """What ``retrying`` yields last: the value the start function returned."""

    value: T


async def retrying(
    start: Callable[[], Awaitable[T]],
    *,
    max_retries: int,
    sleep: Sleep = asyncio.sleep,
    rand: Callable[[], float] = random.random,
) -> AsyncIterator[Notice | Started[T]]:
    """Call ``start`` until it succeeds; yield a warning ``Notice`` before each wait (so the turn's
    event stream shows it as it happens), then ``Started(value)``. The last error propagates."""
    attempt = 0
    while True:
        try:
            value = await start()
        except Exception as exc:  # noqa: BLE001 - classified by retry_delay, re-raised otherwise
            decision = retry_delay(exc, attempt, max_retries, rand=rand)
            if decision is None:
                raise
            delay, reason = decision
            attempt += 1
            yield Notice("warning", f"{reason}; retrying in {delay:.1f}s ({attempt}/{max_retries})")
            await sleep(delay)
            continue
        yield Started(value)
        return


async def with_retries(
    start: Callable[[], Awaitable[T]],
    *,
    max_retries: int,
    on_retry: Callable[[str], None],
    sleep: Sleep = asyncio.sleep,
    rand: Callable[[], float] = random.random,
) -> T:
    """``retrying`` for callers that are not event streams: each retry message goes to
    ``on_retry``."""
    async for item in retrying(start, max_retries=max_retries, sleep=sleep, rand=rand):
        if isinstance(item, Started):
            return item.value
        on_retry(item.message)
    raise AssertionError("retrying() ended without a result")  # pragma: no cover


_EMPTY = object()


async def _next_event(stream: Any, idle: float | None) -> Any:
    """The stream's next event, or ``StreamIdle`` when none arrives within ``idle`` seconds.

    The SDK's read timeout counts bytes, so a server that sends only ``: keepalive`` comments
    would hold a turn forever; this counts events (content), which comments never are."""
    if not idle or idle <= 0:
        return await stream.__anext__()
    try:
        if _timeout is not None:
            async with _timeout(idle):
                return await stream.__anext__()
        return await asyncio.wait_for(_anext(stream), idle)
    except (asyncio.TimeoutError, TimeoutError):
        raise StreamIdle(_request_of(stream), idle) from None


_timeout = getattr(asyncio, "timeout", None)  # Python 3.11+; cheaper than a task per event
_HAS_UNCANCEL = hasattr(asyncio.Task, "uncancel")  # Python 3.11+: one idle timer per stream

DRAIN_SECONDS = 0.5  # after a terminal event, how long the rest of a stream may take to end
DRAIN_EVENTS = 32


async def _bounded(coro: Awaitable[T], seconds: float) -> T:
    if _timeout is not None:
        async with _timeout(seconds):
            return await coro
    return await asyncio.wait_for(coro, seconds)


async def _anext(stream: Any) -> Any:
    return await stream.__anext__()


class _IdleWatch:
    """``_next_event``'s idle limit for a whole stream with ONE timer, not one per event.

    A timer per event (``asyncio.timeout``) costs more than parsing a small event does. This one
    is armed once; when it fires it checks how long the current read has waited: long enough,
    it cancels the reading task (``StreamIdle`` is raised in the read, the cancellation
    retracted); not yet, it re-arms for the moment the read would be overdue. Between reads it
    does nothing. Needs ``Task.uncancel`` (Python 3.11+); ``_next_event`` serves older ones."""

    def __init__(self, idle: float):
        self.idle = idle
        self._loop = asyncio.get_running_loop()
        self._handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task | None = None
        self._since = 0.0  # when the current read began
        self._fired = False

    async def next(self, stream: Any) -> Any:
        task = asyncio.current_task()
        assert task is not None
        self._task, self._since, self._fired = task, self._loop.time(), False
        if self._handle is None:
            self._handle = self._loop.call_at(self._since + self.idle, self._check)
        cancelling = task.cancelling()
        handled = False
        try:
            return await stream.__anext__()
        except asyncio.CancelledError:
            if self._fired:
                handled = True
                if task.uncancel() <= cancelling:  # ours alone, not also a Ctrl-C
                    raise StreamIdle(_request_of(stream), self.idle) from None
            raise
        finally:
            self._task = None
            if self._fired and not handled:
                task.uncancel()  # the stream swallowed our cancellation: retract it

    def _check(self) -> None:
        self._handle = None
        task = self._task
        if task is None:
            return  # between reads: the next read arms a new timer
        due = self._since + self.idle
        if self._loop.time() >= due:
            self._fired = True
            task.cancel()
        else:
            self._handle = self._loop.call_at(due, self._check)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


def _request_of(stream: Any) -> httpx2.Request:
    response = getattr(stream, "response", None)
    request = getattr(response, "request", None)
    return request if isinstance(request, httpx2.Request) else httpx2.Request("GET", "http://stream.invalid/")


class OpenedStream:
    """An SDK stream whose first event has already arrived, so a failure before that event can
    be retried like a failed request. Iterate it once; always ``close`` it.

    ``idle``: seconds without an event (keepalive comments do not count) before the stream is
    given up with ``StreamIdle``, an ``openai.APITimeoutError``; None waits as long as the SDK."""

    def __init__(self, stream: Any, first: Any, idle: float | None = None):
        self.stream = stream
        self._first = first
        self._done = first is _EMPTY
        self._idle = idle
        self._watch: _IdleWatch | None = None

    def __aiter__(self) -> "OpenedStream":
        return self

    async def __anext__(self) -> Any:
        if self._first is not _EMPTY:
            first, self._first = self._first, _EMPTY
            return first
        if self._done:
            raise StopAsyncIteration
        try:
            if self._idle and self._idle > 0 and _HAS_UNCANCEL:
                if self._watch is None:
                    self._watch = _IdleWatch(self._idle)
                return await self._watch.next(self.stream)
            return await _next_event(self.stream, self._idle)
        except StopAsyncIteration:
            self._done = True
            self._stop_watch()
            raise
        except BaseException:
            self._stop_watch()
            raise

    def _stop_watch(self) -> None:
        if self._watch is not None:
            self._watch.stop()

    async def drain(self) -> None:
        """Read what is left after the terminal event (usually only the end of the body), so
        the HTTP/1.1 connection goes back to the pool: closing a response that is not read to
        the end closes its connection, and the next request pays a new TCP (and TLS) set-up.

        Bounded, never a hang: at most ``DRAIN_EVENTS`` more events within ``DRAIN_SECONDS``;
        a server that keeps the stream open past that just has its connection closed, as
        before. Whatever arrives is ignored (the turn is decided) and no error escapes."""
        self._first = _EMPTY
        if self._done:
            return
        try:
            await _bounded(self._rest(), DRAIN_SECONDS)
        except (asyncio.TimeoutError, TimeoutError):
            pass
        except Exception:  # noqa: BLE001 - a late error after the terminal event changes nothing
            pass

    async def _rest(self) -> None:
        try:
            for _ in range(DRAIN_EVENTS):
                await self.stream.__anext__()
        except StopAsyncIteration:
            self._done = True

    async def close(self) -> None:
        self._stop_watch()
        try:
            await self.stream.close()
        except Exception:  # noqa: BLE001 - closing a dead connection must not mask the real error
            pass


async def open_stream(create: Callable[[], Awaitable[Any]], *, idle: float | None = None) -> OpenedStream:
    """Make the request and wait for the first event. A connection error (or ``idle`` seconds
    without an event) before it is raised here, retryable; an empty stream gives an
    ``OpenedStream`` with no events."""
    stream = await create()
    try:
        first = await _next_event(stream, idle)
    except StopAsyncIteration:
        first = _EMPTY
    except BaseException:
        try:
            await stream.close()
        except Exception:  # noqa: BLE001
            pass
        raise
    return OpenedStream(stream, first, idle)
