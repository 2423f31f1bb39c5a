"""``flowrun test``: check every workflow's test cases offline, for CI."""

from __future__ import annotations

import sys

import click

EXAMPLES = """
\b
Examples:
  flowrun test                          # every workflow under workflows/
  flowrun test workflows/weather.yaml --api all
  flowrun test workflows/ --junit-xml report.xml
"""


@click.command("test", epilog=EXAMPLES)
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--api", type=click.Choice(["responses", "chat", "assistants", "all"]), help="Which API the scripted server speaks (default: each file's model.api).")
@click.option("--mock-http", "mock_http", flag_value="all", help="Every HTTP tool answers from the case's `mock_http` (no network at all).")
@click.option("--live-http", "mock_http", flag_value="none", help="Ignore `mock_http`: HTTP tools make real requests.")
@click.option("-k", "name_filter", help="Only cases whose name contains this text.")
@click.option("--junit-xml", type=click.Path(dir_okay=False), help="Also write a JUnit XML report.")
@click.option("-v", "--verbose", is_flag=True, help="One line per case instead of dots.")
def test_command(paths, api, mock_http, name_filter, junit_xml, verbose) -> None:
    """Run the test cases of workflow files (default folder: workflows/).

    The model's side is scripted by each case's `turns:`; the run goes through the real provider
    code, the real `openai` client (against an embedded server on 127.0.0.1) and the real tools.
    """
    from runner.testing.runner import discover, run_all

    files = discover(list(paths))
    if not files:
        click.echo("flowrun: error: no workflow files found", err=True)
        sys.exit(2)
    out = sys.stdout

    def show(result) -> None:
        if verbose:
            mark = "PASSED" if result.passed else "FAILED"
            out.write(f"{result.file}::{result.title} {mark} ({result.duration_ms:.0f} ms)\n")
        else:
            out.write("." if result.passed else "F")
        out.flush()

    results = run_all(files, api=api, mock_http=mock_http or "declared", name_filter=name_filter, on_result=show)
    if not verbose and results:
        out.write("\n")
    failed = [r for r in results if not r.passed]
    for r in failed:
        out.write(f"\n___ {r.file}::{r.title} ___\n")
        if r.error:
            out.write(r.error + "\n")
        for m in r.mismatches:
            out.write(m.format() + "\n")
    if junit_xml:
        from runner.testing.junit import write_junit

        write_junit(results, junit_xml)
    passed = len(results) - len(failed)
    if not results:
        out.write("no test cases found\n")
        sys.exit(2)
    out.write(f"{passed} passed, {len(failed)} failed\n")
    sys.exit(1 if failed else 0)
