"""What a person sees: the answer on stdout, tool activity on stderr, plain text when piped."""

import io
import re

from runner.events import (
    Notice,
    RunCompleted,
    RunFailed,
    RunStarted,
    TextDelta,
    ToolCallCompleted,
    ToolCallRequested,
    TurnStarted,
)
from runner.render.terminal import TerminalRenderer, short_args
from runner.terminal_text import strip_controls as clean

ESC = re.compile(r"\x1b|\r")


def run_events(renderer):
    renderer(RunStarted("run_1", "w.yaml", "chat", "m", "hi"))
    renderer(TurnStarted(1))
    renderer(ToolCallRequested("c1", "get_temp", '{"location": "San Francisco, CA"}'))
    renderer(ToolCallRequested("c2", "get_rain", '{"location": "SF"}'))
    renderer(ToolCallCompleted("c2", "get_rain", "0.06", False, 1.2))
    renderer(ToolCallCompleted("c1", "get_temp", "error: boom", True, 2400))
    renderer(TurnStarted(2))
    renderer(TextDelta("It is "))
    renderer(TextDelta("57°F."))
    renderer(RunCompleted("run_1", "completed", "It is 57°F.", 2, 2, {"total_tokens": 42}, 812.0))


def test_piped_output_is_plain_and_split_between_stdout_and_stderr():
    out, err = io.StringIO(), io.StringIO()
    r = TerminalRenderer(out, err, tty=False, color=False)
    run_events(r)
    assert out.getvalue() == "It is 57°F.\n"
    lines = err.getvalue().splitlines()
    assert lines[0] == '✓ get_rain(location="SF") → 0.06 (1 ms)'
    assert lines[1] == '✗ get_temp(location="San Francisco, CA") → error: boom (2.4 s)'
    assert lines[2] == "completed · 2 turns · 2 tool calls · 42 tokens · 812 ms"
    assert not ESC.search(err.getvalue() + out.getvalue())


def test_quiet_shows_only_the_answer_and_errors():
    out, err = io.StringIO(), io.StringIO()
    r = TerminalRenderer(out, err, quiet=True)
    run_events(r)
    r(Notice("warning", "retrying"))
    assert out.getvalue() == "It is 57°F.\n"
    assert err.getvalue() == ""
    r(RunFailed("run_1", "failed", "the run ended failed: x", 1, "", 1, 0, None, 3.0))
    assert "flowrun: error: the run ended failed: x" in err.getvalue()


def test_control_sequences_from_tools_never_reach_the_terminal():
    assert clean("a\x1b[2Jb\rc\x07d") == "abcd"
    out, err = io.StringIO(), io.StringIO()
    r = TerminalRenderer(out, err)
    r(ToolCallRequested("c", "t", "{}"))
    r(ToolCallCompleted("c", "t", "ok\x1b]0;pwned\x07 \r\nmore", False, 1))
    assert "\x1b" not in err.getvalue() and "\r" not in err.getvalue()


def test_arguments_are_shortened_readably():
    assert short_args('{"a": 1, "b": "x"}') == 'a=1, b="x"'
    assert short_args("not json") == "not json"
    assert short_args('{"q": "' + "x" * 200 + '"}').endswith("…")


def test_colour_only_when_asked():
    out, err = io.StringIO(), io.StringIO()
    r = TerminalRenderer(out, err, color=True)
    r(ToolCallRequested("c", "t", "{}"))
    r(ToolCallCompleted("c", "t", "ok", False, 1))
    assert "\x1b[32m✓" in err.getvalue()


def test_live_view_strips_bidi_controls_that_logs_show_escapes():
    """U+202E and friends reorder what the reader sees: gone live, made visible in a replay."""
    from runner.terminal_text import show_controls, strip_controls

    text = "invoice\u202egnp.exe\u2066x\u2069\u200f"
    assert strip_controls(text) == "invoicegnp.exex"
    assert show_controls(text) == "invoice\\u202egnp.exe\\u2066x\\u2069\\u200f"
