"""``flowrun init NAME``: write a commented, valid starter workflow to edit."""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path

import click

from runner.commands.entry import Command

from runner.errors import UsageError

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


def _template(name: str) -> str:
    return resources.files("runner.templates").joinpath(name).read_text(encoding="utf-8")


def project_root(folder: Path) -> Path:
    """Where a copy of the schemas belongs: the repository holding ``folder`` (the nearest folder
    with ``.git``), else the current folder when ``folder`` is inside it, else ``folder`` itself.
    Never above the repository: a modeline pointing outside it breaks for everyone who clones."""
    for candidate in [folder, *folder.parents]:
        if (candidate / ".git").exists():
            return candidate
    here = Path.cwd().resolve()
    return here if folder == here or here in folder.parents else folder


def schema_reference(target: Path) -> tuple[str, Path | None]:
    """The modeline's path to the schema, relative to the new file. When neither the repository
    nor a folder between it and the file has ``schemas/workflow.schema.json``, a copy is written
    at the project root (editors need a file they can read; the copy is what `flowrun schema`
    prints)."""
    folder = target.parent.resolve()
    root = project_root(folder)
    for candidate_dir in [folder, *folder.parents]:
        candidate = candidate_dir / "schemas" / "workflow.schema.json"
        if candidate.exists():
            return Path(os.path.relpath(candidate, folder)).as_posix(), None
        if candidate_dir == root:
            break
    copy = root / "schemas" / "workflow.schema.json"
    return Path(os.path.relpath(copy, folder)).as_posix(), copy


@click.command("init", cls=Command, epilog="\b\nExample:\n  flowrun init support-bot      # writes workflows/support-bot.yaml and workflows/support_bot_tools.py")
@click.argument("name")
@click.option("--dir", "folder", default="workflows", show_default=True, type=click.Path(file_okay=False), help="Where to write the files.")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
def init_command(name: str, folder: str, force: bool) -> None:
    """Write a starter workflow with one tool of each kind (static, python, http) and a test case."""
    if not NAME.match(name):
        raise UsageError(f"{name!r} is not a usable name", hint="use letters, digits, - and _, starting with a letter")
    target_dir = Path(folder)
    target = target_dir / f"{name}.yaml"
    module = re.sub(r"\W", "_", name) + "_tools"
    module_file = target_dir / f"{module}.py"
    for path in (target, module_file):
        if path.exists() and not force:
            raise UsageError(f"{path} already exists", hint="use --force to overwrite it")
    target_dir.mkdir(parents=True, exist_ok=True)
    schema_ref, schema_copy = schema_reference(target)
    if schema_copy is not None:
        from runner.workflow.schema_check import SCHEMA_PATH

        schema_copy.parent.mkdir(parents=True, exist_ok=True)
        for schema_name in ("workflow.schema.json", "tests.schema.json"):  # tests: NAME.test.yaml files
            source = Path(SCHEMA_PATH).with_name(schema_name)
            (schema_copy.parent / schema_name).write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
        click.echo(f"wrote {os.path.relpath(schema_copy.parent)}/ (the schemas your editor reads for help on hover)")
    text = _template("starter.yaml").format(
        name=name, path=target.as_posix(), module=module, schema_ref=schema_ref
    )
    target.write_text(text, encoding="utf-8")
    module_file.write_text(_template("starter_tools.py").format(name=name), encoding="utf-8")
    click.echo(f"wrote {target} and {module_file}")
    click.echo(f"next: flowrun {target.as_posix()} --offline")
