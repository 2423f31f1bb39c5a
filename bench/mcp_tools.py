"""MCP tools: what flowrun adds to a call, and what a server's start-up costs a run or a batch.

    .venv/bin/python bench/mcp_tools.py            # both figures
    .venv/bin/python bench/mcp_tools.py --calls 200

1. Per-call overhead: the fixture MCP server (tests/mcp_support/fixture_server.py), one ``echo``
   call at a time, through flowrun (the dispatcher: argument parsing and schema check, the MCP
   session, result conversion, masking) vs the bare SDK client (``mcp.Client.call_tool``) against
   another process of the same server, calls interleaved one by one; ratio of the medians. Over
   stdio and over streamable HTTP on 127.0.0.1 (both sides on the same HTTP server).
2. Start-up: how long starting the server and listing its tools takes, and that a batch pays it
   once: ``flowrun batch --offline`` over N inputs, each run calling the server, reports how many
   server processes answered (the ``calls`` tool returns the server's pid).

A benchmark, not a test: figures vary from run to run on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from support.mcp_files import FIXTURE, HttpFixture  # noqa: E402

from runner.calls import ToolCall  # noqa: E402
from runner.tools.dispatcher import Dispatcher  # noqa: E402
from runner.tools.mcp_servers.manager import McpTools  # noqa: E402
from runner.workflow.validate import load_workflow  # noqa: E402


def write_workflow(folder: Path, source: str, name: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(f"version: 1\nname: bench_mcp\ninput: go\ntools:\n{source}"
                    "tests:\n  - name: t\n    turns: [{tool_calls: [{name: calls}]}, {text: done}]\n",
                    encoding="utf-8")
    return path


def stdio_source() -> str:
    return (f"  - mcp: {{name: fx, command: {sys.executable}, args: [{FIXTURE}, stdio]}}\n"
            "    include: [echo, calls]\n")


def http_source(url: str) -> str:
    return f"  - mcp: {{name: fx, url: '{url}', allow_private_network: true}}\n    include: [echo, calls]\n"


async def per_call(path: Path, bare_target, calls: int) -> tuple[float, float, float]:
    """(flowrun median ms, bare SDK median ms, start-up seconds of flowrun's session)."""
    from mcp import Client

    started = time.perf_counter()
    mcp = McpTools(load_workflow(path), env=dict(os.environ))
    await mcp.start()
    startup = time.perf_counter() - started
    dispatcher = Dispatcher(mcp.workflow, mcp=mcp)
    ours: list[float] = []
    bare: list[float] = []
    try:
        async with Client(bare_target, cache=None) as client:
            for i in range(calls + 20):  # the first 20 of each side warm up
                text = f"call {i}"
                t0 = time.perf_counter()
                result = await dispatcher.run_one(ToolCall("c", "echo", json.dumps({"text": text})))
                t1 = time.perf_counter()
                reply = await client.call_tool("echo", {"text": text})
                t2 = time.perf_counter()
                assert result.output == text and reply.content[0].text == text
                if i >= 20:
                    ours.append(t1 - t0)
                    bare.append(t2 - t1)
    finally:
        await dispatcher.aclose()
        await mcp.aclose()
    return statistics.median(ours) * 1000, statistics.median(bare) * 1000, startup


def batch_startup(path: Path, inputs: int) -> tuple[float, int, list[int]]:
    """Wall seconds of an offline batch, how many server processes answered, the call counts."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.jsonl"
        out = Path(tmp) / "out.jsonl"
        src.write_text("".join(json.dumps({"message": f"m{i}"}) + "\n" for i in range(inputs)))
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "runner", "batch", str(path), "--inputs", str(src), "--out",
                               str(out), "--offline", "-c", "4"], capture_output=True, text=True, cwd=ROOT)
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"batch failed: {proc.stderr}")
        outputs = [json.loads(line)["tool_calls"][0]["output"] for line in out.read_text().splitlines()]
    pids = {o.split()[1] for o in outputs}
    return seconds, len(pids), sorted(int(o.split()[0]) for o in outputs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="measured calls per side (default 300)")
    parser.add_argument("--batch", type=int, default=20, help="inputs in the start-up batch (default 20)")
    args = parser.parse_args()
    from mcp import StdioServerParameters

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print("1. per-call overhead, flowrun vs the bare SDK client (median of "
              f"{args.calls} interleaved calls; target <= 1.10x)")
        path = write_workflow(folder, stdio_source(), "bench_stdio")
        bare = StdioServerParameters(command=sys.executable, args=[str(FIXTURE), "stdio"])
        ours, theirs, startup = asyncio.run(per_call(path, bare, args.calls))
        print(f"   stdio:           flowrun {ours:.3f} ms   bare SDK {theirs:.3f} ms   ratio {ours / theirs:.2f}x")
        server = HttpFixture()
        try:
            path_http = write_workflow(folder, http_source(server.url), "bench_http")
            ours_h, theirs_h, startup_h = asyncio.run(per_call(path_http, server.url, args.calls))
        finally:
            server.stop()
        print(f"   streamable HTTP: flowrun {ours_h:.3f} ms   bare SDK {theirs_h:.3f} ms   "
              f"ratio {ours_h / theirs_h:.2f}x")
        print("2. start-up, paid once per run or batch")
        print(f"   start the stdio server and list its tools: {startup:.2f} s; connect over HTTP and list: "
              f"{startup_h:.2f} s")
        seconds, servers, counts = batch_startup(path, args.batch)
        print(f"   flowrun batch --offline, {args.batch} runs each calling the server: {seconds:.2f} s wall, "
              f"{servers} server process answered {len(counts)} calls (its call counter reached {max(counts)})")


if __name__ == "__main__":
    main()
