"""Checks the workflow JSON Schema cannot express: unique names, each tool's parameters as a JSON
Schema of its own, Python entrypoints, test cases that refer to tools and inputs (in the workflow
or in its NAME.test.yaml), and keys pasted into the file.

Every check reads the data defensively (a value may have the wrong shape, which the schema check
reports), so all problems are found in one pass.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

from jsonschema import Draft202012Validator

from runner.errors import Problem
from runner.jsonpointer import MISSING, resolve
from runner.workflow.entrypoints import EntrypointError, check_entrypoint_statically, load_entrypoint, parse_entrypoint
from runner.suggest import suggest
from runner.workflow.model import READ_METHODS
from runner.workflow.mcp_check import McpNames, mcp_names, mcp_problems, mock_mcp_problems
from runner.workflow.schema_check import KEY_LIKE, explain_errors, workflow_schema
from runner.workflow.template_check import strings, template_problems
from runner.workflow.yaml_loader import Document, JsonPath

LITERAL_KEY = "this looks like a literal API key; keys must never be in the workflow file"
_META = Draft202012Validator(Draft202012Validator.META_SCHEMA)
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SCHEMA_ONE = ("items", "additionalProperties", "not", "if", "then", "else", "contains", "propertyNames",
               "unevaluatedProperties", "unevaluatedItems", "additionalItems")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
# Every keyword of JSON Schema 2020-12 (validation, applicators, core and annotations); anything
# else in a tool's parameters is most likely a typo the model would silently ignore.
_SCHEMA_KEYWORDS = frozenset(Draft202012Validator.VALIDATORS) | {
    "$schema", "$id", "$anchor", "$dynamicAnchor", "$vocabulary", "$comment", "$defs", "definitions",
    "title", "description", "default", "examples", "deprecated", "readOnly", "writeOnly",
    "contentMediaType", "contentEncoding", "contentSchema", "dependencies", "additionalItems",
    "$recursiveRef", "$recursiveAnchor",
}


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def semantic_problems(doc: Document, *, folder: Path, resolve: bool = False) -> list[Problem]:
    """Every problem beyond the schema's reach. ``resolve`` also imports Python entrypoints."""
    data = doc.data
    tools = [(i, t) for i, t in enumerate(_list(data.get("tools"))) if isinstance(t, dict)]
    out: list[Problem] = []
    out += _duplicates(doc, "tools", "tool name", "give each tool its own name")
    out += _duplicates(doc, "tests", "test name", "give each test case its own name")
    for i, tool in tools:
        out += _parameter_problems(doc, i, tool)
        out += _bind_problems(doc, i, tool)
        out += _approval_problems(doc, i, tool)
        out += _python_problems(doc, i, tool, folder, resolve)
    out += mcp_problems(doc)
    out += _output_problems(doc, _dict(data.get("output")))
    out += template_problems(doc)
    out += _test_problems(doc, [t for _, t in tools], list(_dict(data.get("inputs"))), mcp_names(data))
    out += _model_problems(doc)
    out += _pasted_keys(doc)
    return out


def sibling_problems(doc: Document, workflow: Document) -> list[Problem]:
    """The checks of a workflow's ``tests:``, for its test file (NAME.test.yaml): tool and input
    names refer to ``workflow``, and a case name may not repeat one of the workflow's own."""
    data = _dict(workflow.data)
    tools = [t for t in _list(data.get("tools")) if isinstance(t, dict)]
    out = _duplicates(doc, "tests", "test name", "give each test case its own name")
    own = {}
    for i, case in enumerate(_list(data.get("tests"))):
        name = _dict(case).get("name")
        if isinstance(name, str):
            own.setdefault(name, workflow.position(("tests", i, "name"))[0])
    for i, case in enumerate(_list(doc.data.get("tests"))):
        name = _dict(case).get("name")
        if isinstance(name, str) and name in own:
            out.append(doc.problem(("tests", i, "name"),
                                   f"duplicate test name '{name}' (also at {workflow.file}:{own[name]})",
                                   "give each test case its own name, across the workflow and its test file"))
    out += template_problems(doc, workflow=data)
    out += _test_problems(doc, tools, list(_dict(data.get("inputs"))), mcp_names(data))
    out += _pasted_keys(doc)
    return out


