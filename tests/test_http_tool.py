"""The http resolver against a real loopback server that records every request it receives.

Loopback is a private address, so tools here set ``allow_private_network: true``; separate tests
prove that without it loopback (in every spelling) and metadata addresses are refused before any
byte is sent.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from runner.calls import ToolCall
from runner.tools import netguard
from runner.calls import Approvals
from runner.tools.dispatcher import Dispatcher
from runner.tools.http_request import prepare
from runner.tools.http_tool import HttpTool, _retry_after, json_pointer
from runner.tools.outputs import ToolFailure
from runner.workflow.model import HttpResolver, ModelSpec, ToolSpec, Workflow

BIG = 50 * 1024 * 1024
CAP = 1_048_576


class Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep test output clean
        pass

    def _handle(self):
        srv = self.server
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with srv.lock:
            srv.requests.append({"method": self.command, "path": self.path, "headers": list(self.headers.items()),
                                 "body": body})
            srv.hits[self.path.split("?")[0]] = srv.hits.get(self.path.split("?")[0], 0) + 1
            hits = srv.hits[self.path.split("?")[0]]
        path, _, query = self.path.partition("?")
        params = {k: v[0] for k, v in parse_qs(query).items()}
        if path.startswith("/echo"):
            payload = {"method": self.command, "path": self.path, "headers": dict(self.headers.items()),
                       "body": body.decode("utf-8", "replace")}
            return self._send(200, json.dumps(payload).encode(), "application/json")
        if path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            extra = {"Retry-After": params["retry_after"]} if "retry_after" in params else {}
            text = f"boom {code} " + json.dumps(dict(self.headers.items()))
            return self._send(code, text.encode(), "text/plain", extra)
        if path == "/flaky":
            if hits <= 2:
                return self._send(503, b"busy", "text/plain", {"Retry-After": "0"})
            return self._send(200, b"finally", "text/plain")
        if path == "/json":
            doc = {"current": {"temperature_2m": 7.3, "a/b": {"m~n": [10, 20]}}, "list": [1, 2]}
            return self._send(200, json.dumps(doc).encode(), "application/json")
        if path == "/html":
            return self._send(200, b"<html>" + b"x" * 100 + b"</html>", "text/html")
        if path == "/latin":
            return self._send(200, b"caf\xe9 ok \xff", "text/plain")
        if path == "/redirect":
            return self._send(302, b"", "text/plain", {"Location": params["to"]})
        if path == "/slow":
            srv.release.wait(10)
            return self._send(200, b"late", "text/plain")
        if path == "/big":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(BIG))
            self.end_headers()
            chunk = b"a" * 65536
            try:
                for _ in range(BIG // len(chunk)):
                    self.wfile.write(chunk)
                    with srv.lock:
                        srv.big_sent += len(chunk)
            except OSError:  # the client hung up at its cap, as it should
                pass
            return None
        return self._send(404, b"no such page", "text/plain")

    def _send(self, code, data, ctype, extra=None):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    srv.daemon_threads = True
    srv.block_on_close = False
    srv.requests, srv.hits, srv.big_sent = [], {}, 0
    srv.lock, srv.release = threading.Lock(), threading.Event()
    srv.base = f"http://127.0.0.1:{srv.server_address[1]}"
    srv.port = srv.server_address[1]
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield srv
    srv.release.set()
    srv.shutdown()
    srv.server_close()


def tool(url: str, name: str = "api", private: bool = True, params: dict | None = None, **http) -> ToolSpec:
    return ToolSpec(name, "d", params or {"type": "object"},
                    HttpResolver(url=url, allow_private_network=private, **http), timeout=15)


def call(tools, args=None, *, env=None, mock_http=None, max_output_chars=100_000, masker=None, name=None):
    tools = tools if isinstance(tools, tuple) else (tools,)
    wf = Workflow(path=Path("/nonexistent/wf.yaml"), name="t", model=ModelSpec(), tools=tools)

    async def go():
        d = Dispatcher(wf, env=env or {}, mock_http=mock_http, max_output_chars=max_output_chars, masker=masker,
                       approvals=Approvals(yes=True))  # what the tool does, not whether it may
        try:
            return await d.run_one(ToolCall("c", name or tools[0].name, json.dumps(args or {})))
        finally:
            await d.aclose()

    return asyncio.run(asyncio.wait_for(go(), 30))


def sent(server) -> list[dict]:
    with server.lock:
        return list(server.requests)


# --- encoding of arguments -------------------------------------------------------------------------


def test_query_injection_stays_one_parameter(server):
    t = tool(f"{server.base}/echo", query={"q": "${{ args.q }}", "tags": "${{ args.tags }}", "n": "${{ args.n }}"})
    result = call(t, {"q": "a&admin=true#x", "tags": ["x y", "z"], "n": 3})
    assert not result.is_error, result.output
    raw = sent(server)[0]["path"]
    assert raw == "/echo?q=a%26admin%3Dtrue%23x&tags=x%20y&tags=z&n=3"
    assert parse_qs(urlsplit(raw).query) == {"q": ["a&admin=true#x"], "tags": ["x y", "z"], "n": ["3"]}


def test_query_in_the_url_template_is_encoded_too(server):
    result = call(tool(f"{server.base}/echo?q=${{{{ args.q }}}}&fixed=1"), {"q": "x&fixed=2"})
    assert not result.is_error
    assert sent(server)[0]["path"] == "/echo?q=x%26fixed%3D2&fixed=1"


def test_path_argument_is_one_encoded_segment(server):
    result = call(tool(f"{server.base}/echo/users/${{{{ args.id }}}}/posts"), {"id": "a/b?c=d#e f"})
    assert not result.is_error
    assert sent(server)[0]["path"] == "/echo/users/a%2Fb%3Fc%3Dd%23e%20f/posts"


@pytest.mark.parametrize("value", ["../../admin?x=1#", "..", ".", "%2e%2e", "%2E%2e%2f", "%252e%252e",
                                   "a/../../b", "..\\..\\admin", "%25252e%25252e%25252f"])
def test_traversal_in_a_path_argument_is_refused_before_sending(server, value):
    result = call(tool(f"{server.base}/echo/users/${{{{ args.id }}}}"), {"id": value})
    assert result.is_error
    assert "would change the URL path" in result.output
    assert sent(server) == []


def test_empty_path_argument_is_refused(server):
    result = call(tool(f"{server.base}/echo/users/${{{{ args.id }}}}"), {"id": ""})
    assert result.is_error and "is empty" in result.output
    assert sent(server) == []


@pytest.mark.parametrize("value", ["evil.example#", "api.example.com@evil.example", "//evil.example/x",
                                   "http://169.254.169.254/", "127.0.0.1:22", "evil.example"])
def test_authority_injection_is_refused(server, value):
    t = tool(f"http://${{{{ args.host }}}}:{server.port}/echo", allow_hosts=("api.example.com",))
    result = call(t, {"host": value})
    assert result.is_error
    assert "not a plain host name" in result.output or "is not allowed for this tool" in result.output
    assert sent(server) == []


def test_host_from_an_argument_may_reach_allow_hosts_only(server, monkeypatch):
    async def fake_dns(host, port):
        return {"api.test": ["127.0.0.1"]}[host]

    monkeypatch.setattr(netguard, "getaddrinfo", fake_dns)
    t = tool(f"http://${{{{ args.host }}}}:{server.port}/echo", allow_hosts=(f"api.test:{server.port}",))
    ok = call(t, {"host": "api.test"})
    assert not ok.is_error, ok.output
    assert json.loads(ok.output)["headers"]["Host"] == f"api.test:{server.port}"
    refused = call(t, {"host": "other.test"})
    assert refused.is_error and "host other.test is not allowed for this tool" in refused.output
    assert len(sent(server)) == 1


def test_a_whole_url_from_an_argument_is_checked_against_allow_hosts(server):
    t = tool("${{ args.url }}", allow_hosts=(f"127.0.0.1:{server.port}",))
    assert not call(t, {"url": f"{server.base}/echo"}).is_error
    for bad in ["http://evil.example/", "file:///etc/passwd", f"http://user:pw@127.0.0.1:{server.port}/echo",
                "gopher://127.0.0.1/", f"http://127.0.0.1:{server.port + 1}/"]:
        result = call(t, {"url": bad})
        assert result.is_error, bad
    assert len(sent(server)) == 1


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://127.0.0.1/", "data:text/plain,hi"])
def test_only_http_and_https_schemes(url):
    result = call(tool(url))
    assert result.is_error and "only http and https" in result.output


def test_uppercase_scheme_is_fine(server):
    result = call(tool(server.base.replace("http://", "HTTP://") + "/echo"))
    assert not result.is_error, result.output


def test_json_body_is_built_from_values(server):
    t = tool(f"{server.base}/echo", method="POST", body={"name": "${{ args.name }}", "n": "${{ args.n }}"})
    result = call(t, {"name": '"}, "admin": true, "x": "', "n": 2})
    assert not result.is_error
    request = sent(server)[0]
    assert json.loads(request["body"]) == {"name": '"}, "admin": true, "x": "', "n": 2}
    assert ("Content-Type", "application/json") in request["headers"]


@pytest.mark.parametrize("value", ["x\r\nX-Injected: 1", "x\nY: 2", "nul\x00byte", "bell\x07"])
def test_header_with_crlf_or_nul_is_refused_naming_the_header_not_the_value(server, value):
    t = tool(f"{server.base}/echo", headers={"X-Trace": "id-${{ args.v }}"})
    result = call(t, {"v": value})
    assert result.is_error
    assert result.output == "error: header 'X-Trace' would contain a line break or control character; refused"
    assert sent(server) == []


# --- status codes, retries, time -----------------------------------------------------------------


def test_404_and_500_are_error_outputs_with_status_and_body(server):
    r404 = call(tool(f"{server.base}/nowhere"))
    assert r404.is_error and r404.output == "error: HTTP 404 Not Found from 127.0.0.1: no such page"
    r500 = call(tool(f"{server.base}/status/500"))
    assert r500.is_error and r500.output.startswith("error: HTTP 500 Internal Server Error from 127.0.0.1: boom 500")
    assert server.hits["/status/500"] == 1  # 500 is not retried


def test_503_with_retry_after_is_retried_then_reported(server):
    result = call(tool(f"{server.base}/status/503?retry_after=0", retries=2))
    assert result.is_error and result.output.startswith("error: HTTP 503 Service Unavailable from 127.0.0.1: boom 503")
    assert server.hits["/status/503"] == 3


def test_retries_recover_from_a_flaky_server(server):
    result = call(tool(f"{server.base}/flaky", retries=2))
    assert (result.output, result.is_error) == ("finally", False)
    assert server.hits["/flaky"] == 3


def test_post_is_never_retried_and_long_retry_after_is_not_waited_for(server):
    post = call(tool(f"{server.base}/status/503?retry_after=0", method="POST", retries=3))
    assert post.is_error and server.hits["/status/503"] == 1
    slow = call(tool(f"{server.base}/status/429?retry_after=3600", retries=3))
    assert slow.is_error and "HTTP 429 Too Many Requests" in slow.output
    assert server.hits["/status/429"] == 1


def test_expect_status_accepts_listed_codes_only(server):
    ok = call(tool(f"{server.base}/status/404", expect_status=(404,)))
    assert not ok.is_error and ok.output.startswith("boom 404")
    bad = call(tool(f"{server.base}/echo", expect_status=(201,)))
    assert bad.is_error and bad.output.startswith("error: HTTP 200 OK from 127.0.0.1")


def test_total_deadline(server):
    result = call(tool(f"{server.base}/slow", timeout=0.3))
    assert result.is_error and result.output == "error: HTTP request to 127.0.0.1 timed out after 0.3 s"


def test_connection_refused_is_an_error_output():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    result = call(tool(f"http://127.0.0.1:{port}/x", retries=0))
    assert result.is_error and result.output.startswith(f"error: cannot connect to 127.0.0.1:{port}")


# --- response bodies -----------------------------------------------------------------------------


def test_a_50_mb_body_is_cut_at_the_cap_without_downloading_it(server):
    result = call(tool(f"{server.base}/big"), max_output_chars=10 * CAP)
    assert not result.is_error
    assert result.output == "a" * CAP + f"\n…[response cut at {CAP} bytes]"
    with server.lock:
        assert server.big_sent < BIG // 4  # the client hung up instead of reading 50 MB


def test_non_utf8_is_decoded_with_replacement_and_flagged(server):
    result = call(tool(f"{server.base}/latin"))
    assert not result.is_error
    assert result.output.startswith("caf\ufffd ok \ufffd")
    assert "not valid text" in result.output


def test_extract_json_pointer(server):
    assert call(tool(f"{server.base}/json", extract="/current/temperature_2m")).output == "7.3"
    assert call(tool(f"{server.base}/json", extract="/current/a~1b/m~0n/1")).output == "20"
    assert call(tool(f"{server.base}/json", extract="/list")).output == "[1,2]"
    missing = call(tool(f"{server.base}/json", extract="/current/humidity"))
    assert missing.is_error and missing.output == "error: the response has no value at /current/humidity"
    html = call(tool(f"{server.base}/html", extract="/x"))
    assert html.is_error and html.output == "error: expected JSON from 127.0.0.1, got text/html (113 bytes)"


def test_json_pointer_edge_cases():
    doc = {"a": [1, 2], "": {"x": 1}, "~": 3}
    assert json_pointer(doc, "") is doc
    assert json_pointer(doc, "/a/0") == 1
    assert json_pointer(doc, "//x") == 1
    assert json_pointer(doc, "/~0") == 3
    for bad in ["/a/01", "/a/2", "/a/-", "/b", "a"]:
        with pytest.raises(ToolFailure):
            json_pointer(doc, bad)


def test_retry_after_parsing():
    assert _retry_after(None) == -1
    assert _retry_after("0") == 0
    assert _retry_after("2.5") == 2.5
    assert _retry_after("11") is None
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0  # in the past: retry now
    assert _retry_after("soon") == -1


def test_mock_http_answers_without_network(server):
    t = tool("https://api.open-meteo.com/v1/forecast", name="weather", private=False,
             query={"latitude": "${{ args.lat }}"}, extract="/current/temperature_2m")
    mock = {"weather": {"status": 200, "body": {"current": {"temperature_2m": 4.5}}}}
    assert call(t, {"lat": 1}, mock_http=mock).output == "4.5"
    failing = call(t, {"lat": 1}, mock_http={"weather": {"status": 503, "body": "down"}})
    assert failing.output == "error: HTTP 503 Service Unavailable from api.open-meteo.com: down"
    assert sent(server) == []


# --- redirects ---------------------------------------------------------------------------------


def test_redirects_are_not_followed_by_default(server):
    result = call(tool(f"{server.base}/redirect?to=/echo"))
    assert result.is_error
    assert result.output.startswith("error: HTTP 302 Found from 127.0.0.1: it redirects to /echo")
    assert "/echo" not in server.hits


def test_redirect_within_the_origin_is_followed_when_allowed(server):
    result = call(tool(f"{server.base}/redirect?to=/echo/there", max_redirects=2))
    assert not result.is_error, result.output
    assert json.loads(result.output)["path"] == "/echo/there"


@pytest.mark.parametrize("target", ["http://169.254.169.254/latest/meta-data/", "//169.254.169.254/x",
                                    "http://evil.example/", "file:///etc/passwd"])
def test_redirect_to_a_foreign_or_metadata_target_is_blocked(server, target):
    result = call(tool(f"{server.base}/redirect?to={target}", max_redirects=3))
    assert result.is_error and "refused" in result.output
    assert [r["path"].split("?")[0] for r in sent(server)] == ["/redirect"]


def test_metadata_stays_blocked_even_when_allowed_by_name_and_private_network(server):
    t = tool(f"{server.base}/redirect?to=http://169.254.169.254/", max_redirects=3, allow_hosts=("169.254.169.254",))
    result = call(t)
    assert result.is_error and "cloud metadata" in result.output


def test_too_many_redirects(server):
    result = call(tool(f"{server.base}/redirect?to=/redirect%3Fto%3D/echo", max_redirects=1))
    assert result.is_error and "too many redirects" in result.output


def test_secret_headers_are_dropped_on_a_cross_origin_redirect(server, monkeypatch):
    async def fake_dns(host, port):
        return ["127.0.0.1"]

    monkeypatch.setattr(netguard, "getaddrinfo", fake_dns)
    other = f"http://localhost:{server.port}/echo"
    t = tool(f"{server.base}/redirect?to={other}", max_redirects=2, allow_hosts=(f"localhost:{server.port}",),
             headers={"X-Api-Key": "${{ env.TOOL_TOKEN }}", "Authorization": "Bearer ${{ env.TOOL_TOKEN }}",
                      "X-Plain": "visible"})
    result = call(t, env={"TOOL_TOKEN": "tok-canary-123456"})
    assert not result.is_error, result.output
    first, second = sent(server)
    assert ("X-Api-Key", "tok-canary-123456") in first["headers"]
    names = {k.lower() for k, _ in second["headers"]}
    assert "x-api-key" not in names and "authorization" not in names
    assert ("X-Plain", "visible") in second["headers"]
    assert ("Host", f"localhost:{server.port}") in second["headers"]


# --- address policy ------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "2130706433", "0x7f.1", "017700000001",
                                  "127.1", "[::ffff:127.0.0.1]", "169.254.169.254", "0.0.0.0"])
def test_loopback_and_metadata_are_refused_without_allow_private_network(server, host):
    result = call(tool(f"http://{host}:{server.port}/echo", private=False))
    assert result.is_error
    assert "blocked" in result.output
    assert sent(server) == []


@pytest.mark.parametrize("answers,reason", [
    (["10.0.0.1"], "a private address"),
    (["93.184.216.34", "10.0.0.1"], "a private address"),
    (["93.184.216.34", "169.254.169.254"], "a cloud metadata address"),
    (["100.64.0.1"], "a reserved or non-public address"),
    (["fd00::1"], "a unique-local address"),
    (["::ffff:10.1.2.3"], "a private address (embedded in an IPv6 address)"),
    (["64:ff9b::a9fe:a9fe"], "a cloud metadata address (embedded in an IPv6 address)"),
    (["fe80::1"], "a link-local address"),
])
def test_dns_answers_are_all_checked(monkeypatch, answers, reason):
    async def fake_dns(host, port):
        return answers

    monkeypatch.setattr(netguard, "getaddrinfo", fake_dns)
    result = call(tool("https://public.example/x", private=False))
    assert result.is_error and reason in result.output


def test_metadata_names_are_blocked_without_dns(monkeypatch):
    async def no_dns(host, port):
        raise AssertionError("should not resolve")

    monkeypatch.setattr(netguard, "getaddrinfo", no_dns)
    result = call(tool("http://metadata.google.internal/computeMetadata/v1/", private=False))
    assert result.is_error and "cloud metadata service" in result.output


def test_the_connection_goes_to_the_vetted_address_with_the_name_in_host(server, monkeypatch):
    async def fake_dns(host, port):
        return ["127.0.0.1"]

    monkeypatch.setattr(netguard, "getaddrinfo", fake_dns)
    result = call(tool(f"http://api.internal.test:{server.port}/echo"))
    assert not result.is_error, result.output
    assert ("Host", f"api.internal.test:{server.port}") in sent(server)[0]["headers"]


def test_https_is_pinned_to_the_vetted_address_with_host_and_sni_kept(monkeypatch):
    """No TLS server here: a mock transport shows what would go on the wire."""
    import httpx2

    seen = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(200, text="pinned")

    async def fake_dns(host, port):
        assert (host, port) == ("api.example.com", 443)
        return ["93.184.216.34"]

    monkeypatch.setattr(netguard, "getaddrinfo", fake_dns)
    spec = HttpResolver(url="https://api.example.com/v1/x")

    async def go():
        http = HttpTool(transport=httpx2.MockTransport(handler))
        try:
            return await http.call("api", spec, {"args": {}, "env": {}, "inputs": {}})
        finally:
            await http.aclose()

    assert asyncio.run(go()) == "pinned"
    (request,) = seen
    assert request.url.host == "93.184.216.34" and request.url.scheme == "https"
    assert request.headers["Host"] == "api.example.com"
    assert request.extensions["sni_hostname"] == "api.example.com"
    assert request.headers["User-Agent"].startswith("flowrun/")


def test_public_addresses_pass():
    assert netguard.address_problem(netguard.ipaddress.ip_address("93.184.216.34")) is None
    assert netguard.address_problem(netguard.ipaddress.ip_address("2606:4700::1111")) is None
    assert netguard.address_problem(netguard.ipaddress.ip_address("10.0.0.1"), allow_private=True) is None


# --- secrets -------------------------------------------------------------------------------------


def test_secrets_are_masked_in_success_and_error_outputs(server):
    token = "tok-canary-abcdef123"
    headers = {"Authorization": "Bearer ${{ env.TOOL_TOKEN }}", "X-Plain": "visible"}
    ok = call(tool(f"{server.base}/echo", headers=headers), env={"TOOL_TOKEN": token})
    assert token not in ok.output and "Bearer ***" in ok.output
    bad = call(tool(f"{server.base}/status/500", headers=headers), env={"TOOL_TOKEN": token})
    assert bad.is_error and token not in bad.output and "***" in bad.output
    assert ("Authorization", f"Bearer {token}") in sent(server)[0]["headers"]  # it was really sent


def test_secret_in_the_url_is_masked(server):
    token = "key-canary-987654"
    result = call(tool(f"{server.base}/echo", query={"key": "${{ env.K }}"}), env={"K": token})
    assert token not in result.output and "key=***" in result.output


def test_describe_redacts_every_header_that_reads_env():
    spec = HttpResolver(url="https://api.example.com/x", headers={
        "Authorization": "Bearer ${{ env.T }}", "My-Custom": "${{ env.T }}", "Accept": "application/json"})
    request = prepare(spec, {"args": {}, "env": {"T": "secret-value"}, "inputs": {}})
    shown = dict(request.describe()["headers"])
    assert shown == {"Authorization": "<redacted>", "My-Custom": "<redacted>", "Accept": "application/json"}
    assert "secret-value" not in json.dumps(request.describe())


def test_argument_holding_an_env_expression_is_sent_literally(server):
    t = tool(f"{server.base}/echo/${{{{ args.p }}}}", query={"q": "${{ args.q }}"},
             headers={"X-Q": "${{ args.q }}"}, method="POST", body={"b": "${{ args.q }}"})
    env = {"TOOL_TOKEN": "tok-canary-zzzzzz"}
    result = call(t, {"p": "${{ env.TOOL_TOKEN }}", "q": "${{ env.TOOL_TOKEN }}"}, env=env)
    assert not result.is_error, result.output
    request = sent(server)[0]
    raw = json.dumps(request["headers"]) + request["path"] + request["body"].decode()
    assert "tok-canary" not in raw
    assert ("X-Q", "${{ env.TOOL_TOKEN }}") in request["headers"]
    assert json.loads(request["body"]) == {"b": "${{ env.TOOL_TOKEN }}"}
    assert parse_qs(urlsplit(request["path"]).query)["q"] == ["${{ env.TOOL_TOKEN }}"]
