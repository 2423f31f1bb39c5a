"""docs/reliability-coverage.md maps every reliability case to the tests that cover it; these keep
that page honest, so renaming or deleting a covering test fails until the page is updated."""

from __future__ import annotations

import re

from support.paths import REPO, TESTS

COVERAGE = REPO / "docs" / "reliability-coverage.md"
REFERENCE = re.compile(r"\b(test_\w+\.py)::(test_\w+)")
FILE = re.compile(r"\b((?:runner|bench|tests|docs|schemas|workflows)/[\w./-]+\.(?:py|md|json|yaml))\b")


def test_every_test_the_coverage_page_names_exists():
    text = COVERAGE.read_text(encoding="utf-8")
    refs = REFERENCE.findall(text)
    assert len(refs) > 150
    missing = []
    for file, name in refs:
        path = TESTS / file
        if not path.exists() or not re.search(rf"^def {name}\(", path.read_text(encoding="utf-8"), re.M):
            missing.append(f"{file}::{name}")
    assert missing == []


def test_every_file_the_coverage_page_names_exists():
    files = FILE.findall(COVERAGE.read_text(encoding="utf-8"))
    assert "runner/scripted/faults.py" in files and "bench/soak.py" in files
    assert [f for f in files if not (REPO / f).exists()] == []


def test_every_numbered_case_of_reliability_section_7_is_on_the_page():
    section = COVERAGE.read_text(encoding="utf-8").split("\n## docs/reliability.md §7\n", 1)[1]
    numbers = [int(n) for n in re.findall(r"^\s{1,3}(\d{1,2}) \S", section, re.M)]
    assert numbers == list(range(1, 79))


def test_the_page_numbers_the_cases_as_docs_reliability_does():
    plan = (REPO / "docs" / "reliability.md").read_text(encoding="utf-8").split("\n## 7.", 1)[1].split("\n## 8.", 1)[0]
    assert [int(n) for n in re.findall(r"^(\d{1,2})\. \*\*", plan, re.M)] == list(range(1, 79))
