"""The ``http`` resolver: one guarded HTTP exchange per tool call.

Guards, in order: the request is built from templates with per-position encoding
(``http_request``); its host must be the template's host or in ``allow_hosts``; every address the
host resolves to must pass ``netguard``; the connection goes to the address that was checked (the
URL carries the IP, while the Host header and TLS SNI carry the name). Redirects are not followed
unless ``max_redirects`` allows it, and then each hop passes the same checks, an https-to-http hop
is refused, and headers whose template reads ``env.*`` are dropped when the origin changes.

The whole exchange (DNS, connect, redirects, retries, body) runs under one deadline, and the body
is read as a stream that stops at ``max_response_bytes``. One AsyncClient serves a dispatcher;
keep-alive is off because pooled connections are keyed by IP, and a connection opened with one
SNI name must not carry a request for another name on the same address. The client ignores proxy
environment variables (``trust_env=False``): the address check must apply to the real target.
"""

from __future__ import annotations

import asyncio
import codecs
import email.utils
import json
import logging
import os
import ssl
import time
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Mapping

import httpx2

from runner import __version__
from runner.jsonpointer import MISSING, resolve
from runner.tools import netguard
from runner.tools.http_request import PreparedRequest, RequestError, host_allowed, origin_of, prepare
from runner.tools.outputs import ToolFailure
from runner.workflow.model import HttpResolver

log = logging.getLogger("flowrun.tools.http")

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRY_STATUSES = frozenset({429, 503})
MAX_RETRY_AFTER = 10.0  # seconds; a server asking for a longer wait gets no retry
ERROR_BODY_CHARS = 2000
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_BINARY = ("image/", "audio/", "video/", "application/octet-stream", "application/zip",
           "application/pdf", "application/gzip")


@dataclass
class Reply:
    status: int
    reason: str
    host: str
    headers: Mapping[str, str]
    data: bytes = b""
    cut: bool = False


class _Retry(Exception):
    def __init__(self, delay: float, failure: ToolFailure):
        self.delay, self.failure = delay, failure


_SSL_CONTEXTS: dict[tuple[str | None, str | None], ssl.SSLContext] = {}


