"""One live MCP server: started (stdio) or connected (streamable HTTP) once, called many times.

The SDK's client lives in its own task for the server's whole life, because its transports are
anyio task groups that must be entered and left by the same task; calls come from any task (the
dispatcher runs parallel calls, a batch runs many runs) and only wait for their answer. So a call
that is cancelled (its timeout, Ctrl-C) never tears the connection down, and closing is one event
the owner task reacts to, with a bound on how long it may take.

A server that exits or breaks mid-run fails the calls in flight and every later one at once, with a
message naming it; its stderr (stdio) is kept in a temporary file and read back for the run log.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Mapping

from runner import __version__
from runner.templating import render_string
from runner.tools.outputs import ToolFailure
from runner.workflow.model import McpServerSpec

MAX_LIST_PAGES = 100  # a server whose tools/list never ends cannot hang the start
CLOSE_SECONDS = 8.0  # the SDK's own stdio shutdown is bounded at ~6 s (grace, TERM, KILL)
STDERR_TAIL = 8000
# The SDK logs a broken server's traffic at ERROR with tracebacks; flowrun reports it once itself.
logging.getLogger("mcp").setLevel(logging.CRITICAL)


class McpStartError(Exception):
    """A server did not start, did not answer, or could not list its tools."""

    def __init__(self, message: str, stderr: str = ""):
        super().__init__(message)
        self.stderr = stderr


class ServerConnection:
    def __init__(self, spec: McpServerSpec, *, folder: Path, env: Mapping[str, str]):
        self.spec = spec
        self._folder = folder
        self._env = env
        self._client: Any = None
        self._owner: asyncio.Task | None = None
        self._stop = asyncio.Event()
        self._stderr = None
        self._broken: str | None = None

    async def start(self) -> list[dict[str, Any]]:
        """Start or connect, then list every tool (as wire-form dicts). Raises McpStartError."""
        ready: asyncio.Future = asyncio.get_running_loop().create_future()
        self._owner = asyncio.create_task(self._own(ready), name=f"mcp:{self.spec.name}")

        async def connected_then_listed() -> list[dict[str, Any]]:
            await asyncio.shield(ready)
            return await self._list_tools()

        try:
            return await asyncio.wait_for(connected_then_listed(), self.spec.startup_timeout)
        except (TimeoutError, asyncio.TimeoutError):
            await self.aclose(graceful=False)
            raise McpStartError(f"did not answer within {self.spec.startup_timeout:g} s "
                                "(startup_timeout)", self.stderr_tail()) from None
        except asyncio.CancelledError:
            await self.aclose(graceful=False)
            raise
        except Exception as e:  # noqa: BLE001 - whatever the SDK or the server threw
            await self.aclose(graceful=False)
            raise McpStartError(_reason(e), self.stderr_tail()) from None

    async def _own(self, ready: asyncio.Future) -> None:
        from mcp import Client
        from mcp.types import Implementation

        try:
            transport = await self._transport()
            async with Client(transport, client_info=Implementation(name="flowrun", version=__version__),
                              cache=None) as client:
                self._client = client
                if not ready.done():
                    ready.set_result(None)
                await self._stop.wait()
        except BaseException as e:  # noqa: BLE001 - reported through ``ready`` or at the next call
            if not ready.done():
                if isinstance(e, Exception):
                    ready.set_exception(e)
                else:
                    ready.cancel()  # start() gave up (its timeout) or was cancelled: nobody waits
            elif self._broken is None:
                self._broken = _reason(e)
            if isinstance(e, asyncio.CancelledError):
                raise
        finally:
            self._client = None
            if self._broken is None and not self._stop.is_set():
                self._broken = "the connection ended"

    async def _transport(self):
        if self.spec.command:
            from mcp.client.stdio import StdioServerParameters, get_default_environment, stdio_client

            passed = {name: self._env[name] for name in self.spec.env if name in self._env}
            cwd = self._folder / self.spec.cwd if self.spec.cwd else self._folder
            if not cwd.is_dir():
                raise McpStartError(f"its cwd {cwd} is not a folder")
            self._stderr = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")
            params = StdioServerParameters(command=find_command(self.spec.command), args=list(self.spec.args),
                                           env={**get_default_environment(), **passed}, cwd=str(cwd))
            return stdio_client(params, errlog=self._stderr)
        from mcp.client.streamable_http import streamable_http_client

        from runner.tools.mcp_servers.remote import guarded_client

        headers = {k: render_string(v, {"env": self._env}) for k, v in self.spec.headers.items()}
        client = await guarded_client(self.spec.url, headers, allow_private=self.spec.allow_private_network)
        return _owned(streamable_http_client(self.spec.url, http_client=client), client)

    async def _list_tools(self) -> list[dict[str, Any]]:
        tools: list[dict[str, Any]] = []
        cursor = None
        for _ in range(MAX_LIST_PAGES):
            page = await self._client.list_tools(cursor=cursor)
            tools += [t.model_dump(by_alias=True, exclude_none=True, mode="json") for t in page.tools]
            cursor = page.next_cursor
            if not cursor:
                return tools
        raise McpStartError(f"listed more than {MAX_LIST_PAGES} pages of tools")

    async def call(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """The server's CallToolResult as a wire-form dict. Raises ToolFailure when the server is
        gone or breaks during the call; the caller's timeout cancels the wait only."""
        client = self._client
        if client is None or self._broken:
            raise ToolFailure(f"MCP server {self.spec.name!r} is not running ({self._broken or 'it was closed'})"
                              + self._stderr_hint())
        try:
            result = await client.call_tool(tool, arguments)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - the server's failure becomes the call's output
            reason = _reason(e)
            if _connection_lost(e) or self._owner is None or self._owner.done():
                self._broken = self._broken or reason
                raise ToolFailure(f"MCP server {self.spec.name!r} stopped during the call ({reason})"
                                  + self._stderr_hint()) from None
            raise ToolFailure(f"MCP server {self.spec.name!r} failed the call: {reason}") from None
        return result.model_dump(by_alias=True, exclude_none=True, mode="json")

    def _stderr_hint(self) -> str:
        tail = self.stderr_tail().strip().splitlines()
        return f"; its last stderr line: {tail[-1][:300]}" if tail else ""

    def stderr_tail(self) -> str:
        """The end of what a stdio server wrote to stderr (empty for a remote one)."""
        f = self._stderr
        if f is None or f.closed:
            return ""
        try:
            f.flush()
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - STDERR_TAIL))
            return f.read()[-STDERR_TAIL:]
        except (OSError, ValueError):
            return ""

    async def aclose(self, *, graceful: bool = True) -> None:
        """Stop the server (stdio: close stdin, then TERM, then KILL, by the SDK) or end the HTTP
        session. Bounded: a server that does not go away in time is abandoned to the SDK's kill.
        ``graceful=False`` (a start that failed) cancels the connection attempt at once."""
        self._stop.set()
        owner, self._owner = self._owner, None
        if owner is not None and not graceful:
            owner.cancel()
        if owner is None:
            return
        done, _ = await asyncio.wait({owner}, timeout=CLOSE_SECONDS)
        if not done:
            owner.cancel()
            done, _ = await asyncio.wait({owner}, timeout=CLOSE_SECONDS)
        if done and not owner.cancelled():
            owner.exception()  # recorded already; retrieved so asyncio does not warn about it

    def close_stderr(self) -> None:
        if self._stderr is not None:
            self._stderr.close()


