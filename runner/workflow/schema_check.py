"""Check loaded data against schemas/workflow.schema.json (or, for a NAME.test.yaml file beside a
workflow, schemas/tests.schema.json) and explain each failure to a person.

jsonschema's own messages are written for programmers (``'ten' is not of type 'number'``) and
print whole values, which could be a pasted key. We rewrite each error from its keyword: where it is
(line, column, JSON path), what was expected, and how to fix it. The schema itself may carry
``x-message`` (the sentence to show, ``{value}`` filled in) and ``x-hint`` (how to fix it) next to a
keyword, so wording lives beside the rule it explains.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from runner.errors import Problem
from runner.suggest import suggest
from runner.workflow.yaml_loader import Document, JsonPath

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "workflow.schema.json"
TESTS_SCHEMA_PATH = SCHEMA_PATH.with_name("tests.schema.json")  # $refs the test case in workflow.schema.json

# Keys people put in the wrong place: unknown key -> where it belongs, by the schema it appeared in.
_MOVED = {
    "tool": {"static": "resolve", "python": "resolve", "http": "resolve", "url": "resolve.http",
             "properties": "parameters", "required": "parameters"},
    "resolve": {k: "http" for k in ("url", "method", "query", "headers", "body", "extract", "allow_hosts")},
    "workflow": {k: "model" for k in ("api", "temperature", "top_p", "base_url", "api_key_env", "seed")},
}
SECRET_KEY = re.compile(r"(?i)(api[_-]?key|apikey|token|secret|password|passwd|authorization|credential)")
KEY_LIKE = re.compile(r"\bsk-[A-Za-z0-9_-]{20,}")  # an OpenAI-style key pasted into the file


@lru_cache(maxsize=None)
def workflow_schema() -> dict[str, Any]:
    """The workflow JSON Schema, read once."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@lru_cache(maxsize=None)
def cases_schema() -> dict[str, Any]:
    """The schema of a test file (only ``tests:``), read once."""
    return json.loads(TESTS_SCHEMA_PATH.read_text(encoding="utf-8"))


@lru_cache(maxsize=None)
def _validator() -> Draft202012Validator:
    return Draft202012Validator(workflow_schema())


@lru_cache(maxsize=None)
def _cases_validator() -> Draft202012Validator:
    # tests.schema.json refers to "workflow.schema.json#..." relative to its own location, as an
    # editor resolves it; here that name is served from the schema already in memory (same
    # objects, so the wording rules keyed on them apply).
    registry = Registry().with_resource(SCHEMA_PATH.name, DRAFT202012.create_resource(workflow_schema()))
    return Draft202012Validator(cases_schema(), registry=registry)


@lru_cache(maxsize=None)
def known_keys() -> frozenset[str]:
    """Every key the workflow schema names somewhere: such keys never hold a secret."""
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            names.update(node.get("properties", {}) if isinstance(node.get("properties"), dict) else ())
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(workflow_schema())
    return frozenset(names)


@lru_cache(maxsize=None)
def _defs_by_id() -> dict[int, str]:
    schema = workflow_schema()
    names = {id(sub): name for name, sub in schema["$defs"].items()}
    names[id(schema)] = "workflow"
    names[id(cases_schema())] = "tests_file"
    return names


def schema_problems(doc: Document) -> list[Problem]:
    """Every schema violation in the workflow document, one Problem each."""
    return explain_errors(_validator().iter_errors(doc.data), doc)


def cases_schema_problems(doc: Document) -> list[Problem]:
    """Every schema violation in a test file (``NAME.test.yaml``), one Problem each."""
    return explain_errors(_cases_validator().iter_errors(doc.data), doc)


def explain_errors(errors: Iterable[ValidationError], doc: Document, prefix: JsonPath = ()) -> list[Problem]:
    """Problems for jsonschema errors; ``prefix`` places errors of a nested schema (a tool's
    parameters checked against the meta-schema) inside the document."""
    out: list[Problem] = []
    seen: set[tuple[str, int, int, str]] = set()
    for error in errors:
        for problem in _explain(error, doc, prefix):
            key = (problem.path, problem.line, problem.column, problem.message)
            if key not in seen:
                seen.add(key)
                out.append(problem)
    return out


