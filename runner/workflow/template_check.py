"""Check every ``${{ }}`` expression in a workflow, and the HTTP URLs they build.

Which contexts an expression may use depends on where it is: a tool's resolver sees the model's
``args``, ``env`` and ``inputs``; the instructions and the input see ``inputs``; only a scripted test
turn's text sees ``outputs``. Anywhere else ``${{ }}`` is not filled in at all, which is worth a warning.

The URL rule: a model argument must never choose where a request goes (scheme, host or port)
unless the tool lists the hosts it may reach in ``allow_hosts``.
"""

from __future__ import annotations

import os
import re
from typing import Any, Iterator

from runner.errors import Problem
from runner.secrets.masker import MIN_LENGTH
from runner.templating import Reference, TemplateError, find_references
from runner.suggest import suggest
from runner.workflow.mcp_check import mcp_names
from runner.workflow.yaml_loader import Document, JsonPath

_RESOLVER = frozenset({"args", "env", "inputs"})
_BOUND = frozenset({"env", "inputs"})  # a tool's bind: fixed by the file, never by the model
_PROMPT = frozenset({"inputs"})  # runner.run.settings.render_text fills inputs only
_MCP_HEADERS = frozenset({"env"})  # an MCP server's headers: filled once, when it is connected
_TURN_TEXT = frozenset({"outputs"})  # runner.scripted.script.render_text fills outputs only
_WHERE = {
    "args": "args is only available in a tool's resolve",
    "outputs": "outputs is only available in the text of a test turn",
    "env": "env is only available in a tool's resolve",
    "inputs": "inputs is not available in a test turn's text",
}
_HTTP_TEMPLATED = ("url", "query", "headers", "body")
_SECRET_HEADER = re.compile(r"(?i)authorization|api[-_]?key|token|secret|password|cookie")


def contexts_at(path: JsonPath) -> frozenset[str] | None:
    """The contexts an expression at ``path`` may use, or None where nothing is filled in."""
    n = len(path)
    if n == 1 and path[0] in ("instructions", "input"):
        return _PROMPT
    if n == 5 and path[0] == "tools" and path[2] == "mcp" and path[3] == "headers":
        return _MCP_HEADERS
    if n >= 4 and path[0] == "tools" and path[2] == "bind":
        return _BOUND
    if n >= 4 and path[0] == "tools" and path[2] == "resolve":
        if path[3] == "static" or (path[3] == "http" and n >= 5 and path[4] in _HTTP_TEMPLATED):
            return _RESOLVER
    if n == 3 and path[0] == "tests" and path[2] == "input":
        return _PROMPT
    if n == 5 and path[0] == "tests" and path[2] == "turns" and path[4] == "text":
        return _TURN_TEXT
    return None


