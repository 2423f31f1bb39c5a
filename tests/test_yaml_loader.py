"""The safe YAML loader: no code runs, no YAML 1.1 surprises, every bad file a specific Problem."""

from __future__ import annotations

import os

import codecs
import hashlib
from pathlib import Path

import pytest
import yaml

from runner.workflow import yaml_loader
from runner.workflow.yaml_loader import MAX_ALIASES, MAX_BYTES, MAX_DEPTH, MAX_NODES, json_path, load_bytes, load_file, load_text

ROOT = Path(__file__).resolve().parent.parent


def load_ok(text: str):
    doc, problems = load_text(text, file="w.yaml")
    assert problems == [], [p.format() for p in problems]
    assert doc is not None
    return doc


def only_problem(text: str):
    doc, problems = load_text(text, file="w.yaml")
    assert len(problems) == 1, [p.format() for p in problems]
    return doc, problems[0]


@pytest.mark.parametrize(
    "scalar, expected",
    [
        ("NO", "NO"), ("no", "no"), ("yes", "yes"), ("on", "on"), ("off", "off"), ("Y", "Y"),
        ("true", True), ("False", False), ("TRUE", True),
        ("01234", "01234"), ("0777", "0777"), ("12:30", "12:30"), ("1:20:30", "1:20:30"),
        ("2024-01-01", "2024-01-01"), ("2001-12-14t21:59:43.10-05:00", "2001-12-14t21:59:43.10-05:00"),
        ("1_000", "1_000"), ("1.10", 1.1), ("1", 1), ("-12", -12), ("+3", 3), ("0", 0),
        ("1e3", 1000.0), (".5", 0.5), ("0x1F", 31), ("0o17", 15),
        ("~", None), ("null", None), ("", None), ("NaN", "NaN"), ("=", "="), ("<<x", "<<x"),
    ],
)
def test_plain_scalars_follow_yaml_1_2_core_without_surprises(scalar, expected):
    assert load_ok(f"v: {scalar}\n").data["v"] == expected


def test_quoted_scalars_are_always_text():
    data = load_ok("a: 'true'\nb: \"12\"\nc: '01234'\n").data
    assert data == {"a": "true", "b": "12", "c": "01234"}


def test_norway_enum_stays_strings():
    assert load_ok("enum: [NO, SE, DK]\n").data == {"enum": ["NO", "SE", "DK"]}


@pytest.mark.parametrize(
    "text, expected",
    [("v: !!str 12\n", "12"), ("v: !!int '12'\n", 12), ("v: !!float 1\n", 1.0), ("v: !!bool true\n", True),
     ("v: !!null ''\n", None), ("v: !!seq [1]\n", [1]), ("v: !!map {a: 1}\n", {"a": 1})],
)
def test_core_tags_are_accepted(text, expected):
    assert load_ok(text).data["v"] == expected


def test_core_tag_with_a_value_that_does_not_fit_is_a_problem():
    _, problem = only_problem("v: !!int abc\n")
    assert "cannot read 'abc' as !!int" in problem.message
    assert (problem.line, problem.column, problem.path) == (1, 4, "$.v")


def test_unsafe_python_tags_are_refused_and_never_run(tmp_path):
    canary = tmp_path / "canary"
    text = (
        f"a: !!python/object/apply:os.system ['touch {canary}']\n"
        f"b: !!python/object/apply:builtins.open ['{canary}', 'w']\n"
        "c: !!python/name:os.system\n"
        "d: !custom thing\n"
        "e: !!binary aGVsbG8=\n"
        "f: !!timestamp 2001-12-14\n"
    )
    doc, problems = load_text(text, file="w.yaml")
    assert not canary.exists()
    messages = [p.message for p in problems]
    assert messages == [
        "unsupported YAML tag '!!python/object/apply:os.system' (line 1)",
        "unsupported YAML tag '!!python/object/apply:builtins.open' (line 2)",
        "unsupported YAML tag '!!python/name:os.system' (line 3)",
        "unsupported YAML tag '!custom' (line 4)",
        "unsupported YAML tag '!!binary' (line 5)",
        "unsupported YAML tag '!!timestamp' (line 6)",
    ]
    assert [(p.line, p.column) for p in problems] == [(i, 4) for i in range(1, 7)]
    # the data that remains is inert: plain text and lists, nothing constructed
    assert doc.data["a"] == [f"touch {canary}"]
    assert doc.data["f"] == "2001-12-14"


def test_duplicate_keys_name_both_lines():
    doc, problems = load_text("a: 1\nb:\n  url: x\n  c: 2\n  url: y\na: 3\n", file="w.yaml")
    assert [(p.line, p.column, p.message, p.path) for p in problems] == [
        (5, 3, "duplicate key 'url' (first at line 3)", "$.b.url"),
        (6, 1, "duplicate key 'a' (first at line 1)", "$.a"),
    ]
    assert doc.data == {"a": 1, "b": {"url": "x", "c": 2}}  # the first value, never silently the last


