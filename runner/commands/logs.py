"""``flowrun logs``: list recent runs from the run log (with filters); ``flowrun logs show ID`` replays one;
``flowrun logs batches`` lists the batches and ``flowrun logs --batch ID`` one batch's runs, failures first.

Reads the SQLite run log only; imports nothing from the providers (no ``openai``), so it starts
fast and works without a key.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from pathlib import Path

import click

from runner.commands.entry import Group
from runner.errors import FlowrunError
from runner.runlog.db import RunLogError
from runner.runlog.log import RunLog, default_log_path
from runner.runlog.query import (STATUSES, RunFilter, batch_runs, find_batch, list_batches, list_runs, open_read,
                                 parse_when)
from runner.runlog.transcript import fmt_duration, render_transcript, run_duration_ms
from runner.terminal_text import show_controls

SHORT_ID = 8

_LOG_DB = click.option(
    "--log-db",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="FLOWRUN_LOG_DB",
    help="Run log database (default: $XDG_STATE_HOME/flowrun/runs.sqlite3 or ~/.local/state/...).",
)


def _short_ids(ids: list[str]) -> dict[str, str]:
    """Shortest prefix (at least 8 characters) that tells the listed runs apart."""
    length = SHORT_ID
    while length < max((len(i) for i in ids), default=0) and len({i[:length] for i in ids}) < len(ids):
        length += 1
    return {i: i[:length] for i in ids}


def _first_line(text: str | None, width: int) -> str:
    line = next((ln.strip() for ln in (text or "").splitlines() if ln.strip()), "")
    line = show_controls(line)
    return line if len(line) <= width else line[: max(width - 1, 0)] + "…"


def _table(runs: list[dict]) -> str:
    short = _short_ids([r["run_id"] for r in runs])
    rows = [("ID", "STARTED", "WORKFLOW", "STATUS", "DURATION")]
    for r in runs:
        started = time.strftime("%Y-%m-%d %H:%M", time.localtime(r["started_at"])) if r.get("started_at") else "-"
        rows.append((short[r["run_id"]], started, show_controls(Path(r.get("workflow_path") or "-").name),
                     show_controls(r["status"]), fmt_duration(run_duration_ms(r))))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    used = sum(widths) + 2 * 5
    answer_width = max(shutil.get_terminal_size((100, 24)).columns - used, 20)
    lines = []
    for n, row in enumerate(rows):
        answer = "ANSWER" if n == 0 else _answer(runs[n - 1], answer_width)
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + answer)
    return "\n".join(line.rstrip() for line in lines)


def _answer(run: dict, width: int) -> str:
    if run.get("final_text"):
        return _first_line(run["final_text"], width)
    if run.get("error"):
        said = run["error"] if run.get("status") == "paused" else "error: " + run["error"]
        return _first_line(said, width)
    return ""


def _open(path: Path | None) -> tuple[Path, RunLog | None]:
    path = (path or default_log_path()).expanduser()
    if not path.exists():
        return path, None
    return path, RunLog.open_reader(path)


@click.group("logs", cls=Group, invoke_without_command=True, epilog="""
\b
Examples:
  flowrun logs                       # the 20 most recent runs
  flowrun logs show run_3fa2         # replay one (a unique prefix of its id is enough)
  flowrun logs --status failed --workflow weather --since 1d
  flowrun logs --search "San Francisco" --json | jq '.[].run_id'
  flowrun logs --web                 # the same runs in the browser (see `flowrun view`)
  flowrun logs batches               # recent `flowrun batch` runs: progress, failures, status
  flowrun logs --batch batch_4c1e    # one batch's runs, failures first
  flowrun logs --web --batch batch_4c1e   # that batch's page in the browser
