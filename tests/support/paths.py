"""Where the repository, its workflows and its recorded streams are, for every test module."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"
RECORDED = TESTS / "fixtures" / "recorded"
WORKFLOWS = REPO / "workflows"
