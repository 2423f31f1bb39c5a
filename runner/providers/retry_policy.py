"""The retries we do ourselves, so that each one is visible.

The SDK's own retries are switched off (see ``sdk_client``): they are silent, and they would retry
a streamed POST whose response we may already have started to read. We retry only the *start* of
a request, before any stream event arrived, and report every retry as a ``Notice``. Failures
that waiting cannot fix (a TLS mismatch, an unknown host name, an exhausted quota) are not
retried.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable, Generic, TypeVar

import openai

from runner.events import Notice
from runner.providers.api_errors import is_permanent_connection_error, is_quota_error

__all__ = ["with_retries", "retrying", "retry_delay", "parse_retry_after", "Started"]

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]

MAX_RETRY_AFTER = 60.0  # a server asking for a longer wait gets an error instead
INITIAL_DELAY = 0.5
MAX_DELAY = 8.0
RETRY_STATUSES = {408: "request timeout", 409: "conflict", 429: "rate limited"}


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
