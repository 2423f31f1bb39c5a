"""Run ``flowrun ARGS`` as a user would and get one ``Result`` back.

``flowrun()`` calls the real entry point, ``runner.cli.main`` (click parsing, the one place errors
are printed, exit codes), inside the test process: a subprocess per call costs an interpreter
start and the ``openai`` import every time, which made the CLI tests most of the suite's time.
It sets what a process would have (argv, environment, working directory, stdin, stdout and
stderr that are pipes, not terminals) and puts everything back afterwards, including what the
code under test may change for its own process (``sys.stdout`` proxies, signal handlers, logging
handlers, modules loaded from workflow folders).

``flowrun_process()`` starts ``python -m runner``. Use it only where the test is about the
process itself: signals, a terminal, what gets imported, or an exit that must not wait for a
thread still running.
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from support.paths import REPO

# The signals flowrun may handle for itself; their handlers are put back after each run.
_SIGNALS = [s for s in (getattr(signal, n, None) for n in ("SIGINT", "SIGTERM", "SIGPIPE", "SIGHUP")) if s]
# A non-daemon thread left behind would keep a real process alive; give it this long to end.
_THREAD_GRACE = 30.0


@dataclass
class Result:
    """What a run of ``flowrun`` left: its exit code, stdout and stderr."""

    code: int
    out: str
    err: str

    def jsonl(self) -> list[dict]:
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


def _child_env(env: dict | None) -> dict[str, str]:
    """The environment a run sees: ours without any OPENAI_* variable, plus ``env``."""
    full = {k: v for k, v in os.environ.items()
            if not k.startswith("OPENAI_") and k not in ("FLOWRUN_API", "FLOWRUN_BASE_URL", "FLOWRUN_MODEL", "FLOWRUN_PROFILE")}
    full["XDG_CONFIG_HOME"] = str(REPO / "tests" / "fixtures" / "no-user-config")  # never the developer's own
    full.update(env or {})
    return full


def flowrun(*args: str, env: dict | None = None, cwd: Path | str | None = None, input: str | None = None) -> Result:
    """``flowrun ARGS`` in this process, through ``runner.cli.main``.

    An exception that escapes ``main`` (a traceback a user would see) fails the test."""
    from runner.cli import main

    with _as_a_process(list(args), _child_env(env), Path(cwd or REPO), input) as (out, err):
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = _exit_code(exc)
    return Result(code, out.text(), err.text())


def flowrun_process(*args: str, env: dict | None = None, cwd: Path | str | None = None, input: str | None = None,
                    timeout: float = 60) -> Result:
    """``python -m runner ARGS`` in a new process (see the module docstring for when)."""
    proc = subprocess.run(
        [sys.executable, "-m", "runner", *args],
        capture_output=True,
        text=True,
        env=_child_env(env),
        cwd=cwd or REPO,
        input=input,
        timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def _exit_code(exc: SystemExit) -> int:
    """The status a process would end with for ``sys.exit(exc.code)``."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    sys.stderr.write(f"{exc.code}\n")  # what the interpreter does with sys.exit("message")
    return 1


class _Pipe(io.BytesIO):
    """The bytes a stream received; stays readable if the code under test closes it."""

    def close(self) -> None:
        pass

    def text(self) -> str:
        return self.getvalue().decode("utf-8", errors="replace")


@contextlib.contextmanager
def _as_a_process(argv: list[str], env: dict[str, str], cwd: Path, input: str | None) -> Iterator[tuple[_Pipe, _Pipe]]:
    out, err = _Pipe(), _Pipe()
    saved_streams = sys.stdin, sys.stdout, sys.stderr
    saved_argv, saved_path, saved_env, saved_cwd = sys.argv, list(sys.path), dict(os.environ), os.getcwd()
    saved_modules = set(sys.modules)
    saved_signals = {s: signal.getsignal(s) for s in _SIGNALS}
    saved_logging = _logging_state()
    threads_before = set(threading.enumerate())
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    sys.argv = ["flowrun", *argv]
    sys.path.insert(0, str(cwd))  # as `python -m runner` does
    sys.stdin = io.TextIOWrapper(io.BytesIO((input or "").encode()), encoding="utf-8")
    sys.stdout = io.TextIOWrapper(out, encoding="utf-8")
    sys.stderr = io.TextIOWrapper(err, encoding="utf-8", errors="backslashreplace")
    try:
        yield out, err
        _wait_for_threads(threads_before)
        assert gc.isenabled(), "the run left the garbage collector off"
    finally:
        gc.enable()
        gc.unfreeze()  # what a run froze at start-up (runner/run/startup_gc.py) is collected again
        for stream in (sys.stdout, sys.stderr, *saved_streams[1:]):
            with contextlib.suppress(Exception):
                stream.flush()
        sys.stdin, sys.stdout, sys.stderr = saved_streams
        sys.argv = saved_argv
        sys.path[:] = saved_path
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        for sig, handler in saved_signals.items():
            if handler is not None:
                signal.signal(sig, handler)
        _restore_logging(saved_logging)
        _forget_workflow_modules(saved_modules)


def _wait_for_threads(before: set[threading.Thread]) -> None:
    """A process does not exit while a non-daemon thread runs: wait for those the run left."""
    for thread in set(threading.enumerate()) - before:
        if not thread.daemon:
            thread.join(_THREAD_GRACE)
            assert not thread.is_alive(), f"the run left a non-daemon thread running: {thread!r}"


def _logging_state() -> dict[str, tuple]:
    loggers = {"": logging.getLogger()}
    loggers.update((n, lg) for n, lg in logging.root.manager.loggerDict.items() if isinstance(lg, logging.Logger))
    return {n: (lg.handlers[:], lg.level, lg.propagate, lg.disabled) for n, lg in loggers.items()}


def _restore_logging(saved: dict[str, tuple]) -> None:
    now = _logging_state()
    for name in now:
        logger = logging.getLogger(name) if name else logging.getLogger()
        handlers, level, propagate, disabled = saved.get(name, ([], logging.NOTSET, True, False))
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate, logger.disabled = propagate, disabled


_KEPT_ROOTS = tuple(str(Path(p).resolve()) for p in {sys.prefix, sys.base_prefix, sys.exec_prefix}) + (
    str(REPO / "runner"),
)


def _forget_workflow_modules(before: set[str]) -> None:
    """Drop the modules the run imported from workflow folders (tool code), so the next run loads
    its own files as a new process would; library and ``runner`` modules stay loaded."""
    for name in set(sys.modules) - before:
        module = sys.modules.get(name)
        file = getattr(module, "__file__", None)
        if name.startswith("_flowrun_wf_") or (file and not str(Path(file).resolve()).startswith(_KEPT_ROOTS)):
            sys.modules.pop(name, None)


def execute(request, *, out, err) -> int:
    """A ``RunRequest`` run in this process, its errors reported by the CLI's one reporter;
    returns the exit code ``flowrun`` would exit with."""
    from runner.cli import report
    from runner.run.session import run

    try:
        run(request, out=out, err=err)
    except BaseException as exc:  # noqa: BLE001 - report() re-raises what the CLI would not catch
        return report(exc, err)
    return 0
