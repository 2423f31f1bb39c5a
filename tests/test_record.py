"""``flowrun FILE --record CASE.test.yaml``: a run kept as a test case that validates and replays
green, appended without losing what is in the file, never written over a workflow."""

from __future__ import annotations

import shutil
from io import StringIO
from pathlib import Path

import pytest
from support.cli import execute, flowrun
from support.paths import REPO

from runner.errors import UsageError
from runner.events import RunCompleted, RunStarted, TextDelta, ToolCallCompleted, ToolCallRequested, TurnStarted
from runner.run.session import RunRequest
from runner.scripted import ScriptedServer
from runner.render.recording import Recorder, check_target, finish, save_case
from runner.testing.runner import run_all
from runner.workflow.model import ScriptedCall, ScriptedTurn
from runner.workflow.validate import load_workflow, validate_file

# Recorded cases replay on every API, Assistants included: the SDK warns on each Assistants call.
pytestmark = [
    pytest.mark.filterwarnings("ignore:The Assistants API is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning"),  # assistants.create / delete
]
from runner.workflow.yaml_loader import load_file

WEATHER = REPO / "workflows" / "weather.yaml"
PARIS = [
    ScriptedTurn(tool_calls=(
        ScriptedCall("get_current_temperature", {"location": "Paris, France", "unit": "Celsius"}),
        ScriptedCall("get_rain_probability", {"location": "Paris, France"}),
    )),
    ScriptedTurn(text="In Paris: ${{ outputs.get_current_temperature }} degrees,\n"
                      "rain ${{ outputs.get_rain_probability }}."),
]


@pytest.fixture
def weather(tmp_path: Path) -> Path:
    path = tmp_path / "weather.yaml"
    shutil.copy(WEATHER, path)
    return path


def record(workflow: Path, target: Path, turns, **options) -> tuple[int, str, ScriptedServer]:
    """A run against the scripted server playing the model, recorded into ``target``, in-process."""
    err = StringIO()
    with ScriptedServer(turns) as server:
        request = RunRequest(file=str(workflow), base_url=server.base_url, record=str(target), log=False,
                             quiet=True, env={"OPENAI_API_KEY": "test-key"}, **options)
        code = execute(request, out=StringIO(), err=err)
    return code, err.getvalue(), server


def test_a_case_recorded_with_the_cli_against_the_scripted_server_replays_green(weather):
    target = weather.with_name("weather.test.yaml")
    with ScriptedServer(PARIS) as server:
        r = flowrun(str(weather), "--base-url", server.base_url, "-M", "Weather in Paris?",
                    "--record", str(target), "--no-log", env={"OPENAI_API_KEY": "test-key"})
    assert r.code == 0, r.err
    assert f"recorded this run as test case 'recorded " in r.err and "warning" not in r.err

    text = target.read_text(encoding="utf-8")
    assert text.splitlines()[0] == "# yaml-language-server: $schema=../schemas/tests.schema.json"
    workflow, problems = validate_file(weather)
    assert problems == [] and workflow is not None
    [own, recorded] = workflow.tests
    assert recorded.file == str(target) and recorded.input == "Weather in Paris?"
    assert recorded.turns == (PARIS[0], ScriptedTurn(text="In Paris: 57 degrees,\nrain 0.06."))
    assert recorded.expect["outputs"] == {"get_current_temperature": {"equals": "57"},
                                          "get_rain_probability": {"equals": "0.06"}}
    assert recorded.expect["final_text"] == {"equals": "In Paris: 57 degrees,\nrain 0.06."}

    replay = flowrun("test", str(weather), "-v")
    assert replay.code == 0, replay.out
    assert f"{target}::{recorded.name} [responses] PASSED" in replay.out
    assert replay.out.splitlines()[-1] == "2 passed, 0 failed"


def test_a_second_recording_is_appended_keeping_comments_and_edits(weather):
    target = weather.with_name("weather.test.yaml")
    assert record(weather, target, PARIS)[0] == 0
    edited = target.read_text(encoding="utf-8").replace("  - name: recorded", "  # checked by hand\n  - name: recorded", 1)
    target.write_text(edited + "  # the end\n", encoding="utf-8")

    code, err, _ = record(weather, target, PARIS, api="chat")
    assert code == 0, err
    text = target.read_text(encoding="utf-8")
    assert text.startswith(edited + "  # the end\n  - name: recorded ")
    names = [c.name for c in load_workflow(weather).tests]
    assert len(names) == len(set(names)) == 3
    results = run_all([weather], api="all")
    assert [r.nodeid for r in results if not r.passed] == [] and len(results) == 9


def test_vars_and_the_message_are_recorded_so_the_replay_fills_inputs_the_same_way(tmp_path):
    workflow = tmp_path / "city.yaml"
    workflow.write_text(
        "version: 1\nname: city\ninput: Weather in ${{ inputs.city }}?\n"
        "inputs:\n  city: { required: true }\n"
        "tools:\n  - name: where\n    description: The city asked about\n"
        "    resolve: { static: 'city=${{ inputs.city }}' }\n",
        encoding="utf-8",
    )
    target = tmp_path / "city.test.yaml"
    turns = [ScriptedTurn(tool_calls=(ScriptedCall("where", {}),)), ScriptedTurn(text="${{ outputs.where }}")]
    code, err, _ = record(workflow, target, turns, vars={"city": "Lyon"})
    assert code == 0, err
    [case] = load_workflow(workflow).tests
    assert (case.vars, case.input) == ({"city": "Lyon"}, "Weather in Lyon?")
    assert case.expect["outputs"] == {"where": {"equals": "city=Lyon"}}
    [result] = run_all([workflow], api=None)
    assert result.passed, result.report()


