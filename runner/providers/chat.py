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


class ChatProvider(SDKProvider):
    api = "chat"

    def __init__(self, settings, client, **options: Any):
        super().__init__(settings, client, **options)
        self.messages: list[dict[str, Any]] = initial_messages(settings)
        self._pending: tuple[ToolCall, ...] = ()

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

