"""The MCP servers of a workflow for one run (or one batch): start them, turn their tools into
ordinary ``ToolSpec``s, answer calls, stop them.

The rest of flowrun sees MCP tools as tools with an ``McpResolver``: the provider sends their
schemas like any other, the dispatcher checks arguments, applies timeouts, masks and caps outputs
as for any other tool, and hands the call here only to reach the server. Servers start
concurrently; when one cannot start, the others are stopped and the run does not begin
(``McpUnavailable``, exit 3), with the server's stderr kept for the run log.

A test case's ``mock_mcp`` replaces a whole server: it is not started, and its tools are the ones
the case lists, answering with the canned results through the same conversion as real ones.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping

from runner.errors import ProviderError, UsageError
from runner.tools.mcp_servers.results import convert, from_mock
from runner.tools.mcp_servers.schemas import drop_added_nulls, normalize
from runner.tools.outputs import ToolFailure
from runner.workflow.model import McpResolver, McpSource, ToolSpec, Workflow

MANY_TOOLS = 40  # past this, a source without include: is worth a warning (models pick worse)
_NOT_A_NAME = re.compile(r"[^a-zA-Z0-9_-]")
PERMISSIVE = {"type": "object", "properties": {}}


class McpUnavailable(ProviderError):
    """An MCP server did not start or could not list its tools: the run cannot begin."""

    def __init__(self, server: str, reason: str, stderr: str = ""):
        more = " (run with -v to see its stderr)" if stderr.strip() else ""
        super().__init__(f"MCP server {server!r} did not start: {reason}{more}")
        self.server = server
        self.stderr = stderr


@dataclass(frozen=True)
class Missing:
    """An included or overridden tool the server does not have."""

    source: int  # index among the workflow's MCP sources
    key: str  # include | overrides
    index: int | str  # list index (include) or the override's name
    name: str
    guess: str | None
    available: tuple[str, ...]


@dataclass
class _Entry:
    source: McpSource
    remote: dict[str, Any]  # the server's tool listing entry (wire form)


class McpTools:
    def __init__(
        self,
        workflow: Workflow,
        *,
        env: Mapping[str, str],
        mocks: Mapping[str, Mapping[str, Any]] | None = None,
        allow_local_code: bool = True,
        on_notice: Callable[[str, str], None] | None = None,  # (level, message)
    ):
        self.workflow = workflow
        self._env = env
        self._mocks = dict(mocks or {})
        self._allow_local_code = allow_local_code
        self._notice = on_notice or (lambda level, message: None)
        self._connections: dict[str, Any] = {}
        self._entries: dict[str, _Entry] = {}  # exposed name -> where it comes from
        self.tools: tuple[ToolSpec, ...] = ()
        self.missing: list[Missing] = []
        self.listings: dict[str, list[dict[str, Any]]] = {}  # server -> its tools as it lists them

    def with_tools(self, workflow: Workflow | None = None) -> Workflow:
        """The workflow with the MCP tools after its own: what the provider and dispatcher use."""
        workflow = workflow or self.workflow
        own = tuple(t for t in workflow.tools if not isinstance(t.resolver, McpResolver))
        return replace(workflow, tools=own + self.tools)

    async def start(self) -> tuple[ToolSpec, ...]:
        """Start every server (mocked ones excepted) and build the tool list. Raises
        McpUnavailable (exit 3) or UsageError (exit 2: refused stdio server, name clash)."""
        from runner.tools.mcp_servers.connection import McpStartError, ServerConnection

        live = [s for s in self.workflow.mcp if s.server.name not in self._mocks]
        refused = [s for s in live if s.server.command and not self._allow_local_code]
        if refused:
            raise UsageError(
                f"MCP server {refused[0].server.name!r} runs a local command ({refused[0].server.command}), "
                "and local code is refused (--no-local-code)",
                hint="run without --no-local-code only for workflow files you trust")
        for source in live:
            self._connections[source.server.name] = ServerConnection(source.server, folder=self.workflow.folder,
                                                                     env=self._env)
        results = await asyncio.gather(*(self._connections[s.server.name].start() for s in live),
                                       return_exceptions=True)
        failure = None
        for source, result in zip(live, results):
            name = source.server.name
            if isinstance(result, McpStartError):
                if result.stderr.strip():
                    self._notice("debug", f"MCP server {name!r} stderr:\n{result.stderr.rstrip()}")
                failure = failure or McpUnavailable(name, str(result), result.stderr)
            elif isinstance(result, BaseException):
                failure = failure or McpUnavailable(name, f"{type(result).__name__}: {result}")
            else:
                self.listings[name] = result
        if failure is not None:
            await self.aclose()
            raise failure
        self.tools = self._build()
        return self.tools

    def _build(self) -> tuple[ToolSpec, ...]:
        own = {t.name for t in self.workflow.tools}
        specs: list[ToolSpec] = []
        for index, source in enumerate(self.workflow.mcp):
            name = source.server.name
            if name in self._mocks:
                listing = [{"name": tool[len(source.prefix):], "description": "canned by the test case (mock_mcp)",
                            "inputSchema": PERMISSIVE} for tool in self._mocks[name]]
            else:
                listing = self.listings.get(name, [])
            by_name = {t.get("name"): t for t in listing if isinstance(t, dict) and isinstance(t.get("name"), str)}
            if name not in self._mocks:  # a mocked server's real tool list is not known
                self._check_selection(index, source, list(by_name))
            chosen = [t for n, t in by_name.items()
                      if (source.include is None or n in source.include) and n not in source.exclude]
            if source.include is None and len(chosen) > MANY_TOOLS:
                self._notice("warning", f"MCP server {name!r} offers {len(chosen)} tools; a model chooses worse "
                             "among many tools: list the ones it needs under include:")
            for remote in chosen:
                spec = self._tool_spec(source, remote)
                if spec.name in own or spec.name in self._entries:
                    raise UsageError(f"MCP server {name!r} offers a tool named {spec.name!r}, and the workflow "
                                     "already has a tool of that name",
                                     hint=f"set prefix: on the mcp: source of {name!r} (line {source.line})")
                self._entries[spec.name] = _Entry(source, remote)
                specs.append(spec)
        return tuple(specs)

    def _check_selection(self, index: int, source: McpSource, available: list[str]) -> None:
        from runner.suggest import suggest

        wanted = [("include", j, n) for j, n in enumerate(source.include or ())]
        wanted += [("overrides", n, n) for n in source.overrides]
        for key, where, tool in wanted:
            if tool not in available:
                self.missing.append(Missing(index, key, where, tool, suggest(tool, available), tuple(available)))

    def _tool_spec(self, source: McpSource, remote: dict[str, Any]) -> ToolSpec:
        server, tool = source.server.name, remote["name"]
        exposed = source.prefix + _NOT_A_NAME.sub("_", tool)
        exposed = exposed[:64]
        if exposed != source.prefix + tool:
            self._notice("debug", f"MCP tool {tool!r} of {server!r} is called {exposed!r} (the APIs allow "
                         "letters, digits, _ and -, at most 64)")
        override = source.overrides.get(tool)
        normalized = normalize(remote.get("inputSchema"), strict=source.strict)
        if normalized.changes:
            self._notice("debug", f"MCP tool {exposed!r}: schema rewritten for the API: "
                         + "; ".join(normalized.changes))
        description = (override.description if override and override.description
                       else str(remote.get("description") or remote.get("title") or f"{tool} (MCP server {server})"))
        timeout = override.timeout if override and override.timeout else source.timeout
        annotations = remote.get("annotations")
        read_only = isinstance(annotations, dict) and annotations.get("readOnlyHint") is True
        if override and override.approval:
            approval = replace(override.approval, origin=f"the MCP server {server!r}'s override for {tool!r}")
        elif source.approval:
            approval = replace(source.approval, origin=f"the MCP server {server!r}")
        else:
            approval = None
        return ToolSpec(name=exposed, description=description, parameters=normalized.parameters,
                        resolver=McpResolver(server, tool), timeout=timeout, strict=normalized.strict,
                        line=source.line, approval=approval, read_only=read_only)

    def raise_for_missing(self) -> None:
        """Exit 2 when an included or overridden tool does not exist on its server."""
        if not self.missing:
            return
        m = self.missing[0]
        source = self.workflow.mcp[m.source]
        guess = f" (did you mean {m.guess!r}?)" if m.guess else ""
        shown = ", ".join(m.available[:20]) + (", ..." if len(m.available) > 20 else "") or "none"
        raise UsageError(f"{self.workflow.path}:{source.line}: MCP server {source.server.name!r} has no tool "
                         f"{m.name!r} ({m.key}){guess}", hint=f"its tools: {shown}")

    async def call(self, resolver: McpResolver, exposed: str, args: dict[str, Any]) -> str:
        """The output of one call; raises ToolFailure for an error result or a broken server."""
        entry = self._entries.get(exposed)
        if entry is None:
            raise ToolFailure(f"no MCP tool {exposed!r} in this run")
        mocks = self._mocks.get(resolver.server)
        if mocks is not None:
            mock = mocks.get(exposed)
            result = from_mock(mock) if isinstance(mock, dict) else None
            if result is None:
                raise ToolFailure(f"the test case has no canned result for {exposed!r} (mock_mcp)")
        else:
            arguments = drop_added_nulls(args, entry.remote.get("inputSchema"))
            result = await self._connections[resolver.server].call(resolver.tool, arguments)
        output, is_error = convert(result)
        if is_error:
            raise ToolFailure(output)
        return output

    def stderr_tails(self) -> dict[str, str]:
        return {name: c.stderr_tail() for name, c in self._connections.items() if c.stderr_tail().strip()}

    async def aclose(self) -> None:
        """Stop every server, concurrently; each stop is bounded."""
        connections, self._connections = list(self._connections.values()), {}
        await asyncio.gather(*(c.aclose() for c in connections), return_exceptions=True)
        for c in connections:
            c.close_stderr()
