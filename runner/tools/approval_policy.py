"""What the workflow file says about one call: run it, ask first, or refuse it.

Order: the tool's deny rules, then its other rules in the order written (the first match wins),
then the tool's ``default``, then the file's ``approval:``, then the default for the tool's
kind: tools that only read run (static values, python functions the author wrote, http GET and
HEAD, MCP tools the server marks read-only); http tools with other methods and other MCP tools ask.

Patterns are globs where ``*`` and ``?`` stay inside one path segment and ``**`` crosses ``/``;
a leading ``!`` negates. A value holding a ``..`` path segment or a control character never
matches a pattern, so ``tmp/*`` cannot be walked out of and a line break cannot smuggle a second
address past ``*@example.com`` (a negated pattern then matches: a deny rule still refuses).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from runner.jsonpointer import MISSING, resolve
from runner.workflow.model import READ_METHODS, ApprovalRule, HttpResolver, McpResolver, ToolSpec, Workflow



@dataclass(frozen=True)
class Verdict:
    """``action``: allow | ask | deny. ``by``: rule (a rule matched) or default (the tool's, the
    file's or the kind's default). ``why``: words for a person and the run log."""

    action: str
    by: str
    why: str


def kind_default(tool: ToolSpec) -> tuple[str, str]:
    """(action, why) for a tool the file says nothing about."""
    resolver = tool.resolver
    if isinstance(resolver, HttpResolver):
        method = resolver.method.upper()
        if method in READ_METHODS:
            return "allow", f"http {method} only reads"
        return "ask", f"http {method} can change things, so it asks by default"
    if isinstance(resolver, McpResolver):
        if tool.read_only:
            return "allow", "the MCP server marks it read-only"
        return "ask", "MCP tools ask unless their server marks them read-only"
    if type(resolver).__name__ == "PythonResolver":
        return "allow", "python functions in your repository run by default"
    return "allow", "a static value only returns text written in the file"


def tool_default(tool: ToolSpec, workflow: Workflow | None) -> tuple[str, str]:
    """(action, why) when no rule matches: the tool's default, the file's, the kind's."""
    spec = tool.approval
    if spec is not None and spec.default:
        return spec.default, f"{spec.origin or f'tool {tool.name!r}'} says approval: {spec.default}"
    if workflow is not None and workflow.approval:
        return workflow.approval, f"the file says approval: {workflow.approval}"
    return kind_default(tool)


def verdict(tool: ToolSpec, args: dict[str, Any], workflow: Workflow | None = None) -> Verdict:
    """What the file says about calling ``tool`` with ``args`` (already checked)."""
    spec = tool.approval
    rules = spec.rules if spec is not None else ()
    ordered = [r for r in rules if r.action == "deny"] + [r for r in rules if r.action != "deny"]
    for rule in ordered:
        if matches(rule, args):
            number = rules.index(rule) + 1
            where = f"{spec.origin}, for tool {tool.name!r}" if spec.origin else f"tool {tool.name!r}"
            return Verdict(rule.action, "rule", f"rule {number} of {where} ({describe_rule(rule)})")
    action, why = tool_default(tool, workflow)
    return Verdict(action, "default", why)


def describe_rule(rule: ApprovalRule) -> str:
    shown = ", ".join(f"{k}: {json.dumps(v, ensure_ascii=False)}" for k, v in rule.match.items())
    return f"{rule.action} {shown}"


def matches(rule: ApprovalRule, args: dict[str, Any]) -> bool:
    """Every argument the rule names has a value matching one of its patterns."""
    for key, patterns in rule.match.items():
        found, value = _argument(args, key)
        options = patterns if isinstance(patterns, list) else [patterns]
        if not any(_value_matches(p, found, value) for p in options):
            return False
    return True


def _argument(args: dict[str, Any], key: str) -> tuple[bool, Any]:
    if key.startswith("/"):
        value = resolve(args, key)
        return value is not MISSING, None if value is MISSING else value
    return (key in args), args.get(key)


def _value_matches(pattern: Any, found: bool, value: Any) -> bool:
    if isinstance(pattern, str):
        negated = pattern.startswith("!")
        body = pattern[1:] if negated else pattern
        hit = found and isinstance(value, str) and _safe(value) and _glob(body).fullmatch(value) is not None
        return not hit if negated else hit
    if not found:
        return False
    if pattern is None:
        return value is None
    if isinstance(pattern, bool) or isinstance(value, bool):
        return pattern is value
    return isinstance(value, (int, float)) and pattern == value


_UNSAFE = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]|(?:^|[/\\])\.\.(?:[/\\]|$)")


def _safe(value: str) -> bool:
    return _UNSAFE.search(value) is None


@lru_cache(maxsize=1024)
def _glob(pattern: str) -> re.Pattern[str]:
    """``**`` any text, ``*`` any text without ``/``, ``?`` one character but ``/``, ``[...]``
    a class; everything else literal. Case matters (``*.PDF`` is not ``*.pdf``)."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 2 if pattern[i + 1:i + 2] in ("!", "]") else i + 1)
            if end == -1:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1:end]
                body = "^" + body[1:] if body.startswith("!") else body
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def summary(tool: ToolSpec, workflow: Workflow | None = None) -> str:
    """One line for ``flowrun tools list``: what happens when the model calls the tool."""
    action, why = tool_default(tool, workflow)
    word = {"allow": "runs", "ask": "asks first", "deny": "refused"}[action]
    rules = tool.approval.rules if tool.approval is not None else ()
    more = f"; {len(rules)} rule{'s' if len(rules) != 1 else ''} on its arguments" if rules else ""
    return f"{word} ({why}){more}"
