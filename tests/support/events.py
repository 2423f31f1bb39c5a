"""The JSONL event schema (schemas/events.schema.json) and one validator built from it.

``jsonschema.validate`` checks the schema itself on every call; a run prints dozens of events, so
the tests build the validator once (its schema checked once, here) and validate each event with it.
"""

from __future__ import annotations

import json

from jsonschema.validators import validator_for

from support.paths import REPO

EVENTS_SCHEMA = json.loads((REPO / "schemas" / "events.schema.json").read_text())
_VALIDATOR_CLASS = validator_for(EVENTS_SCHEMA)
_VALIDATOR_CLASS.check_schema(EVENTS_SCHEMA)
_VALIDATOR = _VALIDATOR_CLASS(EVENTS_SCHEMA)


def check_event(event: dict) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``event`` is a valid event."""
    _VALIDATOR.validate(event)
