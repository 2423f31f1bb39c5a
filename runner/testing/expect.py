"""Check what a run did against a test case's ``expect:`` block.

Each failed expectation becomes one ``Mismatch`` that says what was expected and what happened,
aligned like pytest's assertion output, with a diff for multi-line text:

    output of get_rain_probability: expected '0.07'
                                    got      '0.06'
"""

from __future__ import annotations

import ast
import difflib
import json
import re
from dataclasses import dataclass
from typing import Any, Collection, Mapping, Sequence

from runner.events import ToolCallCompleted, ToolCallRequested
from runner.jsonpointer import MISSING, resolve


@dataclass(frozen=True)
class Mismatch:
    what: str  # e.g. "output of get_rain_probability"
    expected: str  # already rendered for reading: a repr, "to contain ...", JSON, ...
    actual: str
    note: str = ""  # one more line of context, e.g. why the run ended

    def format(self) -> str:
        pad = " " * len(self.what)
        lines = [f"{self.what}: expected {self.expected}", f"{pad}  got      {self.actual}"]
        if self.note:
            lines.append(f"{pad}  ({self.note})")
        expected, actual = _unrepr(self.expected), _unrepr(self.actual)
        if "\n" in expected + actual:
            diff = difflib.unified_diff(expected.splitlines(), actual.splitlines(), "expected", "actual", lineterm="")
            lines += ["  " + d for d in diff]
        return "\n".join(lines)


