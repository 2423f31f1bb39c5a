"""Static checks of MCP tool sources (``tools:`` items with ``mcp:``) that the schema cannot express.

Nothing here connects to a server: which tools a server really has is checked by
``flowrun validate --resolve`` and at run time. What can be known from the file alone is checked
here: one transport per server, keys that belong to the other transport, unique server names,
include/exclude/overrides that agree with each other, prefixed names that clash with the file's own
tools, and test cases' ``mock_mcp`` against the declared servers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from runner.errors import Problem
from runner.suggest import suggest
from runner.workflow.yaml_loader import Document, JsonPath

STDIO_KEYS = ("command", "args", "cwd", "env")
HTTP_KEYS = ("url", "headers", "allow_private_network")
FUNCTION_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def mcp_entries(data: Any) -> list[tuple[int, dict]]:
    """The ``tools:`` items that are MCP sources, with their index."""
    return [(i, t) for i, t in enumerate(_list(_dict(data).get("tools"))) if isinstance(t, dict) and "mcp" in t]


@dataclass(frozen=True)
class McpNames:
    """What the file tells about the names MCP tools will have, before any server answers.

    ``exact``: names known for sure (an include list, with its prefix). ``prefixes``: a source
    without include list may bring any name that starts with its prefix ("" means any name)."""

    exact: frozenset[str]
    prefixes: tuple[str, ...]
    servers: dict[str, dict]  # server name -> its tools: item

    def may_exist(self, name: str) -> bool:
        return name in self.exact or any(name.startswith(p) for p in self.prefixes)


def mcp_names(data: Any) -> McpNames:
    exact: set[str] = set()
    prefixes: list[str] = []
    servers: dict[str, dict] = {}
    for _, entry in mcp_entries(data):
        prefix = entry.get("prefix") if isinstance(entry.get("prefix"), str) else ""
        name = _dict(entry.get("mcp")).get("name")
        if isinstance(name, str):
            servers.setdefault(name, entry)
        include = entry.get("include")
        if isinstance(include, list):
            exact |= {prefix + n for n in include if isinstance(n, str)}
        else:
            prefixes.append(prefix)
    return McpNames(frozenset(exact), tuple(prefixes), servers)


def mcp_problems(doc: Document) -> list[Problem]:
    """Every problem with the MCP sources of a workflow document."""
    out: list[Problem] = []
    own_tools = {t.get("name") for t in _list(_dict(doc.data).get("tools"))
                 if isinstance(t, dict) and "mcp" not in t and isinstance(t.get("name"), str)}
    first_server: dict[str, int] = {}
    exposed: dict[str, JsonPath] = {}
    for i, entry in mcp_entries(doc.data):
        base: JsonPath = ("tools", i)
        server = entry.get("mcp")
        if not isinstance(server, dict):
            continue  # the schema check reports it
        out += _transport_problems(doc, base + ("mcp",), server)
        name = server.get("name")
        if isinstance(name, str):
            if name in first_server:
                line = doc.position(("tools", first_server[name], "mcp", "name"))[0]
                out.append(doc.problem(base + ("mcp", "name"), f"duplicate MCP server name '{name}' (also at line {line})",
                                       "give each server its own name; one server can be listed once, with include: "
                                       "for the tools you want"))
            else:
                first_server[name] = i
        out += _selection_problems(doc, base, entry)
        prefix = entry.get("prefix") if isinstance(entry.get("prefix"), str) else ""
        for j, tool in enumerate(_list(entry.get("include"))):
            if not isinstance(tool, str):
                continue
            shown = prefix + tool
            where = base + ("include", j)
            if shown in own_tools:
                out.append(doc.problem(where, f"MCP tool '{shown}' has the name of a tool of this file",
                                       "set prefix: on the MCP source, or rename the file's tool"))
            elif shown in exposed:
                out.append(doc.problem(where, f"two MCP sources offer a tool named '{shown}'",
                                       "give one of the sources a prefix:"))
            exposed.setdefault(shown, where)
            if not FUNCTION_NAME.match(shown):
                out.append(doc.problem(where, f"'{shown}' is not a valid function name for the model; it is "
                                       "sent with the characters the APIs refuse replaced by _ (and cut to 64)",
                                       "set a shorter prefix, or expect the changed name in tests", severity="warning"))
    return out


def _transport_problems(doc: Document, base: JsonPath, server: dict) -> list[Problem]:
    has_command, has_url = "command" in server, "url" in server
    if has_command == has_url:
        found = "both" if has_command else "neither"
        return [doc.problem(base, f"an MCP server needs exactly one of command or url (found {found})",
                            "command: starts a local server (stdio); url: connects to a remote one (streamable HTTP)",
                            key=True)]
    out = []
    wrong, kind = (HTTP_KEYS, "url") if has_command else (STDIO_KEYS, "command")
    for key in wrong:
        if key in server:
            out.append(doc.problem(base + (key,), f"{key} only applies to a server given by {kind}",
                                   f"remove {key}, or describe the server by {kind}", key=True))
    command = server.get("command")
    if isinstance(command, str) and not server.get("args") and re.search(r"\s", command.strip()):
        out.append(doc.problem(base + ("command",), "command holds spaces; it is run as one program name, not split",
                               f"write command: {command.split()[0]} and the rest as a list under args:",
                               severity="warning"))
    return out


def _selection_problems(doc: Document, base: JsonPath, entry: dict) -> list[Problem]:
    out = []
    include = [n for n in _list(entry.get("include")) if isinstance(n, str)]
    exclude = [n for n in _list(entry.get("exclude")) if isinstance(n, str)]
    for j, name in enumerate(_list(entry.get("exclude"))):
        if name in include:
            out.append(doc.problem(base + ("exclude", j), f"'{name}' is both included and excluded",
                                   "keep it in one list", severity="warning"))
    for name in _dict(entry.get("overrides")):
        where = base + ("overrides", name)
        if "include" in entry and name not in include:
            guess = suggest(name, include)
            out.append(doc.problem(where, f"overrides '{name}', which include does not list"
                                   + (f" (did you mean '{guess}'?)" if guess else ""),
                                   "add it to include:, or fix the name (the name the server gives the tool)", key=True))
        elif name in exclude:
            out.append(doc.problem(where, f"overrides '{name}', which exclude leaves out",
                                   "remove the override or the exclusion", key=True, severity="warning"))
    return out


def mock_mcp_problems(doc: Document, case_path: JsonPath, case: dict, names: McpNames) -> list[Problem]:
    """A test case's ``mock_mcp``: servers the workflow declares, tools they may offer."""
    out = []
    for server, tools in _dict(case.get("mock_mcp")).items():
        where = case_path + ("mock_mcp", server)
        entry = names.servers.get(server)
        if entry is None:
            guess = suggest(server, names.servers)
            out.append(doc.problem(where, f"mock_mcp names server '{server}', which the workflow does not declare"
                                   + (f" (did you mean '{guess}'?)" if guess else ""),
                                   "use the name: of one of the workflow's mcp: sources", key=True))
            continue
        prefix = entry.get("prefix") if isinstance(entry.get("prefix"), str) else ""
        include = entry.get("include")
        for tool in _dict(tools):
            if not tool.startswith(prefix):
                out.append(doc.problem(where + (tool,), f"server '{server}' gives its tools the prefix '{prefix}'; "
                                       f"the model calls this one '{prefix}{tool}'",
                                       "name the tool as the model calls it", key=True))
            elif isinstance(include, list) and tool[len(prefix):] not in include:
                known = [prefix + n for n in include if isinstance(n, str)]
                guess = suggest(tool, known)
                out.append(doc.problem(where + (tool,), f"server '{server}' does not include a tool '{tool[len(prefix):]}'"
                                       + (f" (did you mean '{guess}'?)" if guess else ""),
                                       "mock one of the tools listed under include:", key=True))
    return out
