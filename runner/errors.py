"""One error hierarchy for flowrun; each class carries the exit code the CLI returns.

    FlowrunError                 exit 1 (base)
    ├── RunError                 exit 1 (or the run's code) the run ended in a state other than completed
    ├── UsageError               exit 2  bad command line
    ├── WorkflowError            exit 2  invalid workflow file (carries a list of Problems)
    ├── ProviderError            exit 3  API unreachable, auth, 404, unrecoverable stream
    └── Interrupted              exit 130 the user pressed Ctrl-C

Messages are written for people: what went wrong and what to do about it. They are turned into
text once, in the CLI (``runner.cli.report``); whoever raises one with text from a run masks
secrets first. ``shown``: the user has already seen why (the run's terminal event was rendered),
so the CLI only exits with the code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


class FlowrunError(Exception):
    exit_code = 1
    shown = False

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"

    def masked(self, mask: Callable[[str], str]) -> FlowrunError:
        """This error with ``mask`` (a run's secret masker) applied to its text, before it is
        raised on towards the CLI, which prints it."""
        self.message = mask(self.message)
        self.hint = mask(self.hint) if self.hint else self.hint
        self.args = (self.message,)
        return self


class RunError(FlowrunError):
    """A run ended other than completed (its ``run.failed`` event says how and was shown)."""

    def __init__(self, message: str, *, exit_code: int = 1, shown: bool = True):
        super().__init__(message)
        self.exit_code = exit_code
        self.shown = shown


class UsageError(FlowrunError):
    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a workflow file, located as precisely as we can."""

    file: str
    line: int  # 1-based; 0 when unknown
    column: int  # 1-based; 0 when unknown
    message: str
    path: str = "$"  # JSON path of the offending value, e.g. $.tools[1].resolve.http.url
    hint: str | None = None
    severity: str = "error"  # "error" | "warning"

    def format(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        text = f"{where}: {self.message} (where: {self.path})"
        if self.hint:
            text += f" -- {self.hint}"
        if self.severity == "warning":
            text = text.replace(": ", ": warning: ", 1)
        return text

    def to_dict(self) -> dict:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "message": self.message,
            "path": self.path,
            "hint": self.hint,
            "severity": self.severity,
        }


class WorkflowError(FlowrunError):
    exit_code = 2

    def __init__(self, problems: list[Problem]):
        self.problems = [p for p in problems if p.severity == "error"] or problems
        super().__init__("\n".join(p.format() for p in self.problems))


class ProviderError(FlowrunError):
    exit_code = 3


class Interrupted(FlowrunError):
    """Ctrl-C. ``shown``: the run's ``interrupted`` end was already rendered."""

    exit_code = 130

    def __init__(self, message: str = "interrupted", *, shown: bool = False):
        super().__init__(message)
        self.shown = shown
