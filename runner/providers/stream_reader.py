"""Reading an SDK stream: the first event before the request counts as started, an idle limit
on events, and a bounded drain so the connection can be reused.

Streams are read with an idle timeout on *events* (``StreamIdle``, the model's ``timeout``): the
SDK's read timeout counts bytes, and a server sending only ``: keepalive`` comments would
otherwise hold a turn forever.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, TypeVar

import httpx2

from runner.providers.api_errors import StreamIdle

__all__ = ["open_stream", "OpenedStream", "StreamIdle"]

T = TypeVar("T")

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
