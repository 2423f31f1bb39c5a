"""Finding runs in the run log: the filters `flowrun logs` and `flowrun view` share.

Read-only and separate from the recorder (``runner.runlog.log``) so that the query side can grow
(filters, paging, facets) without touching the write path. Paging is by key (``started_at``, rowid)
rather than by offset, so the hundredth page costs what the first does on a large log.
"""

from __future__ import annotations

import json
import re
import socket
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from runner.errors import UsageError
from runner.runlog.db import alive, connect

STATUSES = ("completed", "failed", "running", "crashed", "expired", "cancelled", "incomplete",
            "max_turns", "paused", "invalid_output", "tool_error", "empty_answer", "unknown_tool", "error",
            "interrupted", "invalid_input", "output_failed")
SEARCH_MAX = 200  # characters of a search text; longer ones are refused, not truncated silently
_UNFINISHED = ("running", "crashed")  # told apart only by asking whether the recorder lives

_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)\s*$")
_SPAN_SECONDS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


class FilterError(UsageError):
    """A filter the user typed could not be understood (exit 2 on the command line)."""


@dataclass(frozen=True)
class RunFilter:
    """What to keep. Empty fields keep everything."""

    workflow: str = ""   # a path as recorded, a file name (weather.yaml) or a stem (weather)
    status: str = ""
    api: str = ""
    model: str = ""
    since: float | None = None  # epoch seconds, inclusive
    until: float | None = None  # epoch seconds, exclusive
    search: str = ""  # substring of the input or the answer, case-insensitive for ASCII
    batch: str = ""  # a batch's whole id (``find_batch`` turns a prefix into one)

    def __post_init__(self) -> None:
        if len(self.search) > SEARCH_MAX:
            raise FilterError(f"the search text is longer than {SEARCH_MAX} characters")
        if self.status and self.status not in STATUSES:
            raise FilterError(f"unknown status {self.status!r}", hint="one of: " + ", ".join(STATUSES))


def open_read(path: Path) -> sqlite3.Connection:
    """A read-only connection (``mode=ro``: a reader cannot change the log, even by mistake),
    after the usual open has checked the schema version and added any new indexes."""
    connect(path, create=False).close()
    return read_only(path)


