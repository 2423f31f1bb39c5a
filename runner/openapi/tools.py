"""One flowrun ``http`` tool per OpenAPI operation.

The tool's ``parameters`` hold the path, query and header parameters and the JSON request body
(an object body's properties become arguments of their own; any other body is one ``body``
argument). Its ``resolve.http`` fills the server URL and path template with ``${{ args.x }}``, maps
query, header and body values, and sends the credentials the operation's security asks for from
``${{ env.NAME }}``. What cannot be expressed (OAuth flows, non-JSON bodies, cookies the model
would choose) is refused with the reason, never imported half-working.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from runner.openapi.document import Spec, SpecError
from runner.openapi.naming import argument_name, snake_case, tool_name
from runner.openapi.operations import Operation, as_mapping
from runner.openapi.schemas import SchemaConverter, is_object_with_properties

_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_RESERVED_HEADERS = {"host", "content-length", "transfer-encoding", "connection"}  # set by flowrun
MAX_DESCRIPTION = 1024  # what the APIs accept for a function description
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")  # the http resolver's methods


OAUTH_REFUSED = "flowrun sends API keys and bearer tokens, and does not run OAuth flows"
OAUTH_HINT = ("with an access token you already have, import the operation under another scheme or add "
              "headers: {Authorization: Bearer ${{ env.NAME }}} to the tool by hand")


class Unsupported(SpecError):
    """This operation cannot become a tool (the reason says why); others may still be imported."""


@dataclass
class ImportOptions:
    server: str | None = None  # overrides the spec's servers
    env_prefix: str = ""  # for the env variables that hold credentials
    bind: dict[str, Any] = field(default_factory=dict)  # argument name -> value bound from the file


@dataclass
class ImportedTool:
    operation: Operation
    data: dict  # the tool, as it goes into the workflow file
    notes: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)  # env variables its requests read


def build_tools(spec: Spec, ops: list[Operation], options: ImportOptions, taken: set[str],
                names: dict[str, str] | None = None) -> tuple[list[ImportedTool], list[tuple[Operation, str]]]:
    """Tools for ``ops``, and one line per operation skipped. A tool keeps the name in ``names``
    (operation ref -> name of the tool imported before); a new one gets a name not in ``taken``."""
    built, skipped = [], []
    for op in ops:
        try:
            built.append(build_tool(spec, op, options, taken, (names or {}).get(op.ref)))
        except Unsupported as e:
            skipped.append((op, e.message))
    return built, skipped


def build_tool(spec: Spec, op: Operation, options: ImportOptions, taken: set[str],
               name: str | None = None) -> ImportedTool:
    if op.method not in METHODS:
        raise Unsupported(f"method {op.method} is not one flowrun's http resolver sends")
    where = f"{op.method} {op.path}"
    converter = SchemaConverter(spec)
    props: dict[str, Any] = {}
    required: list[str] = []
    arg_names: set[str] = set()
    path_args: dict[str, str] = {}
    query: dict[str, Any] = {}
    headers: dict[str, str] = {}
    notes: list[str] = []

    for param in _parameters(spec, op):
        pname, place = str(param.get("name", "")), param.get("in")
        pwhere = f"{where} parameter {pname!r}"
        if place == "cookie":
            if param.get("required"):
                raise Unsupported(f"it needs cookie {pname!r}; flowrun does not let the model set cookies")
            notes.append(f"{where}: optional cookie parameter {pname!r} left out")
            continue
        if place == "header" and pname.lower() in ("accept", "content-type", "authorization"):
            continue  # OpenAPI says these are ignored as parameters
        if place not in ("path", "query", "header"):
            continue
        if place == "header" and (not _HEADER_NAME.match(pname) or pname.lower() in _RESERVED_HEADERS):
            if param.get("required"):
                raise Unsupported(f"it needs header {pname!r}, which flowrun cannot send")
            notes.append(f"{where}: optional header {pname!r} left out (flowrun cannot send it)")
            continue
        arg = argument_name(pname, arg_names)
        props[arg] = _parameter_schema(converter, param, pwhere)
        if place == "path" or param.get("required") is True:
            required.append(arg)
        ref = f"${{{{ args.{arg} }}}}"
        if place == "path":
            path_args[pname] = ref
        elif place == "query":
            query[pname] = ref
        else:
            headers[pname] = ref

    body, content_type = _request_body(spec, op, converter, props, required, arg_names, where)
    url = _url(spec, op, options, path_args, where)
    auth_headers, auth_query, env = _security(spec, op, options)
    headers = {**auth_headers, **headers}
    query = {**query, **auth_query}
    if content_type and content_type != "application/json":
        headers.setdefault("Content-Type", _literal(content_type, "a media type"))

    parameters: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        parameters["required"] = required
    parameters["additionalProperties"] = False
    if converter.defs:
        parameters["$defs"] = converter.defs

    name = name or tool_name(op.ref, taken)
    tool: dict[str, Any] = {"name": name, "description": _description(op), "openapi": op.ref}
    tool["parameters"] = parameters
    bound = {k: v for k, v in options.bind.items() if k in props}
    if bound:
        tool["bind"] = bound
    http: dict[str, Any] = {"url": url}
    if op.method != "GET":
        http["method"] = op.method
    if query:
        http["query"] = query
    if headers:
        http["headers"] = headers
    if body is not None:
        http["body"] = body
    if _is_private(url):
        if options.server:
            http["allow_private_network"] = True  # the person chose this server on the command line
        else:
            notes.append(f"{where}: the spec's server is on this machine or a private network; flowrun "
                         "refuses such addresses unless you confirm with --server URL")
    tool["resolve"] = {"http": http}
    return ImportedTool(op, tool, notes + converter.notes, env)


def _parameters(spec: Spec, op: Operation) -> list[dict]:
    """Path-item parameters overlaid by the operation's own (same name and place)."""
    merged: dict[tuple[str, str], dict] = {}
    for i, raw in enumerate(list(op.path_item.get("parameters") or []) + list(op.data.get("parameters") or [])):
        param, _ = spec.deref(raw, f"{op.method} {op.path} parameters[{i}]")
        if isinstance(param, dict) and param.get("name") is not None:
            merged[(str(param["name"]), str(param.get("in")))] = param
    return list(merged.values())


