"""``flowrun batch FILE --inputs in.jsonl --out results.jsonl``: one run per input line."""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

import click

from runner.commands.entry import Command

EXAMPLES = """
\b
Examples:
  flowrun batch workflows/weather.yaml --inputs cities.jsonl --out results.jsonl --concurrency 50
  flowrun batch workflows/weather.yaml --inputs cities.jsonl --out results.jsonl --resume
  flowrun batch workflows/weather.yaml --inputs cities.jsonl --out demo.jsonl --offline
  flowrun batch workflows/weather.yaml --inputs big.jsonl --out big.out.jsonl --log-failed-only

\b
Each input line is {"message": "...", "vars": {...}}, a bare object of vars, or a string (the
message). Each result line is {"index", "line", "status", "final_text", "tool_calls", "usage",
"error", "duration_ms", "run_id"}, written as soon as that input finishes (so in finishing order:
sort on "index" for input order). Every run also goes to the run log under the batch's id
(`flowrun logs --batch ID`, `flowrun view`); "run_id" is there when the run was recorded.
Exit status: 0 if every input completed, 1 if any failed.
"""


class ProgressBar:
    """One self-rewriting line on a terminal: done/total, failures, rate, time left."""

    WIDTH = 24

    def __init__(self, err: TextIO, total: int, *, started: float | None = None, clock=time.monotonic):
        """``started``: when the batch began (not when the first result came, or the first rate
        would be one result over a few microseconds)."""
        self.err = err
        self.total = total
        self._clock = clock
        self.started = clock() if started is None else started
        self._shown = -1.0

    def __call__(self, record: dict, summary) -> None:
        now = self._clock()
        if now - self._shown < 0.1 and summary.done < self.total:
            return
        self._shown = now
        done = summary.done
        filled = int(self.WIDTH * done / self.total) if self.total else self.WIDTH
        ran = summary.completed + summary.failed
        elapsed = max(now - self.started, 1e-6)
        rate = ran / elapsed
        left = (self.total - done) / rate if rate > 0 else 0.0
        line = (
            f"\r[{'#' * filled}{'.' * (self.WIDTH - filled)}] {done}/{self.total}"
            f"  {summary.failed} failed  {rate:.1f}/s  ~{left:.0f} s left"
        )
        self.err.write(line + "\x1b[K")
        self.err.flush()

    def clear(self) -> None:
        self.err.write("\r\x1b[K")
        self.err.flush()


