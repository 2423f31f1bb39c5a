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
  flowrun validate workflows/                  # every workflow in a folder, as `flowrun test` finds them
  flowrun validate --format json bad.yaml | jq '.files[].problems'
  flowrun validate --format github workflows/  # in GitHub Actions: problems annotate the PR's lines
""")
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option("--resolve", is_flag=True,
              help="Also import python: resolvers to check they exist (this runs their modules' code).")
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
        click.echo(f"{file}: OK ({_plural(tools, 'tool')}, {_plural(tests, 'test case')})")
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