def ssl_context() -> ssl.SSLContext:
    """The TLS context for tool requests, made once per process (per ``SSL_CERT_FILE`` /
    ``SSL_CERT_DIR``): loading the CA bundle costs more than a whole run against a local
    model, and a batch makes a dispatcher, so an HTTP client, for every input. Sharing the
    context shares no connection: keep-alive stays off, each request still connects afresh to
    the address that was checked, with its own SNI name."""
    key = (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    ctx = _SSL_CONTEXTS.get(key)
    if ctx is None:
        ctx = _SSL_CONTEXTS[key] = httpx2.create_ssl_context(trust_env=True)
    return ctx


class HttpTool:
    def __init__(self, mock_http: Mapping[str, Mapping] | None = None, *,
                 transport: httpx2.AsyncBaseTransport | None = None, masker: Any = None):
        self._mock = dict(mock_http or {})
        self._masker = masker  # for the debug log line: a URL may carry a secret in its query
        self._transport = transport  # tests only; None: the real network
        self._client: httpx2.AsyncClient | None = None

    def _get_client(self) -> httpx2.AsyncClient:
        if self._client is None:
            self._client = httpx2.AsyncClient(
                follow_redirects=False, trust_env=False, timeout=None, transport=self._transport,
                verify=ssl_context(),  # SSL_CERT_FILE still counts
                headers={"User-Agent": f"flowrun/{__version__}"},
                limits=httpx2.Limits(max_keepalive_connections=0),
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def call(self, name: str, spec: HttpResolver, context: Mapping[str, Mapping[str, Any]]) -> Any:
        """The tool's output value. Raises ToolFailure with a message for the model."""
        try:
            request = prepare(spec, context)
        except RequestError as e:
            raise ToolFailure(str(e)) from None
        if log.isEnabledFor(logging.DEBUG):
            shown = str(request.describe())
            log.debug("http tool %s: %s", name, self._masker.mask(shown) if self._masker is not None else shown)
        if name in self._mock:
            if self._mock[name] is None:  # --mock-http: every HTTP tool must have a canned answer
                raise ToolFailure(f"no canned response for tool {name!r}: add it under the case's "
                                  "`mock_http:` (network is off with --mock-http)")
            return interpret(spec, _mock_reply(self._mock[name], request.url.host))
        try:
            reply = await asyncio.wait_for(self._exchange(spec, request), spec.timeout)
        except asyncio.TimeoutError:
            raise ToolFailure(f"HTTP request to {request.url.host} timed out after "
                              f"{spec.timeout:g} s") from None
        return interpret(spec, reply)

    async def _exchange(self, spec: HttpResolver, request: PreparedRequest) -> Reply:
        attempts = spec.retries + 1 if request.method in IDEMPOTENT else 1
        for attempt in range(attempts):
            try:
                return await self._follow(spec, request)
            except _Retry as r:
                if attempt + 1 >= attempts:
                    raise r.failure from None
                await asyncio.sleep(r.delay if r.delay >= 0 else min(0.25 * 2**attempt, 2.0))
        raise AssertionError("unreachable")

    async def _follow(self, spec: HttpResolver, request: PreparedRequest) -> Reply:
        url, method, body = request.url, request.method, request.body
        headers = list(request.headers)
        first = origin_of(url)
        for hop in range(spec.max_redirects + 1):
            reply, location = await self._send_once(spec, method, url, headers, body)
            if location is None:
                return reply
            if spec.max_redirects == 0:
                raise ToolFailure(f"HTTP {reply.status} {reply.reason} from {reply.host}: it "
                                  f"redirects to {location} (redirects are not followed; "
                                  "set max_redirects to allow them)")
            if hop == spec.max_redirects:
                raise ToolFailure(f"too many redirects (more than {spec.max_redirects}) from {reply.host}")
            nxt = _redirect_target(url, location, request)
            if origin_of(nxt) != first:
                headers = [(k, v) for k, v in headers if k.lower() not in request.secret_headers]
            if reply.status == 303 or (reply.status in (301, 302) and method == "POST"):
                method, body = ("HEAD" if method == "HEAD" else "GET"), None
                headers = [(k, v) for k, v in headers if k.lower() != "content-type"]
            url = nxt
        raise AssertionError("unreachable")

    async def _send_once(self, spec, method, url, headers, body) -> tuple[Reply, str | None]:
        host = url.host
        try:
            vetted = await netguard.vet_host(host, origin_of(url).port,
                                             allow_private=spec.allow_private_network)
        except netguard.BlockedAddress as e:
            raise ToolFailure(str(e)) from None
        target = url.copy_with(host=vetted.address)
        host_header = url.netloc.decode("ascii")
        ext = {"sni_hostname": url.raw_host.decode("ascii")} if url.scheme == "https" else {}
        client = self._get_client()
        req = client.build_request(method, target, headers=[("Host", host_header), *headers],
                                   content=body, extensions=ext)
        try:
            resp = await client.send(req, stream=True)
        except (httpx2.ConnectError, httpx2.ConnectTimeout) as e:
            failure = ToolFailure(f"cannot connect to {host_header}: {_reason(e)}")
            raise _Retry(-1, failure) from None
        except httpx2.HTTPError as e:
            raise ToolFailure(f"HTTP request to {host_header} failed: {_reason(e)}") from None
        try:
            reply = Reply(resp.status_code, resp.reason_phrase or _phrase(resp.status_code), host,
                          resp.headers)
            location = resp.headers.get("location")
            if resp.status_code in _REDIRECTS and location and not _expected(spec, resp.status_code):
                return reply, location
            if resp.status_code in RETRY_STATUSES and method in IDEMPOTENT:
                delay = _retry_after(resp.headers.get("retry-after"))
                if delay is not None:
                    reply.data, reply.cut = await _read(resp, ERROR_BODY_CHARS * 4)
                    raise _Retry(delay, _status_failure(reply))
            reply.data, reply.cut = await _read(resp, spec.max_response_bytes)
            return reply, None
        except httpx2.HTTPError as e:
            raise ToolFailure(f"reading the response from {host_header} failed: {_reason(e)}") from None
        finally:
            await resp.aclose()


def _redirect_target(current: httpx2.URL, location: str, request: PreparedRequest) -> httpx2.URL:
    try:
        nxt = current.join(location)
    except (httpx2.InvalidURL, ValueError):
        raise ToolFailure("the server redirected to an invalid URL") from None
    if nxt.scheme not in ("http", "https"):
        raise ToolFailure(f"redirect to a {nxt.scheme!r} URL refused; only http and https are allowed")
    if current.scheme == "https" and nxt.scheme == "http":
        raise ToolFailure(f"redirect from https to plain http ({nxt.host}) refused")
    if not host_allowed(nxt, request.allowed):
        raise ToolFailure(f"redirect to {nxt.host} refused: that host is not allowed for this tool")
    return nxt.copy_with(fragment=None)


async def _read(resp: httpx2.Response, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` decoded bytes of the body; stops reading (and so downloading) there."""
    chunks, size = [], 0
    async for chunk in resp.aiter_bytes():
        if size + len(chunk) > limit:
            chunks.append(chunk[: limit - size])
            return b"".join(chunks), True
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks), False


def interpret(spec: HttpResolver, reply: Reply) -> Any:
    """The tool's output for a reply: text, the extracted JSON value, or a ToolFailure."""
    if not _expected(spec, reply.status):
        raise _status_failure(reply)
    ctype = reply.headers.get("content-type", "").split(";")[0].strip().lower()
    if spec.extract is not None:
        if reply.cut:
            raise ToolFailure(f"the response from {reply.host} exceeded {spec.max_response_bytes} "
                              "bytes, so its JSON cannot be read")
        try:
            document = json.loads(reply.data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise ToolFailure(f"expected JSON from {reply.host}, got {ctype or 'no content type'} "
                              f"({len(reply.data)} bytes)") from None
        return json_pointer(document, spec.extract)
    if ctype.startswith(_BINARY):
        return f"[binary response: {ctype}, {len(reply.data)} bytes; not shown]"
    text, lossy = decode(reply.data, _charset(reply.headers), reply.cut)
    if lossy:
        text += "\n…[the response was not valid text; invalid bytes were replaced with �]"
    if reply.cut:
        text += f"\n…[response cut at {spec.max_response_bytes} bytes]"
    return text


def json_pointer(document: Any, pointer: str) -> Any:
    """RFC 6901: ``/a/0/b~1c`` names document["a"][0]["b/c"]. Raises ToolFailure if absent."""
    if pointer and not pointer.startswith("/"):
        raise ToolFailure(f"extract {pointer!r} is not a JSON Pointer (it must start with /)")
    value = resolve(document, pointer)
    if value is MISSING:
        raise ToolFailure(f"the response has no value at {pointer}")
    return value


# Python codecs that are not character encodings, or whose decoding costs more than the bytes
# read: a server naming one as its charset (bz2_codec, zlib_codec, ...) would decompress past
# max_response_bytes. ``_is_text_encoding`` rules out the bytes-to-bytes and str-to-str codecs.
_NOT_A_CHARSET = {"punycode", "idna", "unicode_escape", "raw_unicode_escape", "undefined"}


def text_codec(charset: str) -> str:
    """The codec to decode a body labelled ``charset`` with: that charset when it is a text
    encoding Python knows, otherwise UTF-8."""
    try:
        info = codecs.lookup(charset)
    except (LookupError, ValueError, TypeError):
        return "utf-8"
    if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_A_CHARSET:
        return "utf-8"
    return info.name


def decode(data: bytes, charset: str, cut: bool) -> tuple[str, bool]:
    """Text and whether bytes had to be replaced. A character split by the cut is dropped."""
    decoder = codecs.getincrementaldecoder(text_codec(charset))("strict")
    try:
        return decoder.decode(data, final=not cut), False
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="replace"), True


def _charset(headers: Mapping[str, str]) -> str:
    for part in headers.get("content-type", "").split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset" and value:
            return value.strip('"')
    return "utf-8"


def _expected(spec: HttpResolver, status: int) -> bool:
    return status in spec.expect_status if spec.expect_status else 200 <= status < 300


def _status_failure(reply: Reply) -> ToolFailure:
    text, _ = decode(reply.data, _charset(reply.headers), True)
    snippet = text[:ERROR_BODY_CHARS] + ("…" if len(text) > ERROR_BODY_CHARS or reply.cut else "")
    return ToolFailure(f"HTTP {reply.status} {reply.reason} from {reply.host}: {snippet}")


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait before retrying, -1 for "use backoff", None for "do not retry"."""
    if value is None:
        return -1
    value = value.strip()
    try:
        delay = float(value)
    except ValueError:
        try:
            delay = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError):
            return -1
    delay = max(delay, 0.0)
    return delay if delay <= MAX_RETRY_AFTER else None


def _mock_reply(canned: Mapping, host: str) -> Reply:
    status = int(canned.get("status", 200))
    body = canned.get("body", "")
    headers = {str(k).lower(): str(v) for k, v in (canned.get("headers") or {}).items()}
    if isinstance(body, (bytes, bytearray)):
        data = bytes(body)
    elif isinstance(body, str):
        data = body.encode("utf-8")
    else:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        headers.setdefault("content-type", "application/json")
    return Reply(status, _phrase(status), host, headers, data)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _reason(e: BaseException) -> str:
    text = str(e).strip()
    return text or type(e).__name__
