"""The Python modules a workflow's ``python:`` tools run, and their SHA-256.

A paused run records them beside the workflow file's hash, so ``flowrun resume`` can refuse to run
an approved call with code that changed since the person saw the pause. The files are found the
way ``flowrun validate`` finds them (``entrypoint_file``), without importing anything.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from runner.workflow.entrypoints import EntrypointError, entrypoint_file
from runner.workflow.model import PythonResolver, Workflow


def tool_module_files(workflow: Workflow) -> dict[str, list[str]]:
    """Each python tool's module file (absolute path) and the tools that run it; a module that
    cannot be found, or has no source file, is left out (the run itself reports it)."""
    files: dict[str, list[str]] = {}
    for tool in workflow.tools:
        if not isinstance(tool.resolver, PythonResolver):
            continue
        try:
            file = entrypoint_file(tool.resolver.entrypoint, workflow.folder)
        except EntrypointError:
            continue
        if file is not None:
            files.setdefault(str(Path(file).resolve()), []).append(tool.name)
    return files


def tool_module_hashes(workflow: Workflow) -> dict[str, str]:
    """``{module file: SHA-256 of its bytes}`` for the workflow's python tools."""
    hashes: dict[str, str] = {}
    for path in tool_module_files(workflow):
        digest = file_sha256(Path(path))
        if digest is not None:
            hashes[path] = digest
    return hashes


def changed_tool_modules(saved: dict[str, str], workflow: Workflow) -> list[str]:
    """One line for each module that differs from ``saved`` (changed, gone, or new), naming its
    tools; empty when every module is as it was."""
    files = tool_module_files(workflow)
    now = {path: file_sha256(Path(path)) for path in {*saved, *files}}
    lines = []
    for path in sorted(now):
        if saved.get(path) == now[path]:
            continue
        tools = ", ".join(repr(t) for t in files.get(path, ())) or "no tool now"
        what = ("is not there any more" if now[path] is None and path in saved
                else "is new" if path not in saved else "changed")
        lines.append(f"{path} ({tools}) {what}")
    return lines


def file_sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None
