"""Turn SDK exceptions into ``ProviderError`` messages a person can act on.

Every message is masked. The server's own text is kept where it helps (model not found, bad
request) and dropped where it may quote the key back (401).
"""

from __future__ import annotations

import socket
import ssl
from urllib.parse import urlsplit

import openai

from runner.errors import ProviderError
from runner.secrets.masker import Masker
from runner.textsafe import encodable

ASSISTANTS_GONE = (
    "the Assistants API is not available on this server (OpenAI shut it down on 2026-08-26): "
    "use --api responses or --api chat"
)
STREAM_CUT = "the stream from the server was cut before the turn finished"


class StreamIdle(openai.APITimeoutError):
    """No stream event for ``idle`` seconds (keepalive comments do not count). A timeout, so it
    is retried before the first event and recovered like a cut connection after it."""

    def __init__(self, request, idle: float):
        super().__init__(request=request)
        self.idle = idle
        self.message = f"no event from the server for {idle:g}s"


def is_permanent_connection_error(exc: BaseException) -> bool:
    """A connection failure that retrying cannot fix: TLS refused (wrong protocol, bad
    certificate) or a host name that does not exist."""
    for cause in list(_causes(exc))[1:]:
        if isinstance(cause, ssl.SSLError) and not isinstance(cause, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
            return True
        if isinstance(cause, socket.gaierror) and cause.errno in _NO_SUCH_HOST:
            return True
        text = str(cause).lower()
        if "certificate verify failed" in text or "wrong version number" in text:
            return True
        if "name or service not known" in text or "nodename nor servname" in text:
            return True
    return False


_NO_SUCH_HOST = {getattr(socket, "EAI_NONAME", -2)}


def is_quota_error(exc: BaseException) -> bool:
    """A 429 that waiting will not fix: the account is out of credit."""
    if not isinstance(exc, openai.APIStatusError) or exc.status_code != 429:
        return False
    body = exc.body if isinstance(exc.body, dict) else {}
    return "insufficient_quota" in (exc.code, exc.type, body.get("code"), body.get("type"))


def server_message(exc: openai.APIError) -> str:
    """The server's own words, without the SDK's "Error code: N - " prefix; made encodable."""
    return encodable(_server_words(exc))


def _server_words(exc: openai.APIError) -> str:
    body = exc.body
    if isinstance(body, dict):
        msg = body.get("message") or body.get("detail") or body.get("error")
        if isinstance(msg, str) and msg:
            return msg
    elif isinstance(body, str) and body.strip():
        return body.strip()[:300]
    text = exc.message or ""
    if text.startswith("Error code:"):
        text = text.partition(" - ")[2]
    return text


def _where(exc: openai.APIError) -> tuple[str, str, str]:
    """(method, URL without query, origin) of the failed request."""
    try:
        req = exc.request
        url = urlsplit(str(req.url))
        method = req.method
    except Exception:  # noqa: BLE001 - some errors have no request
        return "", "the server", "the server"
    origin = f"{url.scheme}://{url.netloc}"
    return method, f"{origin}{url.path}", origin


def _causes(exc: BaseException):
    seen = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or cur.__context__


def _key_tail(api_key: str | None) -> str:
    if not api_key or len(api_key) < 12:
        return ""
    return f", key ends …{api_key[-4:]}"


def _is_assistants_path(url: str) -> bool:
    path = urlsplit(url).path
    return "/assistants" in path or "/threads" in path


def _status_message(exc: openai.APIStatusError, *, api_key: str | None, key_env: str) -> tuple[str, str | None]:
    status = exc.status_code
    method, url, _ = _where(exc)
    said = server_message(exc)
    detail = f": {said}" if said else ""
    if status == 401:
        return f"the server rejected the API key (check {key_env}{_key_tail(api_key)})", None
    if status == 403:
        return f"the server refused access (HTTP 403){detail}", "check that the key may use this model and endpoint"
    if status == 404:
        if _is_assistants_path(url):
            return ASSISTANTS_GONE, None
        if exc.code == "model_not_found" or "model" in said.lower():
            return f"the model was not found on this server (HTTP 404){detail}", "check model.name"
        hint = None
        if url.endswith("/responses"):
            hint = "older local servers do not implement the Responses API: try --api chat"
        elif "/v1/" not in urlsplit(url).path:
            hint = "check the base URL: most servers expect it to end in /v1"
        return f"{method} {url} not found on this server (HTTP 404){detail}", hint
    if status == 429:
        if is_quota_error(exc):
            return f"quota exhausted (HTTP 429 insufficient_quota){detail}", "check the account's plan and billing"
        return f"rate limited (HTTP 429), giving up{detail}", "wait and run again, or lower the request rate"
    if status in (400, 422):
        hint = None
        if "previous_response" in said:
            hint = "this server may not keep responses: set model.store: false"
        return f"the server rejected the request (HTTP {status}){detail}", hint
    if status >= 500:
        return f"server error (HTTP {status}){detail}", None
    return f"HTTP {status} from {method} {url}{detail}", None


def _connection_message(exc: openai.APIConnectionError, *, mid_stream: bool, timeout: float | None) -> tuple[str, str | None]:
    _, url, origin = _where(exc)
    causes = list(_causes(exc))
    if isinstance(exc, StreamIdle):  # worded like a read timeout: either may fire first
        where = STREAM_CUT if mid_stream else f"no answer from {url}"
        return (f"{where}: the server sent nothing within the read timeout ({exc.idle:g}s; "
                "keepalive comments do not count)", "raise model.timeout, or check the server")
    if isinstance(exc, openai.APITimeoutError):
        limit = f" ({timeout:g}s)" if timeout else ""
        if mid_stream:
            return f"{STREAM_CUT}: the server sent nothing within the read timeout{limit}", "raise model.timeout"
        return f"no answer from {url} within the timeout{limit}", "raise model.timeout, or check the server"
    reason = next((str(c) for c in causes[1:] if str(c)), "")
    if mid_stream:
        return f"{STREAM_CUT}" + (f" ({reason})" if reason else ""), None
    if any(isinstance(c, ssl.SSLError) for c in causes) or any(
        "ssl" in str(c).lower() or "certificate" in str(c).lower() for c in causes[1:]
    ):
        return f"TLS failure talking to {origin}: {reason}", "check the server's certificate, or use http:// for a local server"
    if any(isinstance(c, socket.gaierror) for c in causes) or any(
        "name or service not known" in str(c).lower() or "nodename nor servname" in str(c).lower()
        for c in causes[1:]
    ):
        host = urlsplit(origin).hostname or origin
        return f"cannot resolve host {host}: check the base URL", None
    if any(isinstance(c, ConnectionRefusedError) for c in causes) or any(
        "refused" in str(c).lower() for c in causes[1:]
    ):
        return f"cannot reach {origin}: is the server running?", None
    return f"cannot reach {origin}" + (f": {reason}" if reason else ""), None


def map_api_error(
    exc: BaseException,
    masker: Masker,
    *,
    api_key: str | None = None,
    key_env: str = "OPENAI_API_KEY",
    mid_stream: bool = False,
    timeout: float | None = None,
) -> ProviderError:
    """One ``ProviderError`` (exit 3) for any failure talking to the API, masked."""
    if isinstance(exc, ProviderError):
        return exc
    hint: str | None = None
    if isinstance(exc, openai.APIStatusError):
        message, hint = _status_message(exc, api_key=api_key, key_env=key_env)
        if exc.request_id:
            message += f" (request id {exc.request_id})"
    elif isinstance(exc, openai.APIConnectionError):
        message, hint = _connection_message(exc, mid_stream=mid_stream, timeout=timeout)
    elif isinstance(exc, openai.APIError):
        code = f" [{exc.code}]" if exc.code else ""
        message = f"the server reported an error during the stream{code}: {server_message(exc)}"
    elif isinstance(exc, openai.OpenAIError):
        message = f"API client error: {exc}"
    else:
        message = f"unexpected error talking to the API: {type(exc).__name__}: {exc}"
    return ProviderError(masker.mask(message), hint=masker.mask(hint) if hint else None)
