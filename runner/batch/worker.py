"""One worker process of ``flowrun batch --workers N``: ``python -m runner.batch.worker``.

The parent (``runner.batch.processes``) writes one JSON line on our stdin: the batch options and
this worker's share of the inputs. We run the ordinary asyncio ``Batch`` over that share and send
every message back as one JSON line on stdout; the parent is the only writer of the results
file. Messages::

    {"result": {...}}                  one finished input (the line the parent appends)
    {"notice": "..."}                  something a person should know (the parent shows it once)
    {"error": "...", "hint": "...", "exit_code": N}   the batch cannot run (no key, unknown API)
    {"done": {"rate_limited": N, "interrupted": bool}}

SIGINT is ignored here: a Ctrl-C at the terminal reaches the parent, which stops every worker
with SIGTERM; we then end the runs in flight as ``Batch.run`` does on Ctrl-C (they are not
reported, so ``--resume`` runs them again) and say ``done``. A parent that goes away closes our
stdout; the next write fails and we stop.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from dataclasses import fields
from typing import Any, TextIO

from runner.batch.files import BatchInput
from runner.batch.scheduler import Batch, BatchOptions
from runner.errors import FlowrunError


def encode_item(item: BatchInput) -> dict[str, Any]:
    return {"index": item.index, "line": item.line, "message": item.message, "vars": item.vars, "id": item.id,
            "problem": item.problem}


def decode_item(data: dict[str, Any]) -> BatchInput:
    return BatchInput(data["index"], data["line"], data.get("message"), dict(data.get("vars") or {}),
                      data.get("id"), data.get("problem"))


def encode_options(options: BatchOptions) -> dict[str, Any]:
    """The options a worker needs; ``env`` travels as the process environment, never on a pipe."""
    return {f.name: getattr(options, f.name) for f in fields(BatchOptions) if f.name != "env"}


class ShareBatch(Batch):
    """A ``Batch`` over a given share of the inputs whose results go to the parent, not a file.
    The plan (validation aside) was made by the parent: no out-file checks here, no resume."""

    def __init__(self, options: BatchOptions, share: list[BatchInput], total: int, channel: "Channel"):
        super().__init__(options, on_notice=channel.notice)
        self._share = share
        self._total = total
        self._channel = channel

    def _load(self):
        from pathlib import Path

        from runner.workflow.validate import load_workflow

        return load_workflow(Path(self.options.file)), [None] * self._total, list(self._share)

    def _open_log(self):
        """Our runs go to the log through our own connection; the batch's row is the parent's."""
        from runner.batch.batch_log import BatchLog

        return BatchLog.open(self.options)

    def _end_log(self, exc: BaseException | None) -> None:
        pass

    def _record(self, record: dict) -> None:
        self._channel.result(record)
        if record["status"] == "completed":
            self.summary.completed += 1
        else:
            self.summary.failed += 1


class Channel:
    """One JSON line per message on the parent's pipe, flushed at once (the parent counts on it
    for the progress bar and for durability)."""

    def __init__(self, out: TextIO):
        self._out = out

    def send(self, message: dict[str, Any]) -> None:
        self._out.write(json.dumps(message, ensure_ascii=False, separators=(",", ":")) + "\n")
        self._out.flush()

    def result(self, record: dict) -> None:
        self.send({"result": record})

    def notice(self, text: str) -> None:
        self.send({"notice": text})


async def _run(batch: ShareBatch) -> None:
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    except (NotImplementedError, RuntimeError):  # no signal handlers in this loop (Windows)
        pass
    await batch.run()


def main(stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    header = json.loads(stdin.readline())
    options = BatchOptions(**{**header["options"], "out": os.devnull, "resume": False, "retry_failed": False})
    channel = Channel(stdout)
    batch = ShareBatch(options, [decode_item(x) for x in header["items"]], header["total"], channel)
    interrupted = False
    try:
        asyncio.run(_run(batch))
    except (asyncio.CancelledError, KeyboardInterrupt):
        interrupted = True
    except FlowrunError as exc:
        channel.send({"error": exc.message, "hint": exc.hint, "exit_code": exc.exit_code})
        return exc.exit_code
    except BrokenPipeError:  # the parent is gone: nobody to report to
        return 1
    channel.send({"done": {"rate_limited": batch.summary.rate_limited, "interrupted": interrupted}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