""")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="How many runs to list.")
@click.option("--json", "as_json", is_flag=True, help="Print the runs as a JSON array.")
@click.option("--status", type=click.Choice(STATUSES), help="Only runs that ended this way.")
@click.option("--workflow", metavar="NAME", help="Only runs of this workflow: its path, file name or name (weather).")
@click.option("--since", metavar="WHEN", help="Only runs started since: 30m, 3h, 1d, 2w, or a date (2026-12-01).")
@click.option("--until", metavar="WHEN", help="Only runs started before this time (same forms as --since).")
@click.option("--search", metavar="TEXT", help="Only runs whose input or answer contains TEXT.")
@click.option("--api", type=click.Choice(["responses", "chat", "assistants"]), help="Only runs on this API.")
@click.option("--model", metavar="NAME", help="Only runs of this model.")
@click.option("--batch", "batch_id", metavar="ID",
              help="Only the runs of this batch (a unique prefix of its id is enough), failures first.")
@click.option("--web", is_flag=True, help="Open the run log in the browser instead, with these filters (see `flowrun view`).")
@click.option("--no-open", is_flag=True, help="With --web: print the address, do not open a browser.")
@_LOG_DB
@click.pass_context
def logs_group(ctx: click.Context, limit: int, as_json: bool, status: str | None, workflow: str | None,
               since: str | None, until: str | None, search: str | None, api: str | None, model: str | None,
               batch_id: str | None, web: bool, no_open: bool, log_db: Path | None) -> None:
    """List recent runs (newest first), optionally filtered. `flowrun logs show ID` replays one.

    Every run is recorded as it happens, so a run that crashed or was killed is listed too
    (status "crashed") with everything up to that moment.
    """
    ctx.ensure_object(dict)["log_db"] = log_db
    if ctx.invoked_subcommand is not None:
        return
    if web:
        from runner.commands.view import serve_until_interrupted

        serve_until_interrupted(log_db, port=0, open_browser=not no_open,
                                filters={"workflow": workflow, "status": status, "api": api, "model": model,
                                         "since": since, "until": until, "q": search}, batch=batch_id)
        return
    conn = None
    batch = None
    try:
        run_filter = RunFilter(workflow=workflow or "", status=status or "", api=api or "", model=model or "",
                               since=parse_when(since) if since else None,
                               until=parse_when(until) if until else None, search=search or "")
        path = (log_db or default_log_path()).expanduser()
        conn = open_read(path) if path.exists() else None
        if batch_id is not None:
            if conn is None:
                raise RunLogError(f"no batch matches {batch_id!r}: there is no run log at {path} yet",
                                  hint="`flowrun batch` records its runs there")
            batch = find_batch(conn, batch_id)
            runs = batch_runs(conn, batch["batch_id"], run_filter, limit=limit, whole_texts=True)
        else:
            runs = list_runs(conn, run_filter, limit=limit, whole_texts=True).runs if conn else []
        filtered = run_filter != RunFilter()
    except sqlite3.Error as err:
        raise RunLogError(f"cannot read the run log {path}: {err}") from None
    finally:
        if conn is not None:
            conn.close()
    if batch is not None:
        if as_json:
            click.echo(json.dumps({**batch, "runs": runs}, indent=2, default=str))
            return
        click.echo(_batch_line(batch))
        if not runs:
            click.echo("No run of this batch matches these filters." if filtered else
                       "No run of this batch is in the log" + (" (it keeps failed runs only)."
                                                              if batch.get("logged") == "failed" else "."))
        else:
            click.echo(_table(runs))
        return
    if as_json:
        click.echo(json.dumps(runs, indent=2, default=str))
    elif not runs and filtered and conn is not None:
        click.echo("No run matches these filters.")
    elif not runs:
        click.echo(f"No runs recorded yet (run log: {path}).")
    else:
        click.echo(_table(runs))


def _batch_line(b: dict) -> str:
    """``batch_4c1e… weather.yaml: failed, 1000/1000 done (3 failed), 2026-12-02 14:30, 41.2 s``."""
    started = time.strftime("%Y-%m-%d %H:%M", time.localtime(b["started_at"])) if b.get("started_at") else "-"
    took = fmt_duration((b["finished_at"] - b["started_at"]) * 1000) if b.get("finished_at") else "-"
    kept = ", failed runs kept only" if b.get("logged") == "failed" else ""
    line = (f"batch {b['batch_id']} {show_controls(Path(b.get('workflow_path') or '-').name)}: {b['status']}, "
            f"{b['done']}/{b.get('total') or 0} done ({b.get('failed') or 0} failed{kept}), started {started},"
            f" took {took}")
    if b.get("error"):
        line += "\n  error: " + _first_line(b["error"], 200)
    return line


@logs_group.command("batches")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="How many batches to list.")
@click.option("--json", "as_json", is_flag=True, help="Print the batches as a JSON array.")
@_LOG_DB
@click.pass_context
def batches_command(ctx: click.Context, limit: int, as_json: bool, log_db: Path | None) -> None:
    """List recent batches (`flowrun batch`), newest first: status, progress, failures.

    A batch whose process is gone without finishing shows as "crashed"; `flowrun logs --batch ID`
    lists its runs, failures first.
    """
    log_db = log_db or (ctx.obj or {}).get("log_db")
    path = (log_db or default_log_path()).expanduser()
    conn = None
    try:
        conn = open_read(path) if path.exists() else None
        batches = list_batches(conn, limit=limit) if conn else []
    except sqlite3.Error as err:
        raise RunLogError(f"cannot read the run log {path}: {err}") from None
    finally:
        if conn is not None:
            conn.close()
    if as_json:
        click.echo(json.dumps(batches, indent=2, default=str))
        return
    if not batches:
        click.echo(f"No batches recorded yet (run log: {path}).")
        return
    rows = [("ID", "STARTED", "WORKFLOW", "STATUS", "DONE", "FAILED", "DURATION", "LOGGED")]
    for b in batches:
        started = time.strftime("%Y-%m-%d %H:%M", time.localtime(b["started_at"])) if b.get("started_at") else "-"
        took = fmt_duration((b["finished_at"] - b["started_at"]) * 1000) if b.get("finished_at") else "-"
        rows.append((b["batch_id"], started, show_controls(Path(b.get("workflow_path") or "-").name), b["status"],
                     f"{b['done']}/{b.get('total') or 0}", str(b.get("failed") or 0), took,
                     "failed only" if b.get("logged") == "failed" else "all runs"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    click.echo("\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows))


@logs_group.command("show")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="The run, its events and tool calls as JSON.")
@_LOG_DB
@click.pass_context
def show_command(ctx: click.Context, run_id: str, as_json: bool, log_db: Path | None) -> None:
    """Replay one run: the input, the answer, every tool call and its output.

    RUN_ID may be any unique prefix of the id shown by `flowrun logs`.
    """
    from runner.runlog.log import RunNotFound

    log_db = log_db or (ctx.obj or {}).get("log_db")
    log = None
    try:
        path, log = _open(log_db)
        if log is None:
            raise RunNotFound(f"no run matches {run_id!r}: there is no run log at {path} yet",
                              hint="runs are recorded there once you run a workflow")
        run = log.get_run(run_id)
    finally:
        if log:
            log.close()
    if as_json:
        click.echo(json.dumps(run, indent=2, default=str))
    else:
        click.echo(render_transcript(run), nl=False)


@logs_group.command("export", epilog="""
\b
Examples:
  OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 flowrun logs export run_3fa2 --otlp
  flowrun logs export run_3fa2 --otlp --otlp-endpoint http://collector:4318