def test_alias_bomb_is_refused_before_expansion():
    text = 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for i in range(1, 9):
        text += f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]\n"
    doc, problem = only_problem(text)
    assert doc is None
    assert problem.message == f"YAML aliases exceed limit ({yaml_loader.MAX_EXPANDED})"


def test_too_many_aliases_are_refused():
    text = "a: &x 1\nb: [" + ", ".join(["*x"] * (MAX_ALIASES + 1)) + "]\n"
    doc, problem = only_problem(text)
    assert doc is None
    assert problem.message == f"YAML aliases exceed limit ({MAX_ALIASES})"
    assert problem.line == 2


def test_small_aliases_are_expanded_with_marks_for_each_copy():
    doc = load_ok("base: &b {type: string}\nprops:\n  a: *b\n  b: *b\n")
    assert doc.data["props"] == {"a": {"type": "string"}, "b": {"type": "string"}}
    assert doc.data["props"]["a"] is not doc.data["props"]["b"]  # copies, safe to change
    assert doc.position(("props", "b", "type")) == (1, 17)  # where the value was written


def test_recursive_alias_is_refused():
    doc, problem = only_problem("a: &a [1, *a]\n")
    assert doc is None
    assert "recursive YAML alias" in problem.message


def test_merge_keys_are_refused():
    _, problem = only_problem("base: &b {x: 1}\nc:\n  <<: *b\n  y: 2\n")
    assert problem.message == "YAML merge keys (<<) are not supported"
    assert (problem.line, problem.column) == (3, 3)


def test_a_key_must_be_text():
    _, problem = only_problem("? [a, b]\n: 1\n")
    assert "a key must be plain text" in problem.message


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n", "--- ~\n", "null\n"])
def test_empty_files(text):
    doc, problem = only_problem(text)
    assert doc is None
    assert problem.message == "workflow file is empty"


def test_multi_document_stream():
    doc, problem = only_problem("a: 1\n---\nb: 2\n")
    assert doc is None
    assert problem.message == "expected a single YAML document, found a second one"
    assert (problem.line, problem.column) == (2, 1)


def test_a_leading_document_marker_is_fine():
    assert load_ok("---\na: 1\n...\n").data == {"a": 1}


def test_tab_indentation():
    doc, problem = only_problem("name: x\n\tversion: 1\n")
    assert doc is None
    assert problem.message == "tab character at line 2, column 1"
    assert (problem.line, problem.column) == (2, 1)
    assert "spaces" in problem.hint


def test_tabs_inside_text_are_fine():
    assert load_ok("a: \"x\\ty\"\nb: |\n  one\ttwo\n").data == {"a": "x\ty", "b": "one\ttwo\n"}


def test_syntax_error_has_position_and_context():
    doc, problem = only_problem("name: x\ntools: [a, b\nversion: 1\n")
    assert doc is None
    assert (problem.line, problem.column) == (3, 8)
    assert problem.message.startswith("expected ',' or ']'")
    assert "flow sequence started at line 2, column 8" in problem.message


def test_control_character():
    doc, problem = only_problem("a: b\x07\n")
    assert doc is None
    assert (problem.line, problem.column) == (1, 5)
    assert "#x0007" in problem.message


def test_utf8_bom_is_accepted():
    doc, problems = load_bytes(codecs.BOM_UTF8 + b"a: caf\xc3\xa9\n", file="w.yaml")
    assert problems == []
    assert doc.data == {"a": "café"}
    assert doc.position(("a",)) == (1, 4)
    assert load_ok("\ufeffa: 1\n").data == {"a": 1}


def test_non_utf8_bytes_point_at_the_byte():
    doc, problems = load_bytes(b"a: b\nc: caf\xe9\n", file="w.yaml")
    assert doc is None
    assert [(p.line, p.column, p.message) for p in problems] == [
        (2, 7, "file is not UTF-8 text (byte 0xe9 at line 2, column 7)")
    ]


def test_utf16_gets_a_specific_hint():
    doc, problems = load_bytes("a: 1\n".encode("utf-16"), file="w.yaml")
    assert doc is None
    assert "UTF-16" in problems[0].hint


def test_nesting_limit_is_a_problem_not_a_crash():
    doc, problem = only_problem("a: " + "[" * 5000 + "]" * 5000 + "\n")
    assert doc is None
    assert problem.message == f"nesting deeper than {MAX_DEPTH} levels"
    block = "".join("  " * i + f"k{i}:\n" for i in range(MAX_DEPTH + 5))
    doc, problem = only_problem(block)
    assert problem.message == f"nesting deeper than {MAX_DEPTH} levels"


