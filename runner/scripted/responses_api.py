"""``/v1/responses``: create (stateful through ``previous_response_id`` or stateless replay),
retrieve (with ``stream=true&starting_after=N`` replay of background streams) and cancel."""

from __future__ import annotations

import copy
import hashlib
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import responses_wire
from .conversation import responses_conversation
from .quirks import untyped_items
from .engine import Engine, Reply, encode, prompt_tokens, raw_only_streams
from .script import Conversation
from .wire import ApiError, bad_request, new_id, not_found, now

if TYPE_CHECKING:
    from .server import RecordedRequest


@dataclass
class Stored:
    response: dict  # what GET returns now
    final: dict  # what it becomes once its stream has been sent
    conversation: Conversation  # after this turn, its calls pending
    background: bool
    events: list[tuple[int, bytes]] = field(default_factory=list)  # kept for background streams only
    finished: bool = True


class ResponsesStore:
    def __init__(self, engine: Engine):
        self.engine = engine
        self._items: dict[str, Stored] = {}
        self._lock = threading.Lock()

    def create(self, req: "RecordedRequest", body: dict, raw_body: bytes) -> Reply:
        _check_tools(body.get("tools"))
        if "typed_input_items" in self.engine.quirks and untyped_items(body):  # llama.cpp's answer
            raise bad_request("Cannot determine type of 'item'", "input")
        previous = None
        prev_id = body.get("previous_response_id")
        if prev_id is not None:
            with self._lock:
                stored = self._items.get(prev_id)
            if stored is None:
                raise bad_request(f"Previous response with id '{prev_id}' not found.", "previous_response_id",
                                  "previous_response_not_found")
            previous = stored.conversation
        conv = responses_conversation(body, previous)
        store = body.get("store", True) is not False
        background = bool(body.get("background"))
        stream = bool(body.get("stream"))
        if background and not store:
            raise bad_request("Background mode requires store=true.", "store")
        turn = self.engine.begin_turn(req, "responses", conv, hashlib.sha1(raw_body).hexdigest())
        if turn.raw is not None:
            if not stream:
                raise raw_only_streams("responses")
            return Reply(events=turn.raw.events(), faults=turn.faults, turn=True, error_events=_error_events)
        resp_id = new_id("resp_", 48, hex_only=True)
        skeleton = responses_wire.response_object(resp_id=resp_id, created_at=now(), model=self.engine.model(body),
                                                  body=body, status="in_progress")
        events, final = responses_wire.events(
            turn.item, skeleton, message_id=new_id("msg_", 48, hex_only=True), input_tokens=prompt_tokens(raw_body),
            chunk_arguments=self.engine.chunk_arguments, terminal=turn.faults.terminal,
            fault=turn.faults.terminal_fault)
        encoded = replay = encode(events)
        failure = turn.faults.error_event
        if failure is not None:  # the stream will stop with an error event: the response failed
            final = dict(final, status="failed", error={"code": failure.code, "message": failure.message})
            replay = encoded[: failure.after] + _error_events(failure, failure.after)
        after = conv.copy()
        after.turn_index = conv.turn_index
        for item in final["output"]:
            if item["type"] == "function_call":
                after.add_call(item["call_id"], item["name"], item["arguments"])
        first = events[0].data["response"]
        live = background and stream
        record = Stored(response=copy.deepcopy(first) if live else final, final=final, conversation=after,
                        background=background, finished=not live)
        if live:
            record.events = list(enumerate(replay))
        if store:
            with self._lock:
                self._items[resp_id] = record
        if not stream:
            return Reply(body=first if background else final, faults=turn.faults, turn=True)
        return Reply(events=encoded, faults=turn.faults, turn=True, error_events=_error_events,
                     on_finish=lambda whole: self._finish(record), should_stop=lambda: _cancelled(record))

    def _finish(self, record: Stored) -> None:
        with self._lock:
            if record.response.get("status") != "cancelled":
                record.response = record.final
            record.finished = True

    def retrieve(self, resp_id: str, query: dict) -> Reply:
        with self._lock:
            record = self._items.get(resp_id)
            if record is None:
                raise not_found(f"Response with id '{resp_id}' not found.")
            response = copy.deepcopy(record.response)
        if str(query.get("stream", "")).lower() != "true":
            return Reply(body=response)
        if not record.events:
            raise bad_request(f"Response '{resp_id}' cannot be streamed: only responses created with "
                              "background=true and stream=true can be.", "stream")
        try:
            start = int(query.get("starting_after", -1))
        except ValueError:
            raise bad_request("Invalid 'starting_after': expected an integer.", "starting_after") from None
        events = [e for seq, e in record.events if seq > start]
        return Reply(events=events, error_events=_error_events)

    def delete(self, resp_id: str) -> dict:
        with self._lock:
            if self._items.pop(resp_id, None) is None:
                raise not_found(f"Response with id '{resp_id}' not found.")
        return {"id": resp_id, "object": "response", "deleted": True}

    def cancel(self, resp_id: str) -> Reply:
        with self._lock:
            record = self._items.get(resp_id)
            if record is None:
                raise not_found(f"Response with id '{resp_id}' not found.")
            if not record.background:
                raise bad_request("Only responses created with background=true can be cancelled.")
            status = record.response.get("status")
            if status in ("queued", "in_progress"):
                record.response = dict(record.response, status="cancelled")
            elif status != "cancelled":
                raise bad_request(f"Cannot cancel a response with status '{status}'.")
            return Reply(body=copy.deepcopy(record.response))


def _cancelled(record: Stored) -> bool:
    return record.response.get("status") == "cancelled"


def _check_tools(tools: object) -> None:
    if tools is None:
        return
    if not isinstance(tools, list):
        raise bad_request("Invalid type for 'tools': expected an array.", "tools")
    for i, tool in enumerate(tools):
        if isinstance(tool, dict) and tool.get("type") == "function" and not tool.get("name"):
            raise ApiError(400, f"Missing required parameter: 'tools[{i}].name'.", param=f"tools[{i}].name",
                           code="missing_required_parameter")


def _error_events(fault, sent: int) -> list[bytes]:
    return encode(responses_wire.error_event(fault, sent))