""")
@click.argument("run_id")
@click.option("--otlp", is_flag=True, required=True, help="Send the run as OpenTelemetry spans over OTLP/HTTP.")
@click.option("--otlp-endpoint", metavar="URL",
              help="The collector (default: $OTEL_EXPORTER_OTLP_ENDPOINT, else http://localhost:4318).")
@_LOG_DB
@click.pass_context
def export_command(ctx: click.Context, run_id: str, otlp: bool, otlp_endpoint: str | None,
                   log_db: Path | None) -> None:
    """Send a recorded run to a tracing system (GenAI semantic conventions), e.g. a run from CI.

    Message content is included only when OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true;
    it was masked when it was recorded. Needs the extra: pip install 'flowrun[otel]'.
    """
    from runner.errors import UsageError
    from runner.runlog.log import RunNotFound

    log_db = log_db or (ctx.obj or {}).get("log_db")
    log = None
    try:
        try:
            from runner.otel.export import export_run, traces_endpoint
        except ImportError as exc:
            from runner.otel import MISSING_HINT

            raise UsageError(f"OpenTelemetry is not installed ({exc.name} is missing)", hint=MISSING_HINT) from None
        path, log = _open(log_db)
        if log is None:
            raise RunNotFound(f"no run matches {run_id!r}: there is no run log at {path} yet")
        run = log.get_run(run_id)
    finally:
        if log:
            log.close()
    where = traces_endpoint(otlp_endpoint)
    if not export_run(run["events"], otlp_endpoint):
        raise FlowrunError(f"the collector at {where} did not take the spans of {run['run_id']}",
                           hint="is it running and does it speak OTLP/HTTP (port 4318)?")
    click.echo(f"sent run {run['run_id']} ({len(run['events'])} events) to {where}")