def _pasted_keys(doc: Document) -> list[Problem]:
    return [doc.problem(path, LITERAL_KEY,
                        "remove it and rotate the key; put it in an environment variable and refer to "
                        "it with api_key_env (model) or ${{ env.NAME }} (tools)")
            for path, text in strings(doc.data) if KEY_LIKE.search(text)]


def _duplicates(doc: Document, section: str, what: str, hint: str) -> list[Problem]:
    first: dict[str, int] = {}
    out = []
    for i, item in enumerate(_list(doc.data.get(section))):
        name = _dict(item).get("name")
        if not isinstance(name, str):
            continue
        if name in first:
            lines = doc.position((section, first[name], "name"))[0], doc.position((section, i, "name"))[0]
            out.append(doc.problem((section, i, "name"), f"duplicate {what} '{name}' (lines {lines[0]}, {lines[1]})", hint))
        else:
            first[name] = i
    return out


def subschemas(schema: dict, path: JsonPath = ()) -> Iterator[tuple[JsonPath, dict]]:
    """Every schema object inside a JSON Schema (not the keyword maps between them), with paths."""
    yield path, schema
    for kw in _SCHEMA_MAPS:
        for name, sub in _dict(schema.get(kw)).items():
            if isinstance(sub, dict):
                yield from subschemas(sub, path + (kw, name))
    for kw in _SCHEMA_ONE:
        if isinstance(schema.get(kw), dict):
            yield from subschemas(schema[kw], path + (kw,))
    for kw in _SCHEMA_LISTS:
        for j, sub in enumerate(_list(schema.get(kw))):
            if isinstance(sub, dict):
                yield from subschemas(sub, path + (kw, j))


def _parameter_problems(doc: Document, i: int, tool: dict) -> list[Problem]:
    params = tool.get("parameters")
    if not isinstance(params, dict):
        return []
    found = _schema_problems(doc, ("tools", i, "parameters"), params, strict=tool.get("strict") is True, what="tools")
    return [_name_tool(p, tool.get("name", i)) for p in found]


# Keywords OpenAI's strict mode (Structured Outputs) refuses; the schema would be rejected.
STRICT_UNSUPPORTED = ("allOf", "not", "if", "then", "else", "dependentRequired", "dependentSchemas",
                      "patternProperties", "unevaluatedProperties", "unevaluatedItems", "propertyNames",
                      "contains", "minContains", "maxContains", "uniqueItems")


def _output_problems(doc: Document, output: dict) -> list[Problem]:
    """The output schema is a JSON Schema of its own; strict (the default) adds the API's subset:
    an object at the root, closed objects, every property required, supported keywords only."""
    schema = output.get("schema")
    if not isinstance(schema, dict):
        return []
    base: JsonPath = ("output", "schema")
    strict = output.get("strict", True) is True
    found = _schema_problems(doc, base, schema, strict=strict, what="schemas")
    if strict and schema.get("type") != "object":
        found.append(doc.problem(base, "a strict output schema needs type: object at the root",
                                 "wrap the answer in an object (type: object, properties: {...}), or set strict: false",
                                 key=True))
    if strict:
        for path, node in subschemas(schema):
            for kw in STRICT_UNSUPPORTED:
                if kw in node:
                    found.append(doc.problem(base + path + (kw,), f"strict mode does not support {kw}",
                                             f"remove {kw} (flowrun still validates the answer), or set strict: false",
                                             key=True))
    return [replace(p, message=f"output schema: {p.message}") for p in found]


