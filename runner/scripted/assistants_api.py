"""``/v1/assistants`` and ``/v1/threads…``: the Assistants v2 state machine.

Each thread counts the turns it was served (runs + tool-output submissions). A run's outcome is
decided when it starts (the server "keeps generating" after a dropped stream), so ``retrieve``
after a drop sees what a real run would have reached. Enforced as OpenAI does: one active run per
thread, and every pending call answered exactly once in one ``submit_tool_outputs``.
"""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import assistants_wire as aw
from .conversation import content_text
from .engine import Engine, Reply, Turn, encode, prompt_tokens
from .faults import ActiveFaults, Fault
from .script import Conversation, PreparedTurn, ScriptError
from .quirks import iso_timestamps
from .wire import ApiError, Event, bad_request, new_id, not_found, now

if TYPE_CHECKING:
    from .server import RecordedRequest

POLL = {"openai-poll-after-ms": "20"}  # the SDK's poll helpers otherwise wait 1 s between polls


@dataclass
class RunState:
    run: dict
    tool_step: dict | None = None


@dataclass
class ThreadState:
    thread: dict
    messages: list[dict] = field(default_factory=list)
    runs: list[RunState] = field(default_factory=list)
    conversation: Conversation = field(default_factory=Conversation)
    turns: int = 0
    lock: threading.RLock = field(default_factory=threading.RLock)  # one thread's runs, in order


