"""The run log: every run's events written to SQLite as they happen, so nothing is lost.

A pure event sink (``sink(run_id)``): ``run.started`` writes the run's row, each terminal event
(``run.completed`` / ``run.failed``) finishes it, everything in between is stored as it comes.
Events reach it already masked by the run's fan-out; a masker given to ``open`` is for other
writers (tests, the soak benchmark). A crash, a SIGKILL or a dropped stream still leaves the
run's record up to that moment.

Commit policy (why a killed process loses at most the last ~100 ms of text):
- every event other than ``text.delta`` is committed before ``record`` returns;
- text deltas are buffered in memory and written in one transaction when the oldest is
  ``FLUSH_SECONDS`` old (a timer thread does this even if the stream then stalls), when
  ``FLUSH_DELTAS`` are waiting, or before any other event, the end of the run, ``close`` or a
  normal interpreter exit. A SIGKILL therefore loses at most the deltas of the last ~100 ms.

The log must never be why a run fails: any error while recording prints one warning on stderr
and recording stops; the run goes on. Readers (``list_runs``, ``get_run``) do raise.
Many processes may write one file: WAL mode, ``BEGIN IMMEDIATE`` and a generous busy timeout.
"""

from __future__ import annotations

import atexit
import json
import os
import socket
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from runner.errors import UsageError
from runner.runlog.db import RunLogError, alive, connect, process_token
from runner.secrets.masker import Masker

__all__ = ["RunLog", "RunLogError", "RunNotFound", "NotPaused", "default_log_path"]

FLUSH_SECONDS = 0.1
FLUSH_DELTAS = 64


class RunNotFound(UsageError):
    """No run, or more than one, matches the id or prefix asked for."""


class NotPaused(UsageError):
    """``flowrun resume`` on a run that is not waiting: finished, already resumed, or being
    resumed by another process right now."""


def default_log_path() -> Path:
    """``$FLOWRUN_LOG_DB``, else ``$XDG_STATE_HOME/flowrun/runs.sqlite3`` or ``~/.local/state/...``."""
    explicit = os.environ.get("FLOWRUN_LOG_DB")
    if explicit:
        return Path(explicit).expanduser()
    state = os.environ.get("XDG_STATE_HOME")
    base = Path(state) if state and os.path.isabs(state) else Path.home() / ".local" / "state"
    return base / "flowrun" / "runs.sqlite3"