def strings(value: Any, path: JsonPath = ()) -> Iterator[tuple[JsonPath, str]]:
    """Every string value inside ``value``, with its path."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from strings(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from strings(v, path + (i,))


def template_problems(doc: Document, *, workflow: Any = None) -> list[Problem]:
    """Problems with expressions anywhere in the document, and with HTTP tools' URLs.
    ``workflow`` is the data of the workflow whose tools and inputs expressions may name, when
    ``doc`` is its test file (NAME.test.yaml); by default ``doc`` is the workflow itself."""
    data = doc.data
    tools = data.get("tools") if isinstance(data.get("tools"), list) else []
    owner = data if workflow is None else workflow
    inputs = owner.get("inputs") if isinstance(owner.get("inputs"), dict) else {}
    owner_tools = owner.get("tools") if isinstance(owner.get("tools"), list) else []
    tool_names = [t["name"] for t in owner_tools if isinstance(t, dict) and isinstance(t.get("name"), str)]
    mcp = mcp_names(owner)
    tool_names += [n for n in sorted(mcp.exact) if n not in tool_names]
    out: list[Problem] = []
    for path, text in strings(data):
        if "${{" not in text:
            continue
        allowed = contexts_at(path)
        if allowed is None:
            out.append(doc.problem(path, "${{ }} is not filled in here; this text is used as is",
                                   "expressions work in instructions, input, a tool's resolve and test turn texts",
                                   severity="warning"))
            continue
        try:
            refs = find_references(text)
        except TemplateError as e:
            out.append(doc.problem(path, str(e), e.hint or "write ${{ args.NAME }}, ${{ env.NAME }} or ${{ inputs.NAME }}"))
            continue
        for ref in refs:
            if ref.context == "outputs" and mcp.may_exist(ref.name):
                continue  # an MCP server's tool: its server says whether it exists
            out.extend(_check_ref(doc, path, ref, allowed, tools, inputs, tool_names))
    for i, tool in enumerate(tools):
        http = tool.get("resolve", {}).get("http") if isinstance(tool, dict) and isinstance(tool.get("resolve"), dict) else None
        if isinstance(http, dict):
            out.extend(_http_problems(doc, ("tools", i, "resolve", "http"), http, tool.get("name")))
    return out


def _check_ref(doc: Document, path: JsonPath, ref: Reference, allowed: frozenset[str],
               tools: list, inputs: dict, tool_names: list[str]) -> list[Problem]:
    if ref.context not in allowed and allowed is _MCP_HEADERS:
        return [doc.problem(path, f"{ref.text}: an MCP server's headers can only use env (they are filled once, "
                            "when the server is connected)", "use ${{ env.NAME }} here")]
    if ref.context not in allowed:
        return [doc.problem(path, f"{ref.text}: {_WHERE[ref.context]}",
                            "use " + ", ".join(f"${{{{ {c}.NAME }}}}" for c in sorted(allowed)) + " here")]
    if ref.context == "args":
        tool = tools[path[1]]
        params = tool.get("parameters") if isinstance(tool.get("parameters"), dict) else {}
        props = params.get("properties") if isinstance(params.get("properties"), dict) else {}
        return _unknown_name(doc, path, ref, "argument", "the tool's parameters do not declare", list(props),
                             "declare it under parameters.properties, or fix the name")
    if ref.context == "inputs":
        return _unknown_name(doc, path, ref, "input", "inputs does not declare", list(inputs),
                             "declare it under inputs:, or fix the name")
    if ref.context == "outputs":
        return _unknown_name(doc, path, ref, "tool", "the workflow does not define", tool_names,
                             "name one of the workflow's tools")
    value = os.environ.get(ref.name)
    if value is not None and 0 < len(value) < MIN_LENGTH:
        return [doc.problem(path, f"environment variable {ref.name} is shorter than {MIN_LENGTH} characters, "
                                  "too short to redact reliably",
                            "if it is a secret, use a longer one", severity="warning")]
    return []


def _unknown_name(doc: Document, path: JsonPath, ref: Reference, what: str, owner: str,
                  known: list[str], hint: str) -> list[Problem]:
    if ref.name in known:
        return []
    guess = suggest(ref.name, known)
    message = f"expression names {what} '{ref.name}' that {owner}" + (f" (did you mean '{guess}'?)" if guess else "")
    return [doc.problem(path, message, hint)]


def _http_problems(doc: Document, base: JsonPath, http: dict, tool: Any) -> list[Problem]:
    out: list[Problem] = []
    url = http.get("url")
    refs = _refs(url) if isinstance(url, str) else []
    if refs:
        authority_end, query_start = _url_parts(url, refs)
        chosen = [r for r in refs if r.context == "args" and r.offset < authority_end]
        if chosen and not http.get("allow_hosts"):
            out.append(doc.problem(
                base + ("url",),
                f"model argument in URL scheme/host/port position: {chosen[0].text} (tool '{tool}')",
                "write the host into the url, or declare allow_hosts: [the hosts the model may reach]"))
        if any(r.context == "env" and query_start <= r.offset for r in refs):
            out.append(_secret_in_url(doc, base + ("url",)))
    if isinstance(url, str):
        out += _url_shape_problems(doc, base, url, refs, http, tool)
    query = http.get("query")
    if isinstance(query, dict):
        for path, text in strings(query, base + ("query",)):
            if any(r.context == "env" for r in _refs(text)):
                out.append(_secret_in_url(doc, path))
    body = http.get("body")
    if isinstance(body, str) and body.lstrip()[:1] in ("{", "[") and any(r.context == "args" for r in _refs(body)):
        out.append(doc.problem(
            base + ("body",), "the JSON body is written as text with arguments spliced in: "
            "a quote in an argument can change its structure",
            "write the body as a YAML mapping; its values are then JSON-encoded", severity="warning"))
    headers = http.get("headers")
    if isinstance(headers, dict):
        for name, value in headers.items():
            bad = re.search(r"[\x00-\x08\x0a-\x1f\x7f]", value) if isinstance(value, str) else None
            if bad:
                line_break = bad.group() in "\r\n"
                what = "a line break" if line_break else f"the control character {bad.group()!r}"
                out.append(doc.problem(
                    base + ("headers", name), f"header '{name}' value contains {what}",
                    "write the value on one line (a YAML block with | or > ends in a line break: use |- or >-)"
                    if line_break else "remove it: a header value is printable text (a server would refuse it)"))
            if isinstance(value, str) and _SECRET_HEADER.search(name) and not any(
                r.context == "env" for r in _refs(value)
            ):
                out.append(doc.problem(
                    base + ("headers", name), f"header '{name}' holds a literal value",
                    "if it is a secret, keep it in an environment variable: ${{ env.NAME }}", severity="warning"))
    return out


_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\Z")


def _url_shape_problems(doc: Document, base: JsonPath, url: str, refs: list[Reference],
                        http: dict, tool: Any) -> list[Problem]:
    """A host written in the file that cannot be a host, and path arguments the model may omit
    (the request would then go to a different path)."""
    out: list[Problem] = []
    authority_end, query_start = _url_parts(url, refs)
    scheme = url.find("://")
    if scheme >= 0 and not any(r.offset < authority_end for r in refs):
        authority = url[scheme + 3 : authority_end]
        host = authority.rpartition("@")[2]
        if not host.startswith("["):
            host = host.rpartition(":")[0] if re.search(r":\d*\Z", host) else host
            labels = host.split(".")
            if host.endswith(".") and len(labels) > 1:
                labels = labels[:-1]
            if not host or not all(_HOST_LABEL.match(label) for label in labels):
                why = ("it is empty" if not host else "it contains a space" if " " in host
                       else "it has an empty part between dots" if "" in labels
                       else "it may hold only letters, digits, '-' and '.'")
                out.append(doc.problem(base + ("url",), f"URL host {host!r} cannot be a host name: {why} (tool '{tool}')",
                                       "write the host as names joined by dots, e.g. api.example.com"))
    required = _required_of(doc, base)
    masked = "".join("\0" if any(r.offset <= i < r.offset + len(r.text) for r in refs) else c for i, c in enumerate(url))
    fragment = masked.find("#", authority_end)
    path_end = min(query_start, fragment if fragment >= 0 else len(url))
    for r in refs:
        if r.context == "args" and authority_end <= r.offset < path_end and required is not None and r.name not in required:
            out.append(doc.problem(
                base + ("url",), f"argument '{r.name}' is used in the URL path but is not in required (tool '{tool}')",
                f"add {r.name} to the tool's parameters.required, or move it to query:"))
    return out


def _required_of(doc: Document, base: JsonPath) -> list | None:
    """The ``required`` list of the tool at ``base`` (tools, i, resolve, http); None if its
    parameters are not a mapping (reported elsewhere)."""
    tool = doc.data["tools"][base[1]]
    params = tool.get("parameters")
    if not isinstance(params, dict):
        return None
    required = params.get("required", [])
    return required if isinstance(required, list) else None


def _secret_in_url(doc: Document, path: JsonPath) -> Problem:
    return doc.problem(path, "${{ env.* }} in the URL query: secrets in URLs leak through logs and proxies",
                       "send the secret in a header instead, e.g. Authorization: Bearer ${{ env.NAME }}",
                       severity="warning")


def _refs(text: str) -> list[Reference]:
    try:
        return find_references(text)
    except TemplateError:
        return []  # reported once, by the walk over all strings


def _url_parts(url: str, refs: list[Reference]) -> tuple[int, int]:
    """(end of the authority, start of the query) as offsets in the template. Expressions are
    masked first, so a value's own ``/`` or ``?`` cannot count; a URL that starts with an
    expression takes scheme and host from it."""
    masked = list(url)
    for r in refs:
        masked[r.offset : r.offset + len(r.text)] = "\0" * len(r.text)
    skeleton = "".join(masked)
    scheme = skeleton.find("://")
    if scheme >= 0:
        start = scheme + 3
    elif refs and refs[0].offset == 0:
        start = len(refs[0].text)
    else:
        start = 0
    end_match = re.compile(r"[/?#]").search(skeleton, start)
    authority_end = end_match.start() if end_match else len(skeleton)
    query = skeleton.find("?", authority_end)
    fragment = skeleton.find("#", authority_end)
    query_start = query if query >= 0 and (fragment < 0 or query < fragment) else len(skeleton) + 1
    return authority_end, query_start
