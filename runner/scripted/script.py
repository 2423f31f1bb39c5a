"""Which turn the scripted model plays, and that turn made concrete (ids, JSON, rendered text).

The turn index always comes from the conversation a request carries (messages, response chain,
thread), never from a global counter, so any number of conversations can share one server.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence, Union

from runner.templating import MISSING, Reference, TemplateError, lookup, render_string, to_text
from runner.workflow.model import ScriptedCall, ScriptedTurn

from .wire import ApiError, new_id

if TYPE_CHECKING:
    from .server import RecordedRequest


_AFTER_BLANK_LINE = re.compile(rb"(?<=\n\n)|(?<=\r\n\r\n)|(?<=\r\r)")


@dataclass(frozen=True)
class RawSSE:
    """A recorded SSE body served byte for byte (meant for ``/chat/completions``)."""

    body: bytes

    def events(self) -> list[bytes]:
        """The body cut after each blank line (pieces join back to the exact bytes), so stream
        faults can count events."""
        return [p for p in _AFTER_BLANK_LINE.split(self.body) if p]


@dataclass
class CallResult:
    """A tool call the model made in this conversation and the output the client sent back."""

    call_id: str
    name: str | None
    arguments: str | None = None
    output: str | None = None


@dataclass
class Conversation:
    """What the server knows of one conversation when a request arrives."""

    turn_index: int = 0
    user_message: str | None = None
    calls: dict[str, CallResult] = field(default_factory=dict)  # call_id -> call, creation order
    answered: list[str] = field(default_factory=list)  # call ids in the order outputs arrived

    def add_call(self, call_id: str, name: str | None, arguments: str | None) -> None:
        self.calls[call_id] = CallResult(call_id, name, arguments)

    def answer(self, call_id: str, output: str) -> None:
        call = self.calls.setdefault(call_id, CallResult(call_id, None))
        call.output = output
        self.answered.append(call_id)

    def pending(self) -> list[str]:
        return [cid for cid, c in self.calls.items() if c.output is None]

    def outputs(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for cid in self.answered:
            call = self.calls[cid]
            if call.name is not None and call.output is not None:
                out[call.name] = call.output
        return out

    def results(self) -> list[CallResult]:
        return [self.calls[cid] for cid in self.answered]

    def copy(self) -> "Conversation":
        calls = {k: CallResult(v.call_id, v.name, v.arguments, v.output) for k, v in self.calls.items()}
        return Conversation(self.turn_index, self.user_message, calls, list(self.answered))


@dataclass(frozen=True)
class TurnContext:
    """Given to a script function: where the conversation stands."""

    api: str  # chat | responses | assistants
    turn_index: int
    user_message: str | None
    outputs: dict[str, str]  # tool name -> latest output submitted in this conversation
    calls: list[CallResult]  # answered calls, in submission order (``.call_id``, ``.output``)
    request: "RecordedRequest | None" = None



ScriptItem = Union[ScriptedTurn, RawSSE]
ScriptSource = Union[Sequence[ScriptItem], Callable[[TurnContext], "ScriptItem | None"]]


class Script:
    """A fixed list of turns, or a function of the context."""

    def __init__(self, source: ScriptSource):
        if callable(source):
            self._fn: Callable[[TurnContext], Any] | None = source
            self._turns: tuple[ScriptItem, ...] = ()
        else:
            self._fn = None
            self._turns = tuple(source)
            for i, item in enumerate(self._turns):
                if not isinstance(item, (ScriptedTurn, RawSSE)):
                    raise TypeError(f"script item {i} is {type(item).__name__}, not ScriptedTurn or RawSSE")

    def pick(self, ctx: TurnContext) -> ScriptItem:
        """The turn to play, or ApiError(500) naming the missing turn."""
        if self._fn is None:
            if ctx.turn_index < len(self._turns):
                return self._turns[ctx.turn_index]
            raise script_error(
                f"scripted model has no turn {ctx.turn_index} (the script has {len(self._turns)} turns)"
            )
        try:
            item = self._fn(ctx)
        except Exception as exc:  # the script is test code: report, don't crash the server
            raise script_error(f"scripted model function raised {type(exc).__name__}: {exc}") from exc
        if item is None:
            raise script_error(f"scripted model has no turn {ctx.turn_index} (the script function returned None)")
        if not isinstance(item, (ScriptedTurn, RawSSE)):
            raise script_error(f"scripted model function returned {type(item).__name__}, not ScriptedTurn")
        return item


class ScriptError(ApiError):
    """The script has no answer for this turn (exhausted, or its function failed)."""


def script_error(message: str) -> ScriptError:
    return ScriptError(500, message, type="server_error", headers={"x-should-retry": "false"})


@dataclass(frozen=True)
class PreparedCall:
    call_id: str  # call_…: what the client echoes back
    item_id: str  # fc_…: the Responses output item id
    name: str
    arguments: str  # JSON text (or a raw, possibly invalid, string)


@dataclass(frozen=True)
class PreparedTurn:
    """A ScriptedTurn with ids chosen and text rendered: what every wire builder consumes."""

    text: str | None
    calls: tuple[PreparedCall, ...]


def arguments_text(call: ScriptedCall) -> str:
    if isinstance(call.arguments, str):
        return call.arguments
    return json.dumps(call.arguments, ensure_ascii=False)


def prepare_turn(turn: ScriptedTurn, outputs: dict[str, str]) -> PreparedTurn:
    calls = tuple(
        PreparedCall(new_id("call_"), new_id("fc_", 48, hex_only=True), c.name, arguments_text(c))
        for c in turn.tool_calls
    )
    text = None if turn.text is None else render_text(turn.text, outputs)
    if text is None and not calls:
        text = ""
    return PreparedTurn(text, calls)


def render_text(text: str, outputs: dict[str, str]) -> str:
    """Fill ``${{ outputs.TOOL }}`` (and ``${{ outputs.TOOL.field }}`` for JSON outputs). A tool
    with no output yet becomes a visible marker instead of failing the turn."""

    def missing(ref: Reference) -> str:
        if ref.context == "outputs" and len(ref.path) > 1 and ref.name in outputs:
            inner = Reference("outputs", ref.path[1:], ref.text, 0)
            try:
                value = lookup(inner, {"outputs": json.loads(outputs[ref.name])})
            except (ValueError, TypeError):
                value = MISSING
            if value is not MISSING:
                return to_text(value)
        return f"<no output for {ref}>"

    try:
        return render_string(text, {"outputs": outputs}, missing=missing)
    except TemplateError:
        return text
