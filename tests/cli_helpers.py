"""Run the real ``flowrun`` command in a subprocess, as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Result:
    code: int
    out: str
    err: str

    def jsonl(self) -> list[dict]:
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


def flowrun(*args: str, env: dict | None = None, cwd: Path | str | None = None, input: str | None = None, timeout: float = 60) -> Result:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "runner", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd or REPO,
        input=input,
        timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


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
