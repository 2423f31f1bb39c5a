"""The ``static`` resolver: a fixed value, with ``${{ args.* }}``, ``${{ env.* }}`` and
``${{ inputs.* }}`` filled in the strings inside it.

Strings stay strings; a mapping or list is sent to the model as JSON (the dispatcher serializes
it). A string that is one expression alone keeps the value's type (``"${{ args.n }}"`` gives the
number). Substituted values are never scanned again, so an argument holding
``${{ env.SECRET }}`` comes back as that literal text.
"""

from __future__ import annotations

from typing import Any, Mapping

from runner.templating import MISSING, render_value
from runner.workflow.model import StaticResolver


def resolve_static(spec: StaticResolver, context: Mapping[str, Mapping[str, Any]]) -> Any:
    """The tool's output value. Raises TemplateError for an env or inputs name with no value."""
    value = render_value(spec.value, context)
    return "" if value is MISSING else value
