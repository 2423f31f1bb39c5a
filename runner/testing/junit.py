"""JUnit XML for CI systems that show test results (GitLab, Jenkins, GitHub annotations)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Sequence

from runner.testing.runner import CaseResult

# Characters XML 1.0 cannot hold even escaped (a tool's output may contain them).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(text: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def write_junit(results: Sequence[CaseResult], path: str | Path) -> None:
    """One <testsuite> with a <testcase> per case and API; a failure holds the same report as
    the terminal (a file that did not load is an <error>)."""
    failures = sum(1 for r in results if not r.passed and r.api)
    errors = sum(1 for r in results if not r.passed and not r.api)
    suite = ET.Element(
        "testsuite",
        name="flowrun",
        tests=str(len(results)),
        failures=str(failures),
        errors=str(errors),
        skipped="0",
        time=f"{sum(r.duration_ms for r in results) / 1000:.3f}",
    )
    for r in results:
        case = ET.SubElement(
            suite, "testcase", classname=_xml_text(r.file), name=_xml_text(r.title), time=f"{r.duration_ms / 1000:.3f}"
        )
        if not r.passed:
            text = _xml_text(r.report() or "failed")
            first = text.splitlines()[0] if text.strip() else "failed"
            ET.SubElement(case, "failure" if r.api else "error", message=first).text = text
    root = ET.Element("testsuites", tests=suite.get("tests"), failures=suite.get("failures"),
                      errors=suite.get("errors"), time=suite.get("time"))
    root.append(suite)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
