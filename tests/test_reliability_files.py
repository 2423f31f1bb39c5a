"""Issue 4, "Bad workflow files", through ``flowrun run``: every bad file or setting is exit 2
with one message, and nothing is sent (0 requests to the model server) and nothing runs (the
side-effect canary of an unsafe YAML tag is never created). The loader's details are tested in
test_yaml_loader.py and test_validate.py."""

from __future__ import annotations

import pytest

from support.reliability import error_lines, flowrun_with_key
from runner.scripted import ScriptedServer
from runner.workflow.model import ScriptedTurn

GOOD = "version: 1\nname: ok\nmodel: {api: chat, name: m}\ninput: hi\ntools: []\n"


def bad_files(tmp_path):
    canary = tmp_path / "pwned"
    bomb = "version: 1\nname: bomb\n" + "".join(
        f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}" if i else '"lol"'] * 9) + "]\n" for i in range(9))
    return canary, {
        "alias bomb": (bomb.encode(), "YAML aliases exceed limit"),
        "python tag": (f"version: 1\nname: x\ninput: !!python/object/apply:os.system ['touch {canary}']\n".encode(),
                       "unsupported YAML tag '!!python/object/apply:os.system'"),
        "python name tag": (b"version: 1\nname: !!python/name:os.system x\n", "unsupported YAML tag"),
        "huge": (GOOD.encode() + b"#" * (10 * 1024 * 1024 + 1), "file is larger than 1 MB"),
        "not utf-8": (GOOD.replace("name: ok", "name: caf\xe9").encode("latin-1"), "file is not UTF-8 text"),
        "utf-16": (GOOD.encode("utf-16"), "UTF-16"),
        "empty": (b"", "workflow file is empty"),
        "unclosed bracket": (b"version: 1\nname: [x\n", "expected ',' or ']'"),
        "duplicate key": (GOOD.encode() + b"name: again\n", "duplicate key 'name'"),
    }


@pytest.mark.parametrize("case", ["alias bomb", "python tag", "python name tag", "huge", "not utf-8", "utf-16",
                                  "empty", "unclosed bracket", "duplicate key"])
def test_a_bad_file_is_exit_2_and_nothing_is_sent_or_run(case, tmp_path):
    canary, cases = bad_files(tmp_path)
    content, says = cases[case]
    path = tmp_path / "wf.yaml"
    path.write_bytes(content)
    with ScriptedServer([ScriptedTurn(text="never")]) as server:
        r = flowrun_with_key(str(path), "--base-url", server.base_url)
    assert r.code == 2, r.err
    assert says in r.err and len(error_lines(r.err)) == 1 and "Traceback" not in r.err
    assert server.requests == [] and not canary.exists()


@pytest.mark.parametrize("where,says", [("missing.yaml", "file not found"), (".", "this is a directory")])
def test_a_path_that_is_missing_or_a_directory_is_exit_2(where, says, tmp_path):
    with ScriptedServer([ScriptedTurn(text="never")]) as server:
        r = flowrun_with_key(str(tmp_path / where), "--base-url", server.base_url)
    assert r.code == 2 and says in r.err and server.requests == []


@pytest.mark.parametrize("model,says", [
    ("{api: chat, name: m, timeout: 0}", "timeout"),
    ("{api: chat, name: m, timeout: ten}", "expected a number, got text 'ten'"),
    ("{api: assistants_v3, name: m}", "must be one of responses, chat, assistants"),
])
def test_out_of_range_settings_are_exit_2_before_any_request(model, says, tmp_path):
    path = tmp_path / "wf.yaml"
    path.write_text(GOOD.replace("{api: chat, name: m}", model))
    with ScriptedServer([ScriptedTurn(text="never")]) as server:
        r = flowrun_with_key(str(path), "--base-url", server.base_url)
    assert r.code == 2, r.err
    assert says in r.err and server.requests == []


@pytest.mark.parametrize("value", ["0", "-1", "ten"])
def test_max_turns_out_of_range_is_exit_2(value, tmp_path):
    path = tmp_path / "wf.yaml"
    path.write_text(GOOD)
    with ScriptedServer([ScriptedTurn(text="never")]) as server:
        r = flowrun_with_key(str(path), "--base-url", server.base_url, "--max-turns", value)
    assert r.code == 2 and "--max-turns" in r.err and server.requests == []
