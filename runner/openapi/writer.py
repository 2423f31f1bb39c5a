"""Put imported tools into a workflow file so that a ``git diff`` shows only them.

The file is parsed with ruamel.yaml's round-trip loader only to learn where things are (the line of
each top-level key and each tool). Text is then spliced: a new tool is rendered on its own and
inserted after the last tool; a tool imported before (same ``openapi:`` operation) is re-rendered
from its own lines merged with the new data, and put back in place; nothing else in the file is
re-emitted, so its comments, order, quoting and flow styles stay byte for byte. A re-import that
changes nothing leaves the file untouched.

The merge keeps what a person wrote: the tool's name, every ``description``, ``bind`` entries and
any key the import does not produce (``timeout``, ``extract``...). What the API defines (URL,
method, query, headers, body, argument types, required) is refreshed.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import FoldedScalarString, LiteralScalarString

from runner.errors import UsageError

FOLD_AT = 90


@dataclass
class Placement:
    added: list[str] = field(default_factory=list)  # tool names
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    inputs_added: list[str] = field(default_factory=list)


def _yaml() -> YAML:
    y = YAML(typ="rt")
    y.indent(mapping=2, sequence=4, offset=2)
    y.width = 96
    y.preserve_quotes = True
    return y


def parse(text: str, file: str) -> Any:
    try:
        data = _yaml().load(text)
    except YAMLError as e:
        raise UsageError(f"{file} is not valid YAML: {e}",
                         hint="fix it first (flowrun validate shows where)") from None
    if data is None:
        return CommentedMap()
    if not isinstance(data, CommentedMap):
        raise UsageError(f"{file} is not a workflow (expected a mapping at the top)")
    return data


def existing_tools(data: Any) -> list[Any]:
    tools = data.get("tools") if isinstance(data, dict) else None
    return list(tools) if isinstance(tools, list) else []


def place_tools(text: str, file: str, tools: list[dict], inputs: dict[str, dict],
                data: Any = None) -> tuple[str, Placement]:
    """``text`` with ``tools`` added or updated in place (matched by their ``openapi`` key) and the
    missing ``inputs`` declared. ``data`` is ``parse(text)`` when the caller has it already."""
    result = Placement()
    data = parse(text, file) if data is None else data
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    seq = data.get("tools") if isinstance(data.get("tools"), CommentedSeq) else None
    by_ref = {}
    if seq is not None:
        for i, item in enumerate(seq):
            if isinstance(item, dict) and isinstance(item.get("openapi"), str):
                by_ref.setdefault(item["openapi"], i)
    edits: list[tuple[int, int, list[str]]] = []  # (first line, end line exclusive, new lines)
    new_items = []
    for tool in tools:
        i = by_ref.get(tool["openapi"])
        if i is None:
            new_items.append(tool)
            result.added.append(tool["name"])
            continue
        if not _merge(seq[i], tool, apply=False):  # the usual re-import: skip the item's round trip
            result.unchanged.append(str(seq[i].get("name")))
            continue
        start, end = _item_range(lines, data, seq, i)
        replacement = _updated_item(lines[start:end], tool, file)
        if replacement is None:
            result.unchanged.append(str(seq[i].get("name")))
        else:
            edits.append((start, end, replacement))
            result.updated.append(str(seq[i].get("name")))
    if new_items:
        edits.append(_insertion(lines, data, "tools", new_items, _render_items))
    missing = {k: v for k, v in inputs.items() if not (isinstance(data.get("inputs"), dict) and k in data["inputs"])}
    if missing:
        edits.append(_insertion(lines, data, "inputs", missing, _render_inputs))
        result.inputs_added = list(missing)
    if not edits:
        return text, result
    for start, end, new in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        lines[start:end] = new
    return "".join(lines), result


# --- where things are ------------------------------------------------------------------------


def _top_keys(data: CommentedMap) -> list[tuple[int, str]]:
    return sorted((data.lc.key(k)[0], k) for k in data)


def _next_key_line(data: CommentedMap, key: str, total: int) -> int:
    line = data.lc.key(key)[0]
    later = [ln for ln, _ in _top_keys(data) if ln > line]
    return min(later) if later else total


def _trim_end(lines: list[str], start: int, end: int, indent: int) -> int:
    """Exclusive end of a block's content: trailing blank lines, and comments indented at most
    ``indent`` (they introduce what follows), belong to the next block."""
    while end > start:
        text = lines[end - 1]
        stripped = text.strip()
        if not stripped or (stripped.startswith("#") and len(text) - len(text.lstrip()) <= indent):
            end -= 1
        else:
            break
    return end


def _dash_column(line: str, key_col: int) -> int:
    pos = line.rfind("-", 0, key_col)
    return pos if pos >= 0 else max(key_col - 2, 0)


def _item_range(lines: list[str], data: CommentedMap, seq: CommentedSeq, i: int) -> tuple[int, int]:
    line, key_col = seq.lc.item(i)
    dash = _dash_column(lines[line], key_col)
    if i + 1 < len(seq):
        end = seq.lc.item(i + 1)[0]
    else:
        end = _next_key_line(data, "tools", len(lines))
    return line, _trim_end(lines, line + 1, end, dash)


# --- rendering -------------------------------------------------------------------------------


def _styled(value: Any, key: str = "") -> Any:
    """Plain data as ruamel nodes in the project's style: short scalar lists in flow style,
    long text folded, multi-line text as a literal block."""
    if isinstance(value, dict):
        out = CommentedMap()
        for k, v in value.items():
            out[k] = _styled(v, str(k))
        return out
    if isinstance(value, list):
        seq = CommentedSeq([_styled(v) for v in value])
        if all(isinstance(v, (str, int, float, bool)) or v is None for v in value) and len(repr(value)) < 70:
            seq.fa.set_flow_style()
        return seq
    if isinstance(value, str) and "${{" not in value:
        if "\n" in value and not re.search(r"[ \t]\n|[ \t]$|\r", value):
            return LiteralScalarString(value)
        if len(value) > FOLD_AT and "  " not in value and not value.endswith(" ") and key == "description":
            return FoldedScalarString(value)
    return value


def _dump_mapping(mapping: Any) -> list[str]:
    buf = io.StringIO()
    _yaml().dump(mapping, buf)
    return buf.getvalue().splitlines(keepends=True)


def _as_item(body: list[str], dash: int) -> list[str]:
    """A dumped mapping as one sequence item whose dash sits at column ``dash``."""
    pad = " " * (dash + 2)
    out = []
    for j, line in enumerate(body):
        if not line.strip():
            out.append("\n")
        elif j == 0:
            out.append(" " * dash + "- " + line)
        else:
            out.append(pad + line)
    return out


def _render_items(items: list[dict], dash: int, separate: bool) -> list[str]:
    out: list[str] = []
    for n, tool in enumerate(items):
        if separate or n:
            out.append("\n")
        out += _as_item(_dump_mapping(_styled(tool)), dash)
    return out


def _render_inputs(inputs: dict[str, dict], indent: int, separate: bool) -> list[str]:
    body = _dump_mapping(_styled(inputs))
    return [(" " * indent + line) if line.strip() else "\n" for line in body]


def _insertion(lines: list[str], data: CommentedMap, key: str, payload: Any, render) -> tuple[int, int, list[str]]:
    """An edit adding ``payload`` at the end of the top-level block ``key``, creating it if needed."""
    value = data.get(key)
    block = isinstance(value, (CommentedSeq, CommentedMap)) and len(value) > 0 and not value.fa.flow_style()
    if block:
        first_line, first_col = value.lc.item(0) if isinstance(value, CommentedSeq) else value.lc.key(next(iter(value)))
        indent = _dash_column(lines[first_line], first_col) if isinstance(value, CommentedSeq) else first_col
        end = _trim_end(lines, data.lc.key(key)[0] + 1, _next_key_line(data, key, len(lines)), 0)
        return end, end, render(payload, indent, isinstance(value, CommentedSeq))
    new = [f"{key}:\n"] + render(payload, 2, False)
    if key in data:  # empty, null or flow style: rewrite the key's own lines
        start = data.lc.key(key)[0]
        end = _trim_end(lines, start + 1, _next_key_line(data, key, len(lines)), 0)
        return start, end, new
    before = [k for k in (("tools", "tests") if key == "inputs" else ("tests",)) if k in data]
    if before:
        at = min(data.lc.key(k)[0] for k in before)
        # keep the comments that introduce the next key above it
        while at > 0 and lines[at - 1].lstrip().startswith("#"):
            at -= 1
        return at, at, new + ["\n"]
    pad = [] if not lines or not lines[-1].strip() else ["\n"]
    return len(lines), len(lines), pad + new


# --- re-import -------------------------------------------------------------------------------


def _updated_item(item_lines: list[str], tool: dict, file: str) -> list[str] | None:
    """The item's lines with ``tool`` merged in, or None when nothing changes."""
    first = item_lines[0]
    key_col = len(first) - len(first.lstrip(" -"))
    dash = _dash_column(first, key_col)
    body = [first[:dash] + " " + first[dash + 1:]] + item_lines[1:]
    dedented = [ln[key_col:] if ln[:key_col].strip() == "" else ln.lstrip() for ln in body]
    existing = parse("".join(dedented), file)
    if not _merge(existing, tool):
        return None
    return _as_item(_dump_mapping(existing), dash)


def _merge(existing: CommentedMap, new: dict, path: tuple[str, ...] = (), *, apply: bool = True) -> bool:
    """Merge ``new`` into ``existing`` in place; True if anything changed (``apply=False``: only
    say whether it would). The tool's name and the descriptions (of the tool and of its
    arguments) stay as the file has them."""
    changed = False
    for key, value in new.items():
        kept = (key == "name" and not path) or (key == "description" and "resolve" not in path)
        if kept and isinstance(existing.get(key), str):
            continue
        if isinstance(value, dict) and isinstance(existing.get(key), CommentedMap):
            changed |= _merge(existing[key], value, path + (key,), apply=apply)
        elif key not in existing or _plain(existing[key]) != value:
            if not apply:
                return True
            existing[key] = _styled(value, key)
            changed = True
        if changed and not apply:
            return True
    return changed


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return value