def find_command(command: str) -> str:
    """``command`` as the PATH finds it, else beside the running Python: a server installed in the
    same environment as flowrun (``.venv/bin/mcp-server-time``) starts without activating it."""
    if os.sep in command or shutil.which(command):
        return command
    beside = Path(sys.executable).parent / command
    return str(beside) if beside.is_file() and os.access(beside, os.X_OK) else command


class _owned:
    """A transport that also closes the HTTP client it was given, after the session ends."""

    def __init__(self, transport, client):
        self._transport, self._client = transport, client

    async def __aenter__(self):
        return await self._transport.__aenter__()

    async def __aexit__(self, *exc):
        try:
            return await self._transport.__aexit__(*exc)
        finally:
            await self._client.aclose()


def _connection_lost(e: BaseException) -> bool:
    import anyio

    from mcp.shared.exceptions import MCPError
    from mcp.types import CONNECTION_CLOSED

    if isinstance(e, MCPError):
        return getattr(e.error, "code", None) == CONNECTION_CLOSED
    return isinstance(e, (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream,
                          ConnectionError, EOFError))


def _reason(e: BaseException) -> str:
    """One line about an exception, looking inside exception groups (anyio task groups)."""
    while isinstance(e, BaseExceptionGroup) and e.exceptions:
        e = e.exceptions[0]
    if isinstance(e, FileNotFoundError):
        return f"command not found: {e.filename or e}"
    if isinstance(e, McpStartError):
        return str(e)
    text = str(e).strip().splitlines()[0][:300] if str(e).strip() else ""
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
