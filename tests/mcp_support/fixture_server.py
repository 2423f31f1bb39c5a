"""A small MCP server for flowrun's tests, written with the SDK's own low-level server API.

    python fixture_server.py stdio [--many N] [--fail-start]
    python fixture_server.py http [--many N] [--port N]   # prints "PORT <n>" once listening on 127.0.0.1

Its tools cover what a client must handle: plain text, structured content, isError, an image, a
huge result, a schema strict mode rejects, a tool that kills the server mid-call (crash) and one
that never answers (hang). ``--many N`` adds N trivial tools (filtering matters past a few dozen), listed in pages of 50.
Every call is counted (``calls`` tool) so tests can tell one server process from several.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import sys

import mcp_types as types
from mcp.server.lowlevel import Server

CALLS = {"n": 0}
PID = os.getpid()

STRICT_UNFRIENDLY = {
    "type": "object",
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "properties": {
        "query": {"type": "string", "default": "x", "format": "regex"},
        "limit": {"type": "integer", "minimum": 1},
        "tags": {"type": "array"},
        "mode": {"oneOf": [{"const": "fast"}, {"const": "slow"}]},
    },
    "required": ["query"],
}


def tool(name: str, description: str, schema: dict, **extra) -> types.Tool:
    return types.Tool(name=name, description=description, input_schema=schema, **extra)


def obj(props: dict | None = None, required: list | None = None) -> dict:
    return {"type": "object", "properties": props or {}, "required": required or []}


def base_tools() -> list[types.Tool]:
    return [
        tool("echo", "Echo the text back.", obj({"text": {"type": "string"}}, ["text"])),
        tool("add", "Add two numbers; structured result.", obj({"a": {"type": "number"}, "b": {"type": "number"}}, ["a", "b"]),
             output_schema=obj({"sum": {"type": "number"}}, ["sum"])),
        tool("fail", "Always reports an error.", obj()),
        tool("picture", "Returns a tiny image and a caption.", obj()),
        tool("huge", "Returns n characters.", obj({"n": {"type": "integer"}}, ["n"])),
        tool("loose", "A schema strict mode rejects as written.", STRICT_UNFRIENDLY),
        tool("crash", "Kills the server during the call.", obj()),
        tool("hang", "Never answers.", obj()),
        tool("calls", "How many calls this server process has answered, and its pid.", obj()),
        tool("env", "The value of an environment variable the server sees.", obj({"name": {"type": "string"}}, ["name"])),
        tool("dotted.name", "A name the model APIs refuse as written.", obj()),
    ]


def make_server(many: int) -> Server:
    extra = [tool(f"tool_{i:03d}", f"Trivial tool number {i}.", obj()) for i in range(many)]

    async def list_tools(ctx, params) -> types.ListToolsResult:
        everything = base_tools() + extra
        if not extra:
            return types.ListToolsResult(tools=everything)
        start = int(params.cursor) if params is not None and params.cursor else 0  # pages of 50
        more = str(start + 50) if start + 50 < len(everything) else None
        return types.ListToolsResult(tools=everything[start:start + 50], next_cursor=more)

    async def call_tool(ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
        CALLS["n"] += 1
        args = params.arguments or {}
        name = params.name
        text = lambda t: [types.TextContent(type="text", text=t)]  # noqa: E731
        if name == "echo":
            return types.CallToolResult(content=text(str(args.get("text"))))
        if name == "add":
            total = args["a"] + args["b"]
            return types.CallToolResult(content=text(f'{{"sum": {total}}}'), structured_content={"sum": total})
        if name == "fail":
            return types.CallToolResult(content=text("the fixture always fails"), is_error=True)
        if name == "picture":
            png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 24).decode()
            return types.CallToolResult(content=text("a caption") + [
                types.ImageContent(type="image", data=png, mime_type="image/png")])
        if name == "huge":
            return types.CallToolResult(content=text("x" * int(args["n"])))
        if name == "loose":
            return types.CallToolResult(content=text("args=" + ",".join(f"{k}={args[k]!r}" for k in sorted(args))))
        if name == "crash":
            sys.stderr.write("fixture: crashing on purpose\n")
            sys.stderr.flush()
            os._exit(7)
        if name == "hang":
            await asyncio.sleep(3600)
        if name == "calls":
            return types.CallToolResult(content=text(f"{CALLS['n']} {PID}"))
        if name == "env":
            return types.CallToolResult(content=text(str(os.environ.get(args["name"], "<unset>"))))
        if name.startswith("tool_") or name == "dotted.name":
            return types.CallToolResult(content=text(name))
        return types.CallToolResult(content=text(f"unknown tool {name}"), is_error=True)

    return Server("flowrun-fixture", on_list_tools=list_tools, on_call_tool=call_tool)


async def serve_stdio(server: Server) -> None:
    from mcp.server.stdio import stdio_server

    sys.stderr.write("fixture: stdio server ready\n")
    sys.stderr.flush()
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


async def serve_http(server: Server, port: int = 0) -> None:
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)  # connections wait in the backlog until uvicorn accepts them
    app = server.streamable_http_app(streamable_http_path="/mcp", host="127.0.0.1")
    config = uvicorn.Config(app, log_level="error", lifespan="on")
    web = uvicorn.Server(config)
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    await web.serve(sockets=[sock])


def main(argv: list[str]) -> None:
    transport = argv[0] if argv else "stdio"
    many = int(argv[argv.index("--many") + 1]) if "--many" in argv else 0
    if "--fail-start" in argv:
        sys.stderr.write("fixture: cannot open the database /nonexistent/db.sqlite\n")
        sys.exit(1)
    if os.environ.get("FIXTURE_PID_FILE"):  # lets a test check that the process is gone afterwards
        with open(os.environ["FIXTURE_PID_FILE"], "w") as f:
            f.write(str(os.getpid()))
    server = make_server(many)
    port = int(argv[argv.index("--port") + 1]) if "--port" in argv else 0
    asyncio.run(serve_http(server, port) if transport == "http" else serve_stdio(server))


if __name__ == "__main__":
    main(sys.argv[1:])
