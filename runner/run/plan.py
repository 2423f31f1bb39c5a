"""Prepare one run: everything it needs, built once, from a workflow and what the user gave.

``flowrun run``, ``flowrun test`` and ``flowrun batch`` (one plan per input) all start here, so
vars, inputs, model settings, the masker and the user message are worked out one way. A new
per-run option (approvals, structured output, resuming a run) belongs in ``RunOptions``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from runner.errors import UsageError
from runner.providers.base import ModelSettings
from runner.run.loop import new_run_id
from runner.run.defaults import Defaults, resolve as resolve_defaults
from runner.run.offline import Offline
from runner.run.settings import Overrides, model_settings, render_text, resolve_inputs
from runner.secrets.masker import Masker
from runner.secrets.sources import build_masker
from runner.calls import Approvals
from runner.workflow.model import RunPolicies, Workflow


@dataclass(frozen=True)
class RunOptions:
    """What the user chose for a run, beyond its message and vars."""

    api: str | None = None
    base_url: str | None = None
    model: str | None = None
    profile: str | None = None  # --profile: a named set of api/base_url/model (runner/run/defaults.py)
    # Resolved already (a batch resolves once for all its inputs, not once per input line):
    # then api/base_url/model/profile above are not looked at again.
    defaults: Defaults | None = None
    max_turns: int = 10
    allow_python: bool = True
    show_requests: bool = False  # -v: every HTTP request to the model API, as notices
    min_retries: int = 0  # a batch waits out rate limits longer than a single run
    # A single run refuses to start without every env value its tools read; a test case
    # (its HTTP tools mocked) and a batch input (a missing value is the tool's error) do not.
    require_env: bool = True
    approvals: Approvals = field(default_factory=Approvals)  # --approve/--deny/--yes
    policies: Mapping[str, str] = field(default_factory=dict)  # --policy NAME=VALUE, checked: over the file's


class NoMessage(UsageError):
    """Neither the user, nor the case, nor the workflow's ``input`` gave a user message. Each
    command says where it could come from."""


@dataclass(frozen=True)
class RunPlan:
    workflow: Workflow
    options: RunOptions
    run_id: str
    settings: ModelSettings
    inputs: dict[str, Any]
    message: str
    env: Mapping[str, str]
    masker: Masker
    vars: dict[str, Any] = field(default_factory=dict)  # as given (with an offline case's vars)
    offline: Offline | None = None
    defaults: Defaults = field(default_factory=Defaults)  # where api/base_url/model came from

    @property
    def policies(self) -> RunPolicies:
        """The file's run policies with the command line's ``--policy`` on top."""
        return self.workflow.policies.changed(dict(self.options.policies))

    @property
    def mocks(self) -> dict | None:
        return self.offline.mocks if self.offline is not None else None


def require_env(workflow: Workflow, env: Mapping[str, str]) -> None:
    """Every ``${{ env.NAME }}`` a tool reads must be set before anything is sent: a missing token
    found halfway through a run would cost model calls and leave a half-done conversation."""
    missing = sorted(name for name in workflow.env_names() if not env.get(name))
    if missing:
        names = ", ".join(missing)
        raise UsageError(
            f"{workflow.path} reads {names} from the environment, and {'it is' if len(missing) == 1 else 'they are'} not set",
            hint=f"export {missing[0]}=... before running (the value is never written to logs or output)",
        )


def prepare(
    workflow: Workflow,
    options: RunOptions,
    *,
    env: Mapping[str, str],
    vars: Mapping[str, Any] | None = None,
    message: str | None = None,
    offline: Offline | None = None,
) -> RunPlan:
    """The plan for one run. ``vars`` are ``--var`` values (text); offline, the case's vars fill
    in what they do not set, and its ``input`` is the message when none is given. Raises
    UsageError (bad vars, no message: ``NoMessage``) and ProviderError (no key) before anything
    is sent."""
    given: dict[str, Any] = dict(vars or {})
    as_given = given  # what --record writes back: the case's own values keep their YAML types
    base_url = options.base_url
    if offline is not None:
        as_given = {**offline.case.vars, **given}
        given = {**offline.vars, **given}
        if message is None:
            message = offline.case.input
        base_url = offline.base_url
        env = offline.env(env)
    inputs = resolve_inputs(workflow, given)
    if options.require_env:
        require_env(workflow, env)
    defaults = Defaults()
    if offline is None:  # a scripted run never takes a person's defaults (the same case, everywhere)
        defaults = options.defaults if options.defaults is not None else resolve_defaults(
            {"api": options.api, "base_url": base_url, "model": options.model}, profile=options.profile, env=env)
        base_url = defaults.values.get("base_url")
    api = defaults.values.get("api", options.api)
    overrides = Overrides(api=api, base_url=base_url, model=defaults.values.get("model", options.model))
    settings = model_settings(workflow, overrides, inputs, env)
    if options.min_retries > settings.max_retries:
        settings = replace(settings, max_retries=options.min_retries)
    masker = build_masker(workflow, env, None if offline is not None else settings.api_key)
    text = render_text(message if message is not None else workflow.input, inputs, "input")
    if not text:
        raise NoMessage("there is no user message", hint=f"give one with -M \"...\" or set `input:` in {workflow.path}")
    return RunPlan(
        workflow=workflow,
        options=options,
        run_id=new_run_id(),
        settings=settings,
        inputs=inputs,
        message=text,
        env=env,
        masker=masker,
        vars=as_given,
        offline=offline,
        defaults=defaults,
    )
