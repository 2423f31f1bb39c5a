"""Responses API provider.

Two ways to continue a conversation (docs/protocols.md §2.3):
- stored (``store`` not False, the API default): ``previous_response_id`` plus only the new items
  (the user message, or the ``function_call_output`` items), with ``instructions`` re-sent;
- stateless (``store: false``, needed for Ollama and llama.cpp): the full input every time, the
  user messages, each response's reasoning and function-call items, then the outputs.

A stream cut mid-response cannot be resumed unless the response was created with
``background=True`` (stored only): then we reconnect with ``starting_after`` the last sequence
number and drop events already seen (§2.5). Otherwise the cut is a ``ProviderError``.
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Sequence

import openai

from runner.events import TextDelta
from runner.calls import ToolCall, ToolResult
from runner.providers.base import TurnEvent, TurnResult
from runner.providers.common import SDKProvider, turn_settings
from runner.providers.raw_stream import responses_stream
from runner.providers.responses_convert import build_request, function_call_outputs, replay_items, user_item
from runner.providers.responses_stream import ResponsesStreamState
from runner.providers import snapshot as snap

MAX_RESUMES = 3
CONTINUABLE = ("completed", "tool_calls", "incomplete")


class ResponsesProvider(SDKProvider):
    api = "responses"

    def __init__(self, settings, client, **options: Any):
        super().__init__(settings, client, **options)
        self.stateful = settings.store is not False
        self.background = settings.background and self.stateful  # background mode needs stored responses
        self.previous_response_id: str | None = None
        self.history: list[dict[str, Any]] = []  # stateless mode only
        self._pending: tuple[ToolCall, ...] = ()
        self._live: ResponsesStreamState | None = None
        self._cancelled: set[str] = set()

    def snapshot(self, *, hand_over: bool = True) -> dict:
        """Stored: the id of the response that asked for the tools. Stateless: the saved input
        items (the server keeps nothing to continue from)."""
        if not self._pending:
            return super().snapshot()
        data = {**snap.header(self.api, self._pending), "stored": self.stateful}
        if self.stateful:
            data["previous_response_id"] = self.previous_response_id
        else:
            data["history"] = [dict(item) for item in self.history]
        return data

    def restore(self, snapshot: dict) -> None:
        data = snap.opened(snapshot, self.api)
        pending = snap.calls(data.get("pending"))
        if snap.flag(data, "stored") != self.stateful:
            said = "stored" if data.get("stored") else "not stored (store: false)"
            raise snap.SnapshotError(f"the responses were {said}, and the workflow's `store` now says otherwise")
        if self.stateful:
            self.previous_response_id = snap.server_id(data, "previous_response_id")
        else:
            history = snap.objects(data, "history")
            called = {i.get("call_id") for i in history if i.get("type") == "function_call"}
            if any(c.call_id not in called for c in pending):
                raise snap.SnapshotError("the saved input items do not hold the calls waiting for outputs")
            self.history = history
        self._pending = pending

    async def send_message(self, text: str) -> AsyncIterator[TurnEvent]:
        item = user_item(text)
        if self.stateful:
            items = [item]
        else:
            self.history.append(item)
            items = self.history
        async for event in self._turn(items):
            yield event

    async def submit_tool_outputs(self, results: Sequence[ToolResult]) -> AsyncIterator[TurnEvent]:
        outputs, warnings = function_call_outputs(self._pending, results)
        for w in warnings:
            yield self.warn(w)
        self._pending = ()
        if self.stateful:
            items = outputs
        else:
            self.history.extend(outputs)
            items = self.history
        async for event in self.submission(self._turn(items, after_tools=True)):
            yield event

    async def _turn(self, items: list[dict[str, Any]], *, after_tools: bool = False) -> AsyncIterator[TurnEvent]:
        kwargs = build_request(
            turn_settings(self.settings, after_tools=after_tools),
            items,
            previous_response_id=self.previous_response_id if self.stateful else None,
            background=self.background,
        )
        state = ResponsesStreamState()
        self._live = state
        create = lambda: responses_stream(self.client, kwargs)  # noqa: E731
        resumes = 0
        while True:
            stream = self.turn_stream(create)
            cut: openai.APIConnectionError | None = None
            try:
                async for notice in stream.open():
                    yield notice
                async for event in stream:
                    for out in state.feed(event):
                        yield out
                    if state.finished:
                        await stream.drain()  # so the connection can be reused
                        break
            except openai.APIConnectionError as exc:
                cut = exc
            except openai.APIError as exc:  # an error object inside the stream (§0)
                self._live = None
                yield self.stream_failure(exc, response_id=state.response_id)
                return
            finally:
                await stream.close()
            if state.finished:
                break
            if not (self.background and state.response_id and resumes < MAX_RESUMES):
                self._live = None
                if cut is not None:
                    err = self.error(cut, mid_stream=True)
                    err.hint = err.hint or (
                        "a Responses stream can only be resumed in background mode (`background: true` "
                        "under `model:`, OpenAI); nothing after the cut was used, so run the workflow again")
                    raise err from cut
                break  # ended cleanly without a terminal event: result() says so
            resumes += 1
            yield self.warn(
                f"the stream was cut; resuming response {state.response_id} after event "
                f"{state.last_seq} ({resumes}/{MAX_RESUMES})"
            )
            create = self._resume(state)
        self._live = None
        result = state.result()  # raises ProviderError when the stream was cut short
        self._remember(state, result)
        if len(result.text) > len(state.text) and result.text.startswith(state.text):
            yield TextDelta(result.text[len(state.text):])  # servers that send text only at the end
        yield result

    def _resume(self, state: ResponsesStreamState):
        """The request that continues a background response after the last event we saw."""
        state.skip_through = state.last_seq
        response_id, after = state.response_id, state.last_seq
        extra: dict[str, Any] = {} if after is None else {"starting_after": after}
        return lambda: self.client.responses.retrieve(response_id, stream=True, **extra)

    def _remember(self, state: ResponsesStreamState, result: TurnResult) -> None:
        if result.status not in CONTINUABLE:
            return
        if self.stateful:
            self.previous_response_id = state.response_id or self.previous_response_id
        else:
            self.history.extend(replay_items(state.output_items()))
        if result.status == "tool_calls":
            self._pending = result.tool_calls

    async def cancel(self) -> None:
        """Only background responses can be cancelled on the server; other streams stop when the
        connection closes, which happens when the turn's task is cancelled."""
        live = self._live
        if not (self.background and live and live.response_id and not live.finished):
            return
        if live.response_id in self._cancelled:
            return
        self._cancelled.add(live.response_id)
        try:
            await self.client.responses.cancel(live.response_id)
        except Exception:  # noqa: BLE001 - cancel is best effort and idempotent
            pass
