"""Every example in the docs is a tested file: YAML shown in the README is an excerpt of a file in
workflows/ (which `flowrun validate` and `flowrun test` check), and its commands name real files."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from support.paths import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")
WORKFLOW_TEXTS = {p.name: p.read_text(encoding="utf-8") for p in (REPO / "workflows").glob("*.yaml")}


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, re.DOTALL)


@pytest.mark.parametrize("block", blocks("yaml"), ids=lambda b: b.splitlines()[0][:40])
def test_every_yaml_block_is_an_excerpt_of_a_tested_workflow(block):
    assert any(block in text for text in WORKFLOW_TEXTS.values()), block


def test_the_first_two_commands_are_the_ci_commands():
    sh = blocks("sh")
    setup, tests = sh[0].strip(), sh[1].strip()
    assert "flowrun workflows/weather.yaml --offline" in setup
    ci = (REPO / ".ci" / "run").read_text()
    assert setup in ci and tests in ci


def test_files_named_in_the_readme_exist():
    for path in set(re.findall(r"\b((?:workflows|schemas|bench|runner|tests)/[\w./-]+\.(?:yaml|py|json))", README)):
        if path.endswith(".test.yaml"):
            continue  # made by the --record example
        assert (REPO / path).exists(), path


def test_nothing_refers_to_a_folder_beside_the_repository():
    """A user's clone has nothing beside it (.ci/run checks the same with git grep on a fresh clone)."""
    beside = re.compile(r"\.\./shared\b")
    skip = {".git", ".venv", "__pycache__", "node_modules", ".pytest_cache"}
    found = []
    for folder, dirs, files in os.walk(REPO):
        dirs[:] = [d for d in dirs if d not in skip and not d.endswith(".egg-info")]  # built, ignored by git
        for name in files:
            path = Path(folder) / name
            try:
                text = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            found += [f"{path.relative_to(REPO)}:{n}" for n, line in enumerate(text.splitlines(), 1) if beside.search(line)]
    assert found == []
