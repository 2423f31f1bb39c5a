"""Build the request an HTTP tool sends from its templates and the model's arguments.

Model arguments are untrusted. Each place they can land has its own encoding, decided by where the
expression stands in the *template* (never by scanning the filled-in text again):

- URL path: one percent-encoded segment (``/``, ``?`` and ``#`` encoded); ``.``/``..`` refused
  after decoding to a fixed point; the final path must keep the template's static prefix.
- URL query (in the template or the ``query`` mapping): query-encoded, so ``a&admin=true`` stays
  one value. A list in ``query`` repeats the parameter.
- URL host: only host-name characters, and the host must then be listed in ``allow_hosts``.
- Headers: text, refused if it holds CR, LF, NUL or another control character.
- Body: JSON built from values, never from spliced text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import quote, unquote, urlsplit

import httpx2

from runner.templating import MISSING, TemplateError, find_references, lookup, render_value
from runner.templating import sole_reference, to_text
from runner.workflow.model import HttpResolver

MAX_URL_LENGTH = 8192
REDACTED = "<redacted>"
_HOST_ARG = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_RESERVED_HEADERS = {"host", "content-length", "transfer-encoding", "connection"}
_SENTINEL = "zzflowrunref{}zz"


class RequestError(Exception):
    """The request cannot be built. The message is for the model and names no secret value."""


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str
    port: int


@dataclass
class PreparedRequest:
    method: str
    url: httpx2.URL
    headers: list[tuple[str, str]]
    secret_headers: frozenset[str]  # lower-case names whose template reads env.*
    body: bytes | None
    allowed: tuple[tuple[str, int | None], ...]  # (host, port) pairs; None port = 80/443 only

    def describe(self) -> dict[str, Any]:
        """For logs: the request with every secret-bearing header shown as <redacted>."""
        shown = [(k, REDACTED if k.lower() in self.secret_headers else v) for k, v in self.headers]
        return {"method": self.method, "url": str(self.url), "headers": shown}


def origin_of(url: httpx2.URL) -> Origin:
    port = url.port or (443 if url.scheme == "https" else 80)
    return Origin(url.scheme, url.host.rstrip(".").lower(), port)


def host_allowed(url: httpx2.URL, allowed: tuple[tuple[str, int | None], ...]) -> bool:
    o = origin_of(url)
    for host, port in allowed:
        name_ok = o.host == host or (host.startswith("*.") and o.host.endswith(host[1:]))
        port_ok = o.port == port if port is not None else o.port in (80, 443)
        if name_ok and port_ok:
            return True
    return False


def _parse_allow_hosts(entries: tuple[str, ...]) -> list[tuple[str, int | None]]:
    """``api.example.com``, ``api.example.com:8443``, ``*.example.com`` or ``[::1]:8080``."""
    out: list[tuple[str, int | None]] = []
    for entry in entries:
        entry = entry.strip().lower()
        m = re.fullmatch(r"\[(.+)\](?::(\d+))?", entry) or re.fullmatch(r"([^:]+):(\d+)", entry)
        host, port = (m.group(1), m.group(2)) if m else (entry, None)
        out.append((host.rstrip("."), int(port) if port else None))
    return out


def prepare(spec: HttpResolver, context: Mapping[str, Mapping[str, Any]]) -> PreparedRequest:
    """Fill every template of ``spec``. Raises RequestError (or TemplateError) on refusal."""
    allowed = _parse_allow_hosts(spec.allow_hosts)
    url, host_from_args = _build_url(spec, context)
    if not host_from_args:
        o = origin_of(url)
        allowed.insert(0, (o.host, o.port))
    if not host_allowed(url, tuple(allowed)):
        listed = ", ".join(h for h, _ in allowed) or "none"
        raise RequestError(f"host {url.host} is not allowed for this tool (allow_hosts: {listed})")
    headers, secret = _build_headers(spec, context)
    body = None
    if spec.body is not None:
        value = render_value(spec.body, context)
        if value is not MISSING:
            body = json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
            if not any(k.lower() == "content-type" for k, _ in headers):
                headers.append(("Content-Type", "application/json"))
    return PreparedRequest(spec.method.upper(), url, headers, secret, body, tuple(allowed))


def _build_url(spec: HttpResolver, context) -> tuple[httpx2.URL, bool]:
    template = spec.url
    sole = sole_reference(template)
    if sole is not None and sole.context == "args":
        value = lookup(sole, context)
        if not isinstance(value, str) or not value:
            raise RequestError(f"argument {sole.name!r} must be a URL")
        url = _parse(_append_query(value.split("#", 1)[0], spec, context))
        if url.userinfo:
            raise RequestError("a URL with a user name or password is not allowed")
        return url, True

    refs = find_references(template)
    marked, last = [], 0
    for i, ref in enumerate(refs):
        if i == 0 and ref.offset == 0 and ref.context != "args":
            # A base URL from env or inputs (trusted configuration) is used as written.
            base = lookup(ref, context)
            if base is MISSING:
                raise TemplateError(f"{ref} has no value", ref.text, ref.offset)
            marked.append(to_text(base).replace("zzflowrunref", ""))
        else:
            marked.append(template[last : ref.offset] + _SENTINEL.format(i))
        last = ref.offset + len(ref.text)
    marked.append(template[last:])
    parts = urlsplit("".join(marked))
    if "zzflowrunref" in parts.scheme:
        raise RequestError("the URL scheme cannot come from an expression")

    def fill(component: str, where: str) -> tuple[str, bool]:
        used_args = False

        def one(m: re.Match) -> str:
            nonlocal used_args
            ref = refs[int(m.group(1))]
            value = lookup(ref, context)
            is_arg = ref.context == "args"
            used_args = used_args or is_arg
            if value is MISSING:
                if not is_arg:
                    raise TemplateError(f"{ref} has no value", ref.text, ref.offset)
                if where in ("path", "host"):
                    raise RequestError(f"the URL needs argument {ref.name!r}")
                value = ""
            return _encode(to_text(value), where, is_arg, ref.name)

        return re.sub(r"zzflowrunref(\d+)zz", one, component), used_args

    netloc, host_from_args = fill(parts.netloc, "host")
    path, _ = fill(parts.path, "path")
    query, _ = fill(parts.query, "query")
    raw = f"{parts.scheme}://{netloc}{path}" + (f"?{query}" if query else "")
    url = _parse(_append_query(raw, spec, context))
    prefix_end = parts.path.find("zzflowrunref")
    if prefix_end >= 0:
        prefix = parts.path[:prefix_end]
        prefix = prefix[: prefix.rfind("/") + 1]
        static = _parse(f"{parts.scheme}://{url.host or 'x'}{prefix}").raw_path.split(b"?")[0]
        if not url.raw_path.split(b"?")[0].startswith(static):
            raise RequestError("the arguments would move the request outside the tool's URL path")
    return url, host_from_args


def _encode(text: str, where: str, is_arg: bool, name: str) -> str:
    if where == "host":
        if is_arg and not _HOST_ARG.match(text):
            raise RequestError(f"argument {name!r} is not a plain host name")
        if not re.fullmatch(r"[A-Za-z0-9.:\[\]-]+", text):
            raise RequestError("the URL host is not a plain host name")
        return text
    if where == "path":
        if is_arg:
            if not text:
                raise RequestError(f"argument {name!r} is empty but forms part of the URL path")
            if _is_traversal(text):
                raise RequestError(f"argument {name!r} would change the URL path ('.' and '..' "
                                   "are not allowed as path segments)")
            return quote(text, safe="")
        return quote(text, safe="/:@")
    return quote(text, safe="")


def _is_traversal(text: str) -> bool:
    decoded = text
    for _ in range(8):
        nxt = unquote(decoded)
        if nxt == decoded:
            break
        decoded = nxt
    return any(seg in (".", "..") for seg in re.split(r"[/\\]", decoded))


def _append_query(raw: str, spec: HttpResolver, context) -> str:
    pairs = []
    for key, template in spec.query.items():
        value = render_value(template, context)
        if value is MISSING or value is None:
            continue
        for item in value if isinstance(value, list) else [value]:
            if item is not None:
                pairs.append(f"{quote(str(key), safe='')}={quote(to_text(item), safe='')}")
    if not pairs:
        return raw
    return raw + ("&" if "?" in raw else "?") + "&".join(pairs)


def _parse(raw: str) -> httpx2.URL:
    if len(raw) > MAX_URL_LENGTH:
        raise RequestError(f"the URL would be {len(raw)} characters long (the limit is {MAX_URL_LENGTH})")
    if _CONTROL.search(raw) or "\t" in raw:
        raise RequestError("the URL contains a control character")
    try:
        url = httpx2.URL(raw)
    except (httpx2.InvalidURL, ValueError, TypeError) as e:
        raise RequestError(f"the URL is not valid ({type(e).__name__})") from None
    if url.scheme not in ("http", "https"):
        raise RequestError(f"only http and https URLs are allowed, not {url.scheme or 'no scheme'!r}")
    if not url.host:
        raise RequestError("the URL has no host")
    return url


def _build_headers(spec: HttpResolver, context) -> tuple[list[tuple[str, str]], frozenset[str]]:
    headers, secret = [], set()
    for name, template in spec.headers.items():
        if name.lower() in _RESERVED_HEADERS:
            raise RequestError(f"header {name!r} is set by flowrun and cannot be templated")
        template = str(template)
        if any(r.context == "env" for r in find_references(template)):
            secret.add(name.lower())
        value = render_value(template, context)
        if value is MISSING:
            continue
        text = to_text(value)
        if _CONTROL.search(text):
            raise RequestError(f"header {name!r} would contain a line break or control character; "
                               "refused")
        if not text.isascii():
            raise RequestError(f"header {name!r} would contain non-ASCII characters; refused")
        headers.append((name, text))
    return headers, frozenset(secret)
