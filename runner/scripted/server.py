"""ScriptedServer: an OpenAI-compatible loopback server whose model is a script.

One server answers Chat Completions, Responses and Assistants v2 at once, streaming real SSE
(chunked HTTP/1.1, keep-alive), so the ``openai`` SDK parses it as it parses OpenAI. It records
every request, injects faults (see faults.py) and can add latency, for tests, ``--offline`` demos
and benchmarks. A stdlib ThreadingHTTPServer in a daemon thread: one thread per connection.
"""

from __future__ import annotations

import json
import re
import socket
import sys
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Sequence
from urllib.parse import parse_qs, urlsplit

from . import chat_api
from .assistants_api import AssistantsStore
from .engine import Engine, FaultReply, Reply
from .faults import Fault, FaultBook
from .quirks import check_quirks, iso_timestamps
from .loopback import LoopbackServer
from .responses_api import ResponsesStore
from .script import Script, ScriptSource
from .wire import ApiError, error_body
from .writer import Writer


@dataclass
class RecordedRequest:
    method: str
    path: str  # without the query string, e.g. "/v1/threads/thread_x/runs"
    query: dict[str, Any]
    headers: dict[str, str]  # lower-case names
    body: Any  # parsed JSON, or None
    api: str  # chat | responses | assistants | "" (unknown route)
    turn_index: int | None = None
    time: float = field(default_factory=time.time)


def _api_of(path: str) -> str:
    if path.startswith("/v1/chat/"):
        return "chat"
    if path.startswith("/v1/responses"):
        return "responses"
    if path.startswith(("/v1/assistants", "/v1/threads")):
        return "assistants"
    return ""


