"""``flowrun resume RUN_ID``: continue a run that paused for approvals (exit code 4)."""

from __future__ import annotations

import os
import sys

import click

from runner.commands.entry import Command

EXAMPLES = """
\b
Examples:
  flowrun resume run_0123abcd --approve create_order          # run the waiting call, go on
  flowrun resume run_0123abcd --deny create_order --reason "not today"
  flowrun resume run_0123abcd --yes -o jsonl                  # approve every waiting call
  flowrun resume run_0123abcd                                 # send the outputs saved by a failed resume
"""


@click.command("resume", cls=Command, epilog=EXAMPLES)
@click.argument("run_id")
@click.option("--approve", multiple=True, metavar="TOOL", help="Run the waiting calls of this tool (repeatable).")
@click.option("--deny", multiple=True, metavar="TOOL", help="Refuse the waiting calls of this tool; the model is told (repeatable).")
@click.option("-y", "--yes", is_flag=True, help="Approve every waiting call (a tool the file refuses stays refused).")
@click.option("--reason", metavar="TEXT", help="With --deny: why, as the model reads it.")
@click.option("--force-changed-file", is_flag=True, help="Resume even though the workflow file (or a python tool's module) changed since the run paused.")
@click.option("-o", "--output", type=click.Choice(["text", "jsonl"]), default="text", show_default=True, help="text: the answer on stdout; jsonl: one event per line.")
@click.option("-q", "--quiet", is_flag=True, help="Only the answer.")
@click.option("-v", "--verbose", is_flag=True, help="Also show full tool arguments and outputs.")
@click.option("--no-color", is_flag=True, help="No colour (NO_COLOR is honoured too).")
@click.option("--log-db", type=click.Path(dir_okay=False), envvar="FLOWRUN_LOG_DB", help="Run log database the run was recorded in (default: ~/.local/state/flowrun/runs.sqlite3).")
def resume_command(run_id: str, **options) -> None:
    """Continue a paused run (exit code 4) with the decisions it waits for: the calls that
    were waiting run (or are refused), their outputs reach the model, the same run goes on.
    A resume that fails pauses the run again and says what to run; no tool ever runs twice."""
    from runner.commands.run import wants_color
    from runner.run.resume import ResumeRequest, resume

    request = ResumeRequest(
        run_id=run_id,
        approve=tuple(options["approve"]),
        deny=tuple(options["deny"]),
        yes=options["yes"],
        reason=options["reason"],
        force_changed_file=options["force_changed_file"],
        log_db=options["log_db"],
        output=options["output"],
        quiet=options["quiet"],
        verbose=options["verbose"],
        color=wants_color(options),
    )
    resume(request, out=sys.stdout, err=sys.stderr)  # a run that did not complete raises
