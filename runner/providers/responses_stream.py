"""Map raw Responses stream events to text deltas and one ``TurnResult`` (docs/protocols.md §2.2).

Raw events, not ``client.responses.stream``: the helper raises on compatible servers that skip
``content_part.added`` or ``response.created``. A call's name and ``call_id`` come from
``response.output_item.added`` / ``.done`` (``function_call_arguments.done`` carries neither);
its arguments from the final output, else ``.done``, else the accumulated deltas. A stream that
ends without ``response.completed`` / ``.failed`` / ``.incomplete`` / ``error`` is not a result.

Events are plain dicts (``raw_stream``: no pydantic object per event) or SDK objects (a resumed
background stream).
"""

from __future__ import annotations

from typing import Any

from runner.errors import ProviderError
from runner.events import TextDelta
from runner.calls import ToolCall
from runner.providers.base import TurnResult
from runner.providers.common import as_dict, get_field, normalize_usage
from runner.textsafe import encodable, encodable_value

TERMINAL = ("response.completed", "response.failed", "response.incomplete", "error")
CREATED = ("response.created", "response.in_progress", "response.queued")
TEXT_DELTAS = ("response.output_text.delta", "response.refusal.delta")
TRUNCATED = (
    "the stream from the server ended before the response finished (no response.completed): "
    "tool calls, if any, were not run"
)