class AssistantsStore:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.assistants: dict[str, dict] = {}
        self.threads: dict[str, ThreadState] = {}
        self._lock = threading.Lock()  # the registries only; each thread has its own lock

    # --- assistants and threads -------------------------------------------------------------
    def create_assistant(self, body: dict, asst_id: str | None = None) -> dict:
        asst = aw.assistant_object(asst_id or new_id("asst_"), body, now(), self.engine.model(body))
        with self._lock:
            self.assistants[asst["id"]] = asst
        return asst

    def get_assistant(self, asst_id: str) -> dict:
        with self._lock:
            if asst_id not in self.assistants:
                raise not_found(f"No assistant found with id '{asst_id}'.")
            return self.assistants[asst_id]

    def delete(self, kind: str, object_id: str) -> dict:
        """DELETE /assistants/{id} or /threads/{id} (clients clean up what they created)."""
        registry = self.assistants if kind == "assistant" else self.threads
        with self._lock:
            if registry.pop(object_id, None) is None:
                raise not_found(f"No {kind} found with id '{object_id}'.")
        return {"id": object_id, "object": f"{kind}.deleted", "deleted": True}

    def create_thread(self, body: dict) -> dict:
        ts = self._new_thread(body)
        with self._lock:
            self.threads[ts.thread["id"]] = ts
        return ts.thread

    def _new_thread(self, body: dict) -> ThreadState:
        ts = ThreadState(aw.thread_object(new_id("thread_"), now(), body))
        for m in body.get("messages") or []:
            ts.messages.append(self._message(ts, m))
        return ts

    def _thread(self, tid: str) -> ThreadState:
        with self._lock:
            ts = self.threads.get(tid)
        if ts is None:
            raise not_found(f"No thread found with id '{tid}'.")
        return ts

    def get_thread(self, tid: str) -> dict:
        return self._thread(tid).thread

    def _message(self, ts: ThreadState, body: dict) -> dict:
        role = body.get("role")
        if role not in ("user", "assistant"):
            raise bad_request("Invalid value for 'role': expected 'user' or 'assistant'.", "role")
        content = body.get("content")
        if isinstance(content, str):
            parts = aw.text_content(content)
        elif isinstance(content, list):
            parts = [aw.text_content(p.get("text", ""))[0] if p.get("type") == "text" else p for p in content]
        else:
            raise bad_request("Missing required parameter: 'content'.", "content", "missing_required_parameter")
        return aw.message_object(new_id("msg_"), ts.thread["id"], role, parts, now(),
                                 attachments=body.get("attachments"), metadata=body.get("metadata"))

    def add_message(self, tid: str, body: dict) -> dict:
        ts = self._thread(tid)
        with ts.lock:
            active = self._active(ts)
            if active is not None:
                raise bad_request(f"Can't add messages to {tid} while a run {active.run['id']} is active.")
            msg = self._message(ts, body)
            ts.messages.append(msg)
            return msg

    def list_messages(self, tid: str, query: dict) -> dict:
        ts = self._thread(tid)
        with ts.lock:
            msgs = ts.messages
            if query.get("run_id"):
                msgs = [m for m in msgs if m["run_id"] == query["run_id"]]
            return _page(copy.deepcopy(msgs), query)

    # --- runs -------------------------------------------------------------------------------
    def create_run(self, req: "RecordedRequest", tid: str | None, body: dict, raw: bytes) -> Reply:
        if tid is None:  # POST /threads/runs: a new thread, announced by thread.created
            ts, new_thread = self._new_thread(body.get("thread") or {}), True
        else:
            ts, new_thread = self._thread(tid), False
        with ts.lock:
            if not new_thread:
                active = self._active(ts)
                if active is not None:
                    raise bad_request(f"Thread {tid} already has an active run {active.run['id']}.")
            asst_id = body.get("assistant_id")
            if not asst_id:
                raise bad_request("Missing required parameter: 'assistant_id'.", "assistant_id",
                                  "missing_required_parameter")
            assistant = self.get_assistant(asst_id)
            extra = [self._message(ts, m) for m in body.get("additional_messages") or []]
            conv = _conversation(ts, extra)
            turn, failure = self._begin(req, conv, ts.thread["id"])
            if new_thread:
                with self._lock:
                    self.threads[ts.thread["id"]] = ts
            ts.messages.extend(extra)
            run = aw.run_object(new_id("run_"), ts.thread["id"], assistant, body, now(), self.engine.run_ttl)
            if "no_expiry" in self.engine.quirks:
                run["expires_at"] = None
            rs = RunState(run)
            ts.runs.append(rs)
            leg = self._play(ts, rs, turn, failure, raw, first=True, thread=ts.thread if new_thread else None)
        return self._reply(body, leg, turn, rs)

    def submit(self, req: "RecordedRequest", tid: str, rid: str, body: dict, raw: bytes) -> Reply:
        ts = self._thread(tid)
        with ts.lock:
            rs = self._run(ts, rid)
            status = rs.run["status"]
            if status != "requires_action":
                raise bad_request(f'Runs in status "{status}" do not accept tool outputs.')
            pending = (rs.run["required_action"] or {}).get("submit_tool_outputs", {}).get("tool_calls") or (
                rs.tool_step["step_details"]["tool_calls"] if rs.tool_step else [])  # calls_in_steps_only
            outputs = _check_outputs(body.get("tool_outputs"), [c["id"] for c in pending])
            if "stuck_after_submit" in self.engine.quirks:  # the handler died half-way
                rs.run.update(status="in_progress", required_action=None)
                rs.tool_step = None
                raise ApiError(500, "Internal Server Error", type="server_error")
            conv = _conversation(ts)
            for cid, output in outputs:
                conv.answer(cid, output)
            turn, failure = self._begin(req, conv, tid)
            ts.conversation = conv
            step = copy.deepcopy(rs.tool_step)
            by_id = dict(outputs)
            for call in step["step_details"]["tool_calls"]:
                call["function"]["output"] = by_id[call["id"]]
            step.update(status="completed", completed_at=now(), usage={"prompt_tokens": 0, "completion_tokens": 0,
                                                                       "total_tokens": 0})
            leg = self._play(ts, rs, turn, failure, raw, first=False, done_step=step)
        return self._reply(body, leg, turn, rs, submit=True)

    def _begin(self, req, conv: Conversation, tid: str) -> tuple[Turn | None, Fault | None]:
        """The turn, or a failure to report as a failed run (the script has no turn)."""
        try:
            turn = self.engine.begin_turn(req, "assistants", conv, tid)
        except ScriptError as exc:
            return None, Fault(kind="terminal", terminal="failed", message=exc.message)
        if turn.raw is not None:
            return None, Fault(kind="terminal", terminal="failed", message="a RawSSE turn cannot answer a run")
        return turn, None

    def _play(self, ts: ThreadState, rs: RunState, turn: Turn | None, failure: Fault | None, raw: bytes,
              **kw) -> aw.Leg:
        ts.turns += 1
        faults = turn.faults if turn else None
        item = turn.item if turn else None
        leg = aw.leg(rs.run, item if isinstance(item, PreparedTurn) else None, now=now(),
                     chunk_arguments=self.engine.chunk_arguments, prompt_tokens=prompt_tokens(raw),
                     terminal=faults.terminal if faults else "failed",
                     fault=(faults.terminal_fault if faults else None) or failure, quirks=self.engine.quirks, **kw)
        rs.run, rs.tool_step = leg.run, leg.tool_step
        error = faults.error_event if faults else None
        if error is not None:  # the stream stops with an error event: the run failed
            rs.run.update(status="failed", failed_at=now(), required_action=None,
                          last_error={"code": error.code, "message": error.message})
            rs.tool_step = None
        elif leg.message is not None:
            ts.messages.append(leg.message)
        if rs.tool_step is not None:
            for c in rs.tool_step["step_details"]["tool_calls"]:
                ts.conversation.add_call(c["id"], c["function"]["name"], c["function"]["arguments"])
        return leg

    def _reply(self, body: dict, leg: aw.Leg, turn: Turn | None, rs: RunState, submit: bool = False) -> Reply:
        faults = turn.faults if turn else ActiveFaults()
        events = leg.events
        if "iso_timestamps" in self.engine.quirks:
            events = [Event(iso_timestamps(e.data), e.name) for e in events]
        json_instead = submit and "submit_answers_json" in self.engine.quirks
        if body.get("stream") and not json_instead:
            return Reply(events=encode(events), faults=faults, turn=True,
                         error_events=lambda f, sent: encode(aw.error_events(f)))
        first = next(e.data for e in leg.events if e.name in ("thread.run.queued", "thread.run.created"))
        return Reply(body=first, faults=faults, turn=True, headers=dict(POLL))

    def _active(self, ts: ThreadState) -> RunState | None:
        for rs in ts.runs:
            self._refresh(rs)
            if rs.run["status"] in aw.ACTIVE:
                return rs
        return None

    def _refresh(self, rs: RunState) -> None:
        """Time passes for a run between requests: a cancel completes, a deadline expires."""
        run = rs.run
        if run["status"] == "cancelling":
            run.update(status="cancelled", cancelled_at=now(), expires_at=None)
        elif run["status"] == "requires_action" and run["expires_at"] and time.time() > run["expires_at"]:
            run.update(status="expired", required_action=None)
            rs.tool_step = None

    def _run(self, ts: ThreadState, rid: str) -> RunState:
        for rs in ts.runs:
            if rs.run["id"] == rid:
                self._refresh(rs)
                return rs
        raise not_found(f"No run found with id '{rid}'.")

    def get_run(self, tid: str, rid: str) -> Reply:
        ts = self._thread(tid)
        with ts.lock:
            return Reply(body=copy.deepcopy(self._run(ts, rid).run), headers=dict(POLL))

    def list_runs(self, tid: str, query: dict) -> dict:
        ts = self._thread(tid)
        with ts.lock:
            for rs in ts.runs:
                self._refresh(rs)
            return _page([copy.deepcopy(rs.run) for rs in ts.runs], query)

    def cancel_run(self, tid: str, rid: str) -> Reply:
        ts = self._thread(tid)
        with ts.lock:
            rs = self._run(ts, rid)
            status = rs.run["status"]
            if status in ("queued", "in_progress", "requires_action"):
                rs.run.update(status="cancelling", required_action=None)
                rs.tool_step = None
            elif status != "cancelled":
                raise bad_request(f"Cannot cancel run with status '{status}'.")
            return Reply(body=copy.deepcopy(rs.run), headers=dict(POLL))


