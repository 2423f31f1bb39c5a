"""The part every API handler shares: turning a conversation into a turn to play (with the faults
that fire on this attempt), and the Reply a handler gives back to the HTTP layer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Union

from .faults import ActiveFaults, Fault, FaultBook
from .script import Conversation, PreparedTurn, RawSSE, Script, TurnContext, prepare_turn
from .wire import ApiError, Event, estimate_tokens

if TYPE_CHECKING:
    from .server import RecordedRequest


class FaultReply(Exception):
    """An ``http_error`` fault fired: answer with it before touching any state, so the retry
    sees the same turn."""

    def __init__(self, fault: Fault):
        super().__init__(fault.kind)
        self.fault = fault


@dataclass
class Reply:
    """What a handler answers. Exactly one of ``body`` (JSON or bytes) and ``events`` is used."""

    status: int = 200
    body: Any = None
    events: list[bytes] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    faults: ActiveFaults = field(default_factory=ActiveFaults)
    turn: bool = False  # a model turn: latency_per_turn applies
    error_events: Callable[[Fault, int], list[bytes]] | None = None  # for error_event faults
    on_finish: Callable[[bool], None] | None = None  # called with True when the stream was sent whole
    should_stop: Callable[[], bool] | None = None  # checked between events (cancelled responses)


def encode(events: list[Event]) -> list[bytes]:
    return [e.encode() for e in events]


@dataclass(frozen=True)
class Turn:
    item: Union[PreparedTurn, RawSSE]
    faults: ActiveFaults
    context: TurnContext

    @property
    def raw(self) -> RawSSE | None:
        return self.item if isinstance(self.item, RawSSE) else None


class Engine:
    """Script, faults and stream settings, shared by the three API handlers."""

    def __init__(self, script: Script, faults: FaultBook, *, chunk_arguments: int, model_name: str,
                 run_ttl: int, quirks: frozenset[str] = frozenset()):
        self.script = script
        self.faults = faults
        self.chunk_arguments = chunk_arguments
        self.model_name = model_name
        self.run_ttl = run_ttl
        self.quirks = quirks  # protocol shapes of real servers (quirks.py)

    def begin_turn(self, req: "RecordedRequest", api: str, conv: Conversation, key: Any) -> Turn:
        """Pick the turn for this conversation. Raises FaultReply (http_error fault) or ApiError
        (script exhausted) before anything is stored."""
        req.turn_index = conv.turn_index
        active = self.faults.fire(api, conv.turn_index, req.path, key)
        if active.http_error is not None:
            raise FaultReply(active.http_error)
        ctx = TurnContext(api, conv.turn_index, conv.user_message, conv.outputs(), conv.results(), req)
        item = self.script.pick(ctx)
        if isinstance(item, RawSSE):
            return Turn(item, active, ctx)
        return Turn(prepare_turn(item, ctx.outputs), active, ctx)

    def plain_faults(self, req: "RecordedRequest", api: str) -> ActiveFaults:
        """Faults for a request that carries no turn (only those with ``match``)."""
        active = self.faults.fire(api, None, req.path, None)
        if active.http_error is not None:
            raise FaultReply(active.http_error)
        return active

    def model(self, body: dict) -> str:
        return self.model_name or str(body.get("model") or "scripted")


def prompt_tokens(raw_body: bytes) -> int:
    return estimate_tokens(raw_body.decode("utf-8", "replace"))


def raw_only_streams(api: str) -> ApiError:
    return ApiError(500, f"a RawSSE turn can only answer a streaming {api} request",
                    type="server_error", headers={"x-should-retry": "false"})