def _schema_problems(doc: Document, base: JsonPath, params: dict, *, strict: bool, what: str) -> list[Problem]:
    """A JSON Schema in the file (tool parameters, the output schema) checked as one."""
    found = explain_errors(_META.iter_errors(params), doc, prefix=base)
    cycles: set[frozenset[str]] = set()
    for path, node in subschemas(params):
        found += _ref_problems(doc, params, base + path, node, cycles)
        found += _unknown_keywords(doc, base + path, node)
        pattern = node.get("pattern")
        for regex, where in [(pattern, ("pattern",))] + [(k, ("patternProperties", k)) for k in _dict(node.get("patternProperties"))]:
            if isinstance(regex, str):
                try:
                    re.compile(regex)
                except re.error as e:
                    found.append(doc.problem(base + path + where, f"invalid regular expression {regex!r}: {e}",
                                             "fix the pattern (Python regular expression syntax)"))
        props = node.get("properties")
        required = node.get("required")
        if isinstance(props, dict) and isinstance(required, list):
            for j, req in enumerate(required):
                if isinstance(req, str) and req not in props:
                    guess = suggest(req, props)
                    found.append(doc.problem(
                        base + path + ("required", j),
                        f"required lists '{req}', which properties does not declare"
                        + (f" (did you mean '{guess}'?)" if guess else ""),
                        "declare it under properties, or remove it from required"))
        if strict:
            found += _strict_problems(doc, base + path, node, root=not path, what=what)
    return found


def _bind_problems(doc: Document, i: int, tool: dict) -> list[Problem]:
    """A bound argument must be one the tool declares (it is removed from what the model sees)."""
    bind = tool.get("bind")
    if not isinstance(bind, dict):
        return []
    props = _dict(_dict(tool.get("parameters")).get("properties"))
    out = []
    for name in bind:
        if name not in props:
            guess = suggest(str(name), props)
            out.append(doc.problem(("tools", i, "bind", name),
                                   f"tool '{tool.get('name', i)}' binds '{name}', which its parameters do not declare"
                                   + (f" (did you mean '{guess}'?)" if guess else ""),
                                   "bind an argument listed under parameters.properties", key=True))
    return out


def _approval_problems(doc: Document, i: int, tool: dict) -> list[Problem]:
    """A rule must name an argument the tool declares: a misspelt name never matches, so a deny
    rule would silently refuse nothing. A JSON Pointer is checked by its first segment."""
    rules = _dict(tool.get("approval")).get("rules")
    props = _dict(_dict(tool.get("parameters")).get("properties"))
    out = []
    for j, rule in enumerate(_list(rules)):
        for action, match in _dict(rule).items():
            for key in _dict(match):
                name = str(key)[1:].split("/")[0].replace("~1", "/").replace("~0", "~") if str(key).startswith("/") else str(key)
                if name in props:
                    continue
                guess = suggest(name, props)
                out.append(doc.problem(
                    ("tools", i, "approval", "rules", j, action, key),
                    f"rule {j + 1} of tool '{tool.get('name', i)}' names '{key}', which its parameters do not declare"
                    + (f" (did you mean '{guess}'?)" if guess else "") + ": the rule would never match",
                    "name an argument listed under parameters.properties (or a JSON Pointer into one, e.g. /to/0)",
                    key=True))
    return out


def never_asks(tool: dict, file_default: Any) -> str | None:
    """Why a declared tool is never put to anyone (it always runs, or is always refused), or None
    when some call of it may ask. The file as written; the order of ``approval_policy.verdict``."""
    approval = tool.get("approval")
    spec = _dict(approval)
    if any("ask" in _dict(rule) for rule in _list(spec.get("rules"))):
        return None
    default = approval if isinstance(approval, str) else spec.get("default")
    where = f"tool '{tool.get('name')}' says approval: {default}"
    if default is None and isinstance(file_default, str):
        default, where = file_default, f"the file says approval: {file_default}"
    if default is None:
        resolver = _dict(tool.get("resolve"))
        if "http" in resolver:
            method = str(_dict(resolver["http"]).get("method", "GET")).upper()
            if method not in READ_METHODS:
                return None
            default, where = "allow", f"http {method} only reads"
        elif "static" in resolver or "python" in resolver:
            default, where = "allow", f"{'static' if 'static' in resolver else 'python'} tools run by default"
        else:
            return None  # an MCP tool: its server says whether it only reads
    if default == "ask":
        return None
    if _list(spec.get("rules")):
        return f"none of its rules asks and, when none matches, it {'runs' if default == 'allow' else 'is refused'} ({where})"
    return f"it {'always runs' if default == 'allow' else 'is always refused'} ({where})"


