"""A loopback HTTP server that replays canned responses, in order, and records every request.

Used by the provider tests to drive the real ``openai`` SDK (httpx2, SSE decoding, error classes)
without any network beyond 127.0.0.1. Streams are sent with chunked encoding so that a dropped
connection looks like a real cut (an incomplete body), not a clean end.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterable
from urllib.parse import parse_qs, urlsplit


@dataclass
class Canned:
    """One response. ``drop_after``: close the socket after that many body bytes, without ending
    the chunked body. ``stall``: seconds to wait after ``stall_after`` body bytes. ``hangup``:
    close the connection without sending any response at all."""

    status: int = 200
    body: bytes | str = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "text/event-stream"
    drop_after: int | None = None
    stall: float = 0.0
    stall_after: int = 0
    hangup: bool = False


@dataclass
class Recorded:
    method: str
    path: str  # without the query string
    query: dict[str, list[str]]
    headers: dict[str, str]
    raw: bytes
    body: Any  # parsed JSON, or None


def sse(*events: tuple[str | None, Any], done: bool = False) -> bytes:
    """Server-sent events from (event name or None, data) pairs; data that is not a str is JSON."""
    out = []
    for name, data in events:
        text = data if isinstance(data, str) else json.dumps(data)
        out.append((f"event: {name}\n" if name else "") + f"data: {text}\n\n")
    if done:
        out.append("data: [DONE]\n\n")
    return "".join(out).encode()


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Canned:
    return Canned(status=status, body=json.dumps(obj), headers=headers or {}, content_type="application/json")


def error_response(status: int, message: str, *, code: str | None = None, type_: str = "error",
                   headers: dict[str, str] | None = None) -> Canned:
    return json_response({"error": {"message": message, "type": type_, "code": code, "param": None}}, status, headers)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # small SSE writes must not wait for delayed ACKs
    server: "_Server"

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        url = urlsplit(self.path)
        self.server.owner._record(
            Recorded(self.command, url.path, parse_qs(url.query), dict(self.headers.items()), raw, body)
        )
        canned = self.server.owner._next()
        if canned.hangup:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        data = canned.body.encode() if isinstance(canned.body, str) else canned.body
        self.send_response(canned.status)
        self.send_header("content-type", canned.content_type)
        for k, v in canned.headers.items():
            self.send_header(k, v)
        streaming = canned.content_type == "text/event-stream"
        if not streaming:
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        limit = len(data) if canned.drop_after is None else min(canned.drop_after, len(data))
        pos = 0
        if canned.stall:
            self._chunk(data[: canned.stall_after])
            pos = canned.stall_after
            time.sleep(canned.stall)
        self._chunk(data[pos:limit])
        if canned.drop_after is not None:
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.wfile.write(b"0\r\n\r\n")

    def _chunk(self, piece: bytes) -> None:
        if piece:
            self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            self.wfile.flush()

    do_GET = do_POST = do_DELETE = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: "ReplayServer"

    def handle_error(self, request: Any, client_address: Any) -> None:  # a client that hung up
        pass


class ReplayServer:
    """``with ReplayServer([Canned(...), ...]) as s: ... s.base_url ... s.requests``. A request
    with nothing left to serve gets a 500 whose message says so."""

    def __init__(self, responses: Iterable[Canned] = ()):
        self._queue = list(responses)
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def add(self, *responses: Canned) -> None:
        with self._lock:
            self._queue.extend(responses)

    @property
    def remaining(self) -> int:
        return len(self._queue)

    def _record(self, rec: Recorded) -> None:
        with self._lock:
            self.requests.append(rec)

    def _next(self) -> Canned:
        with self._lock:
            if self._queue:
                return self._queue.pop(0)
        return error_response(500, "sse_replay: no canned response left for this request")

    def __enter__(self) -> "ReplayServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
