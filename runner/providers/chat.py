"""Chat Completions provider: the conversation is the message list we keep and re-send."""

from __future__ import annotations

from typing import Any, AsyncIterator, Sequence

import openai

from runner.calls import ToolCall, ToolResult

from runner.providers.base import TurnEvent, TurnResult
from runner.providers.chat_convert import (
    assistant_message,
    build_request,
    initial_messages,
    tool_messages,
    user_message,
)
from runner.providers.chat_stream import ChatStreamAccumulator
from runner.providers.common import SDKProvider, turn_settings
from runner.providers.raw_stream import chat_stream
from runner.providers import snapshot as snap

_ROLES = ("system", "user", "assistant", "tool")


class ChatProvider(SDKProvider):
    api = "chat"

    def __init__(self, settings, client, **options: Any):
        super().__init__(settings, client, **options)
        self.messages: list[dict[str, Any]] = initial_messages(settings)
        self._pending: tuple[ToolCall, ...] = ()

    def snapshot(self, *, hand_over: bool = True) -> dict:
        """The transcript so far, the model's message with its tool calls last."""
        if not self._pending:
            return super().snapshot()
        return {**snap.header(self.api, self._pending), "messages": [dict(m) for m in self.messages]}

    def restore(self, snapshot: dict) -> None:
        data = snap.opened(snapshot, self.api)
        pending = snap.calls(data.get("pending"))
        messages = snap.objects(data, "messages")
        for i, message in enumerate(messages):
            _check_message(message, i)
        last = messages[-1] if messages else {}
        asked = [c.get("id") for c in last.get("tool_calls") or () if isinstance(c, dict)]
        if last.get("role") != "assistant" or asked != [c.call_id for c in pending]:
            raise snap.SnapshotError("the transcript does not end with the model's message asking for the saved calls")
        self.messages, self._pending = messages, pending

    async def send_message(self, text: str) -> AsyncIterator[TurnEvent]:
        self.messages.append(user_message(text))
        async for event in self._turn():
            yield event

    async def submit_tool_outputs(self, results: Sequence[ToolResult]) -> AsyncIterator[TurnEvent]:
        messages, warnings = tool_messages(self._pending, results)
        for w in warnings:
            yield self.warn(w)
        self.messages.extend(messages)
        self._pending = ()
        async for event in self.submission(self._turn(after_tools=True)):
            yield event

    async def _turn(self, *, after_tools: bool = False) -> AsyncIterator[TurnEvent]:
        kwargs = build_request(turn_settings(self.settings, after_tools=after_tools), self.messages)
        acc = ChatStreamAccumulator()
        stream = self.turn_stream(lambda: chat_stream(self.client, kwargs))
        try:
            async for notice in stream.open():
                yield notice
            async for chunk in stream:
                for event in acc.feed(chunk):
                    yield event
        except openai.APIConnectionError as exc:
            raise self.error(exc, mid_stream=True) from exc
        except openai.APIError as exc:  # an error object inside the stream (§0)
            yield self.stream_failure(exc, completion_id=acc.completion_id)
            return
        finally:
            await stream.close()
        result = acc.result()  # raises ProviderError when the stream was cut short
        self._remember(result)
        yield result

    def _remember(self, result: TurnResult) -> None:
        """Keep the model's turn in the history exactly as it must be replayed."""
        if result.status == "tool_calls":
            self.messages.append(assistant_message(result.text, result.tool_calls))
            self._pending = result.tool_calls
        elif result.text:
            self.messages.append(assistant_message(result.text, ()))



def _check_message(message: dict, i: int) -> None:
    """One message of a saved transcript: a known role and text content (or none)."""
    where = f"messages[{i}]"
    if message.get("role") not in _ROLES:
        raise snap.SnapshotError(f"{where}.role is not one of {', '.join(_ROLES)}")
    if not (message.get("content") is None or isinstance(message.get("content"), str)):
        raise snap.SnapshotError(f"{where}.content must be text")
    if set(message) - {"role", "content", "tool_calls", "tool_call_id"}:
        raise snap.SnapshotError(f"{where} has fields a chat message does not have")
    if message["role"] == "tool":
        snap.string(message, "tool_call_id", where)
    for j, call in enumerate(message.get("tool_calls") or ()):
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(call.get("id"), str):
            raise snap.SnapshotError(f"{where}.tool_calls[{j}] is not a function call")
        snap.string(fn, "name", f"{where}.tool_calls[{j}].function")
        snap.string(fn, "arguments", f"{where}.tool_calls[{j}].function")
    if "tool_calls" in message and not isinstance(message["tool_calls"], list):
        raise snap.SnapshotError(f"{where}.tool_calls must be a list")