class RunLog:
    """One open log file. Thread-safe; one instance per process is enough for any number of runs.

    Build it with ``RunLog.open`` (recording) or ``RunLog.open_reader`` (``flowrun logs``).
    A run never finished keeps status "running"; readers show it as "crashed" once the
    recording process (pid + hostname + start time) is gone.
    """

    def __init__(self, conn: sqlite3.Connection | None, path: Path, masker: Masker | None):
        self.path = path
        self._conn = conn
        self._masker = masker or Masker()
        self._lock = threading.RLock()
        self._seq: dict[str, int] = {}
        self._started: set[str] = set()  # runs whose row this log wrote
        self._pending: list[tuple] = []
        self._pending_since = 0.0
        self._timer: threading.Timer | None = None
        self._warned = False
        if conn is not None:
            atexit.register(self.close)

    # -- opening ----------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path | str, masker: Masker | None = None) -> RunLog:
        """Open (creating dirs and schema) for recording. Never raises: a log that cannot be
        opened warns once and records nothing."""
        path = Path(path).expanduser()
        try:
            return cls(connect(path, create=True), path, masker)
        except Exception as exc:  # noqa: BLE001 -- the log must not fail the run
            log = cls(None, path, masker)
            log._disable(exc)
            return log

    @classmethod
    def open_reader(cls, path: Path | str) -> RunLog:
        """Open an existing log for reading; raises ``RunLogError`` if it cannot be read."""
        path = Path(path).expanduser()
        try:
            return cls(connect(path, create=False), path, None)
        except RunLogError:
            raise
        except (sqlite3.Error, OSError) as exc:
            raise RunLogError(f"cannot read the run log {path}: {exc}") from None

    @property
    def enabled(self) -> bool:
        return self._conn is not None

    # -- recording (never raises) -------------------------------------------------------------

    def start_run(self, *, run_id: str, workflow_path: str, workflow_sha256: str, api: str,
                  model: str, input: str, offline: bool) -> None:
        statement = self._run_row(run_id, workflow_path=workflow_path, workflow_sha256=workflow_sha256, api=api,
                                  model=model, input=input, offline=offline, started_at=time.time())
        self._guard(lambda: self._transaction([statement]))
        self._seq.setdefault(run_id, 0)  # a new run: no need to ask the file for its last event
        self._started.add(run_id)

    def _run_row(self, run_id: str, *, workflow_path: str, workflow_sha256: str, api: str, model: str,
                 input: str, offline: bool, started_at: float, batch_id: str | None = None,
                 batch_index: int | None = None) -> tuple[str, tuple]:
        m = self._masker.mask
        return ("INSERT INTO runs (run_id, workflow_path, workflow_sha256, api, model, input, offline,"
                " status, started_at, pid, hostname, pid_start, batch_id, batch_index)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (run_id, m(workflow_path), workflow_sha256, api, m(model), m(input), int(offline), "running",
                 started_at, *_recorder(), batch_id, batch_index))

    def sink(self, run_id: str) -> Callable[[Any], None]:
        """The sink for one run's events (a fan-out calls it with each event)."""
        return lambda event: self.record(run_id, event)

    def record(self, run_id: str, event: Any) -> None:
        """Store one event; ``run.started`` also writes the run's row and a terminal event
        finishes it (several in --chat, one per answer: the last one stays)."""
        data = event if isinstance(event, dict) else event.to_dict()
        kind = data.get("type")
        if kind == "run.started" and run_id not in self._started:
            self.start_run(run_id=run_id, workflow_path=str(data.get("workflow", "")),
                           workflow_sha256=str(data.get("workflow_sha256", "")), api=str(data.get("api", "")),
                           model=str(data.get("model", "")), input=str(data.get("input", "")),
                           offline=bool(data.get("offline")))
        self._guard(lambda: self._record(run_id, data))
        if kind in ("run.completed", "run.failed"):
            failed = kind == "run.failed"
            self.finish_run(run_id, status=str(data.get("status", "")), final_text=data.get("final_text") or "",
                            usage=data.get("usage"), exit_code=int(data.get("exit_code", 1)) if failed else 0,
                            error=(data.get("message") or None) if failed else None,
                            duration_ms=data.get("duration_ms"))

    def finish_run(self, run_id: str, *, status: str, final_text: str, usage: dict | None,
                   exit_code: int, error: str | None, duration_ms: float | None = None) -> None:
        """``duration_ms``: the terminal event's own (the one its summary line showed), so
        ``flowrun logs show`` says the same; without one, from run.started to now."""
        statement = self._finish_row(run_id, status=status, final_text=final_text, usage=usage,
                                     exit_code=exit_code, error=error, at=time.time(), duration_ms=duration_ms)
        self._guard(lambda: self._transaction([statement]))

    def _finish_row(self, run_id: str, *, status: str, final_text: str, usage: dict | None, exit_code: int,
                    error: str | None, at: float, duration_ms: float | None = None) -> tuple[str, tuple]:
        m = self._masker.mask
        usage_json = json.dumps(self._masker.mask_value(usage), default=str) if usage is not None else None
        given = float(duration_ms) if isinstance(duration_ms, (int, float)) and not isinstance(duration_ms, bool) \
            and 0 <= duration_ms < 1e12 else None  # the event may come from a file: checked
        return ("UPDATE runs SET status=?, final_text=?, usage=?, exit_code=?, error=?, finished_at=?,"
                " duration_ms=COALESCE(?, (?-started_at)*1000) WHERE run_id=?",
                (status, m(final_text or ""), usage_json, exit_code, m(error) if error is not None else None,
                 at, given, at, run_id))

    # -- batches (written by the one process that writes the batch's results) ---------------------

    def write_run(self, run_id: str, events: list[dict], *, batch_id: str | None = None,
                  batch_index: int | None = None, input: str = "", workflow_path: str = "") -> None:
        """A finished run, all at once: its row, every event and tool call, in one transaction
        (a batch writes each run when it ends: one commit per run, not one per event).
        ``events`` starts with ``run.started``; without any (an input that could not be read),
        ``input``, ``workflow_path`` and the terminal event are all there is."""
        def statements() -> list[tuple[str, tuple]]:
            start = next((e for e in events if e.get("type") == "run.started"), {})
            first_ts = events[0].get("ts") if events and isinstance(events[0].get("ts"), (int, float)) else None
            out = [self._run_row(
                run_id, workflow_path=str(start.get("workflow", workflow_path)),
                workflow_sha256=str(start.get("workflow_sha256", "")), api=str(start.get("api", "")),
                model=str(start.get("model", "")), input=str(start.get("input", input)),
                offline=bool(start.get("offline")), started_at=first_ts or time.time(), batch_id=batch_id,
                batch_index=batch_index)]
            end = None
            rows: list[tuple] = []  # the events' rows in one executemany: most of a run's statements
            for seq, event in enumerate(events):
                data = self._masker.mask_value(event)
                (_, row), *calls = self._event_statements(run_id, data, seq)
                rows.append(row)
                out += calls
                if data.get("type") in ("run.completed", "run.failed"):
                    end = data
            out.append(("INSERT INTO events VALUES (?,?,?,?,?)", rows))
            if end is not None:
                failed = end.get("type") == "run.failed"
                ts = end.get("ts") if isinstance(end.get("ts"), (int, float)) else time.time()
                out.append(self._finish_row(
                    run_id, status=str(end.get("status", "")), final_text=end.get("final_text") or "",
                    usage=end.get("usage"), exit_code=int(end.get("exit_code", 1)) if failed else 0,
                    error=(end.get("message") or None) if failed else None, at=ts,
                    duration_ms=end.get("duration_ms")))
            return out

        self._guard(lambda: self._transaction(statements()))

    def start_batch(self, batch_id: str, *, workflow_path: str, inputs_path: str, out_path: str, total: int,
                    skipped: int, logged: str, options: dict, failed: int = 0) -> None:
        """The batch's row, status "running", owned by this process (a dead owner reads "crashed").
        ``skipped``: inputs completed before (``--resume``); ``failed``: inputs that failed before."""
        m = self._masker.mask
        row = (batch_id, m(workflow_path), m(inputs_path), m(out_path), "running", time.time(), total, skipped,
               0, failed, logged, json.dumps(self._masker.mask_value(options), default=str), *_recorder())
        self._guard(lambda: self._write(
            "INSERT INTO batches (batch_id, workflow_path, inputs_path, out_path, status, started_at, total,"
            " skipped, completed, failed, logged, options, pid, hostname, pid_start)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(batch_id) DO UPDATE SET"  # --resume: it goes on
            " status='running', finished_at=NULL, error=NULL, inputs_path=excluded.inputs_path, total=excluded.total,"
            " skipped=excluded.skipped, completed=0, failed=excluded.failed, logged=excluded.logged, options=excluded.options,"
            " pid=excluded.pid, hostname=excluded.hostname, pid_start=excluded.pid_start", row))

    def batch_to_continue(self, *, workflow_path: str, out_path: str) -> str | None:
        """The batch that wrote ``out_path`` with this workflow, for ``batch --resume`` to go on
        with, unless its process still runs it; None when there is none."""
        m = self._masker.mask
        found: list = []

        def look() -> None:
            found.extend(self._conn.execute(
                "SELECT batch_id, status, pid, hostname, pid_start FROM batches WHERE out_path = ? AND workflow_path = ?"
                " ORDER BY started_at DESC, rowid DESC LIMIT 1", (m(out_path), m(workflow_path))))

        self._guard(look)
        if not found:
            return None
        row = found[0]
        if row["status"] == "running" and (row["hostname"] != socket.gethostname() or alive(row["pid"], row["pid_start"])):
            return None  # someone runs it now: a batch of its own, never two owners of one row
        return row["batch_id"]

    def batch_progress(self, batch_id: str, *, completed: int, failed: int) -> None:
        self._guard(lambda: self._write("UPDATE batches SET completed=?, failed=? WHERE batch_id=?",
                                        (completed, failed, batch_id)))

    def finish_batch(self, batch_id: str, *, status: str, completed: int, failed: int,
                     error: str | None = None) -> None:
        m = self._masker.mask
        self._guard(lambda: self._write(
            "UPDATE batches SET status=?, completed=?, failed=?, error=?, finished_at=? WHERE batch_id=?",
            (status, completed, failed, m(error) if error else None, time.time(), batch_id)))

    def close(self) -> None:
        with self._lock:
            self._guard(self._flush)
            if self._timer:
                self._timer.cancel()
            if self._conn is not None:
                atexit.unregister(self.close)
                try:
                    self._conn.close()
                except sqlite3.Error:
                    pass
                self._conn = None

    def __enter__(self) -> RunLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _record(self, run_id: str, event: Any) -> None:
        data = event if isinstance(event, dict) else event.to_dict()
        data = self._masker.mask_value(data)
        kind = str(data.get("type", ""))
        seq = self._next_seq(run_id)
        if kind == "text.delta":
            ts = data.get("ts") if isinstance(data.get("ts"), (int, float)) else time.time()
            row = (run_id, seq, ts, kind, json.dumps(data, default=str))
            if not self._pending:
                self._pending_since = time.monotonic()
                self._timer = threading.Timer(FLUSH_SECONDS, self._on_timer)
                self._timer.daemon = True
                self._timer.start()
            self._pending.append(row)
            if len(self._pending) >= FLUSH_DELTAS or time.monotonic() - self._pending_since >= FLUSH_SECONDS:
                self._flush()
            return
        self._transaction(self._event_statements(run_id, data, seq))

    @staticmethod
    def _event_statements(run_id: str, data: dict, seq: int) -> list[tuple[str, tuple]]:
        """The event's row, and its tool call's row when it is one (``data`` already masked)."""
        kind = str(data.get("type", ""))
        ts = data.get("ts") if isinstance(data.get("ts"), (int, float)) else time.time()
        row = (run_id, seq, ts, kind, json.dumps(data, default=str))
        statements = [("INSERT INTO events VALUES (?,?,?,?,?)", row)]
        if kind == "tool_call.requested":
            statements.append((
                "INSERT INTO tool_calls (run_id, call_id, name, arguments, seq) VALUES (?,?,?,?,?)"
                " ON CONFLICT(run_id, call_id) DO UPDATE SET name=excluded.name,"
                " arguments=excluded.arguments",
                (run_id, data.get("call_id"), data.get("name"), data.get("arguments"), seq)))
        elif kind == "run.paused":  # the state `flowrun resume` starts from, until one claims it
            statements.append((
                "INSERT INTO pauses (run_id, state, status, paused_at) VALUES (?,?,'waiting',?)"
                " ON CONFLICT(run_id) DO UPDATE SET state=excluded.state, status='waiting',"
                " paused_at=excluded.paused_at, claimed_at=NULL, claimed_pid=NULL, claimed_host=NULL",
                (run_id, json.dumps(data, default=str), ts)))
        elif kind == "tool_call.completed":
            statements.append((
                "INSERT INTO tool_calls (run_id, call_id, name, output, is_error, duration_ms, seq)"
                " VALUES (?,?,?,?,?,?,?) ON CONFLICT(run_id, call_id) DO UPDATE SET"
                " output=excluded.output, is_error=excluded.is_error, duration_ms=excluded.duration_ms",
                (run_id, data.get("call_id"), data.get("name"), data.get("output"),
                 int(bool(data.get("is_error"))), data.get("duration_ms"), seq)))
        return statements

    def _next_seq(self, run_id: str) -> int:
        if run_id not in self._seq:
            row = self._conn.execute("SELECT MAX(seq) FROM events WHERE run_id=?", (run_id,)).fetchone()
            self._seq[run_id] = 0 if row[0] is None else row[0] + 1
        seq = self._seq[run_id]
        self._seq[run_id] = seq + 1
        return seq

    def _on_timer(self) -> None:
        self._guard(self._flush)

    def _flush(self) -> None:
        """Write buffered deltas (alone: ``_transaction`` writes them before anything else)."""
        self._transaction([])

    def _write(self, sql: str, params: tuple) -> None:
        self._transaction([(sql, params)])

    def _transaction(self, statements: list[tuple[str, tuple | list[tuple]]]) -> None:
        with self._lock:
            if self._conn is None:
                return
            pending, self._pending = self._pending, []
            if self._timer:
                self._timer.cancel()
                self._timer = None
            if not pending and not statements:
                return
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                if pending:
                    self._conn.executemany("INSERT INTO events VALUES (?,?,?,?,?)", pending)
                for sql, params in statements:
                    if isinstance(params, list):  # many rows of one statement
                        self._conn.executemany(sql, params)
                    else:
                        self._conn.execute(sql, params)
                self._conn.execute("COMMIT")
            except BaseException:
                self._pending = pending + self._pending  # e.g. Ctrl-C mid-commit: retry them later
                self._conn.execute("ROLLBACK")
                raise

    def _guard(self, action) -> None:
        with self._lock:
            if self._conn is None:
                return
            try:
                action()
            except Exception as exc:  # noqa: BLE001 -- the log must not fail the run
                self._disable(exc)

    def _disable(self, exc: BaseException) -> None:
        conn, self._conn, self._pending = self._conn, None, []
        if self._timer:
            self._timer.cancel()
        if conn is not None:
            atexit.unregister(self.close)
            try:
                conn.close()
            except sqlite3.Error:
                pass
        if not self._warned:
            self._warned = True
            reason = self._masker.mask(f"{type(exc).__name__}: {exc}")
            print(f"flowrun: warning: run log {self.path} disabled ({reason}); "
                  "the run continues but is no longer recorded", file=sys.stderr, flush=True)

    # -- reading ------------------------------------------------------------------------------

    def list_runs(self, limit: int = 20) -> list[dict]:
        rows = self._query(
            "SELECT r.*, (SELECT MAX(ts) FROM events e WHERE e.run_id = r.run_id) AS last_event_at"
            " FROM runs r ORDER BY started_at DESC, rowid DESC LIMIT ?", (limit,))
        return [_run_dict(r) for r in rows]

    def get_run(self, run_id_or_prefix: str) -> dict:
        key = run_id_or_prefix.strip()
        rows = self._query("SELECT run_id FROM runs WHERE run_id = ?", (key,)) if key else []
        if not rows and key:
            rows = self._query("SELECT run_id FROM runs WHERE substr(run_id, 1, ?) = ?"
                               " ORDER BY started_at DESC LIMIT 6", (len(key), key))
        if not rows:
            raise RunNotFound(f"no run matches {key!r} in {self.path}",
                              hint="`flowrun logs` lists recent runs")
        if len(rows) > 1:
            ids = ", ".join(r["run_id"] for r in rows[:5])
            raise RunNotFound(f"{key!r} matches more than one run ({ids}{', …' if len(rows) > 5 else ''})",
                              hint="give more of the id")
        run_id = rows[0]["run_id"]
        run = _run_dict(self._query(
            "SELECT r.*, (SELECT MAX(ts) FROM events e WHERE e.run_id = r.run_id) AS last_event_at"
            " FROM runs r WHERE run_id = ?", (run_id,))[0])
        events = self._query("SELECT seq, data FROM events WHERE run_id = ? ORDER BY seq", (run_id,))
        run["events"] = [{"seq": e["seq"], **json.loads(e["data"])} for e in events]
        calls = self._query("SELECT call_id, name, arguments, output, is_error, duration_ms FROM tool_calls"
                            " WHERE run_id = ? ORDER BY seq", (run_id,))
        run["tool_calls"] = [
            {**dict(c), "is_error": None if c["is_error"] is None else bool(c["is_error"])} for c in calls
        ]
        return run

    # -- paused runs --------------------------------------------------------------------------

    def paused_state(self, run_id: str) -> Any:
        """The ``run.paused`` event saved for ``run_id`` (parsed JSON, unchecked: the caller
        checks it), or None when there is none."""
        rows = self._query("SELECT state FROM pauses WHERE run_id = ?", (run_id,))
        if not rows:
            return None
        try:
            return json.loads(rows[0]["state"])
        except (TypeError, ValueError):
            return "(not JSON)"

    def claim_pause(self, run_id: str) -> None:
        """Take a paused run for this process, once: in one transaction, check it is still
        paused and waiting, mark the pause resumed and the run running (by this process). Two
        `flowrun resume` at once: one wins, the other gets ``NotPaused``."""
        with self._lock:
            if self._conn is None:
                raise RunLogError(f"the run log {self.path} is not open")
            self._guard(self._flush)
            conn = self._conn
            if conn is None:
                raise RunLogError(f"the run log {self.path} could not be written; see the warning above")
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    row = conn.execute(
                        "SELECT r.status, p.status AS pause FROM runs r LEFT JOIN pauses p ON p.run_id = r.run_id"
                        " WHERE r.run_id = ?", (run_id,)).fetchone()
                    if row is None or row["status"] != "paused" or row["pause"] != "waiting":
                        conn.execute("ROLLBACK")
                        raise NotPaused(f"run {run_id} is no longer paused: another `flowrun resume` took it "
                                        "just now", hint=f"`flowrun logs show {run_id}` shows how it went on")
                    now = time.time()
                    conn.execute("UPDATE pauses SET status='resumed', claimed_at=?, claimed_pid=?, claimed_host=?"
                                 " WHERE run_id=?", (now, os.getpid(), socket.gethostname(), run_id))
                    conn.execute("UPDATE runs SET status='running', pid=?, hostname=?, pid_start=?, finished_at=NULL,"
                                 " exit_code=NULL, error=NULL, duration_ms=NULL WHERE run_id=?",
                                 (os.getpid(), socket.gethostname(), process_token(os.getpid()), run_id))
                    conn.execute("COMMIT")
                except NotPaused:
                    raise
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise RunLogError(f"cannot claim run {run_id} in {self.path}: {exc}") from None
        self._started.add(run_id)  # its row exists: a resumed run never writes a second one

    def _query(self, sql: str, params: tuple) -> list[sqlite3.Row]:
        with self._lock:
            if self._conn is None:
                raise RunLogError(f"the run log {self.path} is not open")
            self._guard(self._flush)
            if self._conn is None:
                raise RunLogError(f"the run log {self.path} could not be written; see the warning above")
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise RunLogError(f"cannot read the run log {self.path}: {exc}") from None


_RECORDER: dict[int, tuple[int, str, str | None]] = {}


def _recorder() -> tuple[int, str, str | None]:
    """This process as a recorder (pid, host, start time), read once per process, not per run."""
    pid = os.getpid()
    if pid not in _RECORDER:
        _RECORDER[pid] = (pid, socket.gethostname(), process_token(pid))
    return _RECORDER[pid]


def _run_dict(row: sqlite3.Row) -> dict:
    run = dict(row)
    run["offline"] = bool(run["offline"])
    run["usage"] = json.loads(run["usage"]) if run["usage"] else None
    run["recorded_status"] = run["status"]
    token = run.pop("pid_start", None)
    # A dead recorder on this host means a crash; on another host we cannot tell.
    if run["status"] == "running" and run["hostname"] == socket.gethostname():
        if not alive(run["pid"], token):
            run["status"] = "crashed"
    return run
