"""An MCP tool's input schema, rewritten into a form the function-calling APIs accept.

MCP servers publish whatever JSON Schema their framework produced; the APIs are pickier. Always:
the root must be an object with ``properties`` and an array must say what its ``items`` are, and
``$schema``/``$id`` are dropped. With ``strict: true`` (structured outputs) more is needed: every
object closed (``additionalProperties: false``), every property required (an optional one becomes
nullable, and a null the model sends for it is dropped again before the call reaches the server,
see ``drop_added_nulls``), ``oneOf`` read as ``anyOf``, keywords strict mode refuses removed. A
schema that cannot be rewritten faithfully (``allOf``, ``not``, conditionals, open maps, an
``anyOf`` at the root) is sent non-strict instead. Every change is listed, for ``-v``.

Pure functions over plain data: the server's schema is never modified in place.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

_ALWAYS_DROPPED = ("$schema", "$id")
_STRICT_DROPPED = ("default", "examples", "deprecated", "readOnly", "writeOnly", "$comment", "contentMediaType",
                   "contentEncoding", "minContains", "maxContains", "unevaluatedItems")
_STRICT_IMPOSSIBLE = ("allOf", "not", "if", "then", "else", "patternProperties", "dependentRequired",
                      "dependentSchemas", "propertyNames", "unevaluatedProperties", "additionalItems")
_STRICT_FORMATS = frozenset({"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"})
_CHILD_MAPS = ("properties", "$defs", "definitions")
_CHILD_ONE = ("items", "additionalProperties", "contains")
_CHILD_LISTS = ("anyOf", "oneOf", "prefixItems")


@dataclass
class Normalized:
    parameters: dict[str, Any]
    strict: bool | None
    changes: list[str] = field(default_factory=list)  # what was rewritten, for -v


def normalize(schema: Any, *, strict: bool | None) -> Normalized:
    """The schema to send for a tool, whether to send it strict, and what changed."""
    changes: list[str] = []
    base = _basic(schema, changes)
    if not strict:
        return Normalized(base, strict, changes)
    reason = _strict_obstacle(base, "")
    if reason:
        changes.append(f"sent non-strict: {reason}")
        return Normalized(base, False, changes)
    strict_changes: list[str] = []
    result = _strict(copy.deepcopy(base), "", strict_changes)
    return Normalized(result, True, changes + strict_changes)


def _basic(schema: Any, changes: list[str]) -> dict[str, Any]:
    if not isinstance(schema, dict):
        changes.append("the server gave no object schema; the tool takes no arguments")
        return {"type": "object", "properties": {}}
    out = copy.deepcopy(schema)
    for key in _ALWAYS_DROPPED:
        if key in out:
            del out[key]
            changes.append(f"dropped {key}")
    if out.get("type") != "object":
        changes.append(f"root type {out.get('type')!r} replaced by 'object'")
        out["type"] = "object"
    if not isinstance(out.get("properties"), dict):
        out["properties"] = {}
        changes.append("added empty properties at the root")
    if "definitions" in out and "$defs" not in out:
        out["$defs"] = out.pop("definitions")
        _rewrite_refs(out, "#/definitions/", "#/$defs/")
        changes.append("definitions renamed $defs")
    _fill_items(out, "", changes)
    return out


def _fill_items(node: Any, where: str, changes: list[str]) -> None:
    for path, sub in _children(node, where):
        _fill_items(sub, path, changes)
    if isinstance(node, dict) and _has_type(node, "array") and "items" not in node and "prefixItems" not in node:
        node["items"] = {}
        changes.append(f"{where or '/'}: array without items given items: {{}}")


def _strict_obstacle(node: Any, where: str) -> str | None:
    """Why ``node`` cannot be made strict, or None."""
    if not isinstance(node, dict):
        return None
    if not where and ("anyOf" in node or "oneOf" in node):
        return "anyOf at the root"
    for key in _STRICT_IMPOSSIBLE:
        if key in node:
            return f"{where or '/'} uses {key}"
    extra = node.get("additionalProperties")
    if isinstance(extra, dict) or (extra is True and _is_object(node)):
        return f"{where or '/'} is a map with free keys (additionalProperties)"
    if _is_object(node) and not node.get("properties") and where:
        return f"{where} is an object with no declared properties"
    for path, sub in _children(node, where):
        reason = _strict_obstacle(sub, path)
        if reason:
            return reason
    return None


def _strict(node: dict, where: str, changes: list[str]) -> dict:
    here = where or "/"
    for key in _STRICT_DROPPED:
        if key in node:
            del node[key]
            changes.append(f"{here}: dropped {key}")
    if "format" in node and node["format"] not in _STRICT_FORMATS:
        changes.append(f"{here}: dropped format {node.pop('format')!r}")
    if "oneOf" in node:
        node["anyOf"] = node.pop("oneOf") + node.get("anyOf", [])
        changes.append(f"{here}: oneOf read as anyOf")
    for kw in _CHILD_MAPS:
        if isinstance(node.get(kw), dict):
            node[kw] = {k: _strict(v, f"{where}/{kw}/{k}", changes) if isinstance(v, dict) else v
                        for k, v in node[kw].items()}
    for kw in _CHILD_ONE:
        if isinstance(node.get(kw), dict):
            node[kw] = _strict(node[kw], f"{where}/{kw}", changes)
    for kw in _CHILD_LISTS:
        if isinstance(node.get(kw), list):
            node[kw] = [_strict(v, f"{where}/{kw}/{i}", changes) if isinstance(v, dict) else v
                        for i, v in enumerate(node[kw])]
    if _is_object(node):
        if node.get("additionalProperties") is not False:
            node["additionalProperties"] = False
            changes.append(f"{here}: additionalProperties: false added")
        props = node.setdefault("properties", {})
        required = [r for r in node.get("required", []) if r in props]
        optional = [p for p in props if p not in required]
        for name in optional:
            props[name] = _nullable(props[name])
        if optional:
            changes.append(f"{here}: optional {', '.join(optional)} made required and nullable")
        node["required"] = required + optional
    return node


def _nullable(schema: Any) -> Any:
    if not isinstance(schema, dict):
        return schema
    kind = schema.get("type")
    if isinstance(kind, str) and "enum" not in schema and "const" not in schema:
        return {**schema, "type": [kind, "null"]} if kind != "null" else schema
    if isinstance(kind, list) and "enum" not in schema:
        return schema if "null" in kind else {**schema, "type": kind + ["null"]}
    return {"anyOf": [schema, {"type": "null"}]}


def drop_added_nulls(args: Any, original: Any) -> Any:
    """The arguments minus the nulls strict mode made the model send for optional properties the
    server's own schema does not allow to be null."""
    if not isinstance(args, dict) or not isinstance(original, dict):
        return args
    props = original.get("properties") if isinstance(original.get("properties"), dict) else {}
    required = set(original.get("required") or [])
    out = {}
    for key, value in args.items():
        sub = props.get(key)
        if value is None and key not in required and not _allows_null(sub):
            continue
        out[key] = drop_added_nulls(value, sub) if isinstance(sub, dict) else value
    return out


