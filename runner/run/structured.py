"""Structured output: parse the model's final text and check it against the file's schema.

The server's word is never taken for it: local servers often ignore strict mode, and even OpenAI
returns a refusal or a cut-off answer now and then. So the loop checks every final answer here,
and when it does not match, these are the errors the model is shown when asked again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator

MAX_ERRORS = 10  # shown to the model and the user; more only repeats the same mistake


@dataclass(frozen=True)
class Checked:
    value: Any = None
    errors: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors


class OutputCheck:
    """The output section of a workflow, ready to check answers with."""

    def __init__(self, schema: dict[str, Any], *, attempts: int = 2):
        self.schema = schema
        self.attempts = attempts
        self._validator = Draft202012Validator(schema)

    def check(self, text: str) -> Checked:
        """The parsed value, or why ``text`` is not an answer that matches the schema."""
        body = _unfenced(text)
        if not body:
            return Checked(errors=("the answer is empty; it must be a JSON value",))
        try:
            value = json.loads(body)
        except ValueError as exc:
            return Checked(errors=(f"the answer is not valid JSON: {exc}",))
        errors = sorted(self._validator.iter_errors(value), key=lambda e: list(e.absolute_path))
        if errors:
            return Checked(value=value, errors=tuple(_describe(e) for e in errors[:MAX_ERRORS]))
        return Checked(value=value)


def repair_message(errors: tuple[str, ...]) -> str:
    """What the model is told when its answer did not match: the errors, and to answer again."""
    listed = "\n".join(f"- {e}" for e in errors)
    return ("Your answer does not match the required JSON schema:\n" + listed +
            "\nAnswer again with only the corrected JSON value, nothing else.")


def _unfenced(text: str) -> str:
    """The text without one surrounding Markdown code fence (```json ... ```), which models add
    even when asked for JSON alone; anything else is left for the parser to judge."""
    body = text.strip()
    if body.startswith("```") and body.endswith("```") and body.count("```") == 2:
        body = body[3:-3]
        first, _, rest = body.partition("\n")
        body = rest if first.strip().isalpha() or not first.strip() else body
    return body.strip()


def _describe(error) -> str:
    where = "/" + "/".join(str(p) for p in error.absolute_path)
    message = error.message if len(error.message) <= 300 else error.message[:300] + "..."
    return f"at {where}: {message}"
