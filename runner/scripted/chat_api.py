"""``POST /v1/chat/completions``: stateless; the turn is the number of assistant messages sent."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from . import chat_wire
from .conversation import chat_conversation
from .engine import Engine, Reply, encode, prompt_tokens, raw_only_streams
from .wire import new_id, now

if TYPE_CHECKING:
    from .server import RecordedRequest

FINGERPRINT = "fp_" + new_id("", 10, hex_only=True)


def create(engine: Engine, req: "RecordedRequest", body: dict, raw_body: bytes) -> Reply:
    conv = chat_conversation(body)
    key = hashlib.sha1(raw_body).hexdigest()  # a retry re-sends the same body
    turn = engine.begin_turn(req, "chat", conv, key)
    stream = bool(body.get("stream"))
    if turn.raw is not None:
        if not stream:
            raise raw_only_streams("chat")
        return Reply(events=turn.raw.events(), faults=turn.faults, turn=True, error_events=_error_events)
    meta = chat_wire.ChatMeta(new_id("chatcmpl-", 29), now(), engine.model(body), FINGERPRINT,
                              prompt_tokens(raw_body))
    terminal = turn.faults.terminal
    if not stream:
        return Reply(body=chat_wire.completion(turn.item, meta, terminal=terminal), faults=turn.faults, turn=True)
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    events = chat_wire.chunks(turn.item, meta, include_usage=include_usage,
                              chunk_arguments=engine.chunk_arguments, terminal=terminal)
    return Reply(events=encode(events), faults=turn.faults, turn=True, error_events=_error_events)


def _error_events(fault, sent: int) -> list[bytes]:
    return encode(chat_wire.error_event(fault))

