"""The shop workflow and helpers the paused-run tests share (tests/test_resume*.py): a POST tool
that asks before it runs, aimed at a loopback echo server that counts each request."""

from __future__ import annotations

import shlex

from support.cli import Result, flowrun
from support.reliability import ENV
from runner.workflow.model import ScriptedCall, ScriptedTurn

APIS = ["responses", "chat", "assistants"]
ORDER = ScriptedTurn(tool_calls=(ScriptedCall("order", {"item": "tea"}),))
PLACED = ScriptedTurn(text="placed: ${{ outputs.order }}")


def shop(folder, echo, api, *, extra: str = "") -> str:
    """A workflow whose ``order`` tool POSTs to the echo server (asks by default) and whose
    ``refund`` tool POSTs too."""
    path = folder / "shop.yaml"
    path.write_text(f"""version: 1
name: shop
model: {{api: {api}, name: m}}
input: buy tea
tools:
  - name: order
    description: places an order
    parameters: {{type: object, properties: {{item: {{type: string}}}}}}
    resolve:
      http: {{url: "{echo.url('/count/orders')}", method: POST, allow_private_network: true}}
  - name: refund
    description: refunds an order
    parameters: {{type: object, properties: {{item: {{type: string}}}}}}
    resolve:
      http: {{url: "{echo.url('/count/refunds')}", method: POST, allow_private_network: true}}
{extra}""")
    return str(path)


def paused_run(result: Result) -> str:
    """The run id a paused run's message names, after checking the message says what to run."""
    assert result.code == 4, result.err
    assert "flowrun resume run_" in result.err
    return result.err.split("flowrun resume ")[1].split()[0]


def start(wf, server, *args) -> Result:
    """The workflow's first run against the scripted ``server``, pausing at the approval."""
    return flowrun(wf, "--base-url", server.base_url, "--pause-on-approval", *args, env=ENV)


def command_in(result: Result) -> list[str]:
    """The arguments of the last ``flowrun resume ...`` command a pause's message names."""
    line = [line for line in result.err.splitlines() if "flowrun resume " in line][-1]
    words = shlex.split(line.split("flowrun resume ", 1)[1])
    return ["resume", *words]
