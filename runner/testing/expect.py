"""Check what a run did against a test case's ``expect:`` block.

Each failed expectation becomes one ``Mismatch`` that says what was expected and what happened,
with a diff for long text, so a failing case reads like a pytest failure.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from runner.events import ToolCallCompleted, ToolCallRequested


@dataclass(frozen=True)
class Mismatch:
    what: str  # e.g. "output of get_rain_probability"
    expected: str
    actual: str

    def format(self) -> str:
        lines = [f"{self.what}: expected {self.expected}", f"{' ' * len(self.what)}  got      {self.actual}"]
        if "\n" in self.expected + self.actual:
            diff = difflib.unified_diff(
                self.expected.splitlines(), self.actual.splitlines(), "expected", "actual", lineterm=""
            )
            lines += ["  " + d for d in diff]
        return "\n".join(lines)


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING = _Missing()


def json_pointer(doc: Any, pointer: str) -> Any:
    """RFC 6901. Returns MISSING when the pointer does not resolve."""
    if pointer in ("", "/"):
        return doc if pointer == "" else (doc.get("", MISSING) if isinstance(doc, dict) else MISSING)
    if not pointer.startswith("/"):
        return MISSING
    for raw in pointer[1:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(doc, dict) and token in doc:
            doc = doc[token]
        elif isinstance(doc, list) and token.isdigit() and int(token) < len(doc):
            doc = doc[int(token)]
        else:
            return MISSING
    return doc


def match_text(matcher: Mapping[str, Any], actual: str, what: str) -> list[Mismatch]:
    """``equals`` / ``contains`` / ``matches`` (regex search) / ``json: {pointer, equals}``."""
    out: list[Mismatch] = []
    if "equals" in matcher and actual != str(matcher["equals"]):
        out.append(Mismatch(what, repr(str(matcher["equals"])), repr(actual)))
    if "contains" in matcher and str(matcher["contains"]) not in actual:
        out.append(Mismatch(what, f"to contain {str(matcher['contains'])!r}", repr(actual)))
    if "matches" in matcher and not re.search(str(matcher["matches"]), actual):
        out.append(Mismatch(what, f"to match /{matcher['matches']}/", repr(actual)))
    if "json" in matcher:
        spec = matcher["json"]
        try:
            doc = json.loads(actual)
        except ValueError as exc:
            return out + [Mismatch(what, "valid JSON", f"{actual!r} ({exc})")]
        pointer = spec.get("pointer", "")
        value = json_pointer(doc, pointer)
        if "equals" in spec and value != spec["equals"]:
            out.append(
                Mismatch(f"{what} at {pointer or '/'}", json.dumps(spec["equals"]), "missing" if value is MISSING else json.dumps(value))
            )
    return out


def _parsed(arguments: str) -> Any:
    try:
        return json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        return arguments


def check(
    expect: Mapping[str, Any],
    *,
    requested: Sequence[ToolCallRequested],
    completed: Sequence[ToolCallCompleted],
    final_text: str,
    status: str,
) -> list[Mismatch]:
    out: list[Mismatch] = []
    if "status" in expect and status != expect["status"]:
        out.append(Mismatch("status", repr(expect["status"]), repr(status)))
    if "tool_calls" in expect:
        wanted = list(expect["tool_calls"])
        got = [(c.name, _parsed(c.arguments)) for c in requested]
        if [w["name"] for w in wanted] != [g[0] for g in got]:
            out.append(Mismatch("tool calls", repr([w["name"] for w in wanted]), repr([g[0] for g in got])))
        else:
            for i, (w, (name, args)) in enumerate(zip(wanted, got)):
                if "arguments" in w and w["arguments"] != args:
                    out.append(Mismatch(f"arguments of call {i + 1} ({name})", json.dumps(w["arguments"], ensure_ascii=False), json.dumps(args, ensure_ascii=False)))
    outputs: dict[str, str] = {}
    for c in completed:
        outputs[c.name] = c.output
    for tool, matcher in (expect.get("outputs") or {}).items():
        if tool not in outputs:
            out.append(Mismatch(f"output of {tool}", "a call to it", "no call"))
        else:
            out += match_text(matcher, outputs[tool], f"output of {tool}")
    if "final_text" in expect:
        out += match_text(expect["final_text"], final_text, "final text")
    if expect.get("no_error_outputs"):
        for c in completed:
            if c.is_error:
                out.append(Mismatch(f"output of {c.name}", "no error", repr(c.output)))
    return out
