"""The JSONL vocabulary and its schema must not drift apart."""

import dataclasses
import json

import jsonschema
import pytest

from runner import events
from support.paths import REPO

SCHEMA = json.loads((REPO / "schemas" / "events.schema.json").read_text())


def sample(cls):
    values = {}
    for f in dataclasses.fields(cls):
        if f.name == "ts":
            continue
        t = f.type
        if "Literal" in str(t):
            values[f.name] = "warning"
        elif str(t).startswith("list"):
            values[f.name] = []
        elif "dict" in str(t):
            values[f.name] = {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3}
        elif t in ("str", str):
            values[f.name] = "x"
        elif t in ("bool", bool):
            values[f.name] = True
        elif t in ("int", int):
            values[f.name] = 1
        else:
            values[f.name] = 1.5
    return cls(**values)


def test_schema_is_valid_2020_12():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("event_type", sorted(events.EVENT_TYPES))
def test_every_event_validates_and_matches_its_definition(event_type):
    cls = events.EVENT_TYPES[event_type]
    data = sample(cls).to_dict()
    jsonschema.validate(data, SCHEMA)
    definition = SCHEMA["$defs"][cls.__name__]
    assert set(definition["properties"]) == set(data), "schema and dataclass fields differ"
    assert definition["properties"]["type"]["const"] == event_type


def test_schema_rejects_an_unknown_event_and_a_missing_field():
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"type": "text.delta"}, SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"type": "made.up", "ts": 1.0}, SCHEMA)


def test_every_property_is_described():
    for name, definition in SCHEMA["$defs"].items():
        assert definition.get("description"), name
        for prop, spec in definition["properties"].items():
            assert spec.get("description"), f"{name}.{prop}"
