"""`flowrun test` as CI uses it (issue 10): an error output fails a case unless the case expects
it, an invalid workflow exits 2, Ctrl-C exits 130, and failures can be GitHub annotations."""

from __future__ import annotations

from pathlib import Path

from support.cli import flowrun

WORKFLOW = """\
version: 1
name: sensor
model: {{name: gpt-4o-mini, api: chat}}
instructions: Report the sensor.
input: Rain?
tools:
  - name: read_sensor
    description: Reads the rain sensor
    parameters: {{type: object, properties: {{}}}}
    resolve: {{python: "sensor:read"}}
tests:
  - name: reads the sensor
    turns:
      - tool_calls: [{{name: read_sensor, arguments: {{}}}}]
      - text: It is dry.
    expect:
      final_text: {{equals: It is dry.}}
{extra}
"""


def make(tmp_path: Path, extra: str = "") -> Path:
    (tmp_path / "sensor.py").write_text("def read():\n    raise RuntimeError('the rain sensor is unplugged')\n")
    path = tmp_path / "sensor.yaml"
    path.write_text(WORKFLOW.format(extra=extra))
    return path


def test_an_error_output_fails_the_case_unless_expected(tmp_path):
    path = make(tmp_path)
    result = flowrun("test", str(path))
    assert result.code == 1, result.out + result.err
    assert ("output of read_sensor: expected no error\n"
            "                       got      'error: the tool raised RuntimeError: the rain sensor is unplugged'\n"
            "                       (if this error is what the case tests, add expect.error_outputs: [read_sensor])"
            ) in result.out
    expected = make(tmp_path, "      error_outputs: [read_sensor]")
    assert flowrun("test", str(expected)).code == 0


def test_a_tool_listed_in_error_outputs_must_have_failed(tmp_path):
    (tmp_path / "sensor.py").write_text("def read():\n    return 'dry'\n")
    path = tmp_path / "sensor.yaml"
    path.write_text(WORKFLOW.format(extra="      error_outputs: [read_sensor]"))
    result = flowrun("test", str(path))
    assert result.code == 1
    assert ("output of read_sensor: expected an error (listed in expect.error_outputs)\n"
            "                       got      no error") in result.out


def test_an_invalid_workflow_exits_2_with_annotations(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("version: 1\nname: bad\nmodel: {name: m}\ninstructions: x\ntools: []\ntests:\n"
                    "  - name: a\n    turns: [{text: hi}]\n    expect: {final_txt: {equals: hi}}\n")
    result = flowrun("test", str(path), "--format", "github")
    assert result.code == 2, result.out + result.err
    assert (f"::error file={path},line=9,col=14,title=flowrun test::unknown key 'final_txt' (did you mean "
            "'final_text'?) (where: $.tests[0].expect.final_txt) -- allowed keys here: tool_calls, outputs, "
            "final_text, status, no_error_outputs, output, error_outputs, refused") in result.out.splitlines()


def test_a_failed_case_is_annotated_at_its_line(tmp_path):
    path = make(tmp_path)
    result = flowrun("test", str(path), "--format", "github")
    assert result.code == 1
    lines = [line for line in result.out.splitlines() if line.startswith("::")]
    assert lines == [
        f"::error file={path},line=12,col=1,title=flowrun test::test case 'reads the sensor [chat]' failed: "
        "output of read_sensor: expected no error%0A                       got      'error: the tool raised "
        "RuntimeError: the rain sensor is unplugged'%0A                       (if this error is what the case "
        "tests, add expect.error_outputs: [read_sensor])"]


def test_ctrl_c_exits_130(tmp_path, monkeypatch):
    import runner.testing.runner as runner_module

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner_module, "run_all", interrupted)
    result = flowrun("test", str(make(tmp_path)))
    assert result.code == 130
    assert "interrupted" in result.err


def test_a_real_ctrl_c_during_a_case_stops_every_case_and_exits_130(tmp_path):
    """SIGINT while a case's tool runs: the run loop ends that run "interrupted"; flowrun test must
    not count it as a failed case and go on to the next one, but stop and exit 130."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from support.paths import REPO

    started = tmp_path / "started"
    (tmp_path / "sensor.py").write_text(
        f"import time\n\ndef read():\n    open({str(started)!r}, 'a').write('x')\n    time.sleep(120)\n")
    second = "\n".join(["  - name: a second case", "    turns:", "      - tool_calls: [{name: read_sensor, arguments: {}}]",
                        "      - text: It is dry."])
    (tmp_path / "sensor.yaml").write_text(WORKFLOW.format(extra=second))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "FLOWRUN_"))}
    env.update(PYTHONPATH=str(REPO), FLOWRUN_LOG_DB=str(tmp_path / "runs.sqlite3"))
    proc = subprocess.Popen([sys.executable, "-m", "runner", "test", "sensor.yaml"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90  # a hang guard: a loaded machine can take long to start Python
        while not started.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the first case's tool never started"
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, (out, err)
    assert err.endswith("flowrun: interrupted\n") and "Traceback" not in err, err
    assert "failed" not in out and "F" not in out.replace("sensor.yaml", ""), out
    assert started.read_text() == "x"  # the second case never started
