"""The lifecycle both loopback test servers share: serve on 127.0.0.1 with a free port in a daemon
thread, stop (idempotently) from a ``with`` block."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer
from typing import Any


class LoopbackServer:
    """Subclasses build their ``ThreadingHTTPServer`` in ``_make_httpd`` (on ``_next_port``) and may
    release held connections in ``_after_shutdown``. ``stop()`` then ``start()`` serves again on
    the same port: a server that was down for a while, its state kept."""

    thread_name = "loopback-server"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._next_port = 0  # 0: any free port; after a stop, the port it served on

    def _make_httpd(self) -> ThreadingHTTPServer:
        raise NotImplementedError

    def _after_shutdown(self) -> None:
        pass

    def start(self) -> Any:
        if self._httpd is None:
            self._stopping.clear()
            self._httpd = httpd = self._make_httpd()
            self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                            name=self.thread_name, daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._next_port = httpd.server_address[1]
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        self._after_shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError(f"{type(self).__name__} is not running: use start() or a with block")
        return self._httpd.server_address[1]
