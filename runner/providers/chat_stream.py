"""Accumulate raw Chat Completions chunks into one turn (docs/protocols.md §3.2, §3.4, §4).

Not the SDK's stream helper: it concatenates repeated ids and names, raises on a missing or
shifted ``index`` and emits no ``.done`` when a whole call arrives with ``finish_reason``. This one
keys calls on ``index`` but falls back to position when the index is missing or reused for a new
id, sets id / name / type once, concatenates only ``arguments``, and invents ``call_<n>`` ids.

Chunks are plain dicts (``raw_stream``: no pydantic object per chunk) or SDK objects.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from runner.errors import ProviderError
from runner.events import TextDelta
from runner.calls import ToolCall
from runner.providers.base import TurnResult
from runner.providers.common import get_field as _get, normalize_usage
from runner.textsafe import encodable

TRUNCATED = (
    "the stream from the server ended before the turn finished (no finish_reason): "
    "tool calls, if any, were not run"
)
INCOMPLETE = {
    "length": "the answer was cut at the output token limit (finish_reason: length)",
    "content_filter": "the server's content filter stopped the answer (finish_reason: content_filter)",
}


@dataclass
class _Slot:
    index: int | None
    id: str | None = None
    name: str | None = None
    type: str | None = None
    arguments: str = ""


class ChatStreamAccumulator:
    """Feed every chunk; read ``result()`` once the stream has ended."""

    def __init__(self) -> None:
        self.text = ""
        self.finish_reason: str | None = None
        self.usage: dict[str, int] | None = None
        self.completion_id: str | None = None
        self._slots: list[_Slot] = []
        self._by_index: dict[int, _Slot] = {}

    def feed(self, chunk: Any) -> list[TextDelta]:
        """Take one chunk; return the text it adds, as events."""
        events: list[TextDelta] = []
        self.completion_id = self.completion_id or _get(chunk, "id")
        usage = _get(chunk, "usage")
        if usage is not None:
            self.usage = normalize_usage(usage)
        for choice in _get(chunk, "choices") or ():
            if (_get(choice, "index") or 0) != 0:
                continue  # we ask for one choice; ignore any other
            delta = _get(choice, "delta")
            for field in ("content", "refusal"):
                piece = encodable(_get(delta, field))
                if isinstance(piece, str) and piece:
                    self.text += piece
                    events.append(TextDelta(piece))
            for fragment in _get(delta, "tool_calls") or ():
                self._add_fragment(fragment)
            reason = _get(choice, "finish_reason")
            if reason:
                self.finish_reason = reason
        return events

    def _slot_for(self, index: Any, call_id: str | None, name: str | None) -> _Slot:
        by_id = next((s for s in self._slots if call_id and s.id == call_id), None)
        if by_id is not None:
            return by_id  # an id repeated on every fragment (LiteLLM) stays one call
        if isinstance(index, int):
            slot = self._by_index.get(index)
            new_id = call_id and slot and slot.id and slot.id != call_id
            new_name = name and slot and slot.name and slot.name != name
            if slot is not None and not new_id and not new_name:
                return slot
        elif call_id is None and self._slots:
            last = self._slots[-1]
            if not (name and last.name and last.name != name):
                return last  # no index, no id: a continuation of the last call
        slot = _Slot(index=index if isinstance(index, int) else None)
        self._slots.append(slot)
        if isinstance(index, int):
            self._by_index[index] = slot  # a reused index now points at the newest call
        return slot

    def _add_fragment(self, fragment: Any) -> None:
        function = _get(fragment, "function")
        call_id = encodable(_get(fragment, "id") or _get(function, "id"))  # old llama.cpp: id in function
        name = encodable(_get(function, "name"))
        slot = self._slot_for(_get(fragment, "index"), call_id, name)
        if call_id and not slot.id:
            slot.id = call_id
        kind = _get(fragment, "type")
        if kind and not slot.type:
            slot.type = kind
        if name and not slot.name:
            slot.name = name
        args = _get(function, "arguments")
        if isinstance(args, str):
            slot.arguments += encodable(args)
        elif isinstance(args, dict):  # some servers send an object instead of JSON text
            slot.arguments += json.dumps(args)  # ensure_ascii: a surrogate becomes its escape

    def tool_calls(self) -> tuple[ToolCall, ...]:
        """The calls so far, with missing ids invented (``call_<n>``, unique in this turn)."""
        taken = {s.id for s in self._slots if s.id}
        calls = []
        for n, slot in enumerate(self._slots):
            call_id = slot.id
            if not call_id:
                call_id, k = f"call_{n}", n
                while call_id in taken:
                    k += len(self._slots)
                    call_id = f"call_{k}"
                taken.add(call_id)
            arguments = slot.arguments if slot.arguments.strip() else "{}"
            calls.append(ToolCall(call_id=call_id, name=slot.name or "", arguments=arguments))
        return tuple(calls)

    def result(self) -> TurnResult:
        """The turn's outcome. A stream that never said why it stopped was cut short: raise, and
        never run tools on arguments that may be partial."""
        meta = {"completion_id": self.completion_id, "finish_reason": self.finish_reason}
        reason = self.finish_reason
        if reason is None:
            raise ProviderError(TRUNCATED)
        calls = self.tool_calls()
        if reason in INCOMPLETE:
            return TurnResult(
                status="incomplete", text=self.text, usage=self.usage, error=INCOMPLETE[reason],
                error_code=reason, meta=meta,
            )
        if calls:  # "tool_calls", or "stop" from servers that say stop after calls (§4)
            return TurnResult(status="tool_calls", tool_calls=calls, text=self.text, usage=self.usage, meta=meta)
        return TurnResult(status="completed", text=self.text, usage=self.usage, meta=meta)