def _parameter_schema(converter: SchemaConverter, param: dict, where: str) -> dict:
    schema = param.get("schema")
    if schema is None and isinstance(param.get("content"), dict) and param["content"]:
        schema = as_mapping(next(iter(param["content"].values()))).get("schema")
    out = converter.convert(schema if schema is not None else {"type": "string"}, where)
    out = dict(out) if isinstance(out, dict) else {}
    if param.get("description"):
        out = {"description": str(param["description"]).strip(), **{k: v for k, v in out.items() if k != "description"}}
    if param.get("deprecated") is True:
        out["deprecated"] = True
    return out


def _json_media(content: dict) -> tuple[str, dict] | None:
    """The JSON media type of a request body: application/json first, then ``*+json``, ``*/*``."""
    kinds = [str(k) for k in content]
    for kind in kinds:
        if kind.split(";")[0].strip().lower() == "application/json":
            return kind.split(";")[0].strip(), as_mapping(content[kind])
    for kind in kinds:
        base = kind.split(";")[0].strip().lower()
        if base.endswith("+json") or base in ("*/*", "application/*"):
            return (base if base.endswith("+json") else "application/json"), as_mapping(content[kind])
    return None


def _request_body(spec: Spec, op: Operation, converter: SchemaConverter, props: dict, required: list,
                  arg_names: set[str], where: str) -> tuple[Any, str | None]:
    raw = op.data.get("requestBody")
    if raw is None:
        return None, None
    body, _ = spec.deref(raw, f"{where} requestBody")
    content = as_mapping(as_mapping(body).get("content"))
    if not content:
        return None, None
    media = _json_media(content)
    if media is None:
        kinds = ", ".join(str(k) for k in content)
        raise Unsupported(f"its request body is {kinds}; flowrun's http resolver sends JSON bodies only")
    content_type, media_obj = media
    schema = converter.convert(media_obj.get("schema", {}), f"{where} request body")
    body_required = as_mapping(body).get("required") is True
    if is_object_with_properties(schema) and not (set(schema["properties"]) & set(props)):
        mapping = {}
        inner_required = schema.get("required") if isinstance(schema.get("required"), list) else []
        for prop, sub in schema["properties"].items():
            arg = argument_name(prop, arg_names)
            props[arg] = sub
            mapping[prop] = f"${{{{ args.{arg} }}}}"
            if body_required and prop in inner_required:
                required.append(arg)
        return mapping, content_type
    arg = argument_name("body", arg_names)
    described = dict(schema) if isinstance(schema, dict) else {}
    if as_mapping(body).get("description") and "description" not in described:
        described = {"description": str(body["description"]).strip(), **described}
    props[arg] = described
    if body_required:
        required.append(arg)
    return f"${{{{ args.{arg} }}}}", content_type


def _url(spec: Spec, op: Operation, options: ImportOptions, path_args: dict[str, str], where: str) -> str:
    spec_server = _server_url(spec, op)
    base = options.server or (_literal(spec_server, "the server URL") if spec_server else None)
    if not base:
        raise SpecError(f"{spec.path.name} names no server", hint="give the API's base URL with --server URL")
    if not re.match(r"^(https?://|\$\{\{)", base, re.I):
        raise SpecError(f"the spec's server URL {base!r} is relative",
                        hint="give the full base URL with --server, e.g. --server https://api.example.com" + base)
    path = op.path

    def fill(m: re.Match) -> str:
        name = m.group(1)
        if name not in path_args:
            raise Unsupported(f"its path names {{{name}}}, which no path parameter declares")
        return path_args[name]

    return base.rstrip("/") + re.sub(r"\{([^{}]+)\}", fill, _literal(path, "the path"))