def test_recording_refuses_to_write_over_the_workflow_or_another_file_before_the_run(weather, tmp_path):
    before = weather.read_bytes()
    code, err, server = record(weather, weather, PARIS)
    assert code == 2 and "would overwrite the workflow itself" in err
    assert weather.read_bytes() == before and server.requests == []

    other = tmp_path / "compose.yaml"
    other.write_text("services:\n  web: {image: nginx}\n", encoding="utf-8")
    code, err, server = record(weather, other, PARIS)
    assert code == 2 and "is not a test file (it holds services)" in err
    assert other.read_text(encoding="utf-8") == "services:\n  web: {image: nginx}\n" and server.requests == []

    broken = tmp_path / "broken.test.yaml"
    broken.write_text("tests:\n  - name: a\n  - name: a\n    name: b\n", encoding="utf-8")
    with pytest.raises(UsageError, match="cannot add the recording to .*duplicate key 'name'"):
        check_target(broken, weather)


def test_record_with_chat_is_refused_before_the_run(weather):
    target = weather.with_name("weather.test.yaml")
    code, err, server = record(weather, target, PARIS, chat=True)
    assert code == 2 and "cannot be used with --chat" in err
    assert not target.exists() and server.requests == []


def test_a_run_that_does_not_complete_is_not_recorded(weather):
    target = weather.with_name("weather.test.yaml")
    code, err, _ = record(weather, target, PARIS[:1])  # the model never answers
    assert code != 0
    assert "not recorded: the run ended error" in err and not target.exists()


def test_a_file_outside_the_sibling_name_is_written_and_the_user_told_where_tests_are_read(weather, tmp_path):
    target = tmp_path / "cases" / "paris.yaml"
    code, err, _ = record(weather, target, PARIS)
    assert code == 0
    assert "`flowrun test` reads weather.test.yaml beside weather.yaml" in err
    assert target.read_text(encoding="utf-8").splitlines()[0] == \
        "# yaml-language-server: $schema=../../schemas/tests.schema.json"


# --- the case itself ---------------------------------------------------------------------------

def feed(recorder: Recorder, *events) -> Recorder:
    for event in events:
        recorder(event)
    return recorder


def test_the_recorder_keeps_invalid_or_non_object_arguments_as_their_exact_text():
    rec = feed(
        Recorder(),
        RunStarted("r", "w.yaml", "chat", "m", "hi"),
        TurnStarted(1),
        TextDelta("Let me look. "),
        ToolCallRequested("c1", "a", "[1, 2]"),
        ToolCallRequested("c2", "b", "{not json"),
        ToolCallRequested("c3", "c", ""),
        ToolCallCompleted("c1", "a", "A", False, 1.0),
        ToolCallCompleted("c2", "b", "error: bad arguments", True, 1.0),
        ToolCallCompleted("c3", "c", "C", False, 1.0),
        TurnStarted(2),
        TextDelta("Done"),
        TextDelta("."),
        RunCompleted("r", "completed", "Done.", 2, 3, None, 5.0),
    )
    case = rec.case("mine", taken=["mine", "mine (2)"])
    assert case["name"] == "mine (3)"
    assert case["turns"] == [
        {"tool_calls": [{"name": "a", "arguments": "[1, 2]"}, {"name": "b", "arguments": "{not json"},
                        {"name": "c", "arguments": {}}]},
        {"text": "Done."},
    ]
    assert case["expect"]["final_text"] == {"equals": "Done."}
    assert "no_error_outputs" not in case["expect"]  # one output was an error: the replay must allow it
    assert case["expect"]["error_outputs"] == ["b"]


@pytest.mark.parametrize("value", ["1e5", "0o17", "0x1F", "true", "False", "null", "~", "012", "", " padded ",
                                   "a: b", "# not a comment", "- not a list", "57", "1.10", "multi\nline\n",
                                   "tab\there", "ünïcode ☂", ".inf", "yes", "2024-01-01"])
def test_saved_text_reads_back_as_the_same_text_with_our_yaml_loader(tmp_path, value):
    path = tmp_path / "t.test.yaml"
    case = {"name": "c", "turns": [{"text": value}], "expect": {"outputs": {"t": {"equals": value}}}}
    save_case(case, path)
    save_case({**case, "name": "d"}, path)  # the appended copy too
    doc, problems = load_file(path)
    assert problems == []
    assert [t["turns"][0]["text"] for t in doc.data["tests"]] == [value, value]
    assert [t["expect"]["outputs"]["t"]["equals"] for t in doc.data["tests"]] == [value, value]


def test_a_flow_style_or_empty_list_is_rewritten_keeping_the_comments_on_top(tmp_path):
    path = tmp_path / "t.test.yaml"
    path.write_text("# mine\n# yaml-language-server: $schema=x.json\ntests: []\n", encoding="utf-8")
    save_case({"name": "c", "turns": [{"text": "hi"}]}, path)
    assert path.read_text(encoding="utf-8") == (
        "# mine\n# yaml-language-server: $schema=x.json\ntests:\n  - name: c\n    turns:\n      - text: hi\n")


def test_finish_reports_a_failed_save_without_failing_the_run(weather, tmp_path):
    target = tmp_path / "cases.test.yaml"
    rec = feed(Recorder(), RunStarted("r", "w", "chat", "m", "hi"), TurnStarted(1), TextDelta("ok"),
               RunCompleted("r", "completed", "ok", 1, 0, None, 1.0))
    target.write_text("tests: [\n", encoding="utf-8")  # broken after the run started
    err = StringIO()
    finish(rec, "completed", target, load_workflow(weather), err)
    assert err.getvalue().startswith("flowrun: error: not recorded: cannot add the recording to ")
    assert target.read_text(encoding="utf-8") == "tests: [\n"