def test_aliases_cannot_build_nesting_past_the_limit():
    text = "a0: &a0 [x]\n" + "".join(
        f"a{i}: &a{i} [" * 1 + "[" * 40 + f"*a{i - 1}" + "]" * 40 + "]\n" for i in range(1, 4)
    )
    doc, problem = only_problem(text)
    assert doc is None
    assert "nesting deeper than" in problem.message


def test_missing_file_and_directory(tmp_path):
    doc, problems = load_file(tmp_path / "nope.yaml", file="nope.yaml")
    assert doc is None and problems[0].message == "file not found" and problems[0].file == "nope.yaml"
    doc, problems = load_file(tmp_path)
    assert doc is None and problems[0].message == "this is a directory, not a workflow file"
    doc, problems = load_file(tmp_path / "nope.yaml" / "x.yaml")
    assert problems[0].message == "file not found"


def test_huge_file_is_refused_before_reading(tmp_path, monkeypatch):
    big = tmp_path / "big.yaml"
    with big.open("wb") as f:
        f.truncate(MAX_BYTES + 1)  # sparse: no disk used
    monkeypatch.setattr(yaml_loader, "load_bytes", lambda *a, **k: pytest.fail("parsed a huge file"))
    doc, problems = load_file(big)
    assert doc is None
    assert problems[0].message == f"file is larger than {MAX_BYTES // (1024 * 1024)} MB"


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_endless_special_file_is_refused_before_reading(monkeypatch):
    # Issue 11: not a regular file, so not read at all (it used to be read up to the size limit).
    monkeypatch.setattr(yaml_loader, "load_bytes", lambda *a, **k: pytest.fail("read a device"))
    doc, problems = load_file("/dev/zero")
    assert doc is None
    assert problems[0].message == "this is a character device, not a regular file"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_fifo_is_refused_without_opening_it(tmp_path, monkeypatch):
    fifo = tmp_path / "wf.yaml"
    os.mkfifo(fifo)
    monkeypatch.setattr(yaml_loader.os, "open", lambda *a, **k: pytest.fail("opened a FIFO"))
    doc, problems = load_file(fifo)
    assert doc is None
    assert problems[0].message == "this is a named pipe (FIFO), not a regular file"


def test_a_file_with_too_many_values_is_refused_where_the_limit_is_crossed():
    text = "tools:\n" + "".join(f"  - [{i}, {i}]\n" for i in range(MAX_NODES // 3 + 10))
    doc, problems = load_text(text, file="wf.yaml")
    assert doc is None
    (p,) = problems
    assert p.message == f"the file holds more than {MAX_NODES} YAML values"
    assert p.line == MAX_NODES // 3 + 1 and p.column > 1  # file:line:col of the value over the limit
    assert "move bulk data" in p.hint


def test_marks_for_keys_values_and_items():
    doc = load_ok("x:\n  y: [1, {z: 2}]\n  w:\n    - a\n")
    assert doc.position(("x", "y")) == (2, 6)
    assert doc.position(("x", "y"), key=True) == (2, 3)
    assert doc.position(("x", "y", 1, "z")) == (2, 14)
    assert doc.position(("x", "w", 0)) == (4, 7)
    assert doc.position(("x", "missing", "deeper")) == (2, 3)  # falls back to the nearest parent
    assert doc.position(("x", "missing"), key=True) == (1, 1)


def test_windows_line_endings():
    doc, problems = load_bytes(b"a: 1\r\nb:\r\n  c: x\r\n", file="w.yaml")
    assert problems == []
    assert doc.data == {"a": 1, "b": {"c": "x"}}
    assert doc.position(("b", "c")) == (3, 6)


def test_json_path():
    assert json_path(()) == "$"
    assert json_path(("tools", 1, "resolve", "http", "url")) == "$.tools[1].resolve.http.url"
    assert json_path(("headers", "X-Api-Key")) == "$.headers.X-Api-Key"
    assert json_path(("properties", "$ref", "a b")) == "$.properties['$ref']['a b']"


def test_sha256_is_of_the_raw_bytes(tmp_path):
    raw = codecs.BOM_UTF8 + b"a: 1\n"
    path = tmp_path / "w.yaml"
    path.write_bytes(raw)
    doc, _ = load_file(path)
    assert doc.sha256 == hashlib.sha256(raw).hexdigest()


def test_same_data_as_safe_load_for_plain_json_content():
    text = (ROOT / "workflows" / "weather.yaml").read_text(encoding="utf-8")
    doc = load_ok(text)
    assert doc.data == yaml.safe_load(text)
