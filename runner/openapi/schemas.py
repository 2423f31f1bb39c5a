"""OpenAPI schemas as self-contained JSON Schemas (2020-12) for a tool's ``parameters``.

A tool's parameters must stand alone. The schema of a parameter or request body is copied inline
(so an object body can be spread into arguments); the schemas it refers to are copied once each
under ``$defs`` at the root of the tool's parameters and referred to as ``#/$defs/NAME``, which
keeps a tool of a large API small and handles recursive types. OpenAPI 3.0 dialect is translated (``nullable``, boolean
``exclusiveMinimum``), request bodies lose their ``readOnly`` properties, annotations that only
lengthen what the model reads (``example``, ``xml``, ``x-*``...) are dropped, and a ``pattern``
that Python's ``re`` cannot compile is dropped (with a note) so ``flowrun validate`` passes.
"""

from __future__ import annotations

import re
from typing import Any

from runner.openapi.document import Spec

_DROPPED = frozenset({"example", "xml", "externalDocs", "discriminator", "nullable", "$schema", "$id",
                      "$anchor", "$dynamicAnchor", "$comment", "contentMediaType", "contentEncoding",
                      "$vocabulary"})
_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_ONE = ("items", "additionalProperties", "not", "if", "then", "else", "contains", "propertyNames",
        "unevaluatedProperties", "unevaluatedItems", "additionalItems")
_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")


class SchemaConverter:
    """Converts the schemas of one tool; ``defs`` collects what goes under the root ``$defs``."""

    def __init__(self, spec: Spec, *, request: bool = True):
        self.spec = spec
        self.request = request
        self.defs: dict[str, Any] = {}
        self.notes: list[str] = []
        self._def_names: dict[str, str] = {}  # $ref -> name under $defs
        self._pending: list[tuple[str, str]] = []

    def convert(self, schema: Any, where: str) -> Any:
        out = self._conv(schema, where, ())
        while self._pending:
            ref, name = self._pending.pop()
            if name not in self.defs:
                self.defs[name] = {}  # reserve: a def may refer to itself
                target = self.spec.pointer(ref, where)
                self.defs[name] = self._conv(target, where, (ref,))
        return out

    def _conv(self, schema: Any, where: str, stack: tuple[str, ...]) -> Any:
        if isinstance(schema, bool):
            return schema
        if not isinstance(schema, dict):
            return {}
        if isinstance(schema.get("$ref"), str):
            ref = schema["$ref"]
            siblings = {k: v for k, v in schema.items() if k != "$ref"}
            if stack:
                base: Any = {"$ref": "#/$defs/" + self._def_name(ref)}
            else:
                target = self.spec.pointer(ref, where)
                base = self._conv(target, where, stack + (ref,))
            if not siblings:
                return base
            extra = self._conv(siblings, where, stack)
            if "$ref" in base or not isinstance(base, dict):
                return {"allOf": [base, extra]} if extra else base
            merged = dict(base)
            for key, value in extra.items():
                if key == "required" and isinstance(merged.get("required"), list):
                    merged["required"] = merged["required"] + [r for r in value if r not in merged["required"]]
                else:
                    merged[key] = value
            return merged
        out: dict[str, Any] = {}
        for key, value in schema.items():
            key = str(key)
            if key in _DROPPED or key.startswith("x-"):
                continue
            if key in _MAPS and isinstance(value, dict):
                out[key] = {str(k): self._conv(v, where, stack) for k, v in value.items()}
            elif key in _ONE and isinstance(value, (dict, bool)):
                out[key] = self._conv(value, where, stack)
            elif key in _LISTS and isinstance(value, list):
                out[key] = [self._conv(v, where, stack) for v in value]
            elif key == "examples" and not isinstance(value, list):
                continue
            else:
                out[key] = value
        self._dialect(schema, out)
        self._drop_read_only(out)
        self._check_patterns(out, where)
        if isinstance(out.get("allOf"), list):
            out = merge_all_of(out)
        return out

    def _def_name(self, ref: str) -> str:
        name = self._def_names.get(ref)
        if name is None:
            base = re.sub(r"[^A-Za-z0-9_.-]", "_", ref.rsplit("/", 1)[-1]) or "schema"
            name, n = base, 2
            while name in self._def_names.values():
                name, n = f"{base}_{n}", n + 1
            self._def_names[ref] = name
            self._pending.append((ref, name))
        return name

    def _dialect(self, source: dict, out: dict) -> None:
        """OpenAPI 3.0 keywords in their JSON Schema 2020-12 form."""
        if source.get("nullable") is True:
            kind = out.get("type")
            if isinstance(kind, str):
                out["type"] = [kind, "null"]
                if isinstance(out.get("enum"), list) and None not in out["enum"]:
                    out["enum"] = out["enum"] + [None]
            elif kind is None and out:
                inner = dict(out)
                out.clear()
                out["anyOf"] = [inner, {"type": "null"}]
        for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            if isinstance(out.get(bound), bool):
                if out.pop(bound) and limit in out:
                    out[bound] = out.pop(limit)

    def _drop_read_only(self, out: dict) -> None:
        """A property the server sets (``readOnly``) is not something to send."""
        props = out.get("properties")
        if not self.request or not isinstance(props, dict):
            return
        gone = [k for k, v in props.items() if isinstance(v, dict) and v.get("readOnly") is True]
        for k in gone:
            del props[k]
        if gone and isinstance(out.get("required"), list):
            out["required"] = [r for r in out["required"] if r not in gone]

    def _check_patterns(self, out: dict, where: str) -> None:
        pattern = out.get("pattern")
        if isinstance(pattern, str):
            try:
                re.compile(pattern)
            except re.error:
                del out["pattern"]
                self.notes.append(f"{where}: dropped pattern {pattern!r} (not a Python regular expression)")
        pp = out.get("patternProperties")
        if isinstance(pp, dict):
            for key in list(pp):
                try:
                    re.compile(key)
                except re.error:
                    del pp[key]
                    self.notes.append(f"{where}: dropped patternProperties {key!r}")


def merge_all_of(schema: dict) -> dict:
    """``allOf`` of plain object schemas as one object schema (readable, and lets a request body
    be spread into arguments). Anything less plain is left as it is."""
    parts = schema["allOf"]
    if not all(isinstance(p, dict) and _is_plain_object(p) for p in parts):
        return schema
    merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
    props: dict[str, Any] = {}
    required: list[str] = []
    for part in parts:
        for key, value in part.items():
            if key == "properties":
                props.update(value)
            elif key == "required":
                required += [r for r in value if r not in required]
            elif key not in merged:
                merged[key] = value
    merged["type"] = "object"
    if props:
        merged["properties"] = {**props, **merged.get("properties", {})}
    if required or merged.get("required"):
        merged["required"] = list(dict.fromkeys(list(merged.get("required", [])) + required))
    return merged


def _is_plain_object(schema: dict) -> bool:
    allowed = {"type", "properties", "required", "description", "title", "additionalProperties"}
    return (schema.get("type") in (None, "object") and set(schema) <= allowed
            and schema.get("additionalProperties", True) is not False)


def is_object_with_properties(schema: Any) -> bool:
    return (isinstance(schema, dict) and schema.get("type") in ("object", None)
            and isinstance(schema.get("properties"), dict) and bool(schema["properties"])
            and not any(k in schema for k in ("anyOf", "oneOf", "allOf", "$ref", "not", "if")))