def _deepest(error: ValidationError) -> list[ValidationError]:
    """The branch errors found inside the value, when there are any: a branch that took the
    value's type and failed within it (a mapping given where one word or a mapping is allowed)
    says more than "must be one of" from the branch that wanted another type."""
    depth = len(error.absolute_path)
    deepest = max(len(e.absolute_path) for e in error.context)
    if deepest > depth:
        return [e for e in error.context if len(e.absolute_path) == deepest]
    # At the value itself: a branch that took its type ("an empty list" where a list is allowed)
    # says more than one that wanted another type.
    took_type = [e for e in error.context if e.validator != "type"]
    return took_type or list(error.context)


def _explain(error: ValidationError, doc: Document, prefix: JsonPath) -> list[Problem]:
    if error.context:  # anyOf / oneOf: explain the branch that came closest
        branches = _deepest(error)
        if all(e.validator == "type" for e in branches):  # no branch took the value: name every type allowed
            return [_any_type(branches, doc, prefix)]
        return _explain(best_match(branches), doc, prefix)
    path = prefix + tuple(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    keyword = error.validator
    instance = error.instance
    hint = schema.get("x-hint")
    custom = schema.get("x-message")

    if _checks_a_key(error):
        # jsonschema checks the key as the instance, without adding it to the path.
        key_path = path + (instance,)
        message = custom.replace("{value}", show(instance)) if custom else f"key {show(instance)} is not allowed here"
        return [doc.problem(key_path, message, hint, key=True)]

    if keyword == "additionalProperties" and isinstance(instance, dict):
        return [_unknown_key(doc, path, key, schema) for key in _extra_keys(instance, schema)]

    if keyword == "required" and isinstance(instance, dict):
        props = schema.get("properties", {})
        out = []
        for name in error.validator_value:
            if name not in instance:
                prop = props.get(name, {})
                fix = prop.get("x-hint") or (f"add {name}: ({prop['description']})" if "description" in prop else None)
                out.append(doc.problem(path, f"missing required key '{name}'", fix, key=True))
        return out

    if keyword in ("minProperties", "maxProperties") and custom:
        found = ", ".join(instance) if isinstance(instance, dict) and instance else "none"
        return [doc.problem(path, f"{custom} (found {found})", hint, key=True)]

    if custom and keyword != "type":
        return [doc.problem(path, custom.replace("{value}", show(instance)), hint)]

    message, default_hint = _describe(keyword, error.validator_value, instance, schema)
    if keyword == "type":  # "quote it" beats the general advice
        hint, default_hint = default_hint, hint
    return [doc.problem(path, message, hint or default_hint)]


def _any_type(branches: list[ValidationError], doc: Document, prefix: JsonPath) -> Problem:
    """One message for a value none of the branches' types takes: each type they allow, once."""
    wanted: list[str] = []
    for e in branches:
        for kind in [e.validator_value] if isinstance(e.validator_value, str) else e.validator_value:
            if kind not in wanted:
                wanted.append(kind)
    first = branches[0]
    message, hint = _type_message(wanted, first.instance)
    hints = [e.schema.get("x-hint") for e in branches if isinstance(e.schema, dict) and e.schema.get("x-hint")]
    return doc.problem(prefix + tuple(first.absolute_path), message, hints[0] if hints else hint)  # the field's own advice first


def _checks_a_key(error: ValidationError) -> bool:
    """Whether the error comes from a ``propertyNames`` keyword (not a property of that name)."""
    steps = list(error.relative_schema_path)
    return any(step == "propertyNames" and (i == 0 or steps[i - 1] != "properties") for i, step in enumerate(steps))


def _describe(keyword: str, expected: Any, instance: Any, schema: dict) -> tuple[str, str | None]:
    """(message, hint) for one failed keyword."""
    if keyword == "type":
        return _type_message(expected, instance)
    if keyword == "enum":
        options = ", ".join(str(o) for o in expected)
        guess = suggest(str(instance), [str(o) for o in expected]) if isinstance(instance, str) else None
        message = f"must be one of {options} (got {show(instance)})"
        return (message + (f"; did you mean '{guess}'?" if guess else ""), None)
    if keyword == "const":
        return (f"must be {json.dumps(expected)} (got {show(instance)})", None)
    if keyword == "pattern":
        return (f"{show(instance)} does not match the pattern {expected}", None)
    bounds = {
        "minimum": "must be at least {e}",
        "maximum": "must be at most {e}",
        "exclusiveMinimum": "must be greater than {e}",
        "exclusiveMaximum": "must be less than {e}",
    }
    if keyword in bounds:
        return (bounds[keyword].format(e=expected) + f" (got {show(instance)})", schema.get("description"))
    if keyword == "minLength":
        return ("must not be empty" if expected == 1 else f"must be at least {expected} characters long", None)
    if keyword == "maxLength":
        return (f"must be at most {expected} characters long", None)
    if keyword == "minItems":
        return ("must not be an empty list" if expected == 1 else f"must list at least {expected} items", None)
    if keyword == "maxItems":
        return (f"must list at most {expected} items", None)
    if keyword == "uniqueItems":
        return ("the list holds the same item twice", "remove the repeated item")
    if keyword == "minProperties":
        return (f"must have at least {expected} key(s)", None)
    if keyword == "maxProperties":
        return (f"must have at most {expected} key(s)", None)
    if keyword is None:  # a `false` schema
        return ("this value is not allowed here", None)
    return (redact(f"{keyword}: {expected!r} not satisfied"), None)


_KINDS = {"string": "text", "integer": "a whole number", "number": "a number", "boolean": "true or false",
          "object": "a mapping (key: value lines)", "array": "a list", "null": "nothing"}


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"number {value!r}"
    if isinstance(value, str):
        return f"text {show(value)}"
    if isinstance(value, list):
        return "a list"
    return "a mapping"


def _type_message(expected: Any, instance: Any) -> tuple[str, str | None]:
    wanted = [expected] if isinstance(expected, str) else list(expected)
    kinds = [_KINDS.get(w, w) for w in wanted]
    said = " or ".join(kinds) if len(kinds) < 3 else ", ".join(kinds[:-1]) + " or " + kinds[-1]
    message = f"expected {said}, got {_kind(instance)}"
    hint = None
    if "string" in wanted and isinstance(instance, bool):
        hint = "quote it: unquoted true and false are booleans in YAML"
    elif "string" in wanted and isinstance(instance, (int, float)):
        hint = "quote it to keep it as text, e.g. \"1.10\""
    elif wanted[0] in ("number", "integer") and isinstance(instance, str):
        hint = "write a number, without quotes"
    elif wanted == ["integer"] and isinstance(instance, float):
        hint = "use a whole number"
    elif instance is None:
        hint = "give it a value, or remove the key"
    elif "object" in wanted and isinstance(instance, str):
        hint = "indent the keys under it on the following lines"
    return message, hint


def _extra_keys(instance: dict, schema: dict) -> list[str]:
    props = schema.get("properties", {})
    patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
    return [k for k in instance if k not in props and not any(p.search(k) for p in patterns)]


def _unknown_key(doc: Document, path: JsonPath, key: str, schema: dict) -> Problem:
    allowed = list(schema.get("properties", {}))
    where = _defs_by_id().get(id(schema), "")
    if SECRET_KEY.search(key) and key not in allowed:
        return doc.problem(
            path + (key,),
            f"'{key}': a literal key or secret must never be in the workflow file",
            "remove it; put the secret in an environment variable and name it with "
            "api_key_env (for the model) or ${{ env.NAME }} (for a tool)",
            key=True,
        )
    home = _MOVED.get(where, {}).get(key)
    guess = suggest(key, allowed)
    placed = _test_file_hint(key) if where == "tests_file" else None
    message = f"unknown key '{key}'" + (f" (did you mean '{guess}'?)" if guess and not (home or placed) else "")
    if placed:
        hint = placed
    elif home:
        hint = f"put {key} under {home}:"
    elif allowed:
        hint = "allowed keys here: " + ", ".join(allowed)
    else:
        hint = "remove it"
    return doc.problem(path + (key,), message, hint, key=True)


def _test_file_hint(key: str) -> str | None:
    """Where a key found at the top of a test file belongs."""
    if key in workflow_schema()["$defs"]["test"]["properties"]:
        return f"a test file lists its cases under tests:, so indent {key} under an item: tests:, then - name: ..."
    if key in workflow_schema()["properties"]:
        return f"{key} belongs in the workflow file; a test file holds only tests:"
    return None


def show(value: Any, limit: int = 60) -> str:
    """A short, quoted rendering of a value for a message, with anything key-like masked."""
    text = repr(value) if isinstance(value, str) else json.dumps(value, default=str)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return redact(text)


def redact(text: str) -> str:
    """Mask strings that look like OpenAI keys, so a pasted key never reaches the terminal."""
    return KEY_LIKE.sub("sk-***", text)