def _allows_null(schema: Any) -> bool:
    if not isinstance(schema, dict):
        return schema is not False and schema is not None
    kind = schema.get("type")
    if kind is None and not any(k in schema for k in ("anyOf", "oneOf", "enum", "const")):
        return True
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return True
    if None in (schema.get("enum") or []):
        return True
    return any(_allows_null(s) for s in (schema.get("anyOf") or []) + (schema.get("oneOf") or []))


def _is_object(node: dict) -> bool:
    return _has_type(node, "object") or "properties" in node


def _has_type(node: dict, kind: str) -> bool:
    t = node.get("type")
    return t == kind or (isinstance(t, list) and kind in t)


def _children(node: Any, where: str):
    if not isinstance(node, dict):
        return
    for kw in _CHILD_MAPS:
        for k, v in (node.get(kw) or {}).items() if isinstance(node.get(kw), dict) else ():
            yield f"{where}/{kw}/{k}", v
    for kw in _CHILD_ONE:
        if isinstance(node.get(kw), dict):
            yield f"{where}/{kw}", node[kw]
    for kw in _CHILD_LISTS + ("allOf",):
        for i, v in enumerate(node.get(kw) or []) if isinstance(node.get(kw), list) else ():
            yield f"{where}/{kw}/{i}", v


def _rewrite_refs(node: Any, old: str, new: str) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(old):
            node["$ref"] = new + ref[len(old):]
        for value in node.values():
            _rewrite_refs(value, old, new)
    elif isinstance(node, list):
        for value in node:
            _rewrite_refs(value, old, new)
