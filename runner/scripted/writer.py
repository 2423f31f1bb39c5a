"""Writing one Reply to the socket: a JSON body, or a chunked SSE stream with the attempt's
faults (drop, stall, garbage, error event) and the server's latency applied."""

from __future__ import annotations

import socket
import time
from typing import TYPE_CHECKING

from .engine import Reply
from .faults import Fault
from .wire import dumps, new_id

if TYPE_CHECKING:
    from .server import ScriptedServer, _Handler


class _Aborted(Exception):
    """The stream was cut on purpose (drop_after) or the client went away."""


class Writer:
    """Writes one Reply: a JSON body, or a chunked SSE stream with faults and latency applied."""

    def __init__(self, server: ScriptedServer, handler: _Handler):
        self.server = server
        self.h = handler

    def send(self, reply: Reply) -> None:
        try:
            if reply.events is None:
                self._send_body(reply)
            else:
                self._send_stream(reply)
        except (_Aborted, OSError):
            self.h.close_connection = True
            try:
                self.h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _head(self, status: int, content_type: str, headers: dict[str, str], extra: dict[str, str]) -> None:
        self.h.send_response(status)
        self.h.send_header("content-type", content_type)
        self.h.send_header("x-request-id", new_id("req_", 32, hex_only=True))
        self.h.send_header("openai-version", "2020-10-01")
        for k, v in {**extra, **headers}.items():
            self.h.send_header(k, v)
        self.h.end_headers()

    def _send_body(self, reply: Reply) -> None:
        data = reply.body if isinstance(reply.body, bytes) else (
            reply.body.encode() if isinstance(reply.body, str) else dumps(reply.body).encode())
        if reply.turn and self.server.latency_per_turn:
            self._sleep(self.server.latency_per_turn)
        for f in reply.faults.stream_faults():
            if f.kind == "stall":
                self._sleep(f.seconds)
            elif f.kind == "bad_json":
                data = b'{"id": "chatcmpl-broken", "choices": [{"index": 0, '
            elif f.kind == "drop_after":  # no answer at all, or a body cut short
                if f.partial_bytes:
                    self._head(reply.status, "application/json", reply.headers, {"content-length": str(len(data))})
                    self.h.wfile.write(data[: f.partial_bytes])
                raise _Aborted()
        self._head(reply.status, "application/json", reply.headers, {"content-length": str(len(data))})
        self.h.wfile.write(data)

    def _send_stream(self, reply: Reply) -> None:
        self._head(reply.status, "text/event-stream; charset=utf-8", reply.headers,
                   {"transfer-encoding": "chunked", "cache-control": "no-cache", "connection": "keep-alive"})
        faults = reply.faults.stream_faults()
        if reply.turn and self.server.latency_per_turn:
            self._sleep(self.server.latency_per_turn)
        events = reply.events or []
        n = len(events)
        finished = False

        def finish(whole: bool) -> None:
            nonlocal finished
            if not finished and reply.on_finish is not None:
                reply.on_finish(whole)
            finished = True

        try:
            for i in range(n + 1):
                event = events[i] if i < n else None
                for f in [f for f in faults if f.after == i]:
                    if self._inject(f, i, event, reply):
                        return
                if event is None or (reply.should_stop is not None and reply.should_stop()):
                    break
                if i and self.server.latency_per_event:
                    self._sleep(self.server.latency_per_event)
                if i == n - 1 and not any(f.after == n for f in faults):
                    # State first (a client may GET right after), then the last event and the end of
                    # the body in one write, so the client's pool can reuse the connection.
                    finish(True)
                    self._chunk(event, end=True)
                    return
                self._chunk(event)
            finish(True)
        finally:
            finish(False)
        self._end()

    def _inject(self, f: Fault, sent: int, event: bytes | None, reply: Reply) -> bool:
        """Apply one stream fault before event number ``sent``; True when the stream is over."""
        if f.kind == "drop_after":
            if f.partial_bytes and event:
                self._chunk(event[: f.partial_bytes])
            raise _Aborted()
        if f.kind == "stall":
            deadline = time.monotonic() + f.seconds
            while not self.server._stopping.is_set() and time.monotonic() < deadline:
                step = min(f.keepalive or f.seconds, deadline - time.monotonic())
                if self._sleep(max(0.0, step)) and f.keepalive:
                    self._chunk(b": keepalive\n\n")
            return False
        if f.kind == "bad_json":
            self._chunk(b'data: {"id": "broken", "choices": [{"index": 0, "delta": {"content": "x\n\n')
            return False
        if f.kind == "error_event" and reply.error_events is not None:
            for e in reply.error_events(f, sent):
                self._chunk(e)
            self._end()
            return True
        return False

    def _chunk(self, data: bytes, *, end: bool = False) -> None:
        self.h.wfile.write(b"%x\r\n%s\r\n%s" % (len(data), data, b"0\r\n\r\n" if end else b""))

    def _end(self) -> None:
        self.h.wfile.write(b"0\r\n\r\n")

    def _sleep(self, seconds: float) -> bool:
        """Sleep unless the server is stopping; True when the full time passed."""
        return not self.server._stopping.wait(seconds)
