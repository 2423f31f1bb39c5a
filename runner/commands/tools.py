"""``flowrun tools``: list a workflow's tools, or call one without a model.

``tools call`` resolves the tool exactly as a run would (argument parsing and schema check
included), so it is the quickest way to debug a resolver. It never imports ``openai``.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import click

from runner.commands.entry import Group

EXAMPLES = """
\b
Examples:
  flowrun tools list workflows/weather.yaml
  flowrun tools call workflows/city_weather.yaml get_temperature --args '{"location": "Paris"}'
  flowrun tools call workflows/open_meteo.yaml current_temperature --args '{"latitude": 48.85, "longitude": 2.35}'
  flowrun tools call workflows/world_time.yaml time_get_current_time --args '{"timezone": "Asia/Tokyo"}'
"""


def _load(path: str):
    """The loaded workflow (a seam for tests while the loader is elsewhere)."""
    from runner.workflow.validate import load_workflow

    return load_workflow(path)


@click.group("tools", cls=Group, epilog=EXAMPLES)
def tools_group() -> None:
    """Inspect and try a workflow's tools."""


@tools_group.command("list")
@click.argument("file", type=click.Path(dir_okay=False))
def list_command(file: str) -> None:
    """One line per tool: name, resolver kind (mcp:SERVER for a server's tools), description, then
    its parameters and whether a call runs, asks first or is refused, and why. MCP servers are
    started (or connected to) to ask for their tools."""
    workflow = _load(file)
    if workflow.mcp:
        workflow = asyncio.run(_with_mcp_tools(workflow))
    if not workflow.tools:
        click.echo("(no tools)")
        return
    width = max(len(t.name) for t in workflow.tools)
    kinds = [resolver_kind(t.resolver) for t in workflow.tools]
    kind_width = max(6, *(len(k) for k in kinds))
    for tool, kind in zip(workflow.tools, kinds):
        summary = (tool.description or "").strip().splitlines()[0] if tool.description else ""
        click.echo(f"{tool.name:<{width}}  {kind:<{kind_width}}  {summary}")
        params = parameters_summary(tool.model_parameters)
        if params:
            click.echo(f"{'':<{width}}  {'':<{kind_width}}  ({params})")
        if tool.bind:
            click.echo(f"{'':<{width}}  {'':<{kind_width}}  (bound by the file: {', '.join(tool.bind)})")
        click.echo(f"{'':<{width}}  {'':<{kind_width}}  approval: {approval_summary(tool, workflow)}")


def approval_summary(tool, workflow) -> str:
    """What happens when the model calls ``tool``: runs, asks first or refused, and why (the
    default for its kind, the tool's or the file's ``approval:``), then its rules in the order
    they are checked (deny rules first)."""
    from runner.tools.approval_policy import describe_rule, tool_default

    action, why = tool_default(tool, workflow)
    word = {"allow": "runs", "ask": "asks first", "deny": "refused"}[action]
    rules = tool.approval.rules if tool.approval is not None else ()
    ordered = [r for r in rules if r.action == "deny"] + [r for r in rules if r.action != "deny"]
    checked = f"; unless a rule matches: {'; '.join(describe_rule(r) for r in ordered)}" if ordered else ""
    return f"{word} ({why}){checked}"


async def _with_mcp_tools(workflow):
    """The workflow with its MCP servers' tools, listed by starting the servers once."""
    from runner.run.mcp_session import start_mcp

    mcp = await start_mcp(workflow, env=dict(os.environ))
    try:
        return mcp.with_tools(workflow)
    finally:
        await mcp.aclose()


