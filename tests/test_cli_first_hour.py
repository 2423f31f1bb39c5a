"""The command line as a new user meets it (issue 10, section 4)."""

from __future__ import annotations

from support.cli import flowrun

WEATHER = "workflows/weather.yaml"


def test_a_mistyped_command_suggests_the_one_meant():
    result = flowrun("valdiate", WEATHER)
    assert result.code == 2
    assert result.err == ("flowrun: error: no command 'valdiate' (and no file of that name); did you mean "
                          "`flowrun validate`?\n  hint: `flowrun --help` lists the commands\n")


def test_an_unknown_word_that_looks_like_a_file_is_still_a_file(tmp_path):
    result = flowrun("nosuch.yaml")
    assert result.code == 2 and "nosuch.yaml: file not found" in result.err
    (tmp_path / "valdiate").write_text("version: 1\n")
    result = flowrun("valdiate", cwd=tmp_path)
    assert "did you mean" not in result.err


def test_dash_m_is_the_model_and_dash_capital_m_the_message():
    result = flowrun(WEATHER, "--offline", "-m", "my-model", "-M", "Rain in Oslo?", "-o", "jsonl")
    assert result.code == 0, result.err
    started = next(line for line in result.out.splitlines() if '"run.started"' in line)
    assert '"model": "my-model"' in started and '"input": "Rain in Oslo?"' in started


def test_chat_with_offline_is_refused_before_the_run():
    result = flowrun(WEATHER, "--offline", "--chat", input="hi\n")
    assert result.code == 2
    assert result.err == ("flowrun: error: --chat needs a model to answer each new message; --offline only "
                          "replays the model's turns written in a test case\n  hint: drop --chat to replay the "
                          "case, or drop --offline to chat with a model\n")