def _server_url(spec: Spec, op: Operation) -> str | None:
    for holder in (op.data, op.path_item, spec.data):
        servers = holder.get("servers")
        if isinstance(servers, list) and servers and isinstance(servers[0], dict):
            server = servers[0]
            url = str(server.get("url", ""))
            for name, var in as_mapping(server.get("variables")).items():
                url = url.replace("{" + str(name) + "}", str(as_mapping(var).get("default", "")))
            return url
    return None


def _security(spec: Spec, op: Operation, options: ImportOptions) -> tuple[dict, dict, list[str]]:
    """Headers and query values for the first security alternative flowrun can send."""
    requirements = op.data.get("security", spec.data.get("security"))
    if not isinstance(requirements, list) or not requirements:
        return {}, {}, []
    schemes = as_mapping(as_mapping(spec.data.get("components")).get("securitySchemes"))
    refused = []
    for alternative in requirements:
        alternative = as_mapping(alternative)
        headers: dict[str, str] = {}
        query: dict[str, str] = {}
        env: list[str] = []
        ok = True
        for scheme_name in alternative:
            scheme, _ = spec.deref(schemes.get(scheme_name), f"securitySchemes.{scheme_name}")
            scheme = as_mapping(scheme)
            var = env_name(options.env_prefix, str(scheme_name))
            secret = f"${{{{ env.{var} }}}}"
            kind, place = scheme.get("type"), scheme.get("in")
            if kind == "apiKey" and place == "header":
                headers[str(scheme.get("name"))] = secret
            elif kind == "apiKey" and place == "query":
                query[str(scheme.get("name"))] = secret
            elif kind == "apiKey" and place == "cookie":
                headers["Cookie"] = f"{_literal(str(scheme.get('name')), 'a cookie name')}={secret}"
            elif kind == "http" and str(scheme.get("scheme", "")).lower() == "bearer":
                headers["Authorization"] = f"Bearer {secret}"
            elif kind == "http" and str(scheme.get("scheme", "")).lower() == "basic":
                var = env_name(options.env_prefix, f"{scheme_name}_BASE64")
                headers["Authorization"] = f"Basic ${{{{ env.{var} }}}}"
            else:
                ok = False
                refused.append(f"{scheme_name} ({kind or 'unknown'})")
                break
            env.append(var)
        if ok:
            return headers, query, env
    raise Unsupported("it needs " + " or ".join(refused) + " authentication; " + OAUTH_REFUSED)


def _literal(text: str, what: str) -> str:
    """Text from the spec that lands inside a template must stay text: a spec that writes
    ``${{ env.NAME }}`` into a path or server URL would make the tool send that secret."""
    if "${{" in text:
        raise SpecError(f"{what} in the spec holds a flowrun expression ('${{{{'), which would be filled "
                        f"in at call time: {text[:120]!r}", hint="an API description never needs one; "
                        "check where this spec comes from")
    return text


def env_name(prefix: str, scheme: str) -> str:
    name = snake_case(scheme).upper() or "API_KEY"
    return f"{prefix}_{name}" if prefix else name


def default_env_prefix(title: str) -> str:
    """``Swagger Petstore - OpenAPI 3.0`` -> ``SWAGGER_PETSTORE``."""
    head = re.split(r"\s[-–(:]|\(", title)[0]
    words = [w for w in re.findall(r"[A-Za-z0-9]+", head) if w.lower() not in ("api", "openapi", "the", "http", "rest")]
    return "_".join(words[:2]).upper()


def _description(op: Operation) -> str:
    summary = op.summary
    detail = str(op.data.get("description") or "").strip()
    text = summary if not detail or detail == summary else (f"{summary}\n\n{detail}" if summary else detail)
    text = text or f"{op.method} {op.path}"
    if op.data.get("deprecated") is True:
        text = "(deprecated) " + text
    if len(text) > MAX_DESCRIPTION:
        text = text[: MAX_DESCRIPTION - 1].rstrip() + "…"
    return text


def _is_private(url: str) -> bool:
    """Whether the server is this machine or a private network (the resolver refuses those
    unless the tool allows them; a person who imports against one means to reach it)."""
    host = (urlsplit(re.sub(r"\$\{\{.*?\}\}", "x", url)).hostname or "").lower()
    if host in ("localhost",) or host.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_private or ip.is_link_local
