"""The ``python`` resolver: call ``module:function`` with the model's arguments as keywords.

A workflow file is code: naming a function here runs it, so ``--no-python`` refuses these
resolvers for files you did not write.

Sync functions run in a worker thread so they never block the event loop (heartbeats, other tool
calls and the deadline keep running). We start one *daemon* thread per call instead of using
``asyncio.to_thread``: a tool that hangs past its timeout is abandoned, and a pooled executor
thread would make ``asyncio.run`` (which waits for the default executor) and interpreter exit wait
for it forever. Async functions are awaited on the loop. What a tool prints goes to stderr, never
to flowrun's stdout (see ``stdout_guard``).

Entrypoints are imported with ``runner.workflow.entrypoints.load_entrypoint`` (the workflow's
folder first, then the import path), once per dispatcher, in the worker thread too: importing
runs the module's code.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from pathlib import Path
from typing import Any, Callable, Mapping

from runner.daemon_thread import in_daemon_thread
from runner.tools import stdout_guard
from runner.tools.outputs import ToolFailure
from runner.workflow.entrypoints import EntrypointError, load_entrypoint

# One import at a time in the whole process: a module is in sys.modules before its top level has
# finished running, so a second thread importing it then would see it half-built.
_IMPORT_LOCK = threading.Lock()


class PythonTool:
    """Loads entrypoints once per dispatcher and calls them."""

    def __init__(self, folder: Path):
        self._folder = folder
        self._cache: dict[str, Callable] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def call(self, ref: str, args: Mapping[str, Any], *, isolation: str = "thread") -> Any:
        if isolation == "process":  # a worker process, killed when the call is cancelled (timeout)
            from runner.tools.python_worker import call_in_worker

            return await call_in_worker(self._folder, ref, args)
        func = await self._function(ref)
        stdout_guard.install()
        if _is_async(func):
            return await _in_tool_context(func(**args))
        result = await run_in_daemon_thread(lambda: func(**args), name=ref)
        if inspect.isawaitable(result):
            result = await _in_tool_context(result)
        return result

    async def _function(self, ref: str) -> Callable:
        if ref in self._cache:
            return self._cache[ref]
        async with self._locks.setdefault(ref, asyncio.Lock()):
            if ref not in self._cache:
                stdout_guard.install()
                try:  # importing runs module code: keep it off the loop, like the call itself
                    self._cache[ref] = await run_in_daemon_thread(
                        lambda: _load_locked(ref, self._folder), name=f"import {ref}")
                except EntrypointError as e:
                    where = "" if ref in e.message else f" (loading {ref!r})"
                    raise ToolFailure(f"{e.message}{where}") from None
        return self._cache[ref]


def _load_locked(ref: str, folder: Path) -> Callable:
    with _IMPORT_LOCK:
        return load_entrypoint(ref, folder)


def _is_async(func: Callable) -> bool:
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
        getattr(func, "__call__", None))


async def _in_tool_context(awaitable: Any) -> Any:
    token = stdout_guard.in_tool.set(True)
    try:
        return await awaitable
    finally:
        stdout_guard.in_tool.reset(token)


async def run_in_daemon_thread(fn: Callable[[], Any], *, name: str) -> Any:
    """Run ``fn`` in a new daemon thread, its prints routed away from stdout; re-raise whatever it
    raised (BaseException included). Daemon, so an abandoned tool never holds up flowrun's exit."""

    def as_tool() -> Any:
        stdout_guard.in_tool.set(True)
        return fn()

    return await in_daemon_thread(as_tool, thread_name=f"flowrun-tool {name}")
