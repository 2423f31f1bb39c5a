"""Which workflow files a list of command-line paths names: ``flowrun validate DIR`` and
``flowrun test DIR`` read a folder the same way."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from runner.errors import UsageError
from runner.workflow.validate import is_test_file, workflow_for


def discover(paths: Sequence[str]) -> list[Path]:
    """Workflow files under the given files or folders (``*.yaml`` / ``*.yml``, sorted, each
    once). A test file (NAME.test.yaml) stands for its workflow, whose cases include it; hidden
    folders (.git, .venv) are skipped. A path that does not exist is a UsageError."""
    found: list[Path] = []
    for raw in paths or ["workflows"]:
        p = Path(raw)
        if p.is_dir():
            found += sorted(
                q for q in p.rglob("*")
                if q.suffix in (".yaml", ".yml") and q.is_file() and not is_test_file(q)
                and not any(part.startswith(".") for part in q.relative_to(p).parts[:-1])
            )
        elif p.is_file():
            found.append(workflow_for(p) or p if is_test_file(p) else p)
        elif p.exists():  # a FIFO or a device: the loader refuses it, saying what it is, without opening it
            found.append(p)
        else:
            raise UsageError(f"{raw}: no such file or folder", hint="give workflow files or folders that hold them")
    unique: dict[Path, None] = {}
    for q in found:
        unique.setdefault(q, None)
    return list(unique)