def _unrepr(text: str) -> str:
    """A repr'd string back to its text, so the diff shows lines rather than one escaped line."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text
    return value if isinstance(value, str) else text


json_pointer = resolve  # the name the rest of this module and its tests use


def same(expected: Any, actual: Any) -> bool:
    """JSON equality: 1 equals 1.0, but true is not 1 (Python's ``==`` says it is)."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if isinstance(expected, dict) and isinstance(actual, dict):
        return expected.keys() == actual.keys() and all(same(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(same(a, b) for a, b in zip(expected, actual))
    return expected == actual


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
            return out + [Mismatch(what, "valid JSON", repr(actual), f"not JSON: {exc}")]
        pointer = spec.get("pointer", "")
        value = json_pointer(doc, pointer)
        if "equals" in spec and (value is MISSING or not same(spec["equals"], value)):
            shown = "nothing there" if value is MISSING else _json(value)
            out.append(Mismatch(f"{what} at {pointer or '/'}", _json(spec["equals"]), shown))
    return out


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _parsed(arguments: str) -> Any:
    try:
        return json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        return arguments


def _arguments_match(wanted: Any, raw: str) -> bool:
    """A mapping compares as JSON; a string (scripted invalid JSON) compares as the exact text."""
    if isinstance(wanted, str):
        return wanted == raw
    return same(wanted, _parsed(raw))


def check(
    expect: Mapping[str, Any],
    *,
    requested: Sequence[ToolCallRequested],
    completed: Sequence[ToolCallCompleted],
    final_text: str,
    status: str,
    message: str = "",
    output: Any = MISSING,
    refused: Collection[str] = (),
    unanswered: Sequence[tuple[str, int]] = (),
) -> list[Mismatch]:
    """Every way the run differs from ``expect``. ``message`` says why a run did not complete.
    ``refused``: the call ids the approval gate refused (they are not error outputs);
    ``unanswered``: (tool, per-call answers the case listed) for each tool that asked for
    approval and had no answer.

    ``tool_calls`` compares names in order (for parallel calls, the order the model listed them)
    and, where given, arguments. ``outputs`` checks the last output of each named tool (its final
    state when the model called it several times). ``output`` is the parsed structured answer
    (MISSING when the run gave none), for the ``output`` checks."""
    out: list[Mismatch] = []
    if "status" in expect and status != expect["status"]:
        out.append(Mismatch("status", repr(expect["status"]), repr(status), message))
    if "tool_calls" in expect:
        wanted = list(expect["tool_calls"])
        names = [c.name for c in requested]
        if [w["name"] for w in wanted] != names:
            out.append(Mismatch("tool calls", repr([w["name"] for w in wanted]), repr(names)))
        else:
            for i, (w, call) in enumerate(zip(wanted, requested)):
                if "arguments" in w and not _arguments_match(w["arguments"], call.arguments):
                    shown = call.arguments if isinstance(w["arguments"], str) else _parsed(call.arguments)
                    out.append(Mismatch(f"arguments of call {i + 1} ({call.name})",
                                        _shown(w["arguments"]), _shown(shown)))
    outputs: dict[str, list[str]] = {}
    for c in completed:
        outputs.setdefault(c.name, []).append(c.output)
    for tool, matcher in (expect.get("outputs") or {}).items():
        got = outputs.get(tool)
        if not got:
            called = ", ".join(sorted(outputs)) or "none"
            out.append(Mismatch(f"output of {tool}", "a call to it", "no call", f"tools that ran: {called}"))
            continue
        what = f"output of {tool}" + (f" (last of {len(got)} calls)" if len(got) > 1 else "")
        out += match_text(matcher, got[-1], what)
    if "final_text" in expect:
        out += match_text(expect["final_text"], final_text, "final text")
    for spec in expect.get("output") or ():
        out += match_output(spec, output)
    out += _error_outputs(expect, [c for c in completed if c.call_id not in refused],
                          {c.name for c in completed if c.call_id in refused})
    out += _refusals(expect, completed, refused, unanswered)
    return out


def _refusals(expect: Mapping[str, Any], completed: Sequence[ToolCallCompleted], refused: Collection[str],
              unanswered: Sequence[tuple[str, int]]) -> list[Mismatch]:
    """A call the case did not answer fails it (with the key to add); so does a refusal that
    ``expect.refused`` does not list; a tool listed there must have had a call refused."""
    out = [Mismatch(f"approval of {tool}", "an answer in the case's approvals:", "none, so the call was refused",
                    f"add approvals: {{{tool}: approve}} (or deny) to the case" if not listed else
                    f"the case's approvals: lists {listed} answer{'s' if listed != 1 else ''} for {tool}, and call "
                    f"{listed + 1} of it asked too: add an answer for it to the list")
           for tool, listed in unanswered]
    allowed = expect.get("refused", False)
    said: set[str] = {tool for tool, _ in unanswered}
    for c in completed:
        if c.call_id not in refused or c.name in said:
            continue
        said.add(c.name)
        if not (allowed is True or (isinstance(allowed, list) and c.name in allowed)):
            out.append(Mismatch(f"call of {c.name}", "to run", f"refused: {c.output!r}",
                                f"if this refusal is what the case tests, add expect.refused: [{c.name}]"))
    if isinstance(allowed, list):
        denied = {c.name for c in completed if c.call_id in refused}
        for name in allowed:
            if name not in denied:
                out.append(Mismatch(f"call of {name}", "a refusal (listed in expect.refused)",
                                    "it ran" if any(c.name == name for c in completed) else "no call"))
    return out


NO_PYTHON_REFUSAL = "error: python resolvers are disabled (--no-python)"


def _error_outputs(expect: Mapping[str, Any], completed: Sequence[ToolCallCompleted],
                   refused: Collection[str] = ()) -> list[Mismatch]:
    """A tool that returned an error fails the case unless ``error_outputs`` expects it (a
    scripted model carries on after an error output, so the case would otherwise pass on a
    broken tool); a tool listed there must have returned one. ``completed`` holds no refused
    call; ``refused`` names the tools that had one."""
    allowed = expect.get("error_outputs", expect.get("no_error_outputs") is False)
    out = []
    for c in completed:
        if c.output.startswith(NO_PYTHON_REFUSAL):
            continue  # the person ran with --no-python: a refused python call is what they asked for
        if c.is_error and not (allowed is True or (isinstance(allowed, list) and c.name in allowed)):
            note = "" if expect.get("no_error_outputs") else \
                f"if this error is what the case tests, add expect.error_outputs: [{c.name}]"
            out.append(Mismatch(f"output of {c.name}", "no error", repr(c.output), note))
    if isinstance(allowed, list):
        errored = {c.name for c in completed if c.is_error}
        for name in allowed:
            if name not in errored:
                got = ("no error" if any(c.name == name for c in completed)
                       else "a refusal, which is not an error output" if name in refused else "no call")
                note = f"list it under expect.refused: [{name}]" if name in refused else ""
                out.append(Mismatch(f"output of {name}", "an error (listed in expect.error_outputs)", got, note))
    return out


def match_output(spec: Mapping[str, Any], answer: Any) -> list[Mismatch]:
    """One ``expect.output`` check: the value at ``pointer`` ``equals`` / ``contains`` /
    ``matches`` what the case says."""
    pointer = spec.get("pointer", "")
    what = f"output at {pointer or '/'}"
    if answer is MISSING:
        return [Mismatch(what, "a structured answer", "none", "the run gave no answer that matched the output schema")]
    value = json_pointer(answer, pointer)
    if value is MISSING:
        return [Mismatch(what, _wanted(spec), "nothing there", f"the answer: {_json(answer)}")]
    if "equals" in spec and not same(spec["equals"], value):
        return [Mismatch(what, _json(spec["equals"]), _json(value))]
    if "contains" in spec:
        wanted = spec["contains"]
        if isinstance(value, str):
            ok = isinstance(wanted, str) and wanted in value
        elif isinstance(value, list):
            ok = any(same(wanted, v) for v in value)
        elif isinstance(value, dict):
            ok = isinstance(wanted, str) and wanted in value
        else:
            ok = False
        if not ok:
            return [Mismatch(what, f"to contain {_json(wanted)}", _json(value))]
    if "matches" in spec and not (isinstance(value, str) and re.search(str(spec["matches"]), value)):
        return [Mismatch(what, f"to match /{spec['matches']}/", _json(value))]
    return []


def schema_mismatch(schema: Mapping[str, Any], answer: Any) -> list[Mismatch]:
    """A case checks the answer against the output schema itself, whatever the run said: the
    check that the run loop did its job."""
    from jsonschema import Draft202012Validator

    errors = sorted(Draft202012Validator(dict(schema)).iter_errors(answer), key=lambda e: list(e.absolute_path))
    if not errors:
        return []
    where = "/" + "/".join(str(p) for p in errors[0].absolute_path)
    return [Mismatch("output", "to match the output schema", _json(answer), f"at {where}: {errors[0].message}")]


def _wanted(spec: Mapping[str, Any]) -> str:
    if "equals" in spec:
        return _json(spec["equals"])
    if "contains" in spec:
        return f"to contain {_json(spec['contains'])}"
    return f"to match /{spec.get('matches')}/"


def _shown(value: Any) -> str:
    return repr(value) if isinstance(value, str) else _json(value)
