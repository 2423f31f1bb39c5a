"""Defaults without repeating flags (issue 10, section 5): the command line over FLOWRUN_*
variables over a profile (repository config over user config) over the workflow file."""

from __future__ import annotations

import pytest

from support.batch import WORKFLOW, echo_script
from support.cli import flowrun
from runner.errors import UsageError
from runner.run.defaults import resolve
from runner.scripted import ScriptedServer
from runner.workflow.model import ScriptedTurn

KEY = {"OPENAI_API_KEY": "sk-test-key-for-loopback-0000"}


@pytest.fixture
def configs(tmp_path):
    user = tmp_path / "xdg" / "flowrun"
    user.mkdir(parents=True)
    (user / "config.yaml").write_text(
        "default_profile: local\nprofiles:\n"
        "  local: {api: chat, base_url: 'http://127.0.0.1:11434/v1', model: llama3.2}\n"
        "  other: {model: qwen}\n")
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "sub").mkdir()
    (repo / ".flowrun.yaml").write_text("profiles:\n  local: {model: mistral}\n")
    return {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}, repo


def test_precedence_flag_env_profile(configs):
    env, repo = configs
    d = resolve({"api": None, "base_url": None, "model": None}, profile=None, env=env, cwd=repo / "sub")
    assert d.values == {"api": "chat", "base_url": "http://127.0.0.1:11434/v1", "model": "mistral"}
    assert d.origins["model"] == f"profile 'local' in {repo / '.flowrun.yaml'}"
    d = resolve({"api": None, "base_url": None, "model": "gpt-4o"}, profile=None,
                env={**env, "FLOWRUN_API": "responses", "FLOWRUN_MODEL": "env-model"}, cwd=repo)
    assert d.describe() == ("model settings: api=responses (from FLOWRUN_API), base_url=http://127.0.0.1:11434/v1 "
                            f"(from profile 'local' in {repo / '.flowrun.yaml'}), model=gpt-4o (from the command line)")
    d = resolve({}, profile="other", env=env, cwd=repo)
    assert d.values == {"model": "qwen"}


def test_unknown_profile_and_bad_config_are_usage_errors(configs, tmp_path):
    env, repo = configs
    with pytest.raises(UsageError, match=r"no profile 'locl' \(asked for by --profile\); did you mean 'local'\?"):
        resolve({}, profile="locl", env=env, cwd=repo)
    (repo / ".flowrun.yaml").write_text("profiles:\n  local: {modle: x}\n")
    with pytest.raises(UsageError, match=r"profile 'local' has unknown key 'modle' \(did you mean 'model'\?\)"):
        resolve({}, profile=None, env=env, cwd=repo)


def test_run_takes_the_environment_and_shows_where_settings_came_from(tmp_path):
    with ScriptedServer([ScriptedTurn(text="Hi.")]) as server:
        r = flowrun("workflows/weather.yaml", "-v", "-M", "hello",
                    env={**KEY, "FLOWRUN_API": "chat", "FLOWRUN_BASE_URL": server.base_url, "FLOWRUN_MODEL": "m1"})
        base_url = server.base_url
        sent = [(req.path, req.body.get("model")) for req in server.requests if isinstance(req.body, dict)]
    assert r.code == 0, r.err
    assert (f"model settings: api=chat (from FLOWRUN_API), base_url={base_url} (from FLOWRUN_BASE_URL), "
            "model=m1 (from FLOWRUN_MODEL)") in r.err
    assert sent and all(path.endswith("/chat/completions") and model == "m1" for path, model in sent), sent


@pytest.mark.parametrize("workers", ["1", "2"])
def test_batch_takes_the_same_profile_environment_and_precedence_as_run(tmp_path, workers):
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "echo.yaml").write_text(WORKFLOW)
    (repo / "in.jsonl").write_text('{"city": "Oslo"}\n{"city": "Lima"}\n')
    with ScriptedServer(echo_script) as server:
        (repo / ".flowrun.yaml").write_text(
            f"profiles:\n  local: {{api: chat, base_url: '{server.base_url}', model: from-profile}}\n")
        r = flowrun("batch", "echo.yaml", "--inputs", "in.jsonl", "--out", "out.jsonl", "--profile", "local",
                    "-v", "--workers", workers, cwd=repo, env={**KEY, "FLOWRUN_MODEL": "from-env"})
        base_url = server.base_url
        sent = [req.body.get("model") for req in server.requests if isinstance(req.body, dict)]
    assert r.code == 0, r.err
    where = f"profile 'local' in {repo / '.flowrun.yaml'}"
    assert (f"flowrun: model settings: api=chat (from {where}), base_url={base_url} (from {where}), "
            "model=from-env (from FLOWRUN_MODEL)\n") in r.err
    assert r.err.count("model settings:") == 1  # once for the batch, not once per input or worker
    assert sent and set(sent) == {"from-env"}, sent  # FLOWRUN_MODEL over the profile's model
    assert [line.count('"completed"') for line in (repo / "out.jsonl").read_text().splitlines()] == [1, 1]


def test_batch_refuses_an_unknown_profile_before_any_input_runs(configs):
    env, repo = configs
    (repo / "echo.yaml").write_text(WORKFLOW)
    (repo / "in.jsonl").write_text('{"city": "Oslo"}\n')
    r = flowrun("batch", "echo.yaml", "--inputs", "in.jsonl", "--out", "out.jsonl", "--profile", "locl",
                cwd=repo, env={**KEY, **env})
    assert r.code == 2, r.err
    assert "flowrun: error: no profile 'locl' (asked for by --profile); did you mean 'local'?" in r.err
    assert not (repo / "out.jsonl").exists()
