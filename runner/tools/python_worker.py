"""``isolation: process``: one python tool call in a worker process of its own.

A tool in a thread of the flowrun process cannot be stopped: one C call that holds the interpreter
lock, or an async function that never awaits, outlives its timeout. A worker process can be
killed, so with ``isolation: process`` the timeout always holds. The price is a process start
per call, and that the function's module is imported again in every worker.

Protocol: the parent writes ``{"folder", "ref", "args"}`` as JSON to the worker's stdin; the
worker answers one JSON line on a descriptor of its own (descriptor 1 is pointed at stderr, so what
the tool prints, by any route, cannot be taken for the answer): ``{"output": TEXT}`` or
``{"failure": MESSAGE}``. What the tool prints on stderr is read back and masked by the parent.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any, Mapping

MAX_STDERR_CHARS = 20_000  # of what a worker prints, relayed to flowrun's stderr


async def call_in_worker(folder: Path, ref: str, args: Mapping[str, Any]) -> str:
    """The tool's output text. Raises ``ToolFailure`` for what the tool raised or could not give;
    when cancelled (the timeout, Ctrl-C) the worker is killed before this returns."""
    from runner.tools import stdout_guard
    from runner.tools.outputs import ToolFailure

    request = json.dumps({"folder": str(folder), "ref": ref, "args": args}).encode()
    root = str(Path(__file__).resolve().parents[2])  # where ``runner`` is, installed or not
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    read_answer, write_answer = os.pipe()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "runner.tools.python_worker", str(write_answer),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            pass_fds=(write_answer,), env=env, start_new_session=True)
    except BaseException:
        os.close(read_answer)
        raise
    finally:
        os.close(write_answer)
    try:
        answer_task = asyncio.ensure_future(asyncio.to_thread(_read_all, read_answer))
        _, err = await proc.communicate(request)
        answer = await answer_task
    except BaseException:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # the timeout holds: nothing the tool started runs on
        with contextlib.suppress(BaseException):
            await asyncio.shield(proc.wait())
        raise
    if err:
        text = err.decode("utf-8", "replace")[:MAX_STDERR_CHARS]
        sys.stderr.write(stdout_guard.mask_printed(text))
    try:
        reply = json.loads(answer.decode("utf-8", "replace"))
    except ValueError:
        reply = None
    if not isinstance(reply, dict):
        raise ToolFailure(f"the worker process of {ref} ended without an answer (exit code {proc.returncode})")
    if "output" in reply:
        return str(reply["output"])
    raise ToolFailure(str(reply.get("failure") or "the worker process failed"))


def _read_all(fd: int) -> bytes:
    with os.fdopen(fd, "rb") as f:
        return f.read()


def _run(request: dict[str, Any]) -> dict[str, Any]:
    from runner.tools.outputs import ToolFailure, to_output
    from runner.workflow.entrypoints import EntrypointError, load_entrypoint

    ref = request["ref"]
    try:
        func = load_entrypoint(ref, Path(request["folder"]))
    except EntrypointError as e:
        return {"failure": e.message if ref in e.message else f"{e.message} (loading {ref!r})"}
    try:
        value = func(**request["args"])
        if inspect.isawaitable(value):
            value = asyncio.run(_awaited(value))
    except SystemExit as e:
        return {"failure": f"the tool raised SystemExit (the tool called sys.exit({e.code!r}))"}
    except BaseException as e:  # noqa: BLE001 - the tool's failure becomes its output
        text = str(e).strip()
        return {"failure": f"the tool raised {type(e).__name__}" + (f": {text[:2000]}" if text else "")}
    try:
        return {"output": to_output(value)}
    except ToolFailure as e:
        return {"failure": str(e)}


async def _awaited(value: Any) -> Any:
    return await value


def main() -> None:
    answer_fd = int(sys.argv[1])
    os.dup2(2, 1)  # what the tool writes to descriptor 1 goes to stderr, never into the answer
    sys.stdout = sys.stderr
    request = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    reply = _run(request)
    with os.fdopen(answer_fd, "w", encoding="utf-8", errors="replace") as f:
        f.write(json.dumps(reply, ensure_ascii=True))


if __name__ == "__main__":
    main()
