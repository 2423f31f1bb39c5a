"""``flowrun test``: scripted cases through the real run path, failure reports, JUnit, -k, --api
all, --mock-http, --offline. Through the command line where its output is the point (a real process
only where a network guard must load at start), through the Python API for the rest.
Fixture workflows are in tests/fixtures_test/."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET
from io import StringIO
from pathlib import Path

import pytest
from support.cli import execute, flowrun, flowrun_process
from support.paths import REPO

from runner.errors import UsageError
from runner.run.session import RunRequest
from runner.testing.junit import write_junit
from runner.testing.runner import CaseResult, discover, run_all, run_case
from runner.workflow.validate import load_workflow

FIXTURES = REPO / "tests" / "fixtures_test"
WEATHER = REPO / "workflows" / "weather.yaml"

# Loaded by the subprocess as sitecustomize: any connection or name lookup beyond loopback fails,
# so "no network" is enforced rather than assumed.
NO_NETWORK = '''
import ipaddress, socket

def _local(host):
    if host in ("localhost", None):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False

_connect, _connect_ex, _getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo

def _guard(sock, address):
    if sock.family in (socket.AF_INET, socket.AF_INET6) and not _local(address[0]):
        raise OSError("no network in this test: " + str(address[0]))

def connect(self, address):
    _guard(self, address)
    return _connect(self, address)

def connect_ex(self, address):
    _guard(self, address)
    return _connect_ex(self, address)

def getaddrinfo(host, *args, **kwargs):
    if isinstance(host, bytes):
        host = host.decode()
    if not _local(host):
        raise OSError("no network in this test: " + str(host))
    return _getaddrinfo(host, *args, **kwargs)

socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = connect, connect_ex, getaddrinfo
'''


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def broken(tmp_path: Path) -> tuple[Path, int]:
    """tests/fixtures_test/broken.yaml, its HTTP tools pointed at a port just found closed."""
    port = closed_port()
    text = (FIXTURES / "broken.yaml").read_text(encoding="utf-8").replace("127.0.0.1:1/", f"127.0.0.1:{port}/")
    path = tmp_path / "broken.yaml"
    path.write_text(text, encoding="utf-8")
    shutil.copy(FIXTURES / "fixture_tools.py", tmp_path / "fixture_tools.py")
    return path, port


def play(path: Path, name: str, api: str = "responses", mock_http: str = "declared") -> CaseResult:
    workflow = load_workflow(path)
    case = next(c for c in workflow.tests if c.name == name)
    return asyncio.run(run_case(workflow, case, api, mock_http=mock_http))


def flowrun_test(capsys, *args: str) -> tuple[int, str, str]:
    """``flowrun test ARGS`` in-process (the subprocess tests cover the real entry point)."""
    from runner.commands.test import test_command

    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        test_command.main(list(args), standalone_mode=False)
    out, err = capsys.readouterr()
    return exit_.value.code, out, err


def cases_in(folder: Path) -> int:
    return sum(len(load_workflow(p).tests) for p in discover([str(folder)]))


# --- the shipped workflows --------------------------------------------------------------------

def test_shipped_workflows_pass_on_a_fresh_copy_with_no_key_and_no_network(tmp_path):
    shutil.copytree(REPO / "workflows", tmp_path / "workflows", ignore=shutil.ignore_patterns("__pycache__"))
    guard = tmp_path / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(NO_NETWORK, encoding="utf-8")
    env = {"PYTHONPATH": f"{guard}:{REPO}", "HOME": str(tmp_path)}
    # The guard is live in the subprocess (else this test could not fail for a network access).
    probe = subprocess.run([sys.executable, "-c", "import socket; socket.getaddrinfo('example.com', 443)"],
                           capture_output=True, text=True, env={**os.environ, **env}, cwd=tmp_path)
    assert "no network in this test: example.com" in probe.stderr

    r = flowrun_process("test", "workflows/", env=env, cwd=tmp_path)  # the guard loads at process start
    assert r.code == 0, r.out + r.err
    assert r.out.splitlines()[-1] == f"{cases_in(REPO / 'workflows')} passed, 0 failed"
    assert "F" not in "".join(line.split(" ", 1)[-1] for line in r.out.splitlines()[:-1])


# --- cases broken on purpose --------------------------------------------------------------------

def test_a_python_tool_that_raises_fails_the_case(broken):
    result = play(broken[0], "python tool raises")
    assert not result.passed
    assert result.report() == (
        "output of read_sensor: expected no error\n"
        "                       got      'error: the tool raised RuntimeError: the rain sensor is unplugged'"
    )


def test_an_http_tool_at_a_closed_port_fails_the_case(broken):
    path, port = broken
    result = play(path, "http tool at a closed port")
    assert not result.passed
    first, second = result.report().splitlines()
    assert first == "output of local_service: expected no error"
    assert second.startswith(f"                         got      'error: cannot connect to 127.0.0.1:{port}: ")


def test_an_http_tool_blocked_by_the_default_network_policy_fails_the_case(broken):
    result = play(broken[0], "http tool blocked by the network policy")
    assert result.report() == (
        "output of private_service: expected no error\n"
        "                           got      'error: host 127.0.0.1 is a loopback address; blocked "
        "(set allow_private_network: true to allow it)'"
    )


def test_broken_cases_fail_with_readable_diffs_a_summary_exit_1_and_junit(broken, tmp_path):
    path, _ = broken
    report = tmp_path / "report.xml"
    r = flowrun("test", str(path), "--junit-xml", str(report))
    assert r.code == 1
    assert (
        "\n" + " FAILURES ".center(80, "=") + "\n"
        f"___ {path}::wrong expected output [responses] ___\n"
        "output of get_rain_probability: expected '0.07'\n"
        "                                got      '0.06'\n"
        "\n"
    ) in r.out
    lines = r.out.splitlines()
    assert lines[0] == f"{path} .FFFFF."
    assert lines[-1] == "2 passed, 5 failed"
    headers = [line for line in lines if line.startswith("___ ")]
    assert headers == [f"___ {path}::{name} [responses] ___" for name in (
        "wrong expected output", "python tool raises", "http tool at a closed port",
        "http tool blocked by the network policy", "script runs out of turns")]

    suite = ET.parse(report).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("7", "5", "0")
    failed = {c.get("name"): c.find("failure") for c in suite.iter("testcase") if c.find("failure") is not None}
    assert failed["wrong expected output [responses]"].get("message") == \
        "output of get_rain_probability: expected '0.07'"
    assert "got      '0.06'" in failed["wrong expected output [responses]"].text
    assert {c.get("classname") for c in suite.iter("testcase")} == {str(path)}


def test_a_run_that_does_not_complete_fails_with_the_reason(broken):
    result = play(broken[0], "script runs out of turns")
    [mismatch] = result.mismatches
    assert (mismatch.what, mismatch.expected, mismatch.actual) == ("status", "'completed'", "'error'")
    assert "scripted model has no turn 1" in mismatch.note
    assert "end them with a text turn" in mismatch.note


def test_a_case_may_expect_a_run_that_does_not_complete(broken):
    assert play(broken[0], "expects the run to end in an error").passed


def test_an_error_that_prevents_the_run_is_a_failed_result_with_its_message(tmp_path):
    path = tmp_path / "needs_city.yaml"
    path.write_text(
        "version: 1\nname: needs_city\ninput: Weather in ${{ inputs.city }}?\n"
        "inputs:\n  city: { required: true }\n"
        "tests:\n  - name: forgets the city\n    turns:\n      - text: Sunny.\n",
        encoding="utf-8",
    )
    result = play(path, "forgets the city")
    assert not result.passed and result.mismatches == []
    assert result.error == "input 'city' is required\n  hint: pass it with --var city=VALUE"
    assert result.report() == result.error


def test_a_file_that_does_not_load_is_one_failed_result_and_the_others_still_run(tmp_path):
    (tmp_path / "a_bad.yaml").write_text("version: 2\nname: bad\n", encoding="utf-8")
    shutil.copy(FIXTURES / "sibling.yaml", tmp_path / "b_good.yaml")
    results = run_all(discover([str(tmp_path)]), api=None)
    assert [(Path(r.file).name, r.title, r.passed) for r in results] == [
        ("a_bad.yaml", "(could not be loaded)", False),
        ("b_good.yaml", "in the workflow file [responses]", True),
    ]
    assert results[0].nodeid == str(tmp_path / "a_bad.yaml")
    assert "a_bad.yaml:1:10: version must be 1" in results[0].report()


# --- selection, APIs, HTTP mocking --------------------------------------------------------------

def test_k_selects_cases_by_name_or_file_ignoring_case(broken):
    path, _ = broken
    assert [r.case for r in run_all([path], api=None, name_filter="PASSES")] == ["passes"]
    sibling = [r.case for r in run_all([FIXTURES / "sibling.yaml"], api=None, name_filter="sibling.test")]
    assert sibling == ["in the test file"]


def test_api_all_runs_each_case_on_the_three_apis():
    r = flowrun("test", str(FIXTURES / "sibling.yaml"), "--api", "all", "-v", "-k", "in the test file")
    assert r.code == 0, r.out
    lines = r.out.splitlines()
    assert [line.split(" PASSED (")[0] for line in lines[:-1]] == [
        f"{FIXTURES / 'sibling.test.yaml'}::in the test file [{api}]" for api in ("responses", "chat", "assistants")]
    assert lines[-1] == "3 passed, 0 failed"


def test_mock_http_answers_an_http_tool_without_a_canned_answer_with_an_error(broken, capsys):
    path, port = broken
    result = play(path, "http tool at a closed port", mock_http="all")
    [mismatch] = result.mismatches
    assert mismatch.what == "output of local_service" and mismatch.expected == "no error"
    assert "mock_http" in mismatch.actual and "--mock-http" in mismatch.actual
    assert str(port) not in mismatch.actual  # no request was attempted

    code, out, _ = flowrun_test(capsys, str(path), "-k", "closed port", "--mock-http")
    assert code == 1 and out.splitlines()[-1] == "0 passed, 1 failed"
    assert "no canned response for tool 'local_service'" in out


def test_declared_mock_http_answers_without_network():
    result = play(REPO / "workflows" / "open_meteo.yaml", "one lookup, then the answer", mock_http="all")
    assert result.passed, result.report()


# --- nothing to run ------------------------------------------------------------------------------

def test_no_cases_and_unknown_paths_exit_2_with_a_message(tmp_path, capsys):
    code, _, err = flowrun_test(capsys, str(FIXTURES / "no_tests.yaml"))
    assert code == 2 and "no test cases found" in err and "--record" in err
    code, _, err = flowrun_test(capsys, str(FIXTURES / "broken.yaml"), "-k", "no such case")
    assert code == 2 and err == "flowrun: error: no test case matches -k 'no such case'\n"
    missing = tmp_path / "nope"
    with pytest.raises(UsageError, match="no such file or folder"):
        discover([str(missing)])


def test_discover_skips_test_files_and_hidden_folders_and_maps_a_test_file_to_its_workflow(tmp_path):
    for name in ("b.yaml", "a.yml", "b.test.yaml", ".hidden/c.yaml", "sub/d.yaml"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("version: 1\n", encoding="utf-8")
    found = discover([str(tmp_path), str(tmp_path / "b.test.yaml"), str(tmp_path / "b.yaml")])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["a.yml", "b.yaml", "sub/d.yaml"]


# --- --offline -----------------------------------------------------------------------------------

def test_offline_prints_the_scripted_answer_filled_in_from_the_real_resolvers():
    r = flowrun(str(WEATHER), "--offline", "--no-log")
    assert r.code == 0, r.err
    assert r.out == "It is 57°F in San Francisco today, and the chance of rain is 0.06 (about 6%).\n"
    assert "OFFLINE: the model's side is scripted" in r.err


def test_offline_values_come_from_the_resolvers_not_from_the_script(tmp_path):
    text = WEATHER.read_text(encoding="utf-8").replace('static: "57"', 'static: "61"')
    path = tmp_path / "weather.yaml"
    path.write_text(text.replace('static: "0.06"', 'static: "0.42"'), encoding="utf-8")
    out, err = StringIO(), StringIO()
    code = execute(RunRequest(file=str(path), offline=True, log=False, quiet=True, env={}), out=out, err=err)
    assert code == 0, err.getvalue()
    assert out.getvalue().startswith("It is 61°F in San Francisco today, and the chance of rain is 0.42")


def test_offline_without_a_test_case_exits_2_and_says_what_to_add():
    r = flowrun(str(FIXTURES / "no_tests.yaml"), "--offline", "--no-log")
    assert r.code == 2
    assert "has no test case to script the model from" in r.err and "tests:" in r.err


# --- JUnit details ------------------------------------------------------------------------------

def test_junit_is_valid_xml_even_when_an_output_holds_control_characters(tmp_path):
    results = [
        CaseResult("w.yaml", "ok", "chat", True, 1.0),
        CaseResult("w.yaml", "colours", "chat", False, 2.0, error="got \x1b[31mred\x1b[0m and \x00"),
        CaseResult("x.yaml", "(could not be loaded)", "", False, 0.0, error="x.yaml:1:1: bad"),
    ]
    path = tmp_path / "r.xml"
    write_junit(results, path)
    root = ET.parse(path).getroot()
    suite = root.find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "1")
    cases = list(suite.iter("testcase"))
    assert cases[1].find("failure").text == "got \\x1b[31mred\\x1b[0m and \\x00"
    assert cases[2].find("error").get("message") == "x.yaml:1:1: bad"


# --- expectations -------------------------------------------------------------------------------

def calls(*pairs):
    from runner.events import ToolCallRequested

    return [ToolCallRequested(f"c{i}", name, arguments) for i, (name, arguments) in enumerate(pairs)]


def outputs(*pairs, error=False):
    from runner.events import ToolCallCompleted

    return [ToolCallCompleted(f"c{i}", name, output, error, 1.0) for i, (name, output) in enumerate(pairs)]


def mismatches(expect, requested=(), completed=(), final_text="", status="completed"):
    from runner.testing.expect import check

    return [m.format() for m in check(expect, requested=list(requested), completed=list(completed),
                                      final_text=final_text, status=status)]


def test_multi_line_text_gets_a_diff():
    assert mismatches({"final_text": {"equals": "It is 57.\nRain 0.06.\nBye"}}, final_text="It is 57.\nRain 0.07.\nBye") == [
        "final text: expected 'It is 57.\\nRain 0.06.\\nBye'\n"
        "            got      'It is 57.\\nRain 0.07.\\nBye'\n"
        "  --- expected\n  +++ actual\n  @@ -1,3 +1,3 @@\n   It is 57.\n  -Rain 0.06.\n  +Rain 0.07.\n   Bye"
    ]


def test_tool_calls_compare_names_in_order_then_arguments_as_json():
    requested = calls(("a", '{"n": 1.0, "flag": true}'), ("b", "{oops"))
    assert mismatches({"tool_calls": [{"name": "b"}, {"name": "a"}]}, requested) == [
        "tool calls: expected ['b', 'a']\n            got      ['a', 'b']"]
    assert mismatches({"tool_calls": [{"name": "a", "arguments": {"n": 1, "flag": True}},
                                      {"name": "b", "arguments": "{oops"}]}, requested) == []
    assert mismatches({"tool_calls": [{"name": "a", "arguments": {"n": 1, "flag": 1}}, {"name": "b"}]}, requested) == [
        'arguments of call 1 (a): expected {"n": 1, "flag": 1}\n'
        '                         got      {"n": 1.0, "flag": true}']


def test_outputs_check_the_last_call_of_a_tool_and_say_so():
    completed = outputs(("temp", "57"), ("temp", "61"))
    assert mismatches({"outputs": {"temp": {"equals": "57"}}}, completed=completed) == [
        "output of temp (last of 2 calls): expected '57'\n"
        "                                  got      '61'"]
    assert mismatches({"outputs": {"rain": {"contains": "0.0"}}}, completed=completed) == [
        "output of rain: expected a call to it\n"
        "                got      no call\n"
        "                (tools that ran: temp)"]


def test_json_outputs_compare_true_and_1_as_different_values():
    completed = outputs(("t", '{"ok": true, "n": [1, 2.5]}'))
    assert mismatches({"outputs": {"t": {"json": {"pointer": "/n/1", "equals": 2.5}}}}, completed=completed) == []
    assert mismatches({"outputs": {"t": {"json": {"pointer": "/ok", "equals": 1}}}}, completed=completed) == [
        "output of t at /ok: expected 1\n" + " " * len("output of t at /ok: ") + "got      true"]
    assert mismatches({"outputs": {"t": {"json": {"pointer": "/n/01", "equals": 2.5}}}}, completed=completed) == [
        "output of t at /n/01: expected 2.5\n" + " " * len("output of t at /n/01: ") + "got      nothing there"]
