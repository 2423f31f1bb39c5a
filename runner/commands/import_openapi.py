"""``flowrun import openapi SPEC --into FILE``: write ``http`` tools from an OpenAPI description.

The command reads the spec, builds one tool per chosen operation, splices them into the workflow
file (``runner.openapi.writer``) and checks the result with the same validator as ``flowrun
validate`` before anything is written: a file it produced always validates, and a refused import
leaves the file as it was.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from runner.errors import UsageError, WorkflowError

EXAMPLES = """
\b
Examples:
  flowrun import openapi petstore.yaml --list
  flowrun import openapi petstore.yaml --into workflows/pets.yaml --tag pets
  flowrun import openapi petstore.yaml --into workflows/pets.yaml --op listPets \\
      --server http://127.0.0.1:8080/v1 --bind 'limit=${{ inputs.page_size }}'
"""


@click.group("import", epilog=EXAMPLES)
def import_group() -> None:
    """Write tools into a workflow file from an API description."""


@import_group.command("openapi", epilog=EXAMPLES)
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--into", "into", type=click.Path(dir_okay=False), metavar="FILE",
              help="Workflow file to add the tools to (created if missing).")
@click.option("--list", "list_only", is_flag=True, help="List the spec's operations and stop.")
@click.option("--op", "op_ids", multiple=True, metavar="ID", help="Import this operation (operationId, or 'METHOD /path').")
@click.option("--tag", "tags", multiple=True, metavar="TAG", help="Import every operation with this tag.")
@click.option("--path", "paths", multiple=True, metavar="GLOB", help="Import every operation whose path matches, e.g. '/pets*'.")
@click.option("--all", "everything", is_flag=True, help="Import every operation.")
@click.option("--server", metavar="URL", help="Base URL of the API, instead of the spec's first server.")
@click.option("--env-prefix", metavar="PREFIX", help="Prefix of the environment variables that hold credentials (default: from the spec's title).")
@click.option("--bind", "binds", multiple=True, metavar="NAME=VALUE",
              help="Fix argument NAME from the file (e.g. tenant='${{ inputs.tenant }}'); the model never sees it.")
def openapi_command(spec: str, into: str | None, list_only: bool, op_ids: tuple[str, ...], tags: tuple[str, ...],
                    paths: tuple[str, ...], everything: bool, server: str | None, env_prefix: str | None,
                    binds: tuple[str, ...]) -> None:
    """Import operations of an OpenAPI 3.0/3.1 description (JSON or YAML) as http tools.

    Re-importing an operation updates its tool in place and keeps what you edited: the tool's
    name, the descriptions, bound arguments and keys the import does not write."""
    from runner.openapi.document import load_spec
    from runner.openapi.operations import listing, operations, select

    loaded = load_spec(spec)
    ops = operations(loaded)
    if list_only:
        for line in listing(ops):
            click.echo(line)
        click.echo(f"{len(ops)} operations in {Path(spec).name} (OpenAPI {loaded.version})", err=True)
        return
    if not into:
        raise UsageError("say which workflow file gets the tools: --into FILE", hint="or use --list to see the operations")
    chosen = select(ops, op_ids=op_ids, tags=tags, paths=paths, everything=everything)
    report = import_into(loaded, chosen, Path(into), server=server, env_prefix=env_prefix,
                         bind=parse_binds(binds), required_refs=set(op_ids))
    for line in report:
        click.echo(line, err=True)


def parse_binds(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``--bind NAME=VALUE``: a JSON number, boolean or null stays one; anything else is text."""
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--bind {pair!r}: write NAME=VALUE", hint="e.g. --bind tenant='${{ inputs.tenant }}'")
        text = value.strip()
        try:
            parsed = json.loads(text)
            out[name.strip()] = parsed if isinstance(parsed, (int, float, bool)) or parsed is None else text
        except ValueError:
            out[name.strip()] = text
    return out


