"""Offline mode: the model's side scripted from a test case, the tools real.

One owner for what ``flowrun run --offline``, ``flowrun batch --offline`` and ``flowrun test``
share: which case plays the model, the embedded server that plays it, the case's canned HTTP
answers, the key-free environment, how the case's ``vars`` become text, and the banner that
says so. Kept in one place so the three cannot drift apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Mapping

from runner.errors import UsageError
from runner.run.settings import OFFLINE_KEY
from runner.templating import to_text
from runner.workflow.model import TestCase, Workflow

MOCK_MODES = ("declared", "all", "none")  # the case's mock_http / every HTTP tool mocked / live HTTP

BANNER = (
    "OFFLINE: the model's side{scope} is scripted from test case {case!r} of {file}; "
    "no model is called. The tools are real{mocked}."
)


def pick_case(workflow: Workflow, name: str | None) -> TestCase:
    """``--case NAME``, or the file's first case."""
    if not workflow.tests:
        raise UsageError(
            f"{workflow.path} has no test case to script the model from",
            hint="add a `tests:` entry with `turns:` (see workflows/weather.yaml) or a sibling "
            f"{workflow.path.with_suffix('.test.yaml').name}, or run without --offline",
        )
    if name is None:
        return workflow.tests[0]
    for case in workflow.tests:
        if case.name == name:
            return case
    names = ", ".join(repr(c.name) for c in workflow.tests)
    raise UsageError(f"no test case named {name!r}", hint=f"the file has: {names}")


def var_text(value: Any) -> str:
    """A case's ``vars:`` value as ``--var`` would give it: YAML null is empty, booleans and
    numbers read as YAML writes them (``true``, ``3``, ``2.5``, ``.inf``), lists and mappings as
    JSON. One rule, so a case fills its inputs the same in run, batch and test."""
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else ".inf" if value > 0 else "-.inf"
    return to_text(value)


def case_vars(case: TestCase) -> dict[str, str]:
    return {name: var_text(value) for name, value in case.vars.items()}


def case_mocks(workflow: Workflow, case: TestCase, mode: str = "declared") -> dict | None:
    """Canned HTTP answers: the case's ``mock_http`` (declared), those plus "no answer" for every
    other HTTP tool (all: no network at all), or none (live)."""
    if mode not in MOCK_MODES:
        raise ValueError(f"mock_http must be one of {MOCK_MODES}")
    if mode == "none":
        return None
    mocks: dict[str, Any] = dict(case.mock_http)
    if mode == "all":
        from runner.workflow.model import HttpResolver

        for tool in workflow.tools:
            if isinstance(tool.resolver, HttpResolver):
                mocks.setdefault(tool.name, None)
    return mocks


def start_scripted_server(workflow: Workflow, case: TestCase):
    """The embedded model server playing ``case``'s turns (started; the caller stops it)."""
    from runner.scripted import ScriptedServer

    server = ScriptedServer(list(case.turns))
    if workflow.model.assistant_id:
        server.add_assistant(workflow.model.assistant_id, name=workflow.name, model=workflow.model.name)
    server.start()
    return server


@dataclass
class Offline:
    """One offline set-up, running: the case, its server, its mocks. A context manager that
    stops the server; any number of runs may share it (a batch does)."""

    workflow: Workflow
    case: TestCase
    server: Any
    mocks: dict | None

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def env(self, env: Mapping[str, str]) -> Mapping[str, str]:
        """``env`` with a placeholder key: nothing real is sent, and no key is needed. (Given
        such an env already, as a batch does once for all its runs, it is returned as is.)"""
        key = self.workflow.model.api_key_env
        return env if env.get(key) == OFFLINE_KEY else {**env, key: OFFLINE_KEY}

    @cached_property
    def vars(self) -> dict[str, str]:
        """The case's vars as text (worked out once; a batch reads them for every input)."""
        return case_vars(self.case)

    def banner(self, file: str, *, every_run: bool = False) -> str:
        """What a person must know first: nothing they see came from a model."""
        mocked = (
            f" (HTTP tools {', '.join(sorted(self.mocks))} answer from the case's mock_http)" if self.mocks else ""
        )
        scope = " of every run" if every_run else ""
        return BANNER.format(scope=scope, case=self.case.name, file=file, mocked=mocked)

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> Offline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start(workflow: Workflow, case: TestCase, mock_http: str = "declared") -> Offline:
    mocks = case_mocks(workflow, case, mock_http)
    return Offline(workflow, case, start_scripted_server(workflow, case), mocks)
