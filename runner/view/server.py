"""The HTTP side of ``flowrun view``: standard-library serving on 127.0.0.1, behind a token.

Everything lives under ``/<token>/``: the page, its script and style, and the JSON endpoints, so
relative URLs carry the token and anything else is refused (403). The token is random per start,
compared in constant time, and kept out of Referer headers. The Host header must name the loopback
address, so a web page cannot reach the view through DNS rebinding. The page's script builds the
DOM with ``textContent`` only, and the Content-Security-Policy allows no inline script, so text
from the log (model and tool output) cannot run as code.
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from runner.errors import FlowrunError
from runner.view.data import NotFound, RunLogView

STATIC = {
    "": ("index.html", "text/html; charset=utf-8"),
    "app.js": ("app.js", "text/javascript; charset=utf-8"),
    "app.css": ("app.css", "text/css; charset=utf-8"),
    "favicon.svg": ("favicon.svg", "image/svg+xml"),
}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
LOOPBACK = "127.0.0.1"


def _static(name: str) -> bytes:
    return resources.files("runner.view").joinpath("static", name).read_bytes()


class ViewServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, view: RunLogView, port: int = 0, token: str | None = None):
        self.view = view
        self.token = token or secrets.token_urlsafe(24)
        super().__init__((LOOPBACK, port), Handler)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.server_address[1]}/{self.token}/"

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="flowrun-view", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class Handler(BaseHTTPRequestHandler):
    server: ViewServer
    server_version = "flowrun-view"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 -- quiet: URLs hold the token
        pass

    def do_GET(self) -> None:  # noqa: N802
        if not self._host_ok():
            return self._send(HTTPStatus.FORBIDDEN, b"forbidden\n", "text/plain; charset=utf-8")
        parts = urlsplit(self.path)
        segments = parts.path.split("/")
        if len(segments) < 2 or not hmac.compare_digest(segments[1].encode(), self.server.token.encode()):
            return self._send(HTTPStatus.FORBIDDEN, b"forbidden\n", "text/plain; charset=utf-8")
        if len(segments) == 2:  # /TOKEN without the slash: relative URLs need it
            self.send_response(HTTPStatus.MOVED_PERMANENTLY)
            self.send_header("Location", f"/{self.server.token}/")
            self.send_header("Content-Length", "0")
            self.send_header("Referrer-Policy", "no-referrer")
            self.end_headers()
            return None
        rest = [unquote(s) for s in segments[2:]]
        query = dict(parse_qsl(parts.query))
        if len(rest) <= 1 and (rest[0] if rest else "") in STATIC:
            name, ctype = STATIC[rest[0] if rest else ""]
            return self._send(HTTPStatus.OK, _static(name), ctype)
        if rest and rest[0] == "api":
            return self._api(rest[1:], query)
        return self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8")

    def do_POST(self) -> None:  # noqa: N802 -- read-only
        self._send(HTTPStatus.METHOD_NOT_ALLOWED, b"read-only\n", "text/plain; charset=utf-8")

    do_PUT = do_DELETE = do_PATCH = do_POST

    def _host_ok(self) -> bool:
        host = (self.headers.get("Host") or "").strip().lower()
        port = self.server.server_address[1]
        return host in (f"{LOOPBACK}:{port}", f"localhost:{port}")

    def _api(self, path: list[str], query: dict[str, str]) -> None:
        view = self.server.view
        try:
            if path == ["runs"]:
                body = view.runs(query)
            elif path == ["count"]:
                body = view.count(query)
            elif path == ["facets"]:
                body = view.facets()
            elif len(path) == 2 and path[0] == "run":
                body = view.run(path[1], int(query.get("after", "-1")))
            elif len(path) == 3 and path[0] == "run" and path[2] == "workflow":
                body = view.workflow(path[1])
            elif len(path) == 3 and path[0] == "run" and path[2] == "siblings":
                body = view.siblings(path[1])
            elif path == ["batches"]:
                body = view.batches(query)
            elif len(path) == 2 and path[0] == "batch":
                body = view.batch(path[1], query)
            elif path == ["compare"]:
                body = view.compare(query.get("a", ""), query.get("b", ""))
            else:
                return self._json(HTTPStatus.NOT_FOUND, {"error": "no such endpoint"})
        except NotFound as exc:
            return self._json(HTTPStatus.NOT_FOUND, {"error": f"no {exc.what} {exc.key}"})
        except (FlowrunError, ValueError) as exc:
            return self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc), "hint": getattr(exc, "hint", None)})
        self._json(HTTPStatus.OK, body)

    def _json(self, status: HTTPStatus, body: Any) -> None:
        self._send(status, json.dumps(body, default=str).encode(), "application/json; charset=utf-8")

    def _send(self, status: HTTPStatus, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        self.end_headers()
        self.wfile.write(body)


def serve(path: Path, *, port: int = 0, cwd: Path | None = None) -> ViewServer:
    """A started server over the log at ``path`` (raises ``RunLogError`` if it cannot be read)."""
    server = ViewServer(RunLogView(path, cwd=cwd), port=port)
    server.start()
    return server
