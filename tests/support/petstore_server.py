"""A small Petstore on 127.0.0.1 implementing a few operations of the fixtures' specs, so tools
imported from them can be called for real. Every request is recorded."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

API_KEY = "petstore-test-key-0123456789"


@dataclass
class Seen:
    method: str
    path: str
    query: dict
    headers: dict
    body: object


class PetstoreServer:
    def __init__(self):
        self.pets = {1: {"id": 1, "name": "Rex", "tag": "dog"}, 2: {"id": 2, "name": "Tom", "tag": "cat"}}
        self.seen: list[Seen] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server._handle(self, "GET")

            def do_POST(self):
                server._handle(self, "POST")

            def do_DELETE(self):
                server._handle(self, "DELETE")

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> "PetstoreServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        self.seen.append(Seen(method, url.path, parse_qs(url.query), {k.lower(): v for k, v in h.headers.items()}, body))
        status, reply = self._route(method, url.path, parse_qs(url.query), h.headers, body)
        data = json.dumps(reply).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _route(self, method, path, query, headers, body):
        # OAI petstore-3.0.yaml under /v1
        if path == "/v1/pets" and method == "GET":
            limit = int(query.get("limit", ["100"])[0])
            return 200, list(self.pets.values())[:limit]
        if path == "/v1/pets" and method == "POST":
            if not isinstance(body, dict) or "id" not in body or "name" not in body:
                return 400, {"code": 400, "message": "id and name are required"}
            self.pets[int(body["id"])] = body
            return 201, body
        m = re.fullmatch(r"/v1/pets/([^/]+)", path)
        if m and method == "GET":
            pet = self.pets.get(int(m.group(1))) if m.group(1).isdigit() else None
            return (200, pet) if pet else (404, {"code": 404, "message": "no such pet"})
        # Swagger Petstore 3.0 under /api/v3: getPetById needs the api_key header
        m = re.fullmatch(r"/api/v3/pet/([^/]+)", path)
        if m and method == "GET":
            if headers.get("api_key") != API_KEY:
                return 401, {"message": "missing or wrong api_key"}
            pet = self.pets.get(int(m.group(1))) if m.group(1).isdigit() else None
            return (200, pet) if pet else (404, {"message": "Pet not found"})
        if path == "/api/v3/store/order" and method == "POST":
            return 200, {**(body or {}), "status": (body or {}).get("status", "placed")}
        return 404, {"message": f"no route {method} {path}"}
