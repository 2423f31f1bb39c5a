"""The MCP servers of a run (or of a batch, shared by its runs): started before the first request,
their tools checked against the file, stopped by whoever started them."""

from __future__ import annotations

from typing import Any, Callable, Mapping

from runner.events import Event, Notice
from runner.workflow.model import Workflow


async def start_mcp(workflow: Workflow, *, env: Mapping[str, str], emit: Callable[[Event], None] | None = None,
                    mocks: Mapping[str, Any] | None = None, allow_local_code: bool = True):
    """The workflow's MCP servers, started, their tools listed and checked against the file.
    Raises McpUnavailable (exit 3) when one does not start, UsageError (exit 2) when an included
    tool does not exist or local code is refused. The caller closes it (``aclose``)."""
    from runner.tools.mcp_servers.manager import McpTools

    def notice(level: str, message: str) -> None:
        if emit is not None:
            emit(Notice(level=level, message=message))

    mcp = McpTools(workflow, env=env, mocks=mocks, allow_local_code=allow_local_code, on_notice=notice)
    await mcp.start()
    try:
        mcp.raise_for_missing()
    except BaseException:
        await mcp.aclose()
        raise
    for source in workflow.mcp:
        name = source.server.name
        count = sum(1 for t in mcp.tools if t.resolver.server == name)
        how = "canned by the test case (mock_mcp)" if mocks and name in mocks else source.server.transport
        notice("debug", f"MCP server {name!r} ({how}): {count} tool{'s' if count != 1 else ''}")
    return mcp