def _conversation(ts: ThreadState, extra: list[dict] = ()) -> Conversation:
    """The thread's conversation as the next turn sees it (not stored until the turn is played)."""
    conv = ts.conversation.copy()
    conv.turn_index = ts.turns
    users = [m for m in [*ts.messages, *extra] if m["role"] == "user"]
    conv.user_message = content_text(users[-1]["content"]) if users else None
    return conv


def _check_outputs(outputs: object, expected: list[str]) -> list[tuple[str, str]]:
    """Every pending call id answered exactly once, outputs as strings (docs/protocols.md §1.8 G12)."""
    if not isinstance(outputs, list) or not outputs:
        raise bad_request("Missing required parameter: 'tool_outputs'.", "tool_outputs", "missing_required_parameter")
    pairs = []
    for i, o in enumerate(outputs):
        cid = o.get("tool_call_id") if isinstance(o, dict) else None
        if not isinstance(cid, str):
            raise bad_request(f"Missing required parameter: 'tool_outputs[{i}].tool_call_id'.",
                              f"tool_outputs[{i}].tool_call_id", "missing_required_parameter")
        out = o.get("output")
        if not isinstance(out, str):
            raise bad_request(f"Invalid type for 'tool_outputs[{i}].output': expected a string, but got "
                              f"{type(out).__name__} instead.", f"tool_outputs[{i}].output", "invalid_type")
        pairs.append((cid, out))
    ids = [cid for cid, _ in pairs]
    duplicates = sorted({cid for cid in ids if ids.count(cid) > 1})
    if duplicates:
        raise bad_request(f"Duplicate tool outputs for call_ids {duplicates}: submit one output per call.",
                          "tool_outputs")
    if set(ids) != set(expected):
        raise bad_request(f"Expected tool outputs for call_ids {expected}, got {ids}. All outputs must be "
                          "submitted in a single request.", "tool_outputs")
    return pairs


def _page(items: list[dict], query: dict) -> dict:
    if str(query.get("order", "desc")) == "desc":
        items = items[::-1]
    after = query.get("after")
    if after:
        ids = [i["id"] for i in items]
        items = items[ids.index(after) + 1:] if after in ids else []
    try:
        limit = max(1, min(100, int(query.get("limit", 20))))
    except ValueError:
        raise ApiError(400, "Invalid 'limit': expected an integer.", param="limit") from None
    page = items[:limit]
    return {"object": "list", "data": page, "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None, "has_more": len(items) > limit}
