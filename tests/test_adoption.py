"""flowrun in a team's repository: folders for validate, GitHub annotations, the GitHub Action and
the pre-commit hooks this repository ships."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from support.cli import flowrun
from support.paths import REPO

BROKEN = """version: 1
name: broken
model: {name: gpt-4o-mini}
input: hi
tools:
  - name: get_weather
    description: Weather for a city, with commas, and more
    parameters: {type: object, properties: {city: {type: string}}}
    resolve: {statik: 1}
"""


def test_validate_github_format_annotates_the_line_and_escapes_the_message(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BROKEN)
    r = flowrun("validate", "--format", "github", str(bad))
    assert r.code == 2
    lines = [l for l in r.out.splitlines() if l.startswith("::")]
    assert lines, r.out + r.err
    first = lines[0]
    assert first.startswith(f"::error file={bad},line=9,col=")
    assert ",title=flowrun validate::" in first
    assert "statik" in first and "\n" not in first
    ok = flowrun("validate", "--format", "github", "workflows/weather.yaml")
    assert ok.code == 0 and ok.out.strip() == "workflows/weather.yaml: OK (2 tools, 1 test case)"


def test_github_annotation_escapes_what_github_would_misread():
    from runner.commands.validate import github_annotation
    from runner.errors import Problem

    line = github_annotation(Problem("a,b:c.yaml", 3, 0, "50% done\nnext", hint="fix: it"))
    assert line == "::error file=a%2Cb%3Ac.yaml,line=3,col=1,title=flowrun validate::50%25 done%0Anext -- fix: it"


def test_validate_a_folder_checks_the_workflows_in_it(tmp_path):
    shutil.copy(REPO / "workflows" / "weather.yaml", tmp_path / "weather.yaml")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "bad.yaml").write_text(BROKEN)
    r = flowrun("validate", str(tmp_path))
    assert r.code == 2
    assert f"{tmp_path / 'weather.yaml'}: OK" in r.out
    assert f"{tmp_path / 'sub' / 'bad.yaml'}: invalid" in r.err


def test_the_github_action_runs_commands_that_pass_on_this_repository():
    action = yaml.safe_load((REPO / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    defaults = {name: spec["default"] for name, spec in action["inputs"].items()}
    commands = []
    for step in action["runs"]["steps"]:
        run = step.get("run", "")
        if run.startswith("flowrun "):
            for name, value in defaults.items():
                run = run.replace("${{ inputs.%s }}" % name, value)
            commands.append(run.split())
    assert [c[:2] for c in commands] == [["flowrun", "validate"], ["flowrun", "test"]]
    assert "--format" in commands[0] and "github" in commands[0]
    for command in commands:
        r = flowrun(*command[1:])
        assert r.code == 0, (command, r.out, r.err)


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"})


def test_the_pre_commit_hook_runs_through_pre_commit_itself(tmp_path):
    """`pre-commit try-repo` installs this repository as a hook (pip, from the package registry)
    and runs it on a team's repository: a good workflow passes, a broken one fails the commit."""
    pre_commit = shutil.which("pre-commit") or shutil.which("pre-commit", path=str(Path(sys.executable).parent))
    if pre_commit is None:
        pytest.skip("pre-commit is not installed (pip install -e '.[test]' brings it)")
    if not (REPO / ".git").exists():
        pytest.skip("this checkout is not a git repository, which pre-commit try-repo needs")
    team = tmp_path / "team"
    (team / "workflows").mkdir(parents=True)
    shutil.copy(REPO / "workflows" / "weather.yaml", team / "workflows" / "weather.yaml")
    _git(team, "init", "-q")
    _git(team, "add", ".")
    _git(team, "commit", "-qm", "workflows")
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "cache"), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}

    def hook(*files: str) -> subprocess.CompletedProcess:
        return subprocess.run([pre_commit, "try-repo", str(REPO), "flowrun-validate", "--files", *files],
                              cwd=team, capture_output=True, text=True, env=env, timeout=600)

    good = hook("workflows/weather.yaml")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "flowrun validate" in good.stdout and "Passed" in good.stdout
    (team / "workflows" / "broken.yaml").write_text(BROKEN)
    bad = hook("workflows/broken.yaml")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "Failed" in bad.stdout and "broken.yaml:9:" in bad.stdout


def test_a_built_wheel_installs_a_flowrun_that_starts_a_project(tmp_path):
    """What the README's "use flowrun in your own project" builds: a wheel from a copy of the
    sources, installed on its own (no editable checkout behind it). Its `flowrun` has the package
    data `init` writes and `validate`/`test` read. Offline: the build uses this environment's
    setuptools and wheel, the install takes no dependencies (they are this environment's)."""
    pytest.importorskip("wheel", reason="the wheel package is not installed (pip install -e '.[test]' brings it)")
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "runner", src / "runner", ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip"]
    subprocess.run([*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index", str(src),
                    "-w", str(tmp_path / "dist")], check=True, capture_output=True, timeout=300)
    wheels = list((tmp_path / "dist").glob("flowrun-*-py3-none-any.whl"))
    assert len(wheels) == 1, wheels
    site = tmp_path / "site"
    subprocess.run([*pip, "install", "-q", "--no-deps", "--no-index", "--target", str(site), str(wheels[0])],
                   check=True, capture_output=True, timeout=300)
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "FLOWRUN_"))}
    env.update(PYTHONPATH=str(site), XDG_CONFIG_HOME=str(tmp_path / "xdg"), FLOWRUN_LOG_DB=str(tmp_path / "runs.sqlite3"))

    def installed(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(site / "bin" / "flowrun"), *args], cwd=project, env=env, capture_output=True,
                              text=True, timeout=120)

    where = subprocess.run([sys.executable, "-c", "import runner; print(runner.__file__)"], cwd=project, env=env,
                           capture_output=True, text=True, timeout=60)
    assert where.stdout.strip() == str(site / "runner" / "__init__.py"), where  # the wheel's, not this checkout's
    assert installed("--help").stdout.startswith("Usage: flowrun [OPTIONS] COMMAND [ARGS]...")
    for command, says in ((["init", "support-bot"], "wrote workflows/support-bot.yaml"),
                          (["validate", "workflows/"], "workflows/support-bot.yaml: OK"),
                          (["test", "workflows/"], "1 passed, 0 failed")):
        r = installed(*command)
        assert r.returncode == 0 and says in r.stdout + r.stderr, (command, r.stdout, r.stderr)
