"""Which values of a run are secret: the API key and every environment value a workflow reads."""

from __future__ import annotations

from typing import Mapping

from runner.secrets.masker import Masker
from runner.workflow.model import Workflow


def build_masker(workflow: Workflow, env: Mapping[str, str], api_key: str | None) -> Masker:
    masker = Masker()
    masker.add(api_key)
    masker.add(env.get(workflow.model.api_key_env))
    for name in workflow.env_names():
        masker.add(env.get(name))
    return masker
