"""Turn a workflow's model section plus command-line overrides into ``ModelSettings``.

Precedence, as documented in the README: ``--api`` over the file's ``model.api``; ``--base-url``
over the file's ``base_url`` over ``OPENAI_BASE_URL`` over OpenAI itself. The key is read from the
variable the file names (``model.api_key_env``, default ``OPENAI_API_KEY``) and never from the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping

from runner.errors import ProviderError, UsageError
from runner.suggest import suggest
from runner.providers.base import ModelSettings
from runner.templating import TemplateError, render_string
from runner.workflow.model import APIS, Workflow

OFFLINE_KEY = "offline-no-key-needed"
LOCAL_KEY = "not-needed"  # local servers (Ollama, vLLM, llama.cpp) ignore the key but the SDK wants one


@dataclass(frozen=True)
class Overrides:
    api: str | None = None
    base_url: str | None = None
    model: str | None = None


def tool_definitions(workflow: Workflow) -> tuple[dict, ...]:
    return tuple(
        {
            "name": t.name,
            "description": t.description,
            "parameters": t.model_parameters,  # bound arguments are not the model's
            "strict": t.strict,
        }
        for t in workflow.tools
    )


def output_format(workflow: Workflow) -> dict | None:
    """The structured-output request for the providers, or None when the file asks for none."""
    o = workflow.output
    return None if o is None else {"name": o.name, "schema": o.schema, "strict": o.strict}


def resolve_inputs(workflow: Workflow, given: Mapping[str, str]) -> dict[str, Any]:
    """The ``inputs`` context: declared defaults overlaid with ``--var`` values."""
    declared = {i.name: i for i in workflow.inputs}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        names = ", ".join(declared) or "(none declared)"
        close = suggest(unknown[0], declared)
        guess = f"did you mean {close!r}? " if close else ""
        raise UsageError(
            f"--var {unknown[0]}=... names an input the workflow does not declare",
            hint=f"{guess}declared inputs: {names}; add it under `inputs:` in {workflow.path}",
        )
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        if name in given:
            values[name] = given[name]
        elif spec.default is not None:
            values[name] = spec.default
        elif spec.required:
            raise UsageError(
                f"input {name!r} is required", hint=f"pass it with --var {name}=VALUE"
            )
    return values


def render_text(text: str | None, inputs: Mapping[str, Any], what: str) -> str | None:
    """Fill ``${{ inputs.x }}`` in the instructions and the user message."""
    if text is None:
        return None
    try:
        return render_string(text, {"inputs": inputs})
    except TemplateError as exc:
        raise UsageError(f"cannot fill the {what}: {exc}") from None


def model_settings(
    workflow: Workflow,
    overrides: Overrides,
    inputs: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
) -> ModelSettings:
    env = os.environ if env is None else env
    m = workflow.model
    api = overrides.api or m.api
    if api not in APIS:
        raise UsageError(f"unknown API {api!r}", hint=f"use one of: {', '.join(APIS)}")
    base_url = overrides.base_url or m.base_url or env.get("OPENAI_BASE_URL") or None
    key = env.get(m.api_key_env) or ""
    if not key:
        if base_url is None:
            raise ProviderError(
                f"no API key: {m.api_key_env} is not set and no server is named",
                hint=(
                    f"set {m.api_key_env} to your OpenAI key (export {m.api_key_env}=sk-...), "
                    "or point at a local server with --base-url http://localhost:11434/v1 "
                    "--api chat (Ollama; vLLM, llama.cpp and LM Studio work the same), "
                    f"or try the workflow with no key at all: flowrun {workflow.path} --offline"
                ),
            )
        key = LOCAL_KEY
    return ModelSettings(
        api=api,
        model=overrides.model or m.name,
        base_url=base_url,
        api_key=key,
        api_key_env=m.api_key_env,
        instructions=render_text(workflow.instructions, inputs, "instructions"),
        temperature=m.temperature,
        top_p=m.top_p,
        max_output_tokens=m.max_output_tokens,
        parallel_tool_calls=m.parallel_tool_calls,
        tool_choice=m.tool_choice,
        keep_tool_choice=m.keep_tool_choice,
        assistant_id=m.assistant_id,
        store=m.store,
        background=api == "responses" and m.background,
        seed=m.seed,
        tools=tool_definitions(workflow),
        output=output_format(workflow),
        timeout=m.timeout,
    )
