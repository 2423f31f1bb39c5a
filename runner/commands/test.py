"""``flowrun test``: check every workflow's test cases offline, for CI.

The output reads like pytest's: a line per file with a dot (or F) per case, then one section per
failure that shows what was expected and what happened, then ``N passed, M failed``. Exit 1 on
any failure; 2 when there is nothing to run or a workflow file is invalid (as `flowrun validate`
would exit); 130 on Ctrl-C. ``--format github`` adds workflow-command annotations, so failures
show on the pull request's lines.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from runner.commands.entry import Command
from runner.errors import UsageError

EXAMPLES = """
\b
Examples:
  flowrun test                          # every workflow under workflows/
  flowrun test workflows/weather.yaml --api all
  flowrun test workflows/ -k rain -v    # only cases whose file::name contains "rain"
  flowrun test workflows/ --mock-http --junit-xml report.xml
"""

WIDTH = 80


@click.command("test", cls=Command, epilog=EXAMPLES)
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--api", type=click.Choice(["responses", "chat", "assistants", "all"]), help="Which API the scripted server speaks (default: each file's model.api; all: each case on the three).")
@click.option("--mock-http", "mock_http", flag_value="all", help="Every HTTP tool answers from the case's `mock_http` (no network at all); one without a canned answer returns an error.")
@click.option("--live-http", "mock_http", flag_value="none", help="Ignore `mock_http`: HTTP tools make real requests.")
@click.option("-k", "name_filter", metavar="TEXT", help="Only cases whose FILE::NAME contains TEXT (ignoring case).")
@click.option("--junit-xml", type=click.Path(dir_okay=False), help="Also write a JUnit XML report, for CI systems.")
@click.option("-v", "--verbose", is_flag=True, help="One line per case instead of dots.")
@click.option("--no-python", is_flag=True, help="Refuse `python` resolvers, as `run --no-python` does (for files you did not write): their calls get an error output.")
@click.option("--format", "output_format", type=click.Choice(["text", "github"]), default="text", show_default=True,
              help="github: also print each failure as a GitHub Actions annotation (::error file=...,line=...).")
def test_command(paths, api, mock_http, name_filter, junit_xml, verbose, no_python, output_format) -> int:
    """Run the test cases of workflow files (default folder: workflows/).

    A workflow's cases are its `tests:` and those of NAME.test.yaml beside it. The model's side is
    scripted by each case's `turns:`; the run goes through the real provider code, the real
    `openai` client (against an embedded server on 127.0.0.1) and the real tools.
    """
    from runner.testing.runner import discover, run_all

    files = discover(list(paths))
    if not files:
        raise UsageError("no workflow files found")
    out = sys.stdout
    current: list[Path | None] = [None]

    def show(path: Path, result) -> None:
        if verbose:
            mark = "PASSED" if result.passed else "FAILED"
            out.write(f"{result.nodeid} {mark} ({result.duration_ms:.0f} ms)\n")
        else:
            if current[0] != path:
                out.write(("\n" if current[0] is not None else "") + f"{path} ")
                current[0] = path
            out.write("." if result.passed else "F")
        out.flush()

    results = run_all(files, api=api, mock_http=mock_http or "declared", name_filter=name_filter, on_result=show,
                      allow_python=not no_python)
    if not verbose and results:
        out.write("\n")
    if junit_xml:
        from runner.testing.junit import write_junit

        write_junit(results, junit_xml)
    if not results:
        if name_filter:
            raise UsageError(f"no test case matches -k {name_filter!r}")
        raise UsageError("no test cases found", hint="add a `tests:` entry to a workflow, or record one with "
                         "`flowrun FILE --record NAME.test.yaml`")
    failed = [r for r in results if not r.passed]
    if failed:
        out.write("\n" + " FAILURES ".center(WIDTH, "=") + "\n")
    for r in failed:
        out.write(f"___ {r.nodeid} ___\n{r.report()}\n\n")
    passed = len(results) - len(failed)
    if output_format == "github":
        for r in failed:
            for line in _annotations(r):
                out.write(line + "\n")
    out.write(f"{passed} passed, {len(failed)} failed\n")
    if any(r.problems for r in failed):
        return 2  # an invalid workflow file: the same exit as `flowrun validate`
    return 1 if failed else 0


def _annotations(result) -> list[str]:
    """GitHub annotations for one failed result: the file's problems when it could not be
    loaded, otherwise one at the case's first line."""
    from runner.commands.validate import github_annotation
    from runner.errors import Problem

    if result.problems:
        return [github_annotation(p, "flowrun test") for p in result.problems]
    problem = Problem(result.file, result.line, 1, f"test case '{result.title}' failed: {result.report()}")
    return [github_annotation(problem, "flowrun test")]
