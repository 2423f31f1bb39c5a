"""The ``flowrun`` command line. ``flowrun FILE`` is short for ``flowrun run FILE``.

Commands are imported lazily so ``flowrun --help`` and ``flowrun validate`` never import the
``openai`` SDK. Commands raise; every error becomes one human message and its exit code here
(``report``), and a command's return value is its exit code.
"""

from __future__ import annotations

import importlib

import click

from runner import __version__
from runner.commands.entry import Group, report

# name -> (module, attribute, one-line help). The help is here so that `flowrun --help` lists the
# commands without importing them.
COMMANDS = {
    "run": ("runner.commands.run", "run_command", "Run a workflow (same as `flowrun FILE`)."),
    "resume": ("runner.commands.resume", "resume_command", "Continue a run that paused for approvals (exit code 4)."),
    "validate": ("runner.commands.validate", "validate_command", "Check workflow files; exit 2 on any problem."),
    "test": ("runner.commands.test", "test_command", "Run the workflows' test cases offline, for CI."),
    "tools": ("runner.commands.tools", "tools_group", "List a workflow's tools, or call one without a model."),
    "logs": ("runner.commands.logs", "logs_group", "List recent runs, or replay one from the run log."),
    "view": ("runner.commands.view", "view_command", "Browse the run log in a web page (127.0.0.1, read-only)."),
    "batch": ("runner.commands.batch", "batch_command", "Run a workflow over many inputs (JSONL), concurrently."),
    "init": ("runner.commands.init", "init_command", "Write a commented starter workflow."),
    "import": ("runner.commands.import_openapi", "import_group", "Write http tools into a workflow from an OpenAPI description."),
    "schema": ("runner.commands.validate", "schema_command", "Print the workflow JSON Schema."),
}

HELP = """Run LLM assistants whose tools are declared in a YAML file.

\b
Start here:
  flowrun workflows/weather.yaml --offline    run with scripted model turns (no key needed)
  flowrun validate workflows/*.yaml           check files; exit 2 on any problem
  flowrun tools call workflows/weather.yaml get_rain_probability --args '{"location":"Paris"}'
  flowrun test workflows/                     run every workflow's test cases offline

`flowrun FILE` is the same as `flowrun run FILE`; see `flowrun run --help`.
"""


class FlowrunGroup(Group):
    """A group whose unknown first word is a workflow file for ``run``."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, entry[2]) for name, entry in COMMANDS.items()])

    def shell_complete(self, ctx: click.Context, incomplete: str):
        """The first word is a command or a workflow file (``flowrun FILE``): offer both."""
        from click.shell_completion import CompletionItem

        items = super().shell_complete(ctx, incomplete)
        if not incomplete.startswith("-"):
            items.append(CompletionItem(incomplete, type="file"))
        return items

    def get_command(self, ctx: click.Context, name: str):
        return self._load(name)

    def _load(self, name: str):
        target = COMMANDS.get(name)
        if target is None:
            return None
        return getattr(importlib.import_module(target[0]), target[1])

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in COMMANDS and args[0] not in ("--help", "-h", "--version"):
            _refuse_mistyped_command(args[0])
            args = ["run", *args]
        return super().parse_args(ctx, args)


def _refuse_mistyped_command(word: str) -> None:
    """An unknown first word is a workflow file; one that is no file, has no path or YAML look
    and is close to a command was a command mistyped (``flowrun valdiate x.yaml``)."""
    from pathlib import Path

    from runner.errors import UsageError
    from runner.suggest import suggest

    if word.startswith("-") or "/" in word or "." in word or Path(word).exists():
        return
    meant = suggest(word, COMMANDS)
    if meant:
        raise UsageError(f"no command '{word}' (and no file of that name); did you mean `flowrun {meant}`?",
                         hint="`flowrun --help` lists the commands")


@click.group(cls=FlowrunGroup, help=HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="flowrun")
def cli() -> None:
    pass


def main(argv: list[str] | None = None) -> None:
    from runner.stdout_fd import keep_fd1

    keep_fd1()  # descriptor 1 is flowrun's: a tool's subprocess or os.write(1, ...) goes to stderr
    skip_exit_collection()
    cli.main(args=argv, prog_name="flowrun")


def skip_exit_collection() -> None:
    """Spare the process the garbage collections the interpreter runs as it exits.

    Those collections walk every object still alive, and the ``openai`` SDK alone builds
    thousands of classes at import: a large share of a short run's CPU went there, after the
    answer was shown, to free memory the operating system takes back anyway (bench/run.py,
    figures 1d-i, measures whole processes). Freezing the heap (``gc.freeze``) in an exit hook
    registered before any other of flowrun's, so it runs after them, skips those walks. Everything else of a normal exit still happens: the other exit
    hooks (the run log's close), waiting for threads, flushing stdout and stderr, objects freed
    by their reference counts. Registered once per process."""
    import atexit
    import gc

    atexit.unregister(gc.freeze)  # a second call (tests run many commands in one process)
    atexit.register(gc.freeze)