class ResponsesStreamState:
    """Feed every event of one response (across resumed streams); then ``result()``."""

    def __init__(self) -> None:
        self.response_id: str | None = None
        self.last_seq: int | None = None
        self.skip_through: int | None = None  # after a resume: events up to here were seen
        self.text = ""
        self.terminal: str | None = None
        self.response: dict[str, Any] = {}
        self.error: tuple[str | None, str] | None = None
        self._slots: dict[Any, dict[str, Any]] = {}
        self._item_keys: dict[str, Any] = {}
        self._done_items: dict[Any, dict[str, Any]] = {}

    @property
    def finished(self) -> bool:
        return self.terminal is not None

    def _slot(self, index: Any, item_id: str | None) -> dict[str, Any]:
        key = self._item_keys.get(item_id) if item_id else None
        if key is None:
            key = index if index is not None else item_id
        if item_id:
            self._item_keys.setdefault(item_id, key)
        return self._slots.setdefault(key, {"call_id": None, "name": None, "id": item_id, "args": "", "final": None})

    def feed(self, event: Any) -> list[TextDelta]:
        seq = get_field(event, "sequence_number")
        if isinstance(seq, int):
            if self.skip_through is not None and seq <= self.skip_through:
                return []  # replayed after a resume
            self.last_seq = seq if self.last_seq is None else max(self.last_seq, seq)
        kind = get_field(event, "type")
        if kind in CREATED:
            self.response_id = self.response_id or get_field(get_field(event, "response"), "id")
        elif kind in ("response.output_item.added", "response.output_item.done"):
            self._item(event, done=kind.endswith(".done"))
        elif kind == "response.function_call_arguments.delta":
            slot = self._slot(get_field(event, "output_index"), get_field(event, "item_id"))
            slot["args"] += encodable(get_field(event, "delta") or "")
        elif kind == "response.function_call_arguments.done":
            slot = self._slot(get_field(event, "output_index"), get_field(event, "item_id"))
            if isinstance(get_field(event, "arguments"), str):
                slot["final"] = encodable(get_field(event, "arguments"))
        elif kind in TEXT_DELTAS:
            delta = encodable(get_field(event, "delta") or "")
            if delta:
                self.text += delta
                return [TextDelta(delta)]
        elif kind in TERMINAL and not self.finished:
            self.terminal = kind
            if kind == "error":
                self.error = (encodable(get_field(event, "code")),
                              encodable(get_field(event, "message")) or "the server reported an error")
            else:  # replayed in stateless mode: made encodable here, once
                self.response = encodable_value(as_dict(get_field(event, "response")))
                self.response_id = self.response_id or self.response.get("id")
        return []

    def _item(self, event: Any, *, done: bool) -> None:
        item = encodable_value(as_dict(get_field(event, "item")))
        index = get_field(event, "output_index")
        if item.get("type") == "function_call":
            slot = self._slot(index, item.get("id"))
            for key in ("call_id", "name"):
                if item.get(key) and not slot[key]:
                    slot[key] = item[key]
            if done and isinstance(item.get("arguments"), str) and slot["final"] is None:
                slot["final"] = item["arguments"]
        if done:
            self._done_items[index if index is not None else len(self._done_items)] = item

    def output_items(self) -> list[dict[str, Any]]:
        """The response's output: the final one when the server sent it, else what streamed."""
        final = [as_dict(i) for i in self.response.get("output") or ()]
        if final:
            return final
        items = [self._done_items[k] for k in sorted(self._done_items, key=_sort_key)]
        seen = {i.get("id") for i in items if i.get("type") == "function_call"}
        for slot in self._slots.values():  # calls the stream announced but never closed
            if (slot["id"] is None and not seen) or (slot["id"] is not None and slot["id"] not in seen):
                items.append({"type": "function_call", "id": slot["id"], "call_id": slot["call_id"],
                              "name": slot["name"], "arguments": ""})
        return items

    def tool_calls(self) -> tuple[ToolCall, ...]:
        calls = []
        for n, item in enumerate(i for i in self.output_items() if i.get("type") == "function_call"):
            slot = self._slots.get(self._item_keys.get(item.get("id")) if item.get("id") else None) or {}
            arguments = item.get("arguments") or slot.get("final") or slot.get("args") or ""
            call_id = item.get("call_id") or slot.get("call_id") or item.get("id") or f"call_{n}"
            name = item.get("name") or slot.get("name") or ""
            calls.append(ToolCall(call_id=call_id, name=name, arguments=arguments if arguments.strip() else "{}"))
        return tuple(calls)

    def final_text(self) -> str:
        """All output text, from the final output when present (servers that do not stream text)."""
        parts = []
        for item in self.output_items():
            if item.get("type") == "message":
                for part in item.get("content") or ():
                    part = as_dict(part)
                    parts.append(part.get("text") or part.get("refusal") or "")
        return "".join(parts) or self.text

    def result(self) -> TurnResult:
        if not self.finished:
            raise ProviderError(TRUNCATED)
        meta = {"response_id": self.response_id, "sequence_number": self.last_seq}
        usage = normalize_usage(self.response.get("usage"))
        if self.terminal == "error":
            code, message = self.error or (None, "the server reported an error")
            return TurnResult(status="failed", text=self.text, error=message, error_code=code, meta=meta)
        status = self.response.get("status")
        if self.terminal == "response.failed" or status == "failed":
            err = as_dict(self.response.get("error"))
            return TurnResult(status="failed", text=self.text, usage=usage, error=err.get("message") or "the response failed",
                              error_code=err.get("code"), meta=meta)
        if self.terminal == "response.incomplete" or status == "incomplete":
            reason = as_dict(self.response.get("incomplete_details")).get("reason")
            return TurnResult(status="incomplete", text=self.text, usage=usage,
                              error=f"the response is incomplete ({reason or 'no reason given'})", error_code=reason, meta=meta)
        if status == "cancelled":
            return TurnResult(status="cancelled", text=self.text, usage=usage, error="the response was cancelled", meta=meta)
        calls = self.tool_calls()
        text = self.final_text()
        if calls:
            return TurnResult(status="tool_calls", tool_calls=calls, text=text, usage=usage, meta=meta)
        return TurnResult(status="completed", text=text, usage=usage, meta=meta)


def _sort_key(key: Any) -> tuple[int, Any]:
    return (0, key) if isinstance(key, int) else (1, str(key))