def _unused_case_answer(doc: Document, path: JsonPath, tool: dict, file_default: Any) -> list[Problem]:
    """A case answer for a tool that never asks is never used: the case reads as testing an
    approval that does not happen."""
    why = never_asks(tool, file_default)
    if why is None:
        return []
    return [doc.problem(path, f"the case answers the approval of '{tool.get('name')}', but {why}, so the answer is "
                              "never used", "remove the answer, or make the tool ask (approval: ask, or an ask: rule)",
                        key=True, severity="warning")]


def _unknown_keywords(doc: Document, path: JsonPath, node: dict) -> list[Problem]:
    out = []
    for key in node:
        if not isinstance(key, str) or key in _SCHEMA_KEYWORDS or key.startswith("x-"):
            continue
        if node[key] is None and " " in key:  # {description: The city, e.g. Paris}: the comma split it
            out.append(doc.problem(
                path + (key,), f"'{key}' became a keyword of its own: inside {{ }} a comma ends the value before it",
                'quote that value, e.g. description: "The city, e.g. Paris"', key=True))
            continue
        guess = suggest(key, _SCHEMA_KEYWORDS)
        out.append(doc.problem(
            path + (key,), f"unknown JSON Schema keyword '{key}'" + (f" (did you mean '{guess}'?)" if guess else ""),
            "fix the spelling; an argument's name goes under properties:, and a note of your own "
            "can start with x-", key=True))
    return out


def _name_tool(problem: Problem, tool: Any) -> Problem:
    return replace(problem, message=f"tool '{tool}' parameters: {problem.message}")


def _ref_problems(doc: Document, root: dict, path: JsonPath, node: dict, cycles: set[frozenset[str]]) -> list[Problem]:
    """A $ref must point inside the parameters, at something, and not only at more $refs in a
    loop (each loop is reported once, in ``cycles``)."""
    ref = node.get("$ref")
    if not isinstance(ref, str):
        return []
    where = path + ("$ref",)
    if not ref.startswith("#"):
        return [doc.problem(where, f"$ref {ref!r} points outside the tool's parameters",
                            "copy the schema under $defs and refer to it as #/$defs/NAME")]
    seen = [ref]
    target: Any = _pointer(root, ref[1:])
    while isinstance(target, dict) and isinstance(target.get("$ref"), str) and target["$ref"].startswith("#"):
        if target["$ref"] in seen:
            loop = frozenset(seen[seen.index(target["$ref"]):])
            if loop in cycles:
                return []
            cycles.add(loop)
            return [doc.problem(where, "$ref cycle: " + " -> ".join(seen + [target["$ref"]]),
                                "make one of them an actual schema")]
        seen.append(target["$ref"])
        target = _pointer(root, target["$ref"][1:])
    if target is None:
        defs = list(_dict(root.get("$defs")))
        guess = suggest(seen[-1].rsplit("/", 1)[-1], defs)
        return [doc.problem(where, f"$ref {seen[-1]!r} points at nothing" + (f" (did you mean '#/$defs/{guess}'?)" if guess else ""),
                            "refer to a schema under $defs, as #/$defs/NAME")]
    return []


