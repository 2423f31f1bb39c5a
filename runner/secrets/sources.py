"""Which values of a run are secret: the API key and every environment value a workflow reads."""

from __future__ import annotations

from typing import Mapping

from runner.secrets.masker import Masker
from runner.templating import TemplateError, references_in
from runner.workflow.model import HttpResolver, StaticResolver, Workflow


def env_names(workflow: Workflow) -> set[str]:
    names: set[str] = set()
    for tool in workflow.tools:
        r = tool.resolver
        values: list = []
        if isinstance(r, StaticResolver):
            values = [r.value]
        elif isinstance(r, HttpResolver):
            values = [r.url, r.query, r.headers, r.body]
        try:
            names |= {ref.name for ref in references_in(values) if ref.context == "env"}
        except TemplateError:
            continue
    for source in workflow.mcp:  # what an MCP server receives: its env names, its headers' values
        names |= set(source.server.env)
        try:
            names |= {ref.name for ref in references_in(source.server.headers) if ref.context == "env"}
        except TemplateError:
            continue
    return names


def build_masker(workflow: Workflow, env: Mapping[str, str], api_key: str | None) -> Masker:
    masker = Masker()
    masker.add(api_key)
    masker.add(env.get(workflow.model.api_key_env))
    for name in env_names(workflow):
        masker.add(env.get(name))
    return masker
