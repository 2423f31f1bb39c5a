"""The stream one turn reads, opened the same way by every provider.

Opening a stream is a request like any other: it is retried visibly until its first event has
arrived (``retry_policy``, ``stream_reader.open_stream``), and the retry notices must reach the
turn's event stream while they happen. So opening is an async iterator of those notices, and the
opened stream is kept here for the turn to read afterwards and to close in its ``finally``:

    stream = self.turn_stream(create)
    try:
        async for notice in stream.open():
            yield notice
        async for event in stream:
            ...
    finally:
        await stream.close()
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Awaitable, Callable

from runner.events import Notice
from runner.providers.retry_policy import Started
from runner.providers.stream_reader import OpenedStream

Attempt = Callable[[Callable[[], Awaitable[Any]]], AsyncIterator[Any]]


class TurnStream:
    """``start`` run through ``attempt`` (the provider's visible retries). ``start`` returns an
    ``OpenedStream``, or, where a retry finds the server already past the request (an Assistants
    submission that got through), whatever it found instead: then ``instead`` holds it and the
    stream has no events."""

    def __init__(self, attempt: Attempt, start: Callable[[], Awaitable[Any]]):
        self._attempt = attempt
        self._start = start
        self.opened: OpenedStream | None = None
        self.instead: Any = None

    async def open(self) -> AsyncIterator[Notice]:
        """Yield the retry notices; afterwards the stream is open (or ``instead`` is set)."""
        started = False
        async for item in self._attempt(self._start):
            if not isinstance(item, Started):
                yield item
            elif isinstance(item.value, OpenedStream):
                self.opened, started = item.value, True
            else:
                self.instead, started = item.value, True
        assert started, "attempt() ended without a result"

    def __aiter__(self) -> AsyncIterator[Any]:
        if self.opened is not None:
            return self.opened
        assert self.instead is not None, "iterated before open()"
        return _no_events()

    async def drain(self) -> None:
        """See ``OpenedStream.drain``: after the terminal event, so the connection is reused."""
        if self.opened is not None:
            await self.opened.drain()

    async def close(self) -> None:
        """Always, in the turn's ``finally``; nothing to do when nothing was opened."""
        if self.opened is not None:
            await self.opened.close()


async def _no_events() -> AsyncIterator[Any]:
    return
    yield  # pragma: no cover - makes this an async generator
