"""Notice when a tool blocks flowrun's event loop, and say so.

A python tool in a thread, or an async tool, shares the flowrun process: an async function that
calls ``time.sleep`` instead of awaiting, or a C call that holds the interpreter lock, stops the
event loop, and with it every timeout, heartbeat and stream. Nothing on the loop can see that
while it happens, so a daemon thread watches a heartbeat the loop updates: when the loop has not
turned for ``STALL_SECONDS``, it writes one warning to stderr naming the tools in flight. The
dispatcher also checks each call's own duration against its timeout afterwards (``overran``).
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from typing import Callable

STALL_SECONDS = 2.0
BEAT = 0.2


class LoopWatchdog:
    def __init__(self, describe: Callable[[], str], *, write: Callable[[str], None] | None = None):
        self._describe = describe
        self._write = write or (lambda text: sys.stderr.write(text))
        self._last = time.monotonic()
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.stalls = 0

    def start(self) -> None:
        if self._thread is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._beat()
        self._thread = threading.Thread(target=self._watch, name="flowrun-loop-watchdog", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        self._last = time.monotonic()
        if not self._stop.is_set() and self._loop is not None:
            self._loop.call_later(BEAT, self._beat)

    def _watch(self) -> None:
        warned_for = None
        while not self._stop.wait(BEAT):
            stalled = time.monotonic() - self._last
            if stalled >= STALL_SECONDS and warned_for != self._last:
                warned_for = self._last
                self.stalls += 1
                try:
                    self._write(f"flowrun: warning: {self._describe()} has blocked flowrun for "
                                f"{stalled:.1f} s; timeouts cannot fire until it lets go (give a python tool "
                                "`isolation: process` for a timeout that holds)\n")
                except Exception:  # noqa: BLE001 - a warning must never break the run
                    pass

    def stop(self) -> None:
        self._stop.set()