def import_into(spec, chosen, target: Path, *, server: str | None = None, env_prefix: str | None = None,
                bind: dict[str, Any] | None = None, required_refs: set[str] = frozenset()) -> list[str]:
    """Import ``chosen`` operations into ``target``; the lines to show the user. Raises
    UsageError/SpecError/WorkflowError and then leaves ``target`` unchanged."""
    from runner.openapi import writer
    from runner.openapi.tools import OAUTH_HINT, OAUTH_REFUSED, ImportOptions, build_tools, default_env_prefix

    bind = bind or {}
    text = target.read_text(encoding="utf-8") if target.exists() else _skeleton(spec, target)
    data = writer.parse(text, str(target))
    existing = [t for t in writer.existing_tools(data) if isinstance(t, dict)]
    wanted = {o.ref for o in chosen}
    names = {str(t["openapi"]): str(t.get("name")) for t in existing if t.get("openapi") in wanted}
    taken = {str(t.get("name")) for t in existing if t.get("openapi") not in wanted}
    prefix = env_prefix if env_prefix is not None else default_env_prefix(spec.title)
    options = ImportOptions(server=server, env_prefix=prefix, bind=bind)
    built, skipped = build_tools(spec, chosen, options, taken, names)
    for op, reason in skipped:
        if op.ref in required_refs or op.operation_id in required_refs:
            raise UsageError(f"cannot import {op.method} {op.path} ({op.ref}): {reason}",
                             hint=OAUTH_HINT if OAUTH_REFUSED in reason else None)
    if not built:
        raise UsageError("none of the chosen operations can be imported:\n  "
                         + "\n  ".join(f"{op.method} {op.path}: {reason}" for op, reason in skipped))
    unused = [k for k in bind if not any(k in t.data.get("bind", {}) for t in built)]
    if unused:
        raise UsageError(f"--bind {unused[0]}: no imported tool has an argument named {unused[0]!r}",
                         hint="bind one of the arguments the tools take (see flowrun tools list)")
    inputs = _inputs_for(bind)
    new_text, placed = writer.place_tools(text, str(target), [t.data for t in built], inputs, data)
    if new_text != text:
        _check_and_write(target, new_text)
    lines = []
    for verb, names_ in (("added", placed.added), ("updated", placed.updated), ("unchanged", placed.unchanged)):
        if names_:
            lines.append(f"{verb} {len(names_)} tool{'s' if len(names_) > 1 else ''}: {', '.join(names_)}")
    if placed.inputs_added:
        lines.append("declared inputs: " + ", ".join(placed.inputs_added) + " (give them with --var NAME=VALUE)")
    env = sorted({v for t in built for v in t.env})
    if env:
        lines.append("the tools read credentials from: " + ", ".join(env) + " (export them before running)")
    lines += [f"skipped {op.method} {op.path} ({op.ref}): {reason}" for op, reason in skipped]
    if any(OAUTH_REFUSED in reason for _, reason in skipped):
        lines.append(f"hint: {OAUTH_HINT}")
    lines += [f"note: {note}" for t in built for note in t.notes]
    lines.append(f"wrote {target}" if new_text != text else f"{target} is already up to date")
    return lines


def _inputs_for(bind: dict[str, Any]) -> dict[str, dict]:
    """Inputs that bound values name, to declare if the file does not yet."""
    from runner.templating import TemplateError, references_in

    out: dict[str, dict] = {}
    for arg, value in bind.items():
        try:
            refs = references_in(value)
        except TemplateError as e:
            raise UsageError(f"--bind {arg}: {e}") from None
        for ref in refs:
            if ref.context not in ("inputs", "env"):
                raise UsageError(f"--bind {arg}: a bound value may use inputs and env, not {ref.context}")
            if ref.context == "inputs":
                out.setdefault(ref.name, {"description": f"Sent as the {arg} argument of the imported tools",
                                          "required": True})
    return out


def _skeleton(spec, target: Path) -> str:
    from runner.openapi.naming import snake_case

    name = snake_case(target.stem) or "imported"
    return (
        f"version: 1\nname: {name}\n"
        f"description: Tools imported from {json.dumps(spec.path.name)} with flowrun import openapi.\n\n"
        "instructions: You answer with the tools below.\n")


def _check_and_write(target: Path, text: str) -> None:
    """Validate ``text`` as the new ``target``, then replace the file atomically."""
    from runner.workflow.validate import validate_file

    folder = target.parent if str(target.parent) else Path(".")
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".import.yaml", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        _, problems = validate_file(tmp)
        errors = [replace(p, file=str(target)) for p in problems if p.severity == "error" and Path(p.file) == Path(tmp)]
        if errors:
            raise WorkflowError(errors + [replace(errors[0], line=0, column=0, path="$", severity="error",
                                                  message="the import was not written", hint="the file is unchanged; "
                                                  "fix the problems above (or report them if the import caused them)")])
        if target.exists():
            os.chmod(tmp, target.stat().st_mode & 0o7777)
        os.replace(tmp, target)
        tmp = ""
    finally:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
