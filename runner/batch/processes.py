"""``flowrun batch --workers N``: the batch spread over worker processes, so it uses every core.

One asyncio process is bound by one core's CPU (parsing streams, building requests); a batch of
short runs is CPU-bound long before it is network-bound. So the parent plans the batch as
before (validation, inputs, ``--resume``), deals the inputs still to do out to N workers in
turn (worker k gets inputs k, k+N, ...), and each worker (``runner.batch.worker``) runs the
ordinary asyncio ``Batch`` over its share. The parent is the one writer of the results file:
workers send each result line back on a pipe as the input finishes, and the parent appends it,
counts it, shows the progress bar and prints the summary line, exactly as with one process.

What is shared and what is per worker:

- ``--concurrency`` is a batch-wide total, split between the workers (so N <= concurrency);
- each worker has its own connection pools and its own ``RateGate``: a 429 pauses and narrows
  that worker's runs at once; the other workers do so when their own requests get the 429 the
  quota gives everyone, so the batch as a whole still slows down instead of failing inputs;
- ``--offline`` starts one scripted server per worker (the model's side of the same test case);
- the results file, the summary, the first failure and the exit code belong to the parent.

Ctrl-C reaches the parent (workers ignore SIGINT); it sends SIGTERM to every worker, each one
ends its runs in flight the way ``Batch.run`` does (unreported, so ``--resume`` redoes them) and
the parent keeps writing what workers had finished until they have all exited.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Callable

from runner.batch.files import BatchInput, ResultWriter
from runner.batch.scheduler import Batch, BatchOptions, BatchSummary
from runner.errors import FlowrunError

MIN_INPUTS_PER_WORKER = 100  # below this a worker's start-up costs more than it saves
STOP_GRACE = 10.0  # seconds a stopped worker gets to end its runs before it is killed


class WorkerError(FlowrunError):
    """What a worker could not get past (no key, unknown API, a crash), with its exit code."""

    def __init__(self, message: str, *, hint: str | None = None, exit_code: int = 1):
        super().__init__(message, hint=hint)
        self.exit_code = exit_code


def choose_workers(requested: int | None, todo: int, concurrency: int, cpus: int | None = None) -> int:
    """How many worker processes: as asked (``--workers``), else one per core when the batch is
    big enough to pay for them; never more than the inputs to do or the concurrency."""
    if requested is None:
        cpus = cpus or os.cpu_count() or 1
        requested = min(cpus, todo // MIN_INPUTS_PER_WORKER)
    return max(1, min(requested, todo, concurrency))


def split(total: int, parts: int) -> list[int]:
    """``total`` as ``parts`` near-equal whole shares (the first ones take the remainder)."""
    return [total // parts + (1 if k < total % parts else 0) for k in range(parts)]


def run_batch(
    options: BatchOptions,
    *,
    workers: int | None = None,
    on_result: Callable[[dict, BatchSummary], None] | None = None,
    on_notice: Callable[[str], None] | None = None,
) -> BatchSummary:
    """Run a batch in this process (one worker) or over worker processes. Errors that stop the
    whole batch are raised as FlowrunError; Ctrl-C ends it with ``summary.interrupted``."""
    started = time.monotonic()
    batch = Batch(options, on_result=on_result, on_notice=on_notice)
    plan = batch._load()  # validation, inputs and --resume, once, before anything starts
    defaults = batch.defaults()  # a bad config file or an unknown --profile stops it here, once
    if options.verbose and not options.offline and on_notice is not None:
        on_notice(defaults.describe())
    _, items, todo = plan
    count = choose_workers(workers, len(todo), options.concurrency)
    options.workers = count
    if count <= 1:
        batch._load = lambda: plan  # type: ignore[method-assign]  # planned already
        try:
            asyncio.run(batch.run())
        except KeyboardInterrupt:
            batch.summary.interrupted = True
        return batch.summary
    parent = Parent(options, items, todo, count, on_result=on_result, on_notice=on_notice)
    parent.summary.failed_before = batch.summary.failed_before
    return parent.run(started)


class Parent:
    """Starts the workers, writes what they report, stops them on Ctrl-C or a batch-wide error."""

    def __init__(self, options: BatchOptions, items: list, todo: list[BatchInput], count: int, *,
                 on_result=None, on_notice=None):
        self.options = options
        self.todo = todo
        self.count = count
        self.on_result = on_result
        self.on_notice = on_notice or (lambda text: None)
        self.summary = BatchSummary(total=len(items), skipped=len(items) - len(todo))
        self.writer: ResultWriter | None = None
        self.procs: list[subprocess.Popen] = []
        self.messages: queue.Queue = queue.Queue()
        self.said: set[str] = set()
        self.error: WorkerError | None = None
        self.finished: set[int] = set()  # workers that said done or error
        self.stderr_tails: list[deque] = []
        self.log = None  # the batch's row in the run log (the workers write the runs)

    def run(self, started: float) -> BatchSummary:
        from runner.batch.batch_log import BatchLog

        failure: BaseException | None = None
        try:
            self.log = BatchLog.open(self.options)  # before the workers start: they get its id
            if self.log is not None:
                self.log.start(self.summary, self.options)
            self._start()
            self._drain()
        except KeyboardInterrupt:  # a second Ctrl-C: the workers are killed below
            self.summary.interrupted = True
        except BaseException as exc:
            failure = exc
            raise
        finally:
            self._stop(kill=True)
            if self.writer is not None:
                self.writer.close()
            self.summary.seconds = time.monotonic() - started
            if self.log is not None:
                self.log.finish(self.summary, failure or self.error)
                self.log.close()
        if self.error is not None:
            raise self.error
        return self.summary

    # --- workers ------------------------------------------------------------------------------

    def _start(self) -> None:
        from runner.batch.worker import encode_item, encode_options

        env = dict(os.environ if self.options.env is None else self.options.env)
        here = str(Path(__file__).resolve().parents[2])  # where `runner` is importable from
        env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
        options = encode_options(self.options)
        for k, concurrency in enumerate(split(self.options.concurrency, self.count)):
            share = self.todo[k :: self.count]
            header = {"options": {**options, "concurrency": concurrency}, "total": self.summary.total,
                      "items": [encode_item(item) for item in share]}
            proc = subprocess.Popen(
                [sys.executable, "-m", "runner.batch.worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, env=env, text=True, encoding="utf-8", errors="replace",
            )
            self.procs.append(proc)
            tail: deque = deque(maxlen=20)
            self.stderr_tails.append(tail)
            threading.Thread(target=self._read, args=(k, proc), daemon=True).start()
            threading.Thread(target=self._read_stderr, args=(proc, tail), daemon=True).start()
            try:
                proc.stdin.write(json.dumps(header, ensure_ascii=False) + "\n")
                proc.stdin.close()
            except OSError:  # it died at once; its exit is reported by the drain
                pass

    def _read(self, k: int, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            self.messages.put((k, line))
        self.messages.put((k, None))

    @staticmethod
    def _read_stderr(proc: subprocess.Popen, tail: deque) -> None:
        for line in proc.stderr:
            tail.append(line.rstrip("\n"))

    def _drain(self) -> None:
        """Handle every message until every worker's pipe has closed."""
        open_pipes = self.count
        stopping = False
        while open_pipes:
            try:
                k, line = self.messages.get(timeout=0.5)
            except queue.Empty:
                continue
            except KeyboardInterrupt:
                if stopping:  # a second Ctrl-C: do not wait for the runs in flight
                    self._stop(kill=True)
                    raise
                stopping = True
                self.summary.interrupted = True
                self._stop()
                continue
            if line is None:
                open_pipes -= 1
                self._reap(k)
                continue
            try:
                message = json.loads(line)
            except ValueError:  # a line torn by a killed worker
                continue
            if self._handle(k, message) and not stopping:
                stopping = True
                self._stop()

    def _handle(self, k: int, message: dict) -> bool:
        """Act on one message; True when the batch must stop (an error that affects everyone)."""
        if "result" in message:
            self._record(message["result"])
        elif "notice" in message:
            text = str(message["notice"])
            if text not in self.said:
                self.said.add(text)
                self.on_notice(text)
        elif "done" in message:
            self.finished.add(k)
            done = message["done"]
            self.summary.rate_limited += int(done.get("rate_limited") or 0)
            self.summary.interrupted = self.summary.interrupted or bool(done.get("interrupted"))
        elif "error" in message:
            self.finished.add(k)
            if self.error is None:
                self.error = WorkerError(str(message["error"]), hint=message.get("hint"),
                                         exit_code=int(message.get("exit_code") or 1))
            return True
        return False

    def _record(self, record: dict) -> None:
        o = self.options
        try:
            if self.writer is None:  # opened at the first result, as a one-process batch would
                self.writer = ResultWriter(o.out, append=o.resume)
            self.writer.write(record)
        except OSError as exc:
            raise FlowrunError(f"cannot write the results to {o.out}: {exc.strerror or exc}") from None
        self.summary.count(record)
        if self.log is not None:
            self.log.progress(self.summary)
        if self.on_result is not None:
            self.on_result(record, self.summary)

    def _reap(self, k: int) -> None:
        proc = self.procs[k]
        try:
            code = proc.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        if k not in self.finished and self.error is None and not self.summary.interrupted:
            last = next((line for line in reversed(self.stderr_tails[k]) if line.strip()), "")
            self.error = WorkerError(
                f"batch worker {k + 1} of {self.count} stopped unexpectedly (exit {code})"
                + (f": {last.strip()}" if last else ""),
                hint="the results written so far are kept: run the same command with --resume to finish",
            )
            self._stop()

    def _stop(self, *, kill: bool = False) -> None:
        """Ask every live worker to end (SIGTERM); ``kill``: and wait for it, killing it after
        the grace period."""
        live = [proc for proc in self.procs if proc.poll() is None]
        for proc in live:
            try:
                proc.send_signal(signal.SIGTERM)
            except OSError:
                pass
        if not kill:
            return
        for proc in live:
            try:
                proc.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
