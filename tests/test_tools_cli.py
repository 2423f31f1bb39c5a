"""``flowrun tools list`` and ``flowrun tools call``: output on stdout, errors on stderr, exit codes."""

from __future__ import annotations

import textwrap
from pathlib import Path

from click.testing import CliRunner

from runner.commands.tools import parameters_summary, tools_group

REPO = Path(__file__).resolve().parents[1]
CITY = str(REPO / "workflows" / "city_weather.yaml")

CUSTOM = """
version: 1
name: custom
model: {{ api: chat, name: m }}
input: hi
inputs:
  greeting:
    default: Hello
tools:
  - name: greet
    description: Greets someone
    parameters:
      type: object
      properties: {{ name: {{ type: string }} }}
      required: [name]
    resolve:
      static: "${{{{ inputs.greeting }}}}, ${{{{ args.name }}}}!"
  - name: chatty
    description: Prints while it works
    parameters: {{ type: object }}
    resolve:
      python: chatty_tools:chatty
"""


def invoke(*args: str):
    return CliRunner().invoke(tools_group, list(args), catch_exceptions=False)


def custom_file(tmp_path: Path) -> str:
    (tmp_path / "chatty_tools.py").write_text("def chatty():\n    print('noise on stdout')\n    return 'quiet result'\n")
    path = tmp_path / "custom.yaml"
    path.write_text(textwrap.dedent(CUSTOM.format()), encoding="utf-8")
    return str(path)


def test_list_shows_name_kind_description_and_parameters():
    result = invoke("list", CITY)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() [:2] == ["get_temperature", "python"]
    assert "Get the current temperature in a city" in lines[0]
    assert "(location: string (required), unit: Celsius|Fahrenheit)" in lines[1]


def test_call_prints_the_output_on_stdout():
    result = invoke("call", CITY, "get_temperature", "--args", '{"location": "Paris", "unit": "Fahrenheit"}')
    assert (result.exit_code, result.stdout, result.stderr) == (0, "64.4\n", "")


def test_call_error_goes_to_stderr_with_exit_1():
    result = invoke("call", CITY, "get_temperature", "--args", '{"location": "Atlantis"}')
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("error: the tool raised ValueError: no weather data for 'Atlantis'")


def test_call_validates_arguments_like_a_run():
    result = invoke("call", CITY, "get_temperature", "--args", '{"unit": "Kelvin"}')
    assert result.exit_code == 1 and result.stdout == ""
    assert "$: 'location' is a required property" in result.stderr
    bad_json = invoke("call", CITY, "get_temperature", "--args", '{"location": ')
    assert bad_json.exit_code == 1 and "not valid JSON" in bad_json.stderr


def test_call_no_python():
    result = invoke("call", CITY, "get_temperature", "--args", '{"location": "Paris"}', "--no-python")
    assert result.exit_code == 1
    assert result.stderr == "error: python resolvers are disabled (--no-python)\n"


def test_call_unknown_tool():
    result = invoke("call", CITY, "get_temprature")
    assert result.exit_code == 1 and "Did you mean 'get_temperature'?" in result.stderr


def test_vars_fill_inputs(tmp_path):
    path = custom_file(tmp_path)
    assert invoke("call", path, "greet", "--args", '{"name": "Ada"}').stdout == "Hello, Ada!\n"
    result = invoke("call", path, "greet", "--args", '{"name": "Ada"}', "--var", "greeting=Bonjour")
    assert result.stdout == "Bonjour, Ada!\n"
    unknown = invoke("call", path, "greet", "--args", '{"name": "Ada"}', "--var", "nope=1")
    assert unknown.exit_code == 2 and "nope" in unknown.stderr


def test_what_a_tool_prints_stays_off_stdout(tmp_path):
    result = invoke("call", custom_file(tmp_path), "chatty")
    assert result.exit_code == 0
    assert result.stdout == "quiet result\n"
    assert "noise on stdout" in result.stderr


def test_invalid_workflow_exits_2_with_the_problem_on_stderr(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("version: 1\nname: bad\ntools: 3\n", encoding="utf-8")
    for args in (["list", str(path)], ["call", str(path), "x"]):
        result = invoke(*args)
        assert result.exit_code == 2 and result.stdout == ""
        assert "bad.yaml" in result.stderr


def test_parameters_summary():
    schema = {"properties": {"a": {"type": ["string", "null"]}, "b": {"enum": [1, 2]}, "c": {}}, "required": ["b"]}
    assert parameters_summary(schema) == "a: string|null, b: 1|2 (required), c: any"
    assert parameters_summary({}) == ""


def test_call_errors_speak_to_the_person_at_the_terminal():
    from support.cli import flowrun

    bad = flowrun("tools", "call", "workflows/weather.yaml", "get_rain_probability", "--args", '{"locaton": "Paris"}')
    assert bad.code == 1
    assert bad.err == ("error: the arguments do not match the parameters of tool 'get_rain_probability':\n"
                       "- $: 'location' is a required property\n"
                       "- $: Additional properties are not allowed ('locaton' was unexpected)\n"
                       "fix the --args JSON and run the command again\n")
    unknown = flowrun("tools", "call", "workflows/weather.yaml", "get_rain", "--args", "{}")
    assert unknown.code == 1
    assert unknown.err == ("error: there is no tool named 'get_rain'. Available tools: get_current_temperature, "
                           "get_rain_probability.\n  (`flowrun tools list workflows/weather.yaml` shows each tool "
                           "and its arguments)\n")


def test_shell_completion_offers_workflow_paths_and_tool_names():
    import subprocess
    import sys

    from support.cli import REPO

    def complete(words: str) -> list[str]:
        env = {"_FLOWRUN_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
               "PATH": "/usr/bin:/bin"}
        proc = subprocess.run([sys.executable, "-c", "from runner.cli import cli; cli.main(prog_name='flowrun')"],
                              capture_output=True, text=True, env=env, cwd=REPO, timeout=60)
        return proc.stdout.splitlines()

    assert complete("flowrun tools call workflows/weather.yaml get_") == [
        "plain,get_current_temperature", "plain,get_rain_probability"]
    assert complete("flowrun tools call workflows/") == ["file,workflows/"]
    assert complete("flowrun val") == ["plain,validate", "file,val"]
    assert complete("flowrun workflows/we") == ["file,workflows/we"]
    for command in ("validate", "test", "run", "batch", "tools list"):  # every command that takes a workflow
        assert complete(f"flowrun {command} workflows/we") == ["file,workflows/we"], command


def test_list_says_whether_each_tool_runs_asks_or_is_refused_and_why(tmp_path):
    from support.cli import flowrun

    path = tmp_path / "w.yaml"
    path.write_text(textwrap.dedent("""\
        version: 1
        name: w
        tools:
          - {name: note, description: d, resolve: {static: ok}}
          - name: post
            description: d
            parameters: {type: object, properties: {to: {type: string}}}
            resolve: {http: {url: "https://api.example.com/x", method: POST}}
            approval:
              rules:
                - allow: {to: "*@example.com"}
                - deny: {to: "*@rival.com"}
          - {name: wipe, description: d, approval: deny, resolve: {http: {url: "https://api.example.com/x", method: DELETE}}}
    """))
    r = flowrun("tools", "list", str(path))
    assert r.code == 0, r.err
    assert [line.strip() for line in r.out.splitlines() if "approval:" in line] == [
        "approval: runs (a static value only returns text written in the file)",
        "approval: asks first (http POST can change things, so it asks by default); unless a rule matches: "
        'deny to: "*@rival.com"; allow to: "*@example.com"',
        "approval: refused (tool 'wipe' says approval: deny)",
    ]
