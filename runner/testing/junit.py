"""JUnit XML for CI systems that show test results (GitLab, Jenkins, GitHub annotations)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Sequence

from runner.testing.runner import CaseResult


def write_junit(results: Sequence[CaseResult], path: str | Path) -> None:
    failures = sum(1 for r in results if not r.passed)
    suite = ET.Element(
        "testsuite",
        name="flowrun",
        tests=str(len(results)),
        failures=str(failures),
        errors="0",
        time=f"{sum(r.duration_ms for r in results) / 1000:.3f}",
    )
    for r in results:
        case = ET.SubElement(
            suite, "testcase", classname=r.file, name=r.title, time=f"{r.duration_ms / 1000:.3f}"
        )
        if not r.passed:
            text = r.error or "\n".join(m.format() for m in r.mismatches)
            first = text.splitlines()[0] if text else "failed"
            ET.SubElement(case, "failure", message=first).text = text
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)