@click.command("batch", cls=Command, epilog=EXAMPLES)
@click.argument("file", type=click.Path(dir_okay=False, path_type=str))
@click.option("--inputs", "inputs", required=True, type=click.Path(dir_okay=False), help="JSON Lines file: one input per line.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="JSON Lines file the results are appended to.")
@click.option("-c", "--concurrency", type=click.IntRange(min=1, max=10_000), default=8, show_default=True, help="Runs in flight at once (lowered automatically while the API answers 429).")
@click.option("--resume", is_flag=True, help="Skip the inputs that already have a result in --out, and append the rest.")
@click.option("--retry-failed", is_flag=True, help="With --resume: also run again the inputs whose result failed.")
@click.option("--api", type=click.Choice(["responses", "chat", "assistants"]), help="Which API to speak (overrides model.api).")
@click.option("--base-url", help="The server to talk to (overrides model.base_url and OPENAI_BASE_URL).")
@click.option("-m", "--model", "model_name", help="The model name (overrides model.name).")
@click.option("--profile", help="Take api, base_url and model from this profile of .flowrun.yaml or ~/.config/flowrun/config.yaml (flags and FLOWRUN_* variables still win).")
@click.option("--max-turns", type=click.IntRange(min=1), default=10, show_default=True, help="Stop a run whose model keeps calling tools after this many turns.")
@click.option("-v", "--verbose", is_flag=True, help="Say where api, base_url and model came from (flag, FLOWRUN_* variable, profile or the workflow file).")
@click.option("--policy", "policies", multiple=True, metavar="NAME=VALUE",
              help="Override one of the file's run policies for every run, e.g. on_tool_error=fail (repeatable).")
@click.option("--offline", is_flag=True, help="No key, no network: the model's side is scripted from the file's first test case (for demos); the tools are real.")
@click.option("--case", "case_name", help="With --offline: which test case to script the model from.")
@click.option("--no-local-code", "--no-python", "no_python", is_flag=True,
              help="Refuse `python` resolvers and MCP servers started by a command (for files you did not write).")
@click.option("--approve", "approve", multiple=True, metavar="TOOL", help="Run calls of TOOL that would ask first (nobody is asked in a batch: without this they are refused; repeatable, patterns allowed).")
@click.option("--deny", "deny", multiple=True, metavar="TOOL", help="Refuse calls of TOOL that would ask first, without the warning (repeatable, patterns allowed).")
@click.option("-y", "--yes", is_flag=True, help="Approve every call that would ask first (tools the file refuses stay refused).")
@click.option("--no-log", is_flag=True, help="Do not record the batch in the run log.")
@click.option("--log-failed-only", is_flag=True,
              help="Record only the runs that did not complete (for very large batches); the batch's counts still cover every input.")
@click.option("--log-db", type=click.Path(dir_okay=False), envvar="FLOWRUN_LOG_DB", help="Run log database (default: ~/.local/state/flowrun/runs.sqlite3).")
@click.option("-w", "--workers", type=click.IntRange(min=1, max=1024), help="Worker processes sharing the inputs and --concurrency (default: one per CPU core for batches of a few hundred inputs or more, else 1).")
def batch_command(file: str, **options) -> int:
    """Run a workflow once per line of an inputs file, many at a time.

    Results are appended to --out as each input finishes, so an interrupted batch loses nothing:
    run the same command with --resume to do only what is left. A progress bar is shown on stderr
    when it is a terminal; otherwise one summary line at the end. Exit 1 when any result in --out
    is a failure (those from before a --resume too).
    """
    if options["retry_failed"] and not options["resume"]:
        raise click.UsageError("--retry-failed only makes sense with --resume")
    if options["no_log"] and options["log_failed_only"]:
        raise click.UsageError("--no-log and --log-failed-only contradict each other: choose one")
    from runner.batch.scheduler import BatchOptions
    from runner.commands.run import parse_policies

    opts = BatchOptions(
        file=file,
        inputs=options["inputs"],
        out=options["out"],
        concurrency=options["concurrency"],
        resume=options["resume"],
        retry_failed=options["retry_failed"],
        api=options["api"],
        base_url=options["base_url"],
        model=options["model_name"],
        profile=options["profile"],
        verbose=options["verbose"],
        max_turns=options["max_turns"],
        policies=parse_policies(options["policies"]),
        offline=options["offline"],
        case_name=options["case_name"],
        allow_python=not options["no_python"],
        log="off" if options["no_log"] else "failed" if options["log_failed_only"] else "all",
        log_db=options["log_db"],
        approve=tuple(options["approve"]),
        deny=tuple(options["deny"]),
        yes=options["yes"],
    )
    return execute(opts, err=sys.stderr, workers=options["workers"])


def execute(options, *, err: TextIO, workers: int | None = None) -> int:
    """Run the batch and report on ``err``; returns the exit code (0 all completed, 1 any
    failed, 130 interrupted). Errors that stop the whole batch are raised as FlowrunError."""
    from runner.batch.processes import run_batch

    tty = bool(getattr(err, "isatty", lambda: False)()) and "FLOWRUN_NO_PROGRESS" not in os.environ
    bar: ProgressBar | None = None
    started = time.monotonic()

    def on_result(record: dict, summary) -> None:
        nonlocal bar
        if tty:
            if bar is None:
                bar = ProgressBar(err, summary.total, started=started)
            bar(record, summary)

    def on_notice(text: str) -> None:
        err.write(f"flowrun: {text}\n")
        err.flush()

    summary = run_batch(options, workers=workers, on_result=on_result, on_notice=on_notice)
    if bar is not None:
        bar.clear()
    if options.log != "off" and options.batch_id and (summary.failed or summary.failed_before or summary.interrupted):
        kept = "its failed runs" if options.log == "failed" else "its runs"
        err.write(f"run log: batch {options.batch_id} with {kept}: flowrun logs --batch {options.batch_id}\n")
    if summary.first_failure is not None:
        f = summary.first_failure
        err.write(f"first failure: input {f['index']} (line {f['line']}): {f['status']}: {_one_line(f['error'])}\n")
    err.write(summary.line() + "\n")
    err.flush()
    if summary.interrupted:
        return 130
    return 1 if summary.failed or summary.failed_before else 0  # the results file as a whole


def _one_line(text: str | None, limit: int = 200) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
