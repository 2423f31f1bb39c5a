"""Run blocking work off the event loop in daemon threads.

``asyncio.to_thread`` uses the loop's default executor, and ``asyncio.run`` waits for that
executor's threads on exit: one hung Python tool or a blocked ``stdin.readline`` would keep
flowrun from exiting after a timeout or Ctrl-C. A daemon thread per call is abandoned instead.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from typing import Any, Callable, TypeVar

T = TypeVar("T")


async def in_daemon_thread(fn: Callable[..., T], *args: Any, thread_name: str | None = None, **kwargs: Any) -> T:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    ctx = contextvars.copy_context()

    def settle(setter: Callable[[Any], None], value: Any) -> None:
        if not future.done():
            setter(value)

    def work() -> None:
        try:
            result = ctx.run(fn, *args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
            try:
                loop.call_soon_threadsafe(settle, future.set_exception, exc)
            except RuntimeError:  # the loop is gone: nobody is waiting any more
                pass
        else:
            try:
                loop.call_soon_threadsafe(settle, future.set_result, result)
            except RuntimeError:
                pass

    name = thread_name or f"flowrun-{getattr(fn, '__name__', 'work')}"
    threading.Thread(target=work, name=name, daemon=True).start()
    return await future