def _pointer(doc: Any, pointer: str) -> Any:
    """Resolve a JSON Pointer, or None."""
    value = resolve(doc, pointer)
    return None if value is MISSING else value
    if not pointer.startswith("/"):
        return None
    for part in pointer[1:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(doc, dict) and part in doc:
            doc = doc[part]
        elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        else:
            return None
    return doc


def _strict_problems(doc: Document, path: JsonPath, node: dict, *, root: bool, what: str = "tools") -> list[Problem]:
    """OpenAI strict mode: closed objects, every property required, no anyOf at the root."""
    out = []
    if root and "anyOf" in node:
        out.append(doc.problem(path + ("anyOf",), f"strict {what} cannot use anyOf at the root",
                               "move the alternatives into a property, or set strict: false"))
    kind = node.get("type")
    if kind == "object" or (isinstance(kind, list) and "object" in kind) or "properties" in node:
        if node.get("additionalProperties") is not False:
            out.append(doc.problem(path, f"strict {what} need additionalProperties: false on every object",
                                   "add additionalProperties: false here, or set strict: false", key=True))
        missing = [p for p in _dict(node.get("properties")) if p not in _list(node.get("required"))]
        if missing:
            out.append(doc.problem(path, f"strict {what} must list every property in required (missing: "
                                   + ", ".join(missing) + ")",
                                   "list them in required; an optional one takes type: [string, \"null\"]", key=True))
    return out


def _python_problems(doc: Document, i: int, tool: dict, folder: Path, resolve: bool) -> list[Problem]:
    ref = _dict(tool.get("resolve")).get("python")
    schema = workflow_schema()["$defs"]["resolve"]["properties"]["python"]
    if not isinstance(ref, str) or not re.search(schema["pattern"], ref):
        return []  # the schema check reports it
    path = ("tools", i, "resolve", "python")
    try:
        parse_entrypoint(ref)
        if resolve:
            load_entrypoint(ref, folder)
        else:
            check_entrypoint_statically(ref, folder)
    except EntrypointError as e:
        return [doc.problem(path, e.message, e.hint, severity=e.severity)]
    risky = stdlib_process_or_file_api(ref)
    if risky:
        return [doc.problem(path, f"{ref!r} is {risky}: the model would call it with arguments of its "
                            "choosing", "write a small function that does "
                            "only what the tool needs and checks its arguments, and name that here",
                            severity="warning")]
    return []


# Entrypoints into the standard library's process and file APIs: a model calling one of these
# runs commands or touches files with arguments it chose. ``module: None`` means every function.
_RISKY_MODULES = {
    "os": ("a process and file API", {"system", "popen", "remove", "unlink", "rmdir", "removedirs",
                                          "rename", "renames", "replace", "kill", "killpg", "chmod",
                                          "chown", "truncate", "open", "write", "putenv", "unsetenv"}),
    "subprocess": ("a process API", None),
    "shutil": ("a file API", {"rmtree", "move", "copy", "copy2", "copyfile", "copytree", "chown",
                                  "make_archive", "unpack_archive", "disk_usage", "which"}),
    "pty": ("a process API", None),
    "posix": ("a process and file API", None),
    "nt": ("a process and file API", None),
    "builtins": ("a file and code-execution API", {"open", "exec", "eval", "compile", "__import__"}),
    "io": ("a file API", {"open", "open_code"}),
    "pathlib": ("a file API", None),
    "tempfile": ("a file API", None),
    "multiprocessing": ("a process API", None),
    "runpy": ("a code-execution API", None),
    "code": ("a code-execution API", None),
}


def stdlib_process_or_file_api(ref: str) -> str | None:
    """What ``module:function`` exposes when it names a standard-library process or file API
    (``os:system``, ``subprocess:getoutput``, ``shutil:rmtree``), else None."""
    module, _, attr = ref.partition(":")
    entry = _RISKY_MODULES.get(module)
    if entry is None:
        return None
    what, names = entry
    head = attr.split(".")[0]
    if names is None or head in names or attr.startswith("_"):
        return f"{what} of Python's standard library"
    return None


def _test_problems(doc: Document, tools: list[dict], inputs: list[str], mcp: McpNames) -> list[Problem]:
    """Test cases (``doc``'s ``tests:``) against the workflow's ``tools`` and ``inputs``; a name
    an MCP source may bring is not unknown (its server says which tools it has)."""
    by_name = {t["name"]: t for t in tools if isinstance(t.get("name"), str)}
    out: list[Problem] = []

    def unknown_tool(path: JsonPath, name: Any, severity: str, *, key: bool = False) -> None:
        if isinstance(name, str) and name not in by_name and not mcp.may_exist(name):
            guess = suggest(name, list(by_name) + sorted(mcp.exact))
            hint = ("fine if the test checks how an unknown tool is handled; otherwise fix the name"
                    if severity == "warning" else "name one of the workflow's tools")
            out.append(doc.problem(path, f"the workflow has no tool '{name}'" + (f" (did you mean '{guess}'?)" if guess else ""),
                                   hint, key=key, severity=severity))

    for t, case in enumerate(_list(doc.data.get("tests"))):
        case = _dict(case)
        base: JsonPath = ("tests", t)
        for j, turn in enumerate(_list(case.get("turns"))):
            for k, call in enumerate(_list(_dict(turn).get("tool_calls"))):
                unknown_tool(base + ("turns", j, "tool_calls", k, "name"), _dict(call).get("name"), "warning")
        expect = _dict(case.get("expect"))
        for k, name in enumerate(_list(expect.get("error_outputs"))):
            unknown_tool(base + ("expect", "error_outputs", k), name, "error")
        for k, name in enumerate(_list(expect.get("refused"))):
            unknown_tool(base + ("expect", "refused", k), name, "error")
        for name in _dict(case.get("approvals")):
            unknown_tool(base + ("approvals", name), name, "error", key=True)
            if name in by_name:
                out += _unused_case_answer(doc, base + ("approvals", name), by_name[name], doc.data.get("approval"))
        for k, call in enumerate(_list(expect.get("tool_calls"))):
            unknown_tool(base + ("expect", "tool_calls", k, "name"), _dict(call).get("name"), "warning")
        for name, check in _dict(expect.get("outputs")).items():
            unknown_tool(base + ("expect", "outputs", name), name, "error", key=True)
            out += _regex_problems(doc, base + ("expect", "outputs", name), check)
        out += _regex_problems(doc, base + ("expect", "final_text"), expect.get("final_text"))
        out += mock_mcp_problems(doc, base, case, mcp)
        for k, check in enumerate(_list(expect.get("output"))):
            out += _regex_problems(doc, base + ("expect", "output", k), check)
        for name in _dict(case.get("mock_http")):
            path = base + ("mock_http", name)
            unknown_tool(path, name, "error", key=True)
            resolver = _dict(by_name.get(name, {}).get("resolve"))
            if name not in by_name and mcp.may_exist(name):
                out.append(doc.problem(path, f"mock_http is for http tools; '{name}' would come from an MCP server",
                                       "give MCP tools canned results under mock_mcp: SERVER: TOOL:", key=True))
            elif name in by_name and resolver and "http" not in resolver:
                out.append(doc.problem(path, f"mock_http is for http tools; '{name}' uses {next(iter(resolver))}",
                                       "remove this mock", key=True))
        for name in _dict(case.get("vars")):
            if name not in inputs:
                guess = suggest(name, inputs)
                out.append(doc.problem(base + ("vars", name), f"vars sets '{name}', which inputs does not declare"
                                       + (f" (did you mean '{guess}'?)" if guess else ""),
                                       "declare it under inputs:, or fix the name", key=True))
    return out


def _regex_problems(doc: Document, path: JsonPath, check: Any) -> list[Problem]:
    pattern = _dict(check).get("matches")
    if not isinstance(pattern, str):
        return []
    try:
        re.compile(pattern)
    except re.error as e:
        return [doc.problem(path + ("matches",), f"invalid regular expression: {e}",
                            "fix the pattern (Python regular expression syntax)")]
    return []


def _model_problems(doc: Document) -> list[Problem]:
    model = _dict(doc.data.get("model"))
    api = model.get("api", "responses")
    out = []
    for key, only in (("assistant_id", "assistants"), ("store", "responses")):
        if key in model and api != only:
            out.append(doc.problem(("model", key), f"{key} only applies to api: {only}; it is ignored with api: {api}",
                                   f"remove {key}, or set api: {only}", key=True, severity="warning"))
    return out
