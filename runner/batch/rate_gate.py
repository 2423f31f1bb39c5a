"""Batch-wide pacing against an API's rate limits.

One ``RateGate`` is shared by every run of a batch, and hooks on the batch's one HTTP client
report every 429 to it:

- a 429 pauses *every* request of the batch (new runs and the next turn of running ones) until its
  ``Retry-After`` has passed, plus a little jitter so the batch does not come back in one wave;
- it also halves how many runs may be in flight; each run that finishes lets one more back in, up
  to ``--concurrency`` (additive increase, multiplicative decrease, as TCP does).

So a batch that is too fast for its quota slows down instead of failing its inputs, and the
provider's own retries (which honour ``Retry-After`` too) find the gate already open.
"""

from __future__ import annotations

import asyncio
import contextvars
import random
import time
from dataclasses import dataclass
from typing import Any, Callable

import httpx2

DEFAULT_PAUSE = 1.0  # seconds, for a 429 without Retry-After
MAX_PAUSE = 60.0  # longer advice is capped: the provider fails such requests anyway
JITTER = 0.25  # waiters come back spread over this fraction of the pause


@dataclass
class RunTrace:
    """What the client hooks saw of one run (each run task sets its own through ``CURRENT_RUN``)."""

    rate_limited: int = 0  # 429 answers
    last_status: int = 0  # of the last response


CURRENT_RUN: contextvars.ContextVar[RunTrace | None] = contextvars.ContextVar("flowrun_batch_run", default=None)


class RateGate:
    def __init__(
        self,
        concurrency: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
    ):
        self.ceiling = max(1, concurrency)
        self.limit = self.ceiling  # runs allowed in flight right now
        self.running = 0
        self.hits = 0  # 429s seen
        self.paused_until = 0.0
        self._spread = 0.0
        self._cut_until = 0.0
        self._clock = clock
        self._rand = rand
        self._cond = asyncio.Condition()

    def rate_limited(self, advised: float | None) -> None:
        """A 429 arrived; ``advised`` is its Retry-After in seconds (None when absent)."""
        pause = DEFAULT_PAUSE if advised is None or advised <= 0 else min(advised, MAX_PAUSE)
        now = self._clock()
        self.hits += 1
        if now + pause > self.paused_until:
            self.paused_until = now + pause
            self._spread = JITTER * pause
        if now >= self._cut_until:  # a burst of 429s from one window halves the limit once
            self.limit = max(1, self.limit // 2)
            self._cut_until = self.paused_until

    def pause_left(self) -> float:
        return max(0.0, self.paused_until - self._clock())

    async def wait_open(self) -> None:
        """Return once no pause is on (immediately, almost always)."""
        while True:
            left = self.paused_until - self._clock()
            if left <= 0:
                return
            await asyncio.sleep(left + self._rand() * self._spread)

    async def acquire(self) -> None:
        """A slot for a new run: waits while ``limit`` runs are in flight, then for any pause."""
        async with self._cond:
            await self._cond.wait_for(lambda: self.running < self.limit)
            self.running += 1
        await self.wait_open()

    async def release(self, *, ok: bool = True) -> None:
        """A run ended; ``ok`` False when it ended on a 429 (that does not widen the limit)."""
        async with self._cond:
            self.running -= 1
            if ok and self.limit < self.ceiling and self._clock() >= self.paused_until:
                self.limit += 1
            self._cond.notify_all()


class SharedClient(httpx2.AsyncClient):
    """One of the batch's connection pools (kept-alive connections). Providers given
    a client never close it, and this one ignores ``aclose`` anyway so that no run can close it
    under the others; ``shutdown`` closes it, once, at the end of the batch."""

    async def aclose(self) -> None:  # deliberately a no-op
        return None

    async def shutdown(self) -> None:
        await super().aclose()


POOL_SHARD = 16  # workers per connection pool (see shared_clients)


def shared_clients(gate: RateGate, concurrency: int) -> list[SharedClient]:
    """The batch's connection pools, one per ``POOL_SHARD`` workers (worker i uses pool
    i % len). Not one big pool: httpcore looks at every pooled connection (a socket poll each)
    whenever a request starts or ends, so a pool of 110 connections spent a quarter of a large
    batch's CPU on that; small pools keep it flat. Every pool reports to the same gate."""
    count = max(1, -(-max(1, concurrency) // POOL_SHARD))
    per_pool = -(-max(1, concurrency) // count)
    verify = httpx2.create_ssl_context(trust_env=True)  # one CA bundle load for all
    return [shared_client(gate, per_pool, verify=verify) for _ in range(count)]


def shared_client(gate: RateGate, concurrency: int, *, verify: Any = True) -> SharedClient:
    """The SDK's default client settings (timeouts, redirects, proxies from the environment) with
    a pool sized for the batch and the gate hooked on every request and response."""

    async def before(request: httpx2.Request) -> None:
        await gate.wait_open()

    async def after(response: httpx2.Response) -> None:
        trace = CURRENT_RUN.get()
        if trace is not None:
            trace.last_status = response.status_code
        if response.status_code == 429:
            from runner.providers.retry_policy import parse_retry_after

            gate.rate_limited(parse_retry_after(response.headers))
            if trace is not None:
                trace.rate_limited += 1

    size = max(10, concurrency + 10)
    return SharedClient(
        limits=httpx2.Limits(max_connections=size, max_keepalive_connections=size),
        timeout=httpx2.Timeout(600.0, connect=10.0),
        follow_redirects=True,
        verify=verify,
        event_hooks={"request": [before], "response": [after]},
    )
