"""``flowrun FILE --record CASE.yaml``: keep a real run's model side as a replayable test case.

The model's turns become scripted ``turns`` and what the tools returned becomes ``expect``, so
"record once with a real model, check in CI forever" is one flag. Events arrive here already
masked, so a recorded case never holds a secret.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import yaml

from runner.events import (
    Event,
    RunCompleted,
    RunFailed,
    RunStarted,
    TextDelta,
    ToolCallCompleted,
    ToolCallRequested,
    TurnStarted,
)


def _arguments(raw: str) -> Any:
    try:
        value = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return raw  # replayed as the same invalid text
    return value


class Recorder:
    """A sink that builds a test case from the events of one run."""

    def __init__(self) -> None:
        self.turns: list[dict[str, Any]] = []
        self.outputs: dict[str, str] = {}
        self.calls: list[dict[str, Any]] = []
        self.error_outputs = False
        self.input = ""
        self.meta = ""
        self.status: str | None = None
        self._text: list[str] = []
        self._calls: list[dict[str, Any]] = []

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.input = event.input
            self.meta = f"{event.api}, model {event.model}"
        elif isinstance(event, TurnStarted):
            self._close_turn()
        elif isinstance(event, TextDelta):
            self._text.append(event.text)
        elif isinstance(event, ToolCallRequested):
            call = {"name": event.name, "arguments": _arguments(event.arguments)}
            self._calls.append(call)
            self.calls.append(call)
        elif isinstance(event, ToolCallCompleted):
            self.outputs[event.name] = event.output
            self.error_outputs = self.error_outputs or event.is_error
        elif isinstance(event, (RunCompleted, RunFailed)):
            self._close_turn()
            self.status = event.status

    def _close_turn(self) -> None:
        if self._calls:
            self.turns.append({"tool_calls": self._calls})
        elif self._text:
            self.turns.append({"text": "".join(self._text)})
        self._calls, self._text = [], []

    def case(self, name: str | None = None) -> dict[str, Any]:
        final = next((t["text"] for t in reversed(self.turns) if "text" in t), "")
        expect: dict[str, Any] = {}
        if self.calls:
            expect["tool_calls"] = self.calls
        if self.outputs:
            expect["outputs"] = {k: {"equals": v} for k, v in self.outputs.items()}
        if final:
            expect["final_text"] = {"equals": final}
        expect["status"] = self.status or "completed"
        if not self.error_outputs:
            expect["no_error_outputs"] = True
        return {
            "name": name or f"recorded {time.strftime('%Y-%m-%d %H:%M')} ({self.meta})",
            "input": self.input,
            "turns": self.turns,
            "expect": expect,
        }


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def save_case(case: dict[str, Any], path: Path) -> None:
    """Write (or append to) a test file: ``tests:`` list, readable YAML, keys in a stable order."""
    existing: dict[str, Any] = {}
    if path.exists():
        existing = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    tests = list(existing.get("tests") or [])
    tests.append(case)
    header = "# Test cases recorded by `flowrun --record`. Replay them with `flowrun test`.\n"
    body = yaml.dump({"tests": tests}, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    path.write_text(header + body, encoding="utf-8")
