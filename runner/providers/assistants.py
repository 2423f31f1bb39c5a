"""Assistants API provider (v2): one thread per conversation, one streamed run per turn.

A flat loop (docs/protocols.md §1.9), never nested streams: each leg is one raw stream, ending at
``requires_action`` or a final status. A leg whose stream ends early (G5 error swallowed, a cut
connection) is recovered with ``runs.retrieve`` and polling, never by running tools again. A
retried submission first checks whether the earlier one got through (G8). A submission the
server refuses (400/422) ends the turn: as the run's own final state when it already ended (it
expired while the tools ran), else as failed, after cancelling the run so the thread is free.

Servers that bend the protocol (LLAMPHouse): a submission answered with a JSON Run instead of a
stream is continued from that Run; tool calls announced only in run steps are answered from the
steps, with a warning; recovery polling is bounded by the run's ``expires_at`` (else the model's
``timeout``) and ends with the state the server left the run in.

OpenAI shut the Assistants API down on 2026-08-26; only compatible servers remain (§1.1).
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Any, AsyncIterator, Awaitable, Callable, Sequence

import openai

from runner.errors import ProviderError
from runner.events import Notice, TextDelta
from runner.providers.api_errors import server_message
from runner.providers.assistants_convert import active_run_in, assistant_params, run_params, tool_outputs
from runner.providers.assistants_stream import ACTIVE, TERMINAL, RunStreamMapper, message_text, result_from_run
from runner.calls import ToolCall, ToolResult
from runner.providers.base import TurnEvent, TurnResult
from runner.providers.retry_policy import Started
from runner.providers.stream_reader import OpenedStream
from runner.providers.turn_stream import TurnStream
from runner.providers.common import SDKProvider, as_dict
from runner.providers.raw_stream import json_reply, run_stream, submit_stream
from runner.providers.timestamps import epoch_seconds
from runner.providers import snapshot as snap

# The SDK warns on every Assistants call. The warning is about the API we chose on purpose, so
# hide it for calls made from this module, and the duplicate the SDK raises from its own frames
# (openai._utils) for create / submit_tool_outputs. Calls from anyone else's code still warn.
warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"runner\.providers\.assistants$")
warnings.filterwarnings(
    "ignore", message=r"The Assistants API is deprecated", category=DeprecationWarning, module=r"openai\."
)


class AssistantsProvider(SDKProvider):
    api = "assistants"

    def __init__(self, settings, client, *, assistant_name: str = "flowrun", poll_interval: float = 1.0, **options: Any):
        super().__init__(settings, client, **options)
        self.assistant_id: str | None = settings.assistant_id
        self.thread_id: str | None = None
        self.run_id: str | None = None
        self.run_status: str | None = None
        self.expires_at: int | None = None  # the server's clock
        self.deadline: float | None = None  # the same moment on our clock (servers' clocks drift)
        self._seen: dict[str, float] = {}  # run id -> when we first heard of it, our clock
        self._own_assistant = False
        self._name = assistant_name
        self._poll = poll_interval
        self._pending: tuple[ToolCall, ...] = ()
        self._cancelled: set[str] = set()
        self._resending = False  # the outputs may have reached the run already (see resumable)

    @property
    def _runs(self) -> Any:
        return self.client.beta.threads.runs

    # --- pause and resume -----------------------------------------------------------------------

    def snapshot(self, *, hand_over: bool = True) -> dict:
        """The run waiting in ``requires_action``: its thread, id and expiry. An assistant we
        created is kept (not deleted at ``aclose``) for the resumed run, which deletes it."""
        if not self._pending or not self.run_id or not self.thread_id:
            return super().snapshot()
        data = {**snap.header(self.api, self._pending), "thread_id": self.thread_id, "run_id": self.run_id,
                "assistant_id": self.assistant_id, "own_assistant": self._own_assistant,
                "expires_at": self.expires_at, "deadline": self.deadline}
        if hand_over:
            self.hand_over()
        return data

    def hand_over(self) -> None:
        self._own_assistant = False  # the resumed run owns it now

    def restore(self, snapshot: dict) -> None:
        data = snap.opened(snapshot, self.api)
        self._pending = snap.calls(data.get("pending"))
        self.thread_id = snap.server_id(data, "thread_id")
        self.run_id = snap.server_id(data, "run_id")
        self.assistant_id = snap.server_id(data, "assistant_id", optional=True) or self.assistant_id
        self._own_assistant = snap.flag(data, "own_assistant") and self.assistant_id is not None
        self.expires_at = snap.number(data, "expires_at")
        self.deadline = snap.number(data, "deadline") or self.expires_at
        self.run_status = "requires_action"

    async def resumable(self, *, resending: bool = False) -> tuple[str, str] | None:
        """Ask the server whether the run still waits for the outputs: a run waits only until its
        ``expires_at`` (10 minutes on OpenAI); after that no output can reach the model.
        ``resending``: a run that moved on took the earlier submission after all; the submission
        then follows it instead of sending the outputs twice."""
        run_id = self.run_id
        so = ("so the outputs of the tools that ran cannot reach the model; run the workflow again" if resending
              else "so no tool ran; run the workflow again")
        try:
            run = as_dict(await self._runs.retrieve(run_id, thread_id=self.thread_id))
        except openai.NotFoundError:  # the server answered: it has no such run (any more)
            return "failed", f"the Assistants run {run_id} is not on the server any more, {so}"
        except openai.OpenAIError as exc:  # no answer: the caller keeps the run paused
            raise self.error(exc) from exc
        status = run.get("status")
        self._track(run)
        if status == "requires_action":
            return None
        if resending and status in (*ACTIVE, "completed", "incomplete"):
            self._resending = True  # the earlier submission got through: follow the run
            return None
        if status == "expired":
            waited = "before the saved outputs reached it" if resending else "while it waited for the approval"
            return "expired", (f"the Assistants run {run_id} expired {waited}: the server takes tool outputs "
                               f"only until the run's expires_at, {so}")
        return "failed", (f"the Assistants run {run_id} is {snap.text(status)} on the server, no longer waiting "
                          f"for tool outputs, {so}")

    # --- turns --------------------------------------------------------------------------------

    async def send_message(self, text: str) -> AsyncIterator[TurnEvent]:
        beta = self.client.beta
        if self.assistant_id is None:
            params = assistant_params(self.settings, name=self._name)
            async for item in self._request(lambda: beta.assistants.create(**params)):
                if isinstance(item, Started):
                    self.assistant_id, self._own_assistant = item.value.id, True
                else:
                    yield item
        if self.thread_id is None:
            async for item in self._request(lambda: beta.threads.create()):
                if isinstance(item, Started):
                    self.thread_id = item.value.id
                else:
                    yield item
        async for item in self._request(
            lambda: beta.threads.messages.create(self.thread_id, role="user", content=text), clear_active=True
        ):
            if not isinstance(item, Started):
                yield item
        params = run_params(self.settings, assistant_id=self.assistant_id, reused=not self._own_assistant)
        create = lambda: run_stream(self.client, self.thread_id, params)  # noqa: E731
        async for event in self._leg(lambda: self.open_events(create), clear_active=True):
            yield event

    async def submit_tool_outputs(self, results: Sequence[ToolResult]) -> AsyncIterator[TurnEvent]:
        outputs, repairs = tool_outputs(self._pending, results)
        for w in repairs:
            yield self.warn(w)
        self._pending = ()
        run_id, thread_id = self.run_id, self.thread_id
        if run_id is None or thread_id is None:
            raise ProviderError("there is no run waiting for tool outputs")
        resending, self._resending = self._resending, False
        if self.expires_at and self._now() >= self.expires_at and not resending:
            async for item in self._wait_for(run_id):  # it may have expired: ask before submitting
                if not isinstance(item, Started):
                    yield item
                elif item.value.status != "requires_action":
                    yield self._finish(result_from_run(item.value, thread_id=thread_id))
                    return
        tries = 1 if resending else 0  # resending: first ask whether the run took them already

        async def start() -> OpenedStream | Any:
            nonlocal tries
            tries += 1
            if tries > 1:  # a retry: did the earlier submission get through?
                run = await self._runs.retrieve(run_id, thread_id=thread_id)
                if run.status != "requires_action":
                    return run
            opened = await submit_stream(self.client, thread_id, run_id, outputs)
            run = await json_reply(opened)
            if run is not None:  # a Run as JSON instead of a stream: continue from it
                return run
            return await self.open_events(lambda: _given(opened))

        try:
            async for event in self._leg(start, run_id=run_id):
                yield event
        except ProviderError as err:
            rejected = self.rejected_outputs(err)
            if rejected is None:
                raise
            run = await self._settled(run_id, thread_id)
            if run is not None and run.status in TERMINAL:  # e.g. expired while the tools ran
                yield self._finish(result_from_run(run, thread_id=thread_id))
                return
            await self.cancel()  # the run still waits for outputs: free the thread
            yield self._finish(rejected)

    async def _settled(self, run_id: str, thread_id: str) -> Any:
        """The run as the server sees it now, or None when it cannot be read."""
        try:
            run = await self._runs.retrieve(run_id, thread_id=thread_id)
        except openai.OpenAIError:
            return None
        self._track(run)
        return run

    async def _leg(self, start: Callable[[], Awaitable[Any]], *, clear_active: bool = False,
                   run_id: str | None = None) -> AsyncIterator[TurnEvent]:
        """One stream, to ``requires_action`` or a final status; recover when it ends early.
        ``run_id``: the run this leg continues (submissions), known before any event."""
        mapper = RunStreamMapper(self.thread_id)
        stream = TurnStream(lambda s: self._request(s, clear_active=clear_active), start)
        try:
            async for notice in stream.open():
                yield notice
            async for event in stream:  # none when a retried submission found the run moving
                for out in mapper.feed(event):
                    yield out
                self._track(mapper.run)
                if mapper.finished:
                    await stream.drain()  # so the connection can be reused
                    break
                if mapper.step_calls:  # whole calls in a run step: the server may never send
                    break              # requires_action and wait for the outputs (G13): ask the run
        except openai.APIConnectionError:
            pass  # cut mid-stream: recovered below from the run's state on the server
        except openai.APIError as exc:  # an error object inside the stream (G5, wrapped form)
            mapper.error = (exc.code, self.masker.mask(server_message(exc) or "the server reported an error"))
        finally:
            await stream.close()
        if mapper.error is not None:
            await self._abandon(mapper.run_id)
            yield self._finish(mapper.result())
            return
        if mapper.finished:
            for event in self._outcome(mapper.result()):
                yield event
            return
        known_run = as_dict(stream.instead) or None  # a retried submission found the run moving,
        run_id = mapper.run_id or (known_run.get("id") if known_run else None) or run_id  # or a JSON reply
        if run_id is None:
            raise ProviderError("the stream from the server was cut before the run was created")
        if known_run is None and not mapper.step_calls:
            yield self.warn(f"the stream ended before run {run_id} finished; checking the run on the server")
        if known_run is not None:
            self._track(known_run)
        async for event in self._recover(run_id, mapper.text, mapper.step_calls, known_run):
            yield event

    def _outcome(self, result: TurnResult) -> list[TurnEvent]:
        """The result, after a warning when it was read from a server that bent the protocol."""
        deviation = result.meta.get("deviation")
        return ([self.warn(deviation)] if deviation else []) + [self._finish(result)]

    async def _recover(self, run_id: str, streamed: str, step_calls: tuple[ToolCall, ...] = (),
                       known: dict[str, Any] | None = None) -> AsyncIterator[TurnEvent]:
        """Wait for the run to settle, then report it; text not yet streamed comes from the
        run's messages. ``known``: the run as the server last returned it (settled: no poll)."""
        run: Any = None
        if known and known.get("id") == run_id and known.get("status") not in ACTIVE and known.get("status"):
            run = known
        else:
            async for item in self._wait_for(run_id):
                if isinstance(item, Started):
                    run = item.value
                else:
                    yield item
        status = as_dict(run).get("status")
        rest = ""
        if status in ("completed", "incomplete"):
            try:
                page = await self.client.beta.threads.messages.list(self.thread_id, run_id=run_id, order="asc")
                full = "".join(message_text(m) for m in page.data if m.role == "assistant")
                rest = full[len(streamed):] if full.startswith(streamed) else ""
            except openai.OpenAIError as exc:
                yield self.warn(f"could not fetch the run's messages: {self.error(exc).message}")
        if rest:
            yield TextDelta(rest)
        for event in self._outcome(result_from_run(run, text=streamed + rest, thread_id=self.thread_id,
                                                   fallback_calls=step_calls)):
            yield event

    # --- run bookkeeping ------------------------------------------------------------------------

    def _track(self, run: Any) -> None:
        run = as_dict(run)
        if run.get("id"):
            self.run_id, self.run_status = run["id"], run.get("status")
            seen = self._seen.setdefault(run["id"], self._now())
            expires = epoch_seconds(run.get("expires_at"))  # unix seconds, or ISO text (LLAMPHouse)
            if expires:
                self.expires_at = expires
                created = epoch_seconds(run.get("created_at"))
                ttl = expires - created if created is not None else None
                self.deadline = seen + ttl if ttl is not None and ttl >= 0 else float(expires)

    def _finish(self, result: TurnResult) -> TurnResult:
        """Remember the calls to answer, and stamp the ids and the deadline on the result."""
        if result.status == "tool_calls":
            self._pending = result.tool_calls
        waiting = result.status == "tool_calls"
        meta = {**result.meta, "thread_id": self.thread_id, "assistant_id": self.assistant_id,
                "expires_at": self.expires_at if waiting else None, "deadline": self.deadline if waiting else None}
        return replace(result, meta=meta)

    async def _wait_for(self, run_id: str) -> AsyncIterator[Notice | Started[Any]]:
        """Poll until the run is no longer queued / in progress / cancelling, honouring
        ``openai-poll-after-ms``. Bounded: by the run's ``expires_at`` (a server that left the
        run half-done would otherwise be polled for ever), else by ``settings.timeout``."""
        started = self._now()
        bound = self._poll_bound(started)
        while True:
            raw: Any = None
            async for item in self._request(lambda: self._runs.with_raw_response.retrieve(run_id, thread_id=self.thread_id)):
                if isinstance(item, Started):
                    raw = item.value
                else:
                    yield item
            run = raw.parse()
            self._track(run)
            if run.status not in ACTIVE:
                yield Started(run)
                return
            bound = self._poll_bound(started, bound)
            if self._now() >= bound:
                waited = self._now() - started
                why = "its expires_at passed" if self.deadline and bound == self.deadline else (
                    f"model.timeout is {self.settings.timeout:g}s")
                raise ProviderError(
                    f"run {run_id} never finished: the server left it {run.status} "
                    f"(polled for {waited:.0f}s, until {why})",
                    hint="the server may have failed while handling the run; check its log, then run again",
                )
            try:
                wait = float(raw.headers.get("openai-poll-after-ms")) / 1000
            except (TypeError, ValueError):
                wait = self._poll
            await self._sleep(max(wait, 0.0))

    def _poll_bound(self, started: float, current: float | None = None) -> float:
        """When polling gives up: the run's expiry on our clock when the server gave one that is
        still ahead of when polling started, else ``timeout`` after the start."""
        if self.deadline is not None and self.deadline > started:
            return self.deadline
        return current if current is not None else started + self.settings.timeout

    async def _request(self, start: Callable[[], Awaitable[Any]], *, clear_active: bool = False) -> AsyncIterator[Notice | Started[Any]]:
        """``attempt`` plus, once, the cure for "thread already has an active run": cancel that
        run (with a notice), wait for it to stop, and try again."""
        for round_ in range(2):
            blocking: str | None = None
            try:
                async for item in self.attempt(start):
                    yield item
                return
            except ProviderError as err:
                cause = err.__cause__
                if clear_active and round_ == 0 and isinstance(cause, openai.APIStatusError) and cause.status_code in (400, 409):
                    blocking = active_run_in(server_message(cause))
                if blocking is None:
                    raise
            blocking = blocking or await self._latest_run_id()
            if not blocking:
                raise ProviderError(f"thread {self.thread_id} has an active run, and it could not be found")
            yield self.warn(f"thread {self.thread_id} has an active run {blocking}; cancelling it")
            try:
                await self._runs.cancel(blocking, thread_id=self.thread_id)
            except openai.APIStatusError:
                pass  # already finishing: wait for it below
            async for item in self._wait_for(blocking):
                if not isinstance(item, Started):
                    yield item

    async def _latest_run_id(self) -> str:
        try:
            page = await self._runs.list(self.thread_id, limit=1)
        except openai.OpenAIError:
            return ""
        return page.data[0].id if page.data else ""

    async def _abandon(self, run_id: str | None) -> None:
        """After an error event the run may still hold the thread: cancel it, quietly."""
        if run_id and self.run_status not in TERMINAL:
            await self.cancel()

    # --- lifecycle ----------------------------------------------------------------------------

    async def cancel(self) -> None:
        run_id = self.run_id
        if not run_id or not self.thread_id or self.run_status in TERMINAL or run_id in self._cancelled:
            return
        self._cancelled.add(run_id)
        try:
            await self._runs.cancel(run_id, thread_id=self.thread_id)
        except Exception:  # noqa: BLE001 - cancel is best effort and idempotent
            pass

    async def aclose(self) -> None:
        """Delete the assistant we created (never one given by id); say so only on failure."""
        if self._own_assistant and self.assistant_id:
            self._own_assistant = False
            try:
                await self.client.beta.assistants.delete(self.assistant_id)
            except Exception as exc:  # noqa: BLE001 - clean-up must not hide the run's outcome
                self.notify(self.warn(f"could not delete assistant {self.assistant_id} created for this run: "
                                      f"{self.error(exc).message}"))
        await super().aclose()


async def _given(value: Any) -> Any:
    return value
