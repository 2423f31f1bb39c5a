"""A batch in the run log: its runs under one batch id, and the batch's own row.

Why this shape (the cost is measured by ``bench/batch_log.py``):
- a run is written once, when it ends, in one transaction (its row, events and tool calls), not
  event by event as ``flowrun run`` does: a batch has no one watching a single run live, and one
  commit per run instead of one per event is what keeps the log cheap;
- it is written before the input's result line, so whatever ``--out`` holds, the log holds; a run
  in flight when the batch is stopped is in neither, and ``--resume`` runs it again;
- with ``--workers N`` each worker writes its own runs through its own connection (WAL, ``BEGIN
  IMMEDIATE``, the busy timeout: the log's usual many-writers set-up), so run events never cross a
  pipe; the parent owns the batch's row (progress, how it ended);
- the batch's row: "running" while its owner lives (readers show "crashed" once that process is
  gone), then "completed" (every input completed), "failed" (some failed), "interrupted" (Ctrl-C:
  --resume finishes it, under the same batch id) or "error" (stopped for every input, with why). Progress counts are written
  at most every ``PROGRESS_SECONDS`` and at the end.
- ``log="failed"`` keeps only runs that did not complete (for very large batches); the batch's
  counts still cover every input.

The log must never be why a batch fails: ``RunLog`` warns once and stops recording on any error.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

from runner.batch.files import BatchInput
from runner.errors import FlowrunError
from runner.runlog.log import RunLog, default_log_path

LOG_MODES = ("all", "failed", "off")
PROGRESS_SECONDS = 0.5


def new_batch_id() -> str:
    return "batch_" + uuid.uuid4().hex[:12]


def batch_status(summary: Any, exc: BaseException | None) -> tuple[str, str | None]:
    """How a batch ended, for its row: (status, error)."""
    if exc is not None:
        if isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt)) or getattr(summary, "interrupted", False):
            return "interrupted", None
        if isinstance(exc, FlowrunError):
            return "error", exc.message
        return "error", f"internal error: {type(exc).__name__}: {exc}"
    if getattr(summary, "interrupted", False):
        return "interrupted", None
    return ("failed" if summary.failed or summary.failed_before else "completed"), None


def _input_text(item: BatchInput) -> str:
    if item.message is not None:
        return item.message
    return " ".join(f"{k}={v}" for k, v in item.vars.items())


class BatchLog:
    """One batch's writer of the run log (in the process that runs the inputs)."""

    def __init__(self, log: RunLog, batch_id: str, mode: str, workflow_path: str = ""):
        self.log = log
        self.workflow_path = workflow_path
        self.batch_id = batch_id
        self.mode = mode
        self._shown = 0.0

    @classmethod
    def open(cls, options: Any) -> BatchLog | None:
        """None when ``options.log`` is "off"; a log that cannot be opened warns and records nothing."""
        if options.log == "off":
            return None
        if not options.batch_id:
            options.batch_id = new_batch_id()
        log = RunLog.open(options.log_db or default_log_path())
        return cls(log, options.batch_id, options.log, options.file)

    # --- the batch's row (its owner: the one process, or the parent of the workers) ------------

    def start(self, summary: Any, options: Any) -> None:
        """The batch's row. ``--resume`` with results already in ``--out`` goes on with the batch
        that wrote them (same id, its runs and these together), unless its process still runs."""
        out_path = str(Path(options.out).resolve())
        if options.resume and summary.skipped:
            previous = self.log.batch_to_continue(workflow_path=str(Path(options.file)), out_path=out_path)
            if previous:
                self.batch_id = options.batch_id = previous
        kept = {k: getattr(options, k) for k in ("concurrency", "workers", "api", "model", "max_turns", "offline",
                                                  "case_name", "resume", "retry_failed")}
        self.log.start_batch(self.batch_id, workflow_path=str(Path(options.file)),
                             inputs_path=str(Path(options.inputs).resolve()),
                             out_path=out_path, total=summary.total,
                             skipped=summary.skipped - summary.failed_before, failed=summary.failed_before,
                             logged=self.mode, options=kept)

    def progress(self, summary: Any, *, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._shown >= PROGRESS_SECONDS:
            self._shown = now
            self.log.batch_progress(self.batch_id, completed=summary.completed, failed=summary.failed + summary.failed_before)

    def finish(self, summary: Any, exc: BaseException | None) -> None:
        status, error = batch_status(summary, exc)
        self.log.finish_batch(self.batch_id, status=status, completed=summary.completed,
                              failed=summary.failed + summary.failed_before,
                              error=error)

    # --- runs (whichever process ran them) ------------------------------------------------------

    def write(self, item: BatchInput, record: dict, events: list) -> None:
        """One finished input's run (its events as the run emitted them), when the mode keeps it;
        its id goes into the result line."""
        if self.mode == "failed" and record.get("status") == "completed":
            return
        events = [e if isinstance(e, dict) else e.to_dict() for e in events]
        start = next((e for e in events if e.get("type") == "run.started"), None)
        run_id = str(start["run_id"]) if start and start.get("run_id") else "run_" + uuid.uuid4().hex[:16]
        if not any(e.get("type") in ("run.completed", "run.failed") for e in events):
            # It ended before its terminal event (an input that could not be read, a crash in
            # the run): the result line's status and error end it, so it never reads "running".
            events = [*events, {"type": "run.failed", "run_id": run_id, "status": record.get("status") or "error",
                                "message": record.get("error") or "", "exit_code": 1, "ts": time.time()}]
        self.log.write_run(run_id, events, batch_id=self.batch_id, batch_index=item.index, input=_input_text(item),
                           workflow_path=self.workflow_path)
        record["run_id"] = run_id

    def close(self) -> None:
        self.log.close()
