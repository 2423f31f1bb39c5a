"""``flowrun validate FILE...`` and ``flowrun schema``: check workflow files without running them.

Problems go to stderr, one line each (``file:LINE:COL: what (where: $.path) -- how to fix``) with
the source line and a caret under it; ``file: OK (...)`` lines go to stdout. Exit 2 if any file has
an error. Only yaml, jsonschema and click are imported here, never ``openai``: start-up is fast.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import click

from runner.errors import Problem
from runner.workflow.schema_check import SCHEMA_PATH, SECRET_KEY, known_keys, redact
from runner.workflow.validate import is_test_file, validate_file, workflow_for

_KEY_VALUE = re.compile(r"^(\s*(?:-\s+)?[\"']?([^\s:\"'][^:\"']*)[\"']?\s*:\s*)(\S.*)$")


@click.command("validate", epilog="""
\b
Examples:
  flowrun validate workflows/*.yaml            # one OK line per file, or every problem at once
  flowrun validate --resolve workflows/city_weather.yaml   # also import python tools
  flowrun validate --resolve workflows/world_time.yaml     # also start its MCP server, check include:
  flowrun validate workflows/                  # every workflow in a folder, as `flowrun test` finds them
  flowrun validate --format json bad.yaml | jq '.files[].problems'
  flowrun validate --format github workflows/  # in GitHub Actions: problems annotate the PR's lines
""")
@click.argument("files", nargs=-1, required=True, metavar="FILE...", type=click.Path())  # Path: the shell completes it
@click.option("--resolve", is_flag=True,
              help="Also import python: resolvers and start (or connect to) MCP servers, to check that every "
                   "tool exists (this runs their code).")
@click.option("--strict", is_flag=True, help="Fail on warnings too.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "github"]), default="text", show_default=True,
              help="text for people, json for tools, github for workflow-command annotations in GitHub Actions.")
@click.pass_context
def validate_command(ctx: click.Context, files: tuple[str, ...], resolve: bool, strict: bool, fmt: str) -> None:
    """Check workflow files (or the workflows in a folder): YAML, schema, tools, templates and tests.
    Nothing is run or sent."""
    report = []
    files = expand_folders(files)
    listed = {Path(f).resolve() for f in files}
    for file in files:
        owner = workflow_for(Path(file)) if is_test_file(Path(file)) else None
        if owner is not None and owner.resolve() in listed:
            continue  # checked (and reported) with its workflow, which is listed too
        workflow, problems = validate_file(file, resolve=resolve)
        if resolve and workflow is not None and workflow.mcp:
            problems = problems + mcp_problems(file, workflow)
            if any(p.severity == "error" for p in problems):
                workflow = None
        errors = sum(p.severity == "error" for p in problems)
        if strict and len(problems) > errors:
            workflow = None
        report.append({
            "file": file,
            "valid": workflow is not None,
            "tools": len(workflow.tools) if workflow else None,
            "tests": len(workflow.tests) if workflow else None,
            "errors": errors,
            "warnings": len(problems) - errors,
            "problems": [p.to_dict() for p in problems],
        })
        if fmt == "text":
            _print_text(file, workflow, problems)
        elif fmt == "github":
            _print_github(file, workflow, problems)
    if fmt == "json":
        click.echo(redact(json.dumps({"valid": all(r["valid"] for r in report), "files": report}, indent=2)))
    ctx.exit(0 if all(r["valid"] for r in report) else 2)


@click.command("schema", epilog="""
\b
Examples:
  flowrun schema > schemas/workflow.schema.json        # for editors: see the modeline in workflows/*.yaml
  flowrun schema --tests > schemas/tests.schema.json   # the schema of NAME.test.yaml files
""")
@click.option("--tests", "tests_only", is_flag=True, help="Print the schema of sibling NAME.test.yaml files instead.")
def schema_command(tests_only: bool) -> None:
    """Print the workflow JSON Schema (for editors and other tools)."""
    path = SCHEMA_PATH.with_name("tests.schema.json") if tests_only else SCHEMA_PATH
    click.echo(path.read_text(encoding="utf-8"), nl=False)


def mcp_problems(file: str, workflow) -> list[Problem]:
    """``--resolve``: start or connect to every MCP server of the workflow and report, at its line
    in the file, a server that does not start and an included or overridden tool it lacks."""
    import asyncio
    import os

    from runner.errors import FlowrunError
    from runner.tools.mcp_servers.manager import McpTools
    from runner.workflow.mcp_check import mcp_entries
    from runner.workflow.yaml_loader import load_file

    doc, _ = load_file(file, file=file)
    where = [i for i, _ in mcp_entries(doc.data)] if doc is not None else []

    async def check():
        tools = McpTools(workflow, env=dict(os.environ))
        try:
            await tools.start()
            return tools.missing, None
        except FlowrunError as exc:
            return [], exc
        finally:
            await tools.aclose()

    missing, failure = asyncio.run(check())
    out: list[Problem] = []
    if failure is not None:
        name = getattr(failure, "server", None)
        index = next((k for k, s in enumerate(workflow.mcp) if s.server.name == name), 0)
        path = ("tools", where[index], "mcp") if doc is not None and where else ()
        out.append(doc.problem(path, failure.message, failure.hint, key=True) if doc is not None
                   else Problem(file, 0, 0, failure.message, hint=failure.hint))
    for m in missing:
        guess = f" (did you mean '{m.guess}'?)" if m.guess else ""
        shown = ", ".join(m.available[:20]) + (", ..." if len(m.available) > 20 else "") or "none"
        server = workflow.mcp[m.source].server.name
        out.append(doc.problem(("tools", where[m.source], m.key, m.index),
                               f"MCP server '{server}' has no tool '{m.name}'{guess}", f"its tools: {shown}",
                               key=m.key == "overrides"))
    return out


def expand_folders(paths: tuple[str, ...]) -> tuple[str, ...]:
    """A folder stands for the workflows in it, found as ``flowrun test DIR`` finds them."""
    from runner.workflow.discover import discover

    out: list[str] = []
    for raw in paths:
        out += [str(p) for p in discover([raw])] if Path(raw).is_dir() else [raw]
    return tuple(dict.fromkeys(out))


def github_annotation(problem: Problem, title: str = "flowrun validate") -> str:
    """One GitHub Actions workflow command (``::error file=...,line=...::message``), escaped as
    the runner expects, so the problem shows on the pull request's line."""

    def data(text: str) -> str:
        return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

    def prop(text: str) -> str:
        return data(text).replace(":", "%3A").replace(",", "%2C")

    fields = [f"file={prop(problem.file)}"]
    if problem.line:
        fields += [f"line={problem.line}", f"col={max(problem.column, 1)}"]
    fields.append(f"title={prop(title)}")
    text = problem.message + (f" (where: {problem.path})" if problem.path != "$" else "")
    if problem.hint:
        text += f" -- {problem.hint}"
    level = "warning" if problem.severity == "warning" else "error"
    return f"::{level} {','.join(fields)}::{data(redact(text))}"


def _print_github(file: str, workflow, problems: list[Problem]) -> None:
    for problem in problems:
        click.echo(github_annotation(problem))
    if workflow is not None:
        click.echo(f"{file}: OK ({_plural(len(workflow.tools), 'tool')}, {_plural(len(workflow.tests), 'test case')})")
    else:
        click.echo(f"{file}: invalid", err=True)


def _print_text(file: str, workflow, problems: list[Problem]) -> None:
    sources: dict[str, list[str]] = {}  # a workflow's problems may be in its NAME.test.yaml
    for problem in problems:
        click.echo(redact(problem.format()), err=True)
        if problem.line:
            lines = sources.setdefault(problem.file, _source_lines(problem.file))
            for line in snippet(lines, problem.line, problem.column):
                click.echo(line, err=True)
    if workflow is not None:
        tools, tests = len(workflow.tools), len(workflow.tests)
        servers = f", {_plural(len(workflow.mcp), 'MCP server')}" if workflow.mcp else ""
        click.echo(f"{file}: OK ({_plural(tools, 'tool')}{servers}, {_plural(tests, 'test case')})")
    else:
        errors = sum(p.severity == "error" for p in problems)
        warnings = len(problems) - errors
        summary = ", ".join(_plural(n, word) for n, word in ((errors, "error"), (warnings, "warning")) if n)
        click.echo(f"{file}: invalid ({summary})", err=True)


def snippet(lines: list[str], line: int, column: int) -> list[str]:
    """The source line and a caret under the column, secrets masked: ``   5 | key: value``."""
    if not 0 < line <= len(lines):
        return []
    text = mask_line(lines[line - 1])
    gutter = f"{line:>5} | "
    lead = "".join(c if c == "\t" else " " for c in text[: max(column - 1, 0)])
    return [gutter + text, " " * (len(gutter) - 2) + "| " + lead + "^"]


def mask_line(text: str) -> str:
    """A source line fit to print: key-like values and values of secret-named keys masked."""
    m = _KEY_VALUE.match(text)
    if m and SECRET_KEY.search(m.group(2)) and m.group(2) not in known_keys() and "${{" not in m.group(3):
        text = m.group(1) + "***"
    return redact(text)


def _source_lines(file: str) -> list[str]:
    try:
        return Path(file).read_text(encoding="utf-8-sig", errors="replace").splitlines()
    except (OSError, ValueError):
        return []


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")