class ScriptedServer(LoopbackServer):
    """``with ScriptedServer(turns) as server: OpenAI(base_url=server.base_url, api_key="x")``."""

    def __init__(self, script: ScriptSource, *, latency_per_event: float = 0.0, latency_per_turn: float = 0.0,
                 faults: Sequence[Fault] = (), chunk_arguments: int = 3, model_name: str | None = "scripted",
                 run_ttl: int = 600, quirks: Sequence[str] = ()):
        self.latency_per_event = latency_per_event
        self.latency_per_turn = latency_per_turn
        self.engine = Engine(Script(script), FaultBook(tuple(faults)), chunk_arguments=max(1, chunk_arguments),
                             model_name=model_name or "", run_ttl=run_ttl, quirks=check_quirks(quirks))
        self.responses = ResponsesStore(self.engine)
        self.assistants = AssistantsStore(self.engine)
        self._requests: list[RecordedRequest] = []
        self.errors: list[str] = []  # unexpected exceptions inside the server (answered as HTTP 500)
        super().__init__()
        self._connections: set[socket.socket] = set()
        self._routes = self._route_table()

    # --- lifecycle (start, stop, with, port: LoopbackServer) -------------------------------
    thread_name = "scripted-model-server"

    def _make_httpd(self) -> ThreadingHTTPServer:
        httpd = _HTTPServer(("127.0.0.1", self._next_port), _Handler)
        httpd.scripted = self
        return httpd

    def _after_shutdown(self) -> None:
        with self._lock:
            conns, self._connections = list(self._connections), set()
        for conn in conns:  # idle keep-alive connections would otherwise keep their threads
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # --- what was asked ---------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_for(self, fragment: str, method: str | None = None) -> list[RecordedRequest]:
        return [r for r in self.requests if fragment in r.path and (method is None or r.method == method)]

    def add_assistant(self, assistant_id: str | None = None, **fields: Any) -> dict:
        """Register an assistant (e.g. a workflow's fixed ``assistant_id``) without a request."""
        return self.assistants.create_assistant(fields, assistant_id)

    # --- routing ----------------------------------------------------------------------------
    def _route_table(self) -> list[tuple[str, re.Pattern, bool, Callable[..., Any]]]:
        """(method, path pattern, is a model turn, handler(request, match, body, raw))."""
        a, r = self.assistants, self.responses
        table = [
            ("POST", "/v1/chat/completions", True, lambda q, m, b, raw: chat_api.create(self.engine, q, b, raw)),
            ("POST", "/v1/responses", True, lambda q, m, b, raw: r.create(q, b, raw)),
            ("GET", "/v1/responses/(?P<id>[^/]+)", False, lambda q, m, b, raw: r.retrieve(m["id"], q.query)),
            ("POST", "/v1/responses/(?P<id>[^/]+)/cancel", False, lambda q, m, b, raw: r.cancel(m["id"])),
            ("DELETE", "/v1/responses/(?P<id>[^/]+)", False, lambda q, m, b, raw: r.delete(m["id"])),
            ("POST", "/v1/assistants", False, lambda q, m, b, raw: a.create_assistant(b)),
            ("GET", "/v1/assistants/(?P<id>[^/]+)", False, lambda q, m, b, raw: a.get_assistant(m["id"])),
            ("DELETE", "/v1/assistants/(?P<id>[^/]+)", False, lambda q, m, b, raw: a.delete("assistant", m["id"])),
            ("POST", "/v1/threads", False, lambda q, m, b, raw: a.create_thread(b)),
            ("POST", "/v1/threads/runs", True, lambda q, m, b, raw: a.create_run(q, None, b, raw)),
            ("GET", "/v1/threads/(?P<t>[^/]+)", False, lambda q, m, b, raw: a.get_thread(m["t"])),
            ("DELETE", "/v1/threads/(?P<t>[^/]+)", False, lambda q, m, b, raw: a.delete("thread", m["t"])),
            ("POST", "/v1/threads/(?P<t>[^/]+)/messages", False, lambda q, m, b, raw: a.add_message(m["t"], b)),
            ("GET", "/v1/threads/(?P<t>[^/]+)/messages", False,
             lambda q, m, b, raw: a.list_messages(m["t"], q.query)),
            ("POST", "/v1/threads/(?P<t>[^/]+)/runs", True, lambda q, m, b, raw: a.create_run(q, m["t"], b, raw)),
            ("GET", "/v1/threads/(?P<t>[^/]+)/runs", False, lambda q, m, b, raw: a.list_runs(m["t"], q.query)),
            ("GET", "/v1/threads/(?P<t>[^/]+)/runs/(?P<r>[^/]+)", False,
             lambda q, m, b, raw: a.get_run(m["t"], m["r"])),
            ("POST", "/v1/threads/(?P<t>[^/]+)/runs/(?P<r>[^/]+)/submit_tool_outputs", True,
             lambda q, m, b, raw: a.submit(q, m["t"], m["r"], b, raw)),
            ("POST", "/v1/threads/(?P<t>[^/]+)/runs/(?P<r>[^/]+)/cancel", False,
             lambda q, m, b, raw: a.cancel_run(m["t"], m["r"])),
        ]
        return [(method, re.compile(pattern + "/?$"), turn, fn) for method, pattern, turn, fn in table]

    def _dispatch(self, req: RecordedRequest, raw: bytes) -> Reply:
        for method, pattern, is_turn, fn in self._routes:
            m = pattern.match(req.path)
            if m and method == req.method:
                break
        else:
            raise ApiError(404, f"Invalid URL ({req.method} {req.path})")
        if req.method == "POST" and raw.strip() and not isinstance(req.body, dict):
            raise ApiError(400, "We could not parse the JSON body of your request. (HINT: This likely means you "
                                "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, "
                                "but what was sent was not valid JSON.)")
        body = req.body if isinstance(req.body, dict) else {}
        faults = None if is_turn else self.engine.plain_faults(req, req.api)  # turn routes fire their own
        result = fn(req, m.groupdict(), body, raw)
        reply = result if isinstance(result, Reply) else Reply(body=result)
        if faults is not None:
            reply.faults = faults
        if req.api == "assistants" and "iso_timestamps" in self.engine.quirks and isinstance(reply.body, dict):
            reply.body = iso_timestamps(reply.body)
        return reply

    def handle(self, handler: "_Handler", method: str) -> None:
        url = urlsplit(handler.path)
        length = int(handler.headers.get("content-length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError:
            body = None
        query = {k: v[0] if len(v) == 1 else v for k, v in parse_qs(url.query).items()}
        req = RecordedRequest(method, url.path, query, {k.lower(): v for k, v in handler.headers.items()}, body,
                              _api_of(url.path))
        with self._lock:
            self._requests.append(req)
        try:
            reply = self._dispatch(req, raw)
        except FaultReply as fr:
            reply = _fault_reply(fr.fault)
        except ApiError as err:
            reply = Reply(status=err.status, body=err.body(), headers=dict(err.headers))
        except Exception as exc:  # a bug here must fail the test that hit it, not hang the client
            message = f"scripted server error: {type(exc).__name__}: {exc}"
            self.errors.append(message)
            reply = Reply(status=500, body=error_body(message, "server_error"), headers={"x-should-retry": "false"})
        Writer(self, handler).send(reply)


def _fault_reply(f: Fault) -> Reply:
    body = f.body
    if body is None:
        kind = {429: "rate_limit_exceeded"}.get(f.status)
        message = {429: "Rate limit reached for requests. Please try again in 1s."}.get(f.status, f.message)
        body = error_body(message, "requests" if f.status == 429 else "server_error" if f.status >= 500
                          else "invalid_request_error", None, kind or (f.code if f.status >= 500 else None))
    return Reply(status=f.status, body=body, headers=dict(f.headers))


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024  # benchmarks open hundreds of connections at once
    scripted: ScriptedServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hang up mid-stream all the time (timeouts, drops); that is not a server error."""
        exc = sys.exc_info()[1]
        if not isinstance(exc, OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.scripted._lock:
            self.server.scripted._connections.add(self.connection)

    def finish(self) -> None:
        with self.server.scripted._lock:
            self.server.scripted._connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def do_GET(self) -> None:
        self.server.scripted.handle(self, "GET")

    def do_POST(self) -> None:
        self.server.scripted.handle(self, "POST")

    def do_DELETE(self) -> None:
        self.server.scripted.handle(self, "DELETE")

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass
