"""Helpers for the MCP tests (no tests here): workflow files that use the fixture server, and the
fixture server over streamable HTTP on 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

FIXTURE = Path(__file__).resolve().parents[1] / "mcp_support" / "fixture_server.py"


def stdio_source(name: str = "fx", *, extra_args: str = "", more: str = "", approval: str | None = "allow") -> str:
    """A tools: item (YAML text, indented for a list) for the fixture server over stdio. Its tools
    run without asking (``approval: allow``) unless ``approval`` says otherwise: the MCP tests are
    about MCP; tests/test_approvals.py covers asking."""
    args = f"[{FIXTURE}, stdio{', ' + extra_args if extra_args else ''}]"
    text = f"- mcp:\n    name: {name}\n    command: {sys.executable}\n    args: {args}\n"
    text += textwrap.indent(textwrap.dedent(more), "  ")
    if approval:
        text += f"  approval: {approval}\n"
    return textwrap.indent(text, "  ")


def workflow(tmp_path: Path, sources: str, *, tests: str = "", extra: str = "", name: str = "mcp_test") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"version: 1\nname: {name}\ninput: go\n{extra}tools:\n{sources}\n{tests}", encoding="utf-8")
    return path


class HttpFixture:
    """The fixture server over streamable HTTP, on a free port of 127.0.0.1."""

    def __init__(self, *args: str):
        self.proc = subprocess.Popen([sys.executable, str(FIXTURE), "http", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"fixture http server did not start: {line!r} {self.proc.stderr.read()[:2000]}")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}/mcp"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            stream.close()
