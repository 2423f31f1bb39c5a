"""Safe YAML loading for workflow files that remembers where every value came from.

PyYAML's ``safe_load`` still follows YAML 1.1: ``NO`` and ``off`` become booleans, ``12:30`` becomes
750, ``2024-01-01`` a date, ``01234`` an octal number, and a repeated key silently replaces the first.
A workflow file is written by hand and read by people, so we let PyYAML's parser and composer build
the node tree (no tag is ever executed at that stage) and turn the nodes into plain JSON-like values
ourselves:

* plain scalars follow the YAML 1.2 core schema, a bit stricter: only ``true``/``false`` are booleans,
  numbers with a leading zero stay text, dates and times stay text;
* explicit tags other than the core ones (``!!str``, ``!!int``, ...) are refused, never run;
* duplicate keys, merge keys (``<<``), aliases beyond a budget, deep nesting, several documents,
  tabs, bad encodings and oversized files are each reported as a specific ``Problem``.

The result keeps a mark (line and column) for every JSON path, so later checks can point at the
exact key or value they complain about.
"""

from __future__ import annotations

import codecs
import hashlib
import math
import os
import re
import stat
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Union

import yaml
from yaml.composer import Composer
from yaml.events import AliasEvent, StreamEndEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader, ReaderError
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

from runner.errors import Problem

# Reading YAML costs time in proportion to its characters and, several times more, to its values
# (nodes): both are bounded, so a hostile file costs seconds, not minutes and gigabytes.
MAX_BYTES = 1024 * 1024  # refused before parsing
MAX_NODES = 20_000  # values (mappings, sequences, scalars, alias uses) in one file
MAX_ALIASES = 100  # alias uses (*name) in one file
MAX_EXPANDED = 10_000  # extra values that aliases may add once expanded
MAX_DEPTH = 100  # nesting of mappings and sequences

JsonPath = tuple[Union[str, int], ...]

