"""EchoServer: a loopback HTTP server for HTTP tools to call in tests, benchmarks and the soak.

It records every request (method, path, headers, raw body) and counts hits per path, so a test
can prove a side effect happened exactly once, or never. Routes:

    /echo...           200 JSON: method, path, headers, body as received
    /status/<code>     <code> with a text body that quotes every request header back
    /count...          200 "hit <n>": the n-th request to this path
    /slow?s=<seconds>  200 after sleeping (released early by ``stop``)
    /redirect?to=<u>   302 to <u>
    /bytes?n=<count>   200 with n bytes of "a" (streamed; the client may hang up at its cap)
    /latin             200 text/plain that is not valid UTF-8
    /flaky...          503 with Retry-After: 0 for the first two hits (per path), then 200
    anything else      404

A server that quotes request headers back (in ``/echo`` and ``/status``) is the worst case for
secrets: a token sent in a header comes back in the body the model would read.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from .loopback import LoopbackServer


@dataclass
class EchoRequest:
    method: str
    path: str  # with the query string, as sent
    headers: list[tuple[str, str]]
    body: bytes
    time: float = field(default_factory=time.time)

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


class EchoServer(LoopbackServer):
    """``with EchoServer() as echo: ... echo.url("/echo") ... echo.hits("/count")``."""

    thread_name = "echo-server"

    def __init__(self) -> None:
        super().__init__()
        self._requests: list[EchoRequest] = []

    def _make_httpd(self) -> ThreadingHTTPServer:
        httpd = _Server(("127.0.0.1", self._next_port), _Handler)
        httpd.daemon_threads = True
        httpd.block_on_close = False
        httpd.echo = self  # type: ignore[attr-defined]
        return httpd

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    @property
    def requests(self) -> list[EchoRequest]:
        with self._lock:
            return list(self._requests)

    def hits(self, prefix: str = "/") -> int:
        """How many requests had a path starting with ``prefix``."""
        return sum(1 for r in self.requests if r.path.startswith(prefix))

    def _record(self, req: EchoRequest) -> int:
        with self._lock:
            self._requests.append(req)
            path = req.path.split("?")[0]
            return sum(1 for r in self._requests if r.path.split("?")[0] == path)


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up (at its size cap, or its timeout) is not a server error."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def _handle(self) -> None:
        echo: EchoServer = self.server.echo  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        req = EchoRequest(self.command, self.path, list(self.headers.items()), body)
        nth = echo._record(req)
        path, _, query = self.path.partition("?")
        params = {k: v[0] for k, v in parse_qs(query).items()}
        if path.startswith("/echo"):
            payload = {"method": self.command, "path": self.path, "headers": dict(req.headers),
                       "body": body.decode("utf-8", "replace")}
            return self._send(200, json.dumps(payload).encode(), "application/json")
        if path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            text = f"error {code}; you sent " + json.dumps(dict(req.headers))
            return self._send(code, text.encode(), "text/plain")
        if path.startswith("/count"):
            return self._send(200, f"hit {nth}".encode(), "text/plain")
        if path == "/slow":
            echo._stopping.wait(float(params.get("s", "10")))
            return self._send(200, b"late", "text/plain")
        if path == "/redirect":
            return self._send(302, b"", "text/plain", {"Location": params.get("to", "/echo")})
        if path == "/bytes":
            return self._stream(int(params.get("n", "0")))
        if path == "/latin":
            return self._send(200, b"caf\xe9 \xff ok", "text/plain")
        if path.startswith("/flaky"):
            if nth <= 2:
                return self._send(503, b"busy", "text/plain", {"Retry-After": "0"})
            return self._send(200, b"finally", "text/plain")
        return self._send(404, b"no such page", "text/plain")

    def _send(self, code: int, data: bytes, ctype: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _stream(self, n: int) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(n))
        self.end_headers()
        chunk = b"a" * 65536
        try:
            while n > 0:
                self.wfile.write(chunk[: min(n, len(chunk))])
                n -= len(chunk)
        except OSError:  # the client stopped reading at its cap, as it should
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle

