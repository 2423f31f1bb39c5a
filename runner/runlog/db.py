"""Opening the run-log database, and telling a crashed recorder from a live one.

Separate from ``runner.runlog.log`` so the recording logic reads on its own. Concurrency: WAL mode,
``synchronous=NORMAL`` (a killed process loses nothing committed; only a power cut might lose the
last commits), a 15 s busy timeout and ``BEGIN IMMEDIATE`` for every write, so many processes can
write one file. The schema is versioned with ``PRAGMA user_version``; ``MIGRATIONS[i]`` takes it
from version i to i + 1.
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
from pathlib import Path

from runner.errors import FlowrunError

SCHEMA_VERSION = 4
BUSY_TIMEOUT_MS = 15_000

# MIGRATIONS[i]: the statements that take the schema from version i to i + 1. Append, never edit.
MIGRATIONS: list[tuple[str, ...]] = [
    (
        "CREATE TABLE runs (run_id TEXT PRIMARY KEY, workflow_path TEXT, workflow_sha256 TEXT,"
        " api TEXT, model TEXT, input TEXT, offline INTEGER, status TEXT NOT NULL, started_at REAL,"
        " finished_at REAL, duration_ms REAL, final_text TEXT, usage TEXT, exit_code INTEGER,"
        " error TEXT, pid INTEGER, hostname TEXT, pid_start TEXT)",
        "CREATE INDEX runs_started_at ON runs(started_at)",
        "CREATE TABLE events (run_id TEXT NOT NULL, seq INTEGER NOT NULL, ts REAL, type TEXT,"
        " data TEXT NOT NULL, PRIMARY KEY (run_id, seq))",
        "CREATE TABLE tool_calls (run_id TEXT NOT NULL, call_id TEXT NOT NULL, name TEXT,"
        " arguments TEXT, output TEXT, is_error INTEGER, duration_ms REAL, seq INTEGER,"
        " PRIMARY KEY (run_id, call_id))",
    ),
    # 1 -> 2: the filters of `flowrun logs` and `flowrun view` stay index lookups on a large log.
    (
        "CREATE INDEX runs_workflow ON runs(workflow_path, started_at)",
        "CREATE INDEX runs_status ON runs(status, started_at)",
        "CREATE INDEX runs_api ON runs(api, started_at)",
        "CREATE INDEX runs_model ON runs(model, started_at)",
    ),
    # 2 -> 3: `flowrun batch` records its runs under a batch (its input's index kept beside), and
    # the batch itself: what it was asked, how far it got, how it ended.
    (
        "ALTER TABLE runs ADD COLUMN batch_id TEXT",
        "ALTER TABLE runs ADD COLUMN batch_index INTEGER",
        "CREATE INDEX runs_batch ON runs(batch_id, status, started_at)",
        "CREATE TABLE batches (batch_id TEXT PRIMARY KEY, workflow_path TEXT, inputs_path TEXT,"
        " out_path TEXT, status TEXT NOT NULL, started_at REAL, finished_at REAL, total INTEGER,"
        " skipped INTEGER, completed INTEGER, failed INTEGER, logged INTEGER, options TEXT, error TEXT,"
        " pid INTEGER, hostname TEXT, pid_start TEXT)",
        "CREATE INDEX batches_started_at ON batches(started_at)",
    ),
    # 3 -> 4: paused runs. One row per run that paused for approvals: the run.paused event (the
    # round's calls, the provider's snapshot, the settings to rebuild the run), "waiting" until a
    # `flowrun resume` claims it ("resumed"), who claimed it and when.
    (
        "CREATE TABLE pauses (run_id TEXT PRIMARY KEY, state TEXT NOT NULL, status TEXT NOT NULL,"
        " paused_at REAL, claimed_at REAL, claimed_pid INTEGER, claimed_host TEXT)",
    ),
]


class RunLogError(FlowrunError):
    """The log could not be read (corrupt file, written by a newer flowrun)."""


def process_token(pid: int) -> str | None:
    """The process's start time (Linux), so a reused pid is not mistaken for the recorder."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def alive(pid: int | None, token: str | None) -> bool:
    """Is the process that recorded a run still running? (Same host only.)"""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    except OSError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
        if state in ("Z", "X"):  # a zombie is dead, just not yet reaped
            return False
    except (OSError, IndexError):
        pass
    now = process_token(pid)
    return token is None or now is None or now == token


def connect(path: Path, *, create: bool) -> sqlite3.Connection:
    """Open (``create``: making the file, private, if missing), set the pragmas, migrate."""
    if not create and not path.exists():
        raise RunLogError(f"no run log at {path} yet", hint="runs are recorded there once you run a workflow")
    if create:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))  # private: tool outputs live here
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                           check_same_thread=False)
    try:
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RunLogError(f"the run log {path} was written by a newer flowrun (schema {version}, "
                              f"this one knows {SCHEMA_VERSION})", hint="upgrade flowrun or use --log-db")
        ensure_wal(conn)
        conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: a killed process loses nothing committed
        if version < SCHEMA_VERSION:
            migrate(conn, path)
        return conn
    except BaseException:
        conn.close()
        raise


def ensure_wal(conn: sqlite3.Connection) -> None:
    """Switch the file to WAL mode, waiting out other processes doing the same.

    SQLite answers "database is locked" to ``PRAGMA journal_mode = WAL`` at once, without calling
    the busy handler, when another connection holds the file at that moment (seen with ten
    processes racing to create one log on a loaded machine). So wait here, up to the busy timeout;
    usually one of the others has switched it meanwhile.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    delay = 0.005
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            waitable = "locked" in str(exc) or "busy" in str(exc)
            if not waitable or time.monotonic() > deadline:
                raise
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 0.2)


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    conn.execute("BEGIN IMMEDIATE")  # serialises concurrent first opens
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == 0 and conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]:
            raise RunLogError(f"{path} is an SQLite file but not a flowrun run log",
                              hint="point --log-db (or FLOWRUN_LOG_DB) at another file")
        for step in range(version, SCHEMA_VERSION):
            for statement in MIGRATIONS[step]:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {max(version, SCHEMA_VERSION)}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