_TAG = "tag:yaml.org,2002:"
_PLAIN = "flowrun:plain"  # our marker for untagged plain scalars, resolved by _plain_value
_INT = re.compile(r"[-+]?(0|[1-9][0-9]*)\Z")
_INT_OTHER = re.compile(r"0o[0-7]+\Z|0x[0-9a-fA-F]+\Z")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|(0|[1-9][0-9]*)(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")
_INF = re.compile(r"[-+]?\.(inf|Inf|INF)\Z")
_NAN = re.compile(r"\.(nan|NaN|NAN)\Z")
_NULLS = ("", "~", "null", "Null", "NULL")
_TRUE = ("true", "True", "TRUE")
_FALSE = ("false", "False", "FALSE")


@dataclass(frozen=True)
class Mark:
    """Where a value starts, and where its key starts when it sits in a mapping (1-based)."""

    line: int
    column: int
    key_line: int = 0
    key_column: int = 0


@dataclass
class Document:
    """A loaded workflow file: JSON-like ``data`` plus a mark for every path inside it."""

    file: str  # the name to show in messages, as given on the command line
    data: Any
    marks: dict[JsonPath, Mark] = field(default_factory=dict)
    sha256: str = ""  # of the file's bytes; empty for text loaded without a file

    def position(self, path: JsonPath, *, key: bool = False) -> tuple[int, int]:
        """(line, column) of the value at ``path`` (of its key with ``key=True``). A path that does
        not exist, such as a missing key, falls back to its nearest existing parent."""
        path = tuple(path)
        while path not in self.marks and path:
            path = path[:-1]
        mark = self.marks.get(path)
        if mark is None:
            return (0, 0)
        if key and mark.key_line:
            return (mark.key_line, mark.key_column)
        return (mark.line, mark.column)

    def problem(self, path: JsonPath, message: str, hint: str | None = None, *,
                key: bool = False, severity: str = "error") -> Problem:
        """A Problem located at ``path`` in this file."""
        line, column = self.position(path, key=key)
        return Problem(self.file, line, column, message, json_path(path), hint, severity)


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")


def json_path(path: JsonPath) -> str:
    """``("tools", 1, "resolve")`` -> ``$.tools[1].resolve``."""
    out = "$"
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENT.match(part):
            out += f".{part}"
        else:
            out += "[" + repr(part) + "]"
    return out


class _Stop(Exception):
    """A problem after which the file cannot be read any further."""

    def __init__(self, message: str, line: int = 0, column: int = 0, hint: str | None = None):
        super().__init__(message)
        self.problem = (line, column, message, hint)


class _Resolver(BaseResolver):
    """Leave every plain scalar untyped; ``_plain_value`` decides with YAML 1.2 core rules."""

    def resolve(self, kind, value, implicit):
        if kind is ScalarNode and implicit[0]:
            return _PLAIN
        return super().resolve(kind, value, implicit)


class _Limits:
    """The alias budget and the depth limit, on top of either event source."""

    alias_count = 0
    node_count = 0
    depth = 0

    def compose_node(self, parent, index):
        self.node_count += 1
        if self.node_count > MAX_NODES:
            mark = self.peek_event().start_mark
            raise _Stop(
                f"the file holds more than {MAX_NODES} YAML values",
                mark.line + 1,
                mark.column + 1,
                "a workflow file holds a few hundred values; move bulk data into a file a tool reads",
            )
        if self.check_event(AliasEvent):
            self.alias_count += 1
            if self.alias_count > MAX_ALIASES:
                mark = self.peek_event().start_mark
                raise _Stop(
                    f"YAML aliases exceed limit ({MAX_ALIASES})",
                    mark.line + 1,
                    mark.column + 1,
                    f"a workflow file may use at most {MAX_ALIASES} aliases (*name); "
                    "write the values out instead",
                )
        self.depth += 1
        if self.depth > MAX_DEPTH:
            mark = self.peek_event().start_mark
            raise _Stop(
                f"nesting deeper than {MAX_DEPTH} levels",
                mark.line + 1,
                mark.column + 1,
                "flatten the structure; no workflow needs this much nesting",
            )
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class _Composer(_Limits, Reader, Scanner, Parser, Composer, _Resolver):
    """PyYAML's pure-Python pipeline up to the node tree. It is the reference: its errors are the
    ones reported, and it runs whenever the fast pipeline is missing or refuses the text."""

    def __init__(self, text: str):
        Reader.__init__(self, text)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        _Resolver.__init__(self)


try:
    from yaml._yaml import CParser as _CParser
except ImportError:  # PyYAML built without libyaml
    _CParser = None

if _CParser is not None:

    class _FastComposer(_Limits, _CParser, Composer, _Resolver):
        """libyaml's scanner and parser (C) feeding PyYAML's composer (Python), so the node tree,
        the limits and the marks (line, column) are the same; only the tokenising, which is most
        of the cost of loading a file on every run, is done in C."""

        def __init__(self, text: str):
            _CParser.__init__(self, text)
            Composer.__init__(self)
            _Resolver.__init__(self)


def load_file(path: str | PathLike[str], *, file: str | None = None) -> tuple[Document | None, list[Problem]]:
    """Read and load a workflow file. Returns ``(None, problems)`` when nothing usable could be
    read; otherwise the document and any problems that did not stop reading (duplicate keys,
    unsupported tags), which still make the file invalid."""
    name = file if file is not None else str(path)
    p = Path(path)

    def fail(message: str, hint: str | None = None) -> tuple[None, list[Problem]]:
        return None, [Problem(name, 0, 0, message, "$", hint)]

    try:
        st = p.stat()
    except (FileNotFoundError, NotADirectoryError):
        return fail("file not found", "check the path and the current directory")
    except OSError as e:
        return fail(f"cannot read the file: {e.strerror or e}")
    if stat.S_ISDIR(st.st_mode):
        return fail("this is a directory, not a workflow file", "pass the .yaml files inside it, e.g. DIR/*.yaml")
    if not stat.S_ISREG(st.st_mode):  # checked before opening: opening a FIFO blocks until a writer comes
        return fail(f"this is {_special_kind(st.st_mode)}, not a regular file",
                    "a workflow is a .yaml file on disk; save what you want to run into one")
    too_big = (f"file is larger than {MAX_BYTES // (1024 * 1024)} MB", "a workflow file is a few kilobytes; check that this is the right file")
    if st.st_size > MAX_BYTES:
        return fail(*too_big)
    try:
        # Non-blocking, and checked again once open: the path may have been swapped for a FIFO.
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
        with os.fdopen(fd, "rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            if not stat.S_ISREG(mode):
                return fail(f"this is {_special_kind(mode)}, not a regular file")
            raw = f.read(MAX_BYTES + 1)  # the file may grow between stat and read
    except OSError as e:
        return fail(f"cannot read the file: {e.strerror or e}")
    if len(raw) > MAX_BYTES:
        return fail(*too_big)
    return load_bytes(raw, file=name)


def _special_kind(mode: int) -> str:
    kinds = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "a special file")


def load_bytes(raw: bytes, *, file: str = "<string>") -> tuple[Document | None, list[Problem]]:
    """Decode UTF-8 (a byte order mark is accepted and dropped) and load."""
    digest = hashlib.sha256(raw).hexdigest()
    body = raw[len(codecs.BOM_UTF8):] if raw.startswith(codecs.BOM_UTF8) else raw
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        line = body.count(b"\n", 0, e.start) + 1
        column = e.start - (body.rfind(b"\n", 0, e.start) + 1) + 1
        hint = "save the file as UTF-8"
        if body[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
            hint = "the file is UTF-16; save it as UTF-8"
        message = f"file is not UTF-8 text (byte 0x{body[e.start]:02x} at line {line}, column {column})"
        return None, [Problem(file, line, column, message, "$", hint)]
    doc, problems = load_text(text, file=file)
    if doc is not None:
        doc.sha256 = digest
    return doc, problems


def load_text(text: str, *, file: str = "<string>") -> tuple[Document | None, list[Problem]]:
    """Load YAML text; see ``load_file``. Never raises for bad input."""
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        root = _compose(text)
        if root is None or (isinstance(root, ScalarNode) and root.tag == _PLAIN and root.value in _NULLS):
            return None, [Problem(file, 0, 0, "workflow file is empty", "$",
                                  "start from workflows/weather.yaml, or run `flowrun schema` for the format")]
        _check_expansion(root)
        builder = _Builder(file)
        data = builder.value(root, ())
    except _Stop as stop:
        line, column, message, hint = stop.problem
        return None, [Problem(file, line, column, message, "$", hint)]
    except yaml.MarkedYAMLError as e:
        return None, [_syntax_problem(file, text, e)]
    except ReaderError as e:
        line = text.count("\n", 0, e.position) + 1
        column = e.position - (text.rfind("\n", 0, e.position) + 1) + 1
        message = f"character #x{e.character:04X} is not allowed in YAML ({e.reason})"
        return None, [Problem(file, line, column, message, "$", "remove the control character")]
    except yaml.YAMLError as e:
        return None, [Problem(file, 0, 0, f"cannot read the YAML: {e}", "$")]
    except RecursionError:
        return None, [Problem(file, 0, 0, "the YAML is nested too deeply to read", "$")]
    doc = Document(file, data, builder.marks)
    return doc, builder.problems


def _compose(text: str) -> Node | None:
    """The single document's root node, or None for an empty stream. The fast pipeline is tried
    first; anything it refuses (or anything unusual at all) is read again by the reference one,
    so every message about a bad file comes from the reference pipeline."""
    if _CParser is not None:
        try:
            return _compose_with(_FastComposer(text))
        except Exception:  # noqa: BLE001 - the reference pipeline decides, and explains
            pass
    return _compose_with(_Composer(text))


def _compose_with(loader) -> Node | None:
    try:
        loader.get_event()  # StreamStart
        if loader.check_event(StreamEndEvent):
            return None
        root = loader.compose_document()
        if not loader.check_event(StreamEndEvent):
            mark = loader.peek_event().start_mark
            raise _Stop(
                "expected a single YAML document, found a second one",
                mark.line + 1,
                mark.column + 1,
                "remove the '---' line (or put each workflow in its own file)",
            )
        return root
    finally:
        loader.dispose()


def _check_expansion(root: Node) -> None:
    """Refuse alias bombs before building anything: count the values the tree holds once aliases
    are expanded, visiting each distinct node once (so the count itself is cheap)."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise _Stop(
                "an anchor contains an alias to itself (recursive YAML alias)",
                node.start_mark.line + 1,
                node.start_mark.column + 1,
                "an alias (*name) cannot appear inside the value it names",
            )
        active.add(key)
        total = 1
        if isinstance(node, SequenceNode):
            total += sum(size(item) for item in node.value)
        elif isinstance(node, MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        active.discard(key)
        sizes[key] = total
        return total

    expanded = size(root)
    if expanded - len(sizes) > MAX_EXPANDED:
        raise _Stop(
            f"YAML aliases exceed limit ({MAX_EXPANDED})",
            root.start_mark.line + 1,
            root.start_mark.column + 1,
            f"expanded, the aliases (*name) here would add more than {MAX_EXPANDED} values; "
            "write the values out instead",
        )


class _Builder:
    """Turns nodes into dicts, lists, str, int, float, bool and None, recording marks."""

    def __init__(self, file: str):
        self.file = file
        self.marks: dict[JsonPath, Mark] = {}
        self.problems: list[Problem] = []

    def report(self, node: Node, path: JsonPath, message: str, hint: str | None = None,
               severity: str = "error") -> None:
        line, column = node.start_mark.line + 1, node.start_mark.column + 1
        self.problems.append(Problem(self.file, line, column, message, json_path(path), hint, severity))

    def value(self, node: Node, path: JsonPath, key_node: Node | None = None) -> Any:
        if len(path) > MAX_DEPTH:
            raise _Stop(f"nesting deeper than {MAX_DEPTH} levels once aliases are expanded",
                        node.start_mark.line + 1, node.start_mark.column + 1)
        mark = node.start_mark
        if key_node is not None:
            km = key_node.start_mark
            self.marks[path] = Mark(mark.line + 1, mark.column + 1, km.line + 1, km.column + 1)
        else:
            self.marks[path] = Mark(mark.line + 1, mark.column + 1)
        tag = node.tag
        if tag not in (_PLAIN, _TAG + "str", _TAG + "int", _TAG + "float", _TAG + "bool",
                       _TAG + "null", _TAG + "map", _TAG + "seq"):
            shown = "!!" + tag[len(_TAG):] if tag.startswith(_TAG) else tag
            self.report(node, path, f"unsupported YAML tag '{shown}' (line {mark.line + 1})",
                        "remove the tag: workflow files hold plain data only")
            tag = _PLAIN if isinstance(node, ScalarNode) else None
        if isinstance(node, MappingNode):
            if tag not in (None, _TAG + "map"):
                self.report(node, path, f"the tag '{node.tag}' does not fit a mapping", "remove the tag")
            return self.mapping(node, path)
        if isinstance(node, SequenceNode):
            if tag not in (None, _TAG + "seq"):
                self.report(node, path, f"the tag '{node.tag}' does not fit a list", "remove the tag")
            return [self.value(item, path + (i,)) for i, item in enumerate(node.value)]
        return self.scalar(node, tag, path)

    def mapping(self, node: MappingNode, path: JsonPath) -> dict[str, Any]:
        out: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        repeats = _repeated_keys(node)
        # A list item whose keys come again (more than one of them): the next item lost its "- ".
        # Say that once, rather than once per repeated key.
        lost_dash = bool(path) and isinstance(path[-1], int) and len(repeats) > 1
        if lost_dash:
            key_node, key, line = repeats[0]
            self.report(key_node, path + (key,),
                        f"key '{key}' comes a second time in this list item (first at line {line}): "
                        f"line {key_node.start_mark.line + 1} looks like the start of a new item without '- '",
                        f"write '- {key}:' to start a new item, or remove the repeated keys")
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self.report(key_node, path, "a key must be plain text, not a list or mapping",
                            "write the key as text")
                continue
            key = key_node.value
            if key == "<<" and key_node.tag == _PLAIN:
                self.report(key_node, path + (key,), "YAML merge keys (<<) are not supported",
                            "write the keys out, or reuse a whole value with an alias (key: *name)")
                continue
            if key in first_line:
                if not lost_dash:
                    self.report(key_node, path + (key,),
                                f"duplicate key '{key}' (first at line {first_line[key]})",
                                "remove one of them: YAML would silently keep only the last")
                continue
            first_line[key] = key_node.start_mark.line + 1
            out[key] = self.value(value_node, path + (key,), key_node)
        return out

    def scalar(self, node: ScalarNode, tag: str, path: JsonPath) -> Any:
        text = node.value
        if not node.style and text.endswith('"') and text.count('"') % 2 == 1:
            self.report(node, path, f"the value {text!r} ends with a \" that no quote opens",
                        'if the value is meant to be quoted, add the opening " where it starts; '
                        "otherwise remove the last \"", severity="warning")
        if tag == _PLAIN:
            return _plain_value(text)
        if tag == _TAG + "str":
            return text
        value = _plain_value(text)
        kind = tag[len(_TAG):]
        ok = {
            "int": isinstance(value, int) and not isinstance(value, bool),
            "float": isinstance(value, (int, float)) and not isinstance(value, bool),
            "bool": isinstance(value, bool),
            "null": value is None,
        }.get(kind, False)
        if not ok:
            self.report(node, path, f"cannot read {text!r} as !!{kind}", f"remove the !!{kind} tag or fix the value")
            return text
        return float(value) if kind == "float" else value


def _plain_value(text: str) -> Any:
    """YAML 1.2 core schema for an unquoted scalar, minus its surprises (see the module doc)."""
    if text in _NULLS:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if _INT.match(text):
        return int(text)
    if _INT_OTHER.match(text):
        return int(text, 0)
    if _FLOAT.match(text):
        return float(text)
    if _INF.match(text):
        return -math.inf if text.startswith("-") else math.inf
    if _NAN.match(text):
        return math.nan
    return text


_SYNTAX_HINTS = (
    ("'\\t'", "indent with spaces: YAML does not allow tabs here"),
    ("mapping values are not allowed", "a value that contains ': ' must be quoted, e.g. description: \"a: b\""),
    ("could not find expected ':'", "check the indentation of this line and the line before, or quote the value"),
    ("expected ',' or ']'", "close the list with ] (or quote a value that contains , [ ] { })"),
    ("expected ',' or '}'", "close the mapping with } (or quote a value that contains , [ ] { })"),
    ("undefined alias", "define the anchor (&name) before using it (*name)"),
    ("duplicate anchor", "give each anchor (&name) a different name"),
    ("cannot start any token", "quote the value: @ and ` cannot start a plain YAML value"),
    ("found unexpected end of stream", "close the quote or bracket opened earlier"),
    ("did not find expected key", "check the indentation: items of one mapping must line up"),
    ("did not find expected '-' indicator", "check the indentation: items of one list must line up"),
)


def _syntax_problem(file: str, text: str, e: yaml.MarkedYAMLError) -> Problem:
    """A PyYAML error as a Problem: position of the problem, with the context it was found in."""
    mark = e.problem_mark or e.context_mark
    line = mark.line + 1 if mark else 0
    column = mark.column + 1 if mark else 0
    problem = e.problem or e.context or "cannot read the YAML"
    lines = text.splitlines()
    if e.context == "while scanning a quoted scalar" and e.context_mark is not None:
        opened = e.context_mark
        quote = text[opened.index] if opened.index < len(text) else '"'
        return Problem(file, opened.line + 1, opened.column + 1,
                       f"this string opened at line {opened.line + 1} is never closed", "$",
                       f"end the value with {quote}; a {quote} inside it is written "
                       + ("''" if quote == "'" else '\\"'))
    over = _over_indented_key(lines, line, column) if "mapping values are not allowed" in problem else None
    if over is not None:
        key, before, indent = over
        return Problem(file, line, indent + 1,
                       f"key '{key}' is indented further than line {before}, as if it were inside that line's value",
                       "$", f"line it up with the key above it (indent it {_indent_of(lines[before - 1])} spaces)")
    if "'\\t'" in problem:
        message = f"tab character at line {line}, column {column}"
    else:
        message = problem
        if e.context and e.problem and e.context_mark:
            message += f" ({e.context} started at line {e.context_mark.line + 1}, column {e.context_mark.column + 1})"
    hint = next((h for key, h in _SYNTAX_HINTS if key in problem), "fix the YAML syntax at this position")
    if 0 < line <= len(lines) and "\t" in lines[line - 1][: len(lines[line - 1]) - len(lines[line - 1].lstrip())]:
        hint = "this line is indented with a tab; indent with spaces"
    return Problem(file, line, column, message, "$", hint)


def _repeated_keys(node: MappingNode) -> list[tuple[Node, str, int]]:
    """(key node, key, line of its first use) for each key that comes again in ``node``."""
    seen: dict[str, int] = {}
    out = []
    for key_node, _ in node.value:
        if isinstance(key_node, ScalarNode):
            if key_node.value in seen:
                out.append((key_node, key_node.value, seen[key_node.value]))
            else:
                seen[key_node.value] = key_node.start_mark.line + 1
    return out


def _indent_of(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _over_indented_key(lines: list[str], line: int, column: int) -> tuple[str, int, int] | None:
    """(key, line before, indent) when the ``: `` PyYAML refused starts a ``key:`` line that is
    indented further than the ``key: value`` line before it (the value there is already complete,
    so the key cannot belong to it); None for a value that merely contains ``: ``."""
    if not 0 < line <= len(lines):
        return None
    text = lines[line - 1]
    indent = _indent_of(text)
    key = text[indent : column - 1].rstrip()
    if not re.fullmatch(r"[A-Za-z_][\w.-]*", key):
        return None
    before = line - 1
    while before > 0 and (not lines[before - 1].strip() or lines[before - 1].lstrip().startswith("#")):
        before -= 1
    if before == 0:
        return None
    prev = lines[before - 1]
    if indent <= _indent_of(prev) or not re.match(r"\s*(- )?[\w.-]+:\s+\S", prev):
        return None
    return key, before, indent
