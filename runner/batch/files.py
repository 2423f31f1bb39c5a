"""The two files of ``flowrun batch``: the inputs it reads and the results it appends.

Inputs (JSON Lines, one input per non-blank line)::

    {"message": "Weather in Paris?", "vars": {"city": "Paris"}}   message and/or vars
    {"city": "Paris"}                                              a bare object: all vars
    "Weather in Paris?"                                            a bare string: the message

An object is read as ``{message, vars}`` when its keys are only ``message``, ``vars`` and ``id``
(``id`` is copied to the result untouched); any other object is a bare set of vars. Non-string
var values are passed as their JSON text (``3``, ``true``). A line that cannot be read becomes a
failed result naming its line number; it never stops the batch.

Results (JSON Lines, one line per input, in the order inputs *finish*; ``index`` is the input's
0-based position among the non-blank lines, ``line`` its 1-based line number)::

    {"index", "line", "status", "final_text", "tool_calls": [{name, arguments, output, is_error}],
     "usage", "error", "duration_ms"}

plus ``"output"`` (the parsed answer, or null when it never matched) when the workflow has an
``output:`` schema, and ``"run_id"`` when the run was recorded in the run log.

Durability policy: each line is written and flushed as soon as its input finishes, so a killed
or crashed process loses nothing it reported; ``fsync`` runs at most every ``FSYNC_INTERVAL``
seconds and at the end, so a power cut loses at most that window. Either way ``--resume`` runs
again exactly the inputs that have no complete line (a torn last line is cut off first).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

FSYNC_INTERVAL = 1.0  # seconds
STRUCTURED_KEYS = frozenset({"message", "vars", "id"})


@dataclass(frozen=True)
class BatchInput:
    index: int  # 0-based among non-blank lines
    line: int  # 1-based line number in the inputs file
    message: str | None = None
    vars: dict[str, str] = field(default_factory=dict)
    id: Any = None
    problem: str | None = None  # why the line could not be read; the input then fails


def _var_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def parse_input(text: str, index: int, line: int, source: str = "inputs") -> BatchInput:
    """One inputs line as a ``BatchInput``; problems are kept in ``problem``, never raised."""

    def bad(why: str) -> BatchInput:
        return BatchInput(index, line, problem=f"{source}:{line}: {why}")

    try:
        data = json.loads(text)
    except ValueError as exc:
        msg = getattr(exc, "msg", str(exc))
        col = getattr(exc, "colno", None)
        return bad(f"not valid JSON ({msg}{f' at column {col}' if col else ''})")
    if isinstance(data, str):
        return BatchInput(index, line, message=data)
    if not isinstance(data, dict):
        kind = {list: "an array", int: "a number", float: "a number", bool: "true/false"}.get(type(data), "null")
        return bad(f"expected an object like {{\"message\": \"...\", \"vars\": {{...}}}}, got {kind}")
    if data and set(data) <= STRUCTURED_KEYS and ("message" in data or "vars" in data):
        message, given = data.get("message"), data.get("vars", {})
        if message is not None and not isinstance(message, str):
            return bad('"message" must be a string')
        if not isinstance(given, dict):
            return bad('"vars" must be an object of NAME: VALUE')
        return BatchInput(index, line, message, {k: _var_text(v) for k, v in given.items()}, data.get("id"))
    return BatchInput(index, line, vars={k: _var_text(v) for k, v in data.items()})


def read_inputs(path: str | Path) -> list[BatchInput]:
    """Every input of the file, in order. Blank lines are skipped (they are not inputs)."""
    source = str(path)
    items: list[BatchInput] = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, text in enumerate(f, start=1):
            if text.strip():
                items.append(parse_input(text, len(items), number, source))
    return items


def repair_tail(path: str | Path) -> int:
    """Cut a torn last line (a crash mid-write) so appending starts on a fresh line. Returns
    how many bytes were cut."""
    try:
        with open(path, "rb+") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            if size == 0:
                return 0
            f.seek(size - 1)
            if f.read(1) == b"\n":
                return 0
            block = 65536
            pos = size
            while pos > 0:  # walk back to the last newline
                start = max(0, pos - block)
                f.seek(start)
                chunk = f.read(pos - start)
                nl = chunk.rfind(b"\n")
                if nl >= 0:
                    keep = start + nl + 1
                    break
                pos = start
            else:
                keep = 0
            f.truncate(keep)
            return size - keep
    except FileNotFoundError:
        return 0


def read_done(path: str | Path) -> dict[int, str]:
    """``index -> status`` of each result already in the file (a later line for the same index
    wins). Lines that are not results are ignored."""
    done: dict[int, str] = {}
    try:
        f = open(path, encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return done
    with f:
        for text in f:
            try:
                record = json.loads(text)
            except ValueError:
                continue
            if isinstance(record, dict) and isinstance(record.get("index"), int):
                done[record["index"]] = str(record.get("status"))
    return done


class ResultWriter:
    """Appends one JSON line per finished input; see the module docstring for the policy."""

    def __init__(self, path: str | Path, *, append: bool, clock: Callable[[], float] = time.monotonic):
        self.path = Path(path)
        self._file = open(self.path, "a" if append else "w", encoding="utf-8")
        self._clock = clock
        self._last_sync = clock()
        self._dirty = False

    def write(self, record: dict) -> None:
        self._file.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
        self._file.flush()
        self._dirty = True
        if self._clock() - self._last_sync >= FSYNC_INTERVAL:
            self.sync()

    def sync(self) -> None:
        if self._dirty and not self._file.closed:
            os.fsync(self._file.fileno())
            self._dirty = False
        self._last_sync = self._clock()

    def close(self) -> None:
        if self._file.closed:
            return
        try:
            self._file.flush()
            self.sync()
        finally:
            self._file.close()
