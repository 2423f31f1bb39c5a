"""Map raw Assistants run events to text deltas and one ``TurnResult`` (docs/protocols.md §1.3-§1.6).

Raw ``runs.create(stream=True)`` / ``runs.submit_tool_outputs(stream=True)`` events, not the
helpers: the helpers swallow ``error`` events and raise raw transport errors (§1.8 G5, G6). Tool
calls are read from ``thread.run.requires_action`` itself (G2), never from step deltas.

Events are ``{"event", "data"}`` dicts (``raw_stream``) or SDK objects.
"""

from __future__ import annotations

from typing import Any

from runner.events import TextDelta
from runner.calls import ToolCall
from runner.providers.base import TurnResult
from runner.providers.common import as_dict, get_field, normalize_usage
from runner.textsafe import encodable, encodable_value

TERMINAL = ("completed", "failed", "cancelled", "expired", "incomplete")
ENDS_LEG = TERMINAL + ("requires_action",)
ACTIVE = ("queued", "in_progress", "cancelling")
EXPIRED = "the run expired (Assistants runs must finish, tool outputs included, within ~10 min of creation)"


def result_from_run(run: Any, *, text: str = "", thread_id: str | None = None) -> TurnResult:
    """The turn's outcome from a Run object in a final state (or ``requires_action``)."""
    run = encodable_value(as_dict(run))
    status = run.get("status")
    meta = {"run_id": run.get("id"), "thread_id": run.get("thread_id") or thread_id,
            "assistant_id": run.get("assistant_id"), "expires_at": run.get("expires_at")}
    usage = normalize_usage(run.get("usage"))
    if status == "requires_action":
        action = as_dict(run.get("required_action"))
        raw = as_dict(action.get("submit_tool_outputs")).get("tool_calls") or []
        calls = tuple(
            ToolCall(
                call_id=c.get("id") or "",
                name=as_dict(c.get("function")).get("name") or "",
                arguments=as_dict(c.get("function")).get("arguments") or "{}",
            )
            for c in map(as_dict, raw)
            if c.get("type", "function") == "function"
        )
        if not calls:
            return TurnResult(status="failed", text=text, usage=usage, meta=meta,
                              error=f"the run requires an action flowrun cannot take ({action.get('type')})")
        return TurnResult(status="tool_calls", tool_calls=calls, text=text, usage=usage, meta=meta)
    if status == "completed":
        return TurnResult(status="completed", text=text, usage=usage, meta=meta)
    if status == "failed":
        err = as_dict(run.get("last_error"))
        return TurnResult(status="failed", text=text, usage=usage, meta=meta,
                          error=err.get("message") or "the run failed", error_code=err.get("code"))
    if status == "incomplete":
        reason = as_dict(run.get("incomplete_details")).get("reason")
        return TurnResult(status="incomplete", text=text, usage=usage, meta=meta, error_code=reason,
                          error=f"the run is incomplete ({reason or 'no reason given'})")
    if status == "expired":
        return TurnResult(status="expired", text=text, usage=usage, meta=meta, error=EXPIRED, error_code="expired")
    if status == "cancelled":
        return TurnResult(status="cancelled", text=text, usage=usage, meta=meta, error="the run was cancelled")
    return TurnResult(status="failed", text=text, usage=usage, meta=meta,
                      error=f"the run ended in an unexpected state: {status}")


def message_text(message: Any) -> str:
    """The text of a complete Message (text and refusal blocks)."""
    parts = []
    for block in as_dict(message).get("content") or ():
        block = as_dict(block)
        if block.get("type") == "text":
            parts.append(as_dict(block.get("text")).get("value") or "")
        elif block.get("type") == "refusal":
            parts.append(block.get("refusal") or "")
    return encodable("".join(parts))


class RunStreamMapper:
    """Feed every event of one leg; ``finished`` once the run stopped or needs tool outputs."""

    def __init__(self, thread_id: str | None = None) -> None:
        self.thread_id = thread_id
        self.run: dict[str, Any] = {}
        self.text = ""
        self.error: tuple[str | None, str] | None = None
        self._streamed: dict[str, str] = {}  # message id -> text already emitted

    @property
    def run_id(self) -> str | None:
        return self.run.get("id")

    @property
    def status(self) -> str | None:
        return self.run.get("status")

    @property
    def finished(self) -> bool:
        return self.error is not None or self.status in ENDS_LEG

    def feed(self, event: Any) -> list[TextDelta]:
        name = get_field(event, "event") or ""
        data = get_field(event, "data")
        if name.startswith("thread.run.") and not name.startswith("thread.run.step"):
            self.run = encodable_value(as_dict(data))  # its ids go into request paths
        elif name == "thread.message.delta":
            return self._delta(data)
        elif name == "thread.message.completed":
            return self._completed(data)
        elif name == "error":
            err = as_dict(data)
            self.error = (encodable(err.get("code")), encodable(err.get("message")) or "the server reported an error")
        return []  # steps, message lifecycle and unknown events carry nothing we need

    def _emit(self, message_id: str, piece: str) -> list[TextDelta]:
        piece = encodable(piece)
        if not piece:
            return []
        self._streamed[message_id] = self._streamed.get(message_id, "") + piece
        self.text += piece
        return [TextDelta(piece)]

    def _delta(self, data: Any) -> list[TextDelta]:
        data = as_dict(data)
        events: list[TextDelta] = []
        for block in as_dict(data.get("delta")).get("content") or ():
            block = as_dict(block)
            if block.get("type") == "text":
                events += self._emit(data.get("id") or "", as_dict(block.get("text")).get("value") or "")
            elif block.get("type") == "refusal":
                events += self._emit(data.get("id") or "", block.get("refusal") or "")
        return events

    def _completed(self, message: Any) -> list[TextDelta]:
        """Servers that send whole messages without deltas: emit what was not streamed."""
        message = as_dict(message)
        full = message_text(message)
        seen = self._streamed.get(message.get("id") or "", "")
        return self._emit(message.get("id") or "", full[len(seen):] if full.startswith(seen) else "")

    def result(self) -> TurnResult:
        if self.error is not None:
            code, message = self.error
            return TurnResult(status="failed", text=self.text, error=message, error_code=code,
                              meta={"run_id": self.run_id, "thread_id": self.thread_id})
        return result_from_run(self.run, text=self.text, thread_id=self.thread_id)
