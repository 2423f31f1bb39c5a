"""``flowrun init NAME``: write a commented, valid starter workflow to edit."""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path

import click

from runner.cli import Command

from runner.errors import UsageError

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


def _template(name: str) -> str:
    return resources.files("runner.templates").joinpath(name).read_text(encoding="utf-8")


def schema_reference(target: Path) -> tuple[str, Path | None]:
    """The modeline's path to the schema, relative to the new file. When no folder above has
    ``schemas/workflow.schema.json``, a copy is written beside the workflows folder (editors need
    a file they can read; the copy is what `flowrun schema` prints)."""
    folder = target.parent.resolve()
    for candidate_dir in [folder, *folder.parents]:
        candidate = candidate_dir / "schemas" / "workflow.schema.json"
        if candidate.exists():
            return Path(os.path.relpath(candidate, folder)).as_posix(), None
    copy = folder.parent / "schemas" / "workflow.schema.json"
    return Path(os.path.relpath(copy, folder)).as_posix(), copy


@click.command("init", cls=Command, epilog="\b\nExample:\n  flowrun init support-bot      # writes workflows/support-bot.yaml and workflows/support_bot_tools.py")
@click.argument("name")
@click.option("--dir", "folder", default="workflows", show_default=True, type=click.Path(file_okay=False), help="Where to write the files.")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
def init_command(name: str, folder: str, force: bool) -> None:
    """Write a starter workflow with one tool of each kind (static, python, http) and a test case."""
    if not NAME.match(name):
        raise UsageError(f"{name!r} is not a usable name -- use letters, digits, - and _ (starting with a letter)")
    target_dir = Path(folder)
    target = target_dir / f"{name}.yaml"
    module = re.sub(r"\W", "_", name) + "_tools"
    module_file = target_dir / f"{module}.py"
    for path in (target, module_file):
        if path.exists() and not force:
            raise UsageError(f"{path} already exists (use --force to overwrite it)")
    target_dir.mkdir(parents=True, exist_ok=True)
    schema_ref, schema_copy = schema_reference(target)
    if schema_copy is not None:
        from runner.workflow.schema_check import SCHEMA_PATH

        schema_copy.parent.mkdir(parents=True, exist_ok=True)
        for name in ("workflow.schema.json", "tests.schema.json"):  # tests: for NAME.test.yaml files
            source = Path(SCHEMA_PATH).with_name(name)
            (schema_copy.parent / name).write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
        click.echo(f"wrote {os.path.relpath(schema_copy.parent)}/ (the schemas your editor reads for help on hover)")
    text = _template("starter.yaml").format(
        name=name, path=target.as_posix(), module=module, schema_ref=schema_ref
    )
    target.write_text(text, encoding="utf-8")
    module_file.write_text(_template("starter_tools.py").format(name=name), encoding="utf-8")
    click.echo(f"wrote {target} and {module_file}")
    click.echo(f"next: flowrun {target.as_posix()} --offline")
