"""``flowrun init``: a starter that validates, runs offline and passes its own test."""

from __future__ import annotations

from support.cli import flowrun


def test_init_writes_a_valid_starter_that_runs_offline(tmp_path):
    r = flowrun("init", "support-bot", cwd=tmp_path)
    assert r.code == 0, r.err
    wf = tmp_path / "workflows" / "support-bot.yaml"
    assert wf.read_text().startswith("# yaml-language-server: $schema=../schemas/workflow.schema.json")
    assert (tmp_path / "schemas" / "workflow.schema.json").exists()
    assert (tmp_path / "schemas" / "tests.schema.json").exists()
    assert (tmp_path / "workflows" / "support_bot_tools.py").exists()
    v = flowrun("validate", "workflows/support-bot.yaml", cwd=tmp_path)
    assert v.code == 0 and "OK (3 tools, 1 test case)" in v.out, v.err
    kinds = flowrun("tools", "list", "workflows/support-bot.yaml", cwd=tmp_path).out
    assert all(k in kinds for k in ("static", "python", "http"))
    run = flowrun("workflows/support-bot.yaml", "--offline", cwd=tmp_path)
    assert run.code == 0, run.err
    assert run.out == "2 plus 3 is 5, and it is 4.5 °C in Berlin.\n"
    t = flowrun("test", "workflows/", cwd=tmp_path)
    assert t.code == 0 and "1 passed, 0 failed" in t.out, t.out + t.err
    call = flowrun("tools", "call", "workflows/support-bot.yaml", "add", "--args", '{"a": 2, "b": 3}', cwd=tmp_path)
    assert (call.code, call.out.strip()) == (0, "5")


def test_init_uses_the_projects_schema_and_refuses_to_overwrite(tmp_path):
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "workflow.schema.json").write_text("{}")
    assert flowrun("init", "a", cwd=tmp_path).code == 0
    assert (tmp_path / "schemas" / "workflow.schema.json").read_text() == "{}"  # left alone
    again = flowrun("init", "a", cwd=tmp_path)
    assert again.code == 2 and "already exists" in again.err
    assert flowrun("init", "a", "--force", cwd=tmp_path).code == 0


def test_init_rejects_a_bad_name(tmp_path):
    r = flowrun("init", "../evil", cwd=tmp_path)
    assert r.code == 2 and "not a usable name" in r.err
    assert not (tmp_path.parent / "evil.yaml").exists()


def test_init_writes_the_name_it_was_given_where_no_schemas_exist(tmp_path):
    """The schema copy loop must not overwrite the workflow's name (it once wrote
    `name: tests.schema.json` into the file, its comment and the tools module)."""
    assert flowrun("init", "support-bot", cwd=tmp_path).code == 0
    text = (tmp_path / "workflows" / "support-bot.yaml").read_text()
    assert "name: support-bot" in text and "tests.schema.json" not in text
    assert "support-bot" in (tmp_path / "workflows" / "support_bot_tools.py").read_text()


def test_init_at_a_repository_root_keeps_schemas_inside_it(tmp_path):
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    r = flowrun("init", "bot", "--dir", ".", cwd=repo)
    assert r.code == 0, r.err
    assert (repo / "schemas" / "workflow.schema.json").exists()
    assert not (tmp_path / "schemas").exists()
    assert (repo / "bot.yaml").read_text().startswith("# yaml-language-server: $schema=schemas/workflow.schema.json")
    deep = flowrun("init", "deep", "--dir", "a/b", cwd=repo)
    assert deep.code == 0, deep.err
    assert (repo / "a" / "b" / "deep.yaml").read_text().startswith("# yaml-language-server: $schema=../../schemas/workflow.schema.json")
    v = flowrun("validate", "a/b/deep.yaml", cwd=repo)
    assert v.code == 0, v.err