def read_only(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout = 5000")
    return conn


def parse_when(text: str, *, now: float | None = None) -> float:
    """``1d``, ``3h``, ``30m``, ``2w`` ago, or a date/time (``2026-12-01``, ``2026-12-01T14:30``)."""
    text = text.strip()
    m = _SPAN.match(text)
    if m:
        return (now if now is not None else time.time()) - float(m.group(1)) * _SPAN_SECONDS[m.group(2)]
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise FilterError(f"cannot read {text!r} as a time",
                          hint="use a span back from now (30m, 3h, 1d, 2w) or a date (2026-12-01)") from None


Cursor = tuple[float, int]  # (started_at, rowid) of the last run on the page before


def encode_cursor(cursor: Cursor | None) -> str:
    return "" if cursor is None else f"{cursor[0]!r}:{cursor[1]}"


def decode_cursor(text: str | None) -> Cursor | None:
    if not text:
        return None
    try:
        started, rowid = text.rsplit(":", 1)
        return float(started), int(rowid)
    except ValueError:
        raise FilterError(f"bad page cursor {text!r}") from None


# The columns a list needs. The view's pages cut long texts in SQL so a page never carries whole
# answers; `flowrun logs --json` keeps them whole.
_CUT_TEXTS = ("substr(r.input, 1, 300) AS input, substr(r.final_text, 1, 300) AS final_text,"
              " substr(r.error, 1, 300) AS error,")
_WHOLE_TEXTS = "r.input, r.final_text, r.error,"
LIST_COLUMNS = (
    "r.rowid AS rowid, r.run_id, r.workflow_path, r.workflow_sha256, r.api, r.model, r.offline, r.status,"
    " r.started_at, r.finished_at, r.duration_ms, {texts} r.usage, r.exit_code,"
    " r.pid, r.hostname, r.pid_start, r.batch_id, r.batch_index,"
    " (SELECT COUNT(*) FROM tool_calls c WHERE c.run_id = r.run_id AND c.is_error IS NOT NULL) AS tool_call_count,"
    " (SELECT COUNT(*) FROM tool_calls c WHERE c.run_id = r.run_id AND c.is_error) AS tool_error_count,"
    " (SELECT MAX(ts) FROM events e WHERE e.run_id = r.run_id) AS last_event_at"
)


def distinct(conn: sqlite3.Connection, column: str) -> list[str]:
    """The column's values, hopping through its index from one value to the next (a loose index
    scan): a few lookups per value instead of a pass over every run, as DISTINCT would make."""
    assert column in ("workflow_path", "api", "model")  # names, never user text, go into the SQL
    return [r[0] for r in conn.execute(
        f"WITH RECURSIVE v(x) AS (SELECT MIN({column}) FROM runs"
        f" UNION ALL SELECT (SELECT MIN({column}) FROM runs WHERE {column} > v.x) FROM v WHERE v.x IS NOT NULL)"
        " SELECT x FROM v WHERE x IS NOT NULL")]


def workflow_paths(conn: sqlite3.Connection) -> list[str]:
    return distinct(conn, "workflow_path")


def matching_workflows(conn: sqlite3.Connection, name: str) -> list[str]:
    """Recorded paths the user meant by ``name``: the path itself, its file name or its stem."""
    name = name.strip()
    found = []
    for path in workflow_paths(conn):
        p = Path(path)
        if name in (path, p.name, p.stem) or (("/" in name) and path.endswith("/" + name.lstrip("./"))):
            found.append(path)
    return found


def _where(conn: sqlite3.Connection, f: RunFilter) -> tuple[list[str], list]:
    clauses: list[str] = []
    params: list = []
    if f.workflow:
        paths = matching_workflows(conn, f.workflow)
        clauses.append(f"r.workflow_path IN ({','.join('?' * len(paths))})" if paths else "0")
        params += paths
    if f.status:
        clauses.append("r.status = ?")
        params.append("running" if f.status in _UNFINISHED else f.status)
    for column, value in (("api", f.api), ("model", f.model)):
        if value:
            clauses.append(f"r.{column} = ?")
            params.append(value)
    if f.since is not None:
        clauses.append("r.started_at >= ?")
        params.append(f.since)
    if f.until is not None:
        clauses.append("r.started_at < ?")
        params.append(f.until)
    if f.batch:
        clauses.append("r.batch_id = ?")
        params.append(f.batch)
    if f.search:
        like = "%" + f.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        clauses.append("(r.input LIKE ? ESCAPE '\\' OR r.final_text LIKE ? ESCAPE '\\')")
        params += [like, like]
    return clauses, params


@dataclass
class Page:
    runs: list[dict]
    next_cursor: Cursor | None  # None: this is the last page


def list_runs(conn: sqlite3.Connection, f: RunFilter = RunFilter(), *, limit: int = 50,
              before: Cursor | None = None, whole_texts: bool = False) -> Page:
    """Newest first, ``limit`` runs older than ``before``."""
    columns = LIST_COLUMNS.format(texts=_WHOLE_TEXTS if whole_texts else _CUT_TEXTS)
    clauses, params = _where(conn, f)
    if before is not None:
        clauses.append("(r.started_at < ? OR (r.started_at = ? AND r.rowid < ?))")
        params += [before[0], before[0], before[1]]
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    sql = f"SELECT {columns} FROM runs r{where} ORDER BY r.started_at DESC, r.rowid DESC LIMIT ?"
    if f.status in _UNFINISHED:
        # Unfinished runs are few; which of them crashed is known only here, so filter, then page.
        runs = [run_row(r) for r in conn.execute(sql, [*params, -1])]
        runs = [r for r in runs if r["status"] == f.status]
        page, more = runs[:limit], len(runs) > limit
    else:
        rows = conn.execute(sql, [*params, limit + 1]).fetchall()
        page, more = [run_row(r) for r in rows[:limit]], len(rows) > limit
    cursor = (page[-1]["started_at"] or 0.0, page[-1]["rowid"]) if more and page else None
    return Page(page, cursor)


def count_runs(conn: sqlite3.Connection, f: RunFilter = RunFilter()) -> int:
    clauses, params = _where(conn, f)
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    if f.status in _UNFINISHED:
        return len(list_runs(conn, f, limit=10**9).runs)
    return conn.execute(f"SELECT COUNT(*) FROM runs r{where}", params).fetchone()[0]


def facets(conn: sqlite3.Connection) -> dict[str, list[str]]:
    """The values the filters can take, for the view's drop-downs."""
    return {"workflow": workflow_paths(conn), "api": distinct(conn, "api"), "model": distinct(conn, "model"),
            "status": list(STATUSES)}


# --- batches ------------------------------------------------------------------------------------

BATCH_STATUSES = ("running", "crashed", "completed", "failed", "interrupted", "error")


class BatchNotFound(UsageError):
    """No batch, or more than one, matches the id or prefix asked for."""


def list_batches(conn: sqlite3.Connection, *, limit: int = 20) -> list[dict]:
    """The most recent batches, newest first."""
    rows = conn.execute("SELECT * FROM batches ORDER BY started_at DESC, rowid DESC LIMIT ?", (limit,))
    return [batch_row(r) for r in rows]


def find_batch(conn: sqlite3.Connection, key: str) -> dict:
    """The batch whose id is ``key`` or starts with it (unique), else ``BatchNotFound``."""
    key = key.strip()
    rows = conn.execute("SELECT * FROM batches WHERE batch_id = ?", (key,)).fetchall() if key else []
    if not rows and key:
        rows = conn.execute("SELECT * FROM batches WHERE substr(batch_id, 1, ?) = ? ORDER BY started_at DESC"
                            " LIMIT 6", (len(key), key)).fetchall()
    if not rows:
        raise BatchNotFound(f"no batch matches {key!r}", hint="`flowrun logs batches` lists recent batches")
    if len(rows) > 1:
        ids = ", ".join(r["batch_id"] for r in rows[:5])
        raise BatchNotFound(f"{key!r} matches more than one batch ({ids})", hint="give more of the id")
    return batch_row(rows[0])


def batch_runs(conn: sqlite3.Connection, batch_id: str, f: RunFilter = RunFilter(), *, limit: int = 50,
               offset: int = 0, whole_texts: bool = False) -> list[dict]:
    """The batch's runs, failures first (then the completed ones), each group in input order.
    Two index range scans (``runs_batch``), so a page costs little in a batch of 100,000."""
    columns = LIST_COLUMNS.format(texts=_WHOLE_TEXTS if whole_texts else _CUT_TEXTS)
    clauses, params = _where(conn, RunFilter(**{**f.__dict__, "batch": batch_id}))
    where = " AND ".join(clauses)
    failed = conn.execute(f"SELECT {columns} FROM runs r WHERE {where} AND r.status != 'completed'"
                          " ORDER BY r.batch_index, r.rowid LIMIT ? OFFSET ?", [*params, limit, offset]).fetchall()
    runs = [run_row(r) for r in failed]
    if len(runs) < limit:
        skip = max(0, offset - conn.execute(f"SELECT COUNT(*) FROM runs r WHERE {where} AND r.status != 'completed'",
                                            params).fetchone()[0])
        done = conn.execute(f"SELECT {columns} FROM runs r WHERE {where} AND r.status = 'completed'"
                            " ORDER BY r.batch_index, r.rowid LIMIT ? OFFSET ?",
                            [*params, limit - len(runs), skip]).fetchall()
        runs += [run_row(r) for r in done]
    return runs


def batch_row(row: sqlite3.Row) -> dict:
    """A batch as a dict: options decoded, a dead owner's "running" batch read as "crashed"."""
    batch = dict(row)
    try:
        batch["options"] = json.loads(batch["options"]) if batch.get("options") else {}
    except ValueError:
        batch["options"] = {}
    batch["recorded_status"] = batch["status"]
    token = batch.pop("pid_start", None)
    if batch["status"] == "running" and batch.get("hostname") == socket.gethostname():
        if not alive(batch.get("pid"), token):
            batch["status"] = "crashed"
    total, skipped = batch.get("total") or 0, batch.get("skipped") or 0
    batch["done"] = skipped + (batch.get("completed") or 0) + (batch.get("failed") or 0)
    batch["left"] = max(0, total - batch["done"])
    return batch


def run_row(row: sqlite3.Row) -> dict:
    """A row as a dict, with the usage decoded and a dead recorder's run marked "crashed"."""
    run = dict(row)
    run["offline"] = bool(run.get("offline"))
    try:
        run["usage"] = json.loads(run["usage"]) if run.get("usage") else None
    except ValueError:
        run["usage"] = None
    run["recorded_status"] = run["status"]
    token = run.pop("pid_start", None)
    if run["status"] == "running" and run.get("hostname") == socket.gethostname():
        if not alive(run.get("pid"), token):
            run["status"] = "crashed"
    return run

