"""What the view's JSON endpoints answer, read from the run log with read-only connections.

Kept apart from the HTTP server so every answer can be tested without a socket. Nothing here
writes: the connections are opened ``mode=ro``, so even a bug cannot change the log.
"""

from __future__ import annotations

import difflib
import json
import sqlite3
import threading
from pathlib import Path

from runner.runlog.query import (BatchNotFound, Page, RunFilter, batch_runs, count_runs, decode_cursor,
                                 encode_cursor, facets, find_batch, list_batches, list_runs, open_read, parse_when,
                                 read_only, run_row)
from runner.view.workflow_source import find_source

PAGE_SIZES = (25, 50, 100, 200)
DIFF_CONTEXT = 3


class NotFound(Exception):
    """No such run (or batch: ``what``) in the log."""

    def __init__(self, key: str, what: str = "run"):
        super().__init__(key)
        self.key = key
        self.what = what


class RunLogView:
    """One log file, one read-only connection per serving thread."""

    def __init__(self, path: Path, *, cwd: Path | None = None, open_check: bool = True):
        self.path = Path(path)
        self.cwd = cwd
        if open_check:  # the schema version, and new indexes, now rather than on the first request
            open_read(self.path).close()  # (bench/view.py serves an old schema as its baseline)
        self._local = threading.local()
        self._sources: dict[tuple[str, str], dict] = {}

    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = read_only(self.path)
        return conn

    # -- the list --------------------------------------------------------------------------------

    @staticmethod
    def run_filter(query: dict[str, str]) -> RunFilter:
        since = query.get("since", "").strip()
        until = query.get("until", "").strip()
        return RunFilter(workflow=query.get("workflow", "").strip(), status=query.get("status", "").strip(),
                         api=query.get("api", "").strip(), model=query.get("model", "").strip(),
                         since=parse_when(since) if since else None,
                         until=parse_when(until) if until else None,
                         search=query.get("q", "").strip())

    def runs(self, query: dict[str, str]) -> dict:
        limit = int(query.get("limit") or 50)
        if limit not in PAGE_SIZES:
            limit = 50
        page: Page = list_runs(self.conn(), self.run_filter(query), limit=limit,
                               before=decode_cursor(query.get("before")))
        return {"runs": page.runs, "next": encode_cursor(page.next_cursor)}

    def count(self, query: dict[str, str]) -> dict:
        return {"count": count_runs(self.conn(), self.run_filter(query))}

    def facets(self) -> dict:
        return facets(self.conn())

    # -- batches ---------------------------------------------------------------------------------

    def batches(self, query: dict[str, str]) -> dict:
        limit = int(query.get("limit") or 50)
        return {"batches": list_batches(self.conn(), limit=limit if limit in PAGE_SIZES else 50)}

    def batch(self, batch_id: str, query: dict[str, str]) -> dict:
        """The batch (progress, how it ended), how many of its runs the log holds, and a page of
        them, failures first (``offset``: paging; ``status``: one status only)."""
        conn = self.conn()
        try:
            batch = find_batch(conn, batch_id)
        except BatchNotFound:
            raise NotFound(batch_id, "batch") from None
        limit = int(query.get("limit") or 50)
        limit = limit if limit in PAGE_SIZES else 50
        offset = max(0, int(query.get("offset") or 0))
        run_filter = RunFilter(status=query.get("status", "").strip())
        runs = batch_runs(conn, batch["batch_id"], run_filter, limit=limit + 1, offset=offset)
        in_log = dict(conn.execute("SELECT status = 'completed', COUNT(*) FROM runs WHERE batch_id = ?"
                                   " GROUP BY 1", (batch["batch_id"],)).fetchall())
        return {**batch, "in_log": {"completed": in_log.get(1, 0), "failed": in_log.get(0, 0)},
                "runs": runs[:limit], "offset": offset, "limit": limit,
                "next": offset + limit if len(runs) > limit else None}

    # -- one run ---------------------------------------------------------------------------------

    def run(self, run_id: str, after: int = -1) -> dict:
        """The run, and its events with ``seq > after`` (a page in progress asks only for new ones)."""
        conn = self.conn()
        row = conn.execute("SELECT r.rowid AS rowid, r.*,"
                           " (SELECT MAX(ts) FROM events e WHERE e.run_id = r.run_id) AS last_event_at"
                           " FROM runs r WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            raise NotFound(run_id)
        run = run_row(row)
        events = []
        for e in conn.execute("SELECT seq, data FROM events WHERE run_id = ? AND seq > ? ORDER BY seq",
                              (run_id, after)):
            try:
                data = json.loads(e["data"])
            except ValueError:
                data = {"type": "unreadable"}
            if isinstance(data, dict):
                events.append({**data, "seq": e["seq"]})
        run["events"] = events
        run["tool_calls"] = [
            {**dict(c), "is_error": None if c["is_error"] is None else bool(c["is_error"])}
            for c in conn.execute("SELECT call_id, name, arguments, output, is_error, duration_ms, seq"
                                  " FROM tool_calls WHERE run_id = ? ORDER BY seq", (run_id,))]
        return run

    def workflow(self, run_id: str) -> dict:
        row = self.conn().execute("SELECT workflow_path, workflow_sha256 FROM runs WHERE run_id = ?",
                                  (run_id,)).fetchone()
        if row is None:
            raise NotFound(run_id)
        key = (row["workflow_path"] or "", row["workflow_sha256"] or "")
        if key not in self._sources:
            self._sources[key] = find_source(*key, cwd=self.cwd).to_dict()
        return {"path": key[0], **self._sources[key]}

    def siblings(self, run_id: str, limit: int = 20) -> dict:
        """Other runs of the same workflow, newest first: candidates to compare with."""
        row = self.conn().execute("SELECT workflow_path FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            raise NotFound(run_id)
        rows = self.conn().execute(
            "SELECT run_id, started_at, status, workflow_sha256, substr(input, 1, 120) AS input FROM runs"
            " WHERE workflow_path = ? AND run_id != ? ORDER BY started_at DESC LIMIT ?",
            (row["workflow_path"], run_id, limit)).fetchall()
        return {"runs": [dict(r) for r in rows]}

    def compare(self, a: str, b: str) -> dict:
        """The older run on the left, so the diff reads as what changed since."""
        left, right = self.run(a), self.run(b)
        if (left["started_at"] or 0) > (right["started_at"] or 0):
            left, right, a, b = right, left, b, a
        wa, wb = self.workflow(a), self.workflow(b)
        diff = None
        if wa["content"] is not None and wb["content"] is not None:
            diff = workflow_diff(wa["content"], wb["content"], a, b)
        return {"a": left, "b": right, "workflow_a": wa, "workflow_b": wb, "diff": diff,
                "same_workflow": left["workflow_path"] == right["workflow_path"]}


def workflow_diff(old: str, new: str, a: str, b: str) -> list[dict]:
    """A unified diff as lines tagged for the page: ``hunk``, ``del``, ``add``, ``ctx``."""
    lines = []
    diff = difflib.unified_diff(old.splitlines(), new.splitlines(), f"run {a}", f"run {b}",
                                n=DIFF_CONTEXT, lineterm="")
    for n, line in enumerate(diff):
        if n < 2:  # the ---/+++ file header; the page names the runs itself
            continue
        kind = {"@": "hunk", "-": "del", "+": "add"}.get(line[:1], "ctx")
        lines.append({"kind": kind, "text": line})
    return lines