def complete_tool_names(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion after ``tools call FILE``: the file's tool names, read without running it
    (a file that does not load completes to nothing)."""
    file = ctx.params.get("file")
    if not file:
        return []
    from runner.workflow.yaml_loader import load_file

    try:
        doc, _ = load_file(file)
    except Exception:  # noqa: BLE001 - completion must never print a traceback into the shell
        return []
    tools = doc.data.get("tools") if doc is not None and isinstance(doc.data, dict) else None
    names = [t.get("name") for t in tools if isinstance(t, dict)] if isinstance(tools, list) else []
    return [n for n in names if isinstance(n, str) and n.startswith(incomplete)]


@tools_group.command("call", epilog=EXAMPLES)
@click.argument("file", type=click.Path(dir_okay=False))
@click.argument("tool", shell_complete=complete_tool_names)
@click.option("--args", "arguments", default="{}", show_default=True, metavar="JSON",
              help="The arguments, as the model would send them.")
@click.option("--var", "vars_", multiple=True, metavar="NAME=VALUE", help="Set one of the file's `inputs`.")
@click.option("--no-local-code", "--no-python", "no_python", is_flag=True,
              help="Refuse `python` resolvers and MCP servers started by a command (for files you did not write).")
def call_command(file: str, tool: str, arguments: str, vars_: tuple[str, ...], no_python: bool) -> int:
    """Resolve one tool call and print its output (stdout), or its error (stderr, exit 1)."""
    workflow = _load(file)
    inputs = _inputs(workflow, vars_)
    env = dict(os.environ)
    result = asyncio.run(_call_once(workflow, tool, arguments, inputs, env, not no_python))
    if result.is_error:
        click.echo(for_person(result.output, file, tool), err=True)
        return 1
    click.echo(result.output)
    return 0


def for_person(output: str, file: str, tool: str) -> str:
    """A tool's error output is worded for the model that would read it; at the terminal the
    person who typed the command gets what to change in that command."""
    text = output[len("error: "):] if output.startswith("error: ") else output
    text = text.replace("\nFix these and call the tool again.", "\nfix the --args JSON and run the command again")
    if text.startswith("there is no tool named"):
        text += f"\n  (`flowrun tools list {file}` shows each tool and its arguments)"
    return f"error: {text}"


async def _call_once(workflow, tool: str, arguments: str, inputs, env, allow_python: bool):
    from runner.calls import ToolCall
    from runner.secrets.sources import build_masker
    from runner.tools.dispatcher import Dispatcher

    masker = build_masker(workflow, env, None)
    mcp = None
    if workflow.mcp and workflow.tool(tool) is None:  # not one of the file's own: ask the servers
        from runner.run.mcp_session import start_mcp

        mcp = await start_mcp(workflow, env=env, allow_local_code=allow_python)
    from runner.events import Notice
    from runner.tools.approval import Approvals

    def notice(event) -> None:
        if isinstance(event, Notice):
            click.echo(f"flowrun: {event.level}: {event.message}", err=True)

    # The person typed this call: that is the approval. A tool the file refuses stays refused.
    dispatcher = Dispatcher(workflow, inputs=inputs, env=env, masker=masker, allow_python=allow_python, mcp=mcp,
                            emit=notice, approvals=Approvals(yes=True))
    try:
        return await dispatcher.run_one(ToolCall("call_cli", tool, arguments))
    finally:
        await dispatcher.aclose()
        if mcp is not None:
            await mcp.aclose()


def _inputs(workflow, pairs: tuple[str, ...]) -> dict[str, Any]:
    from runner.commands.run import parse_vars
    from runner.run.settings import resolve_inputs

    return resolve_inputs(workflow, parse_vars(pairs))


def resolver_kind(resolver) -> str:
    if type(resolver).__name__ == "McpResolver":
        return f"mcp:{resolver.server}"
    return {"StaticResolver": "static", "PythonResolver": "python", "HttpResolver": "http"}.get(
        type(resolver).__name__, "?")


def parameters_summary(schema: dict) -> str:
    """``location: string (required), unit: Celsius|Fahrenheit``."""
    props = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    parts = []
    for name, prop in props.items():
        prop = prop if isinstance(prop, dict) else {}
        if "enum" in prop:
            kind = "|".join(str(v) for v in prop["enum"])
        else:
            kind = prop.get("type", "any")
            kind = "|".join(kind) if isinstance(kind, list) else str(kind)
        parts.append(f"{name}: {kind}" + (" (required)" if name in required else ""))
    return ", ".join(parts)
