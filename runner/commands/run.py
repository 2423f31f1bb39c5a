"""``flowrun run FILE`` (also plain ``flowrun FILE``): run a workflow against a model."""

from __future__ import annotations

import os
import sys

import click

from runner.commands.entry import Command
from runner.errors import UsageError

EXAMPLES = """
\b
Examples:
  flowrun workflows/weather.yaml --offline          # no key: the model's turns are scripted
  flowrun workflows/weather.yaml                    # OpenAI (OPENAI_API_KEY), Responses API
  flowrun workflows/weather.yaml --api chat --base-url http://localhost:11434/v1   # Ollama
  flowrun workflows/weather.yaml -M "And in Paris?" -o jsonl > events.jsonl
  flowrun workflows/weather.yaml --policy on_tool_error=fail   # a tool error fails the run
"""


def wants_color(options) -> bool:
    """Colour unless ``--no-color`` or the ``NO_COLOR`` convention says no."""
    return not options["no_color"] and "NO_COLOR" not in os.environ


def approvals_from(options) -> "Approvals":
    """``--approve``/``--deny``/``--yes`` as the gate reads them."""
    from runner.tools.approval import Approvals

    return Approvals(approve=frozenset(options.get("approve") or ()), deny=frozenset(options.get("deny") or ()),
                     yes=bool(options.get("yes")))


def parse_vars(pairs: tuple[str, ...]) -> dict[str, str]:
    values = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--var {pair!r} is not NAME=VALUE", hint="write it as --var city=Paris")
        values[name.strip()] = value
    return values


def parse_policies(pairs: tuple[str, ...]) -> dict[str, str]:
    """``--policy NAME=VALUE`` (repeatable): run policies over the file's ``policies:``."""
    from runner.suggest import suggest
    from runner.workflow.model import POLICY_CHOICES

    chosen = {}
    for pair in pairs:
        name, sep, value = (part.strip() for part in pair.partition("="))
        if not sep or not name:
            raise UsageError(f"--policy {pair!r} is not NAME=VALUE", hint="write it as --policy on_tool_error=fail")
        if name not in POLICY_CHOICES:
            close = suggest(name, POLICY_CHOICES)
            raise UsageError(f"--policy: there is no policy {name!r}" + (f" (did you mean {close!r}?)" if close else ""),
                             hint="the policies are " + ", ".join(POLICY_CHOICES))
        if value not in POLICY_CHOICES[name]:
            close = suggest(value, POLICY_CHOICES[name])
            raise UsageError(f"--policy: {name} cannot be {value!r}" + (f" (did you mean {close!r}?)" if close else ""),
                             hint=f"write --policy {name}=" + f" or --policy {name}=".join(POLICY_CHOICES[name]))
        chosen[name] = value
    return chosen


@click.command("run", cls=Command, epilog=EXAMPLES)
@click.argument("file", type=click.Path(dir_okay=True, path_type=str))
@click.option("-M", "--message", help="The user message (replaces the file's `input`).")
@click.option("--var", "vars_", multiple=True, metavar="NAME=VALUE", help="Set one of the file's `inputs`.")
@click.option("--api", type=click.Choice(["responses", "chat", "assistants"]), help="Which API to speak (overrides model.api).")
@click.option("--base-url", help="The server to talk to (overrides model.base_url and OPENAI_BASE_URL).")
@click.option("-m", "--model", "model_name", help="The model name (overrides model.name), as in llm and the openai CLI.")
@click.option("--profile", help="Take api, base_url and model from this profile of .flowrun.yaml or ~/.config/flowrun/config.yaml (flags and FLOWRUN_* variables still win).")
@click.option("--max-turns", type=click.IntRange(min=1), default=10, show_default=True, help="Stop a model that keeps calling tools after this many turns.")
@click.option("--policy", "policies", multiple=True, metavar="NAME=VALUE",
              help="Override one of the file's run policies, e.g. on_tool_error=fail, on_empty_answer=warn, on_unknown_tool=fail (repeatable).")
@click.option("-o", "--output", type=click.Choice(["text", "jsonl"]), default="text", show_default=True, help="text: the answer on stdout; jsonl: one event per line.")
@click.option("--offline", is_flag=True, help="No key, no network: the model's side is scripted from the file's test case; the tools are real.")
@click.option("--case", "case_name", help="With --offline: which test case to script the model from (default: the first).")
@click.option("--chat", is_flag=True, help="After the answer, read your next message and continue the same conversation (empty line or Ctrl-D ends).")
@click.option("--record", "record_path", type=click.Path(dir_okay=False), help="Save this run's model turns and tool outputs as a test case (e.g. workflows/weather.test.yaml) for `flowrun test`.")
@click.option("--approve", "approve", multiple=True, metavar="TOOL", help="Run calls of TOOL that would ask first, without asking (repeatable; * and ? patterns allowed).")
@click.option("--deny", "deny", multiple=True, metavar="TOOL", help="Refuse calls of TOOL that would ask first; the model is told (repeatable; patterns allowed).")
@click.option("-y", "--yes", is_flag=True, help="Approve every call that would ask first (tools the file refuses stay refused).")
@click.option("-q", "--quiet", is_flag=True, help="Only the answer.")
@click.option("-v", "--verbose", is_flag=True, help="Also show full tool arguments and outputs.")
@click.option("--no-color", is_flag=True, help="No colour (NO_COLOR is honoured too).")
@click.option("--no-local-code", "--no-python", "no_python", is_flag=True,
              help="Refuse `python` resolvers and MCP servers started by a command (for files you did not write).")
@click.option("--pause-on-approval", is_flag=True, help="A tool call that needs an approval pauses the run (exit 4) instead of asking; `flowrun resume RUN_ID --approve TOOL` continues it later (implied by -o jsonl).")
@click.option("--log-db", type=click.Path(dir_okay=False), envvar="FLOWRUN_LOG_DB", help="Run log database (default: ~/.local/state/flowrun/runs.sqlite3).")
@click.option("--no-log", is_flag=True, help="Do not record this run in the run log.")
@click.option("--otel", is_flag=True, help="Send the run as OpenTelemetry spans (also on when OTEL_EXPORTER_OTLP_ENDPOINT is set; needs flowrun[otel]).")
def run_command(file: str, **options) -> None:
    """Run a workflow: stream the answer, resolve every tool call through the file."""
    from runner.run.startup_gc import PausedCollector

    startup = PausedCollector()  # until the first turn ends: imports and set-up, nothing to collect
    try:
        _run(file, options, startup)
    finally:
        startup.resume()


def _run(file: str, options: dict, startup) -> None:
    from runner.run.session import RunRequest, run

    request = RunRequest(
        file=file,
        message=options["message"],
        vars=parse_vars(options["vars_"]),
        api=options["api"],
        base_url=options["base_url"],
        model=options["model_name"],
        profile=options["profile"],
        max_turns=options["max_turns"],
        policies=parse_policies(options["policies"]),
        output=options["output"],
        offline=options["offline"],
        case_name=options["case_name"],
        quiet=options["quiet"],
        verbose=options["verbose"],
        color=wants_color(options),
        allow_python=not options["no_python"],
        log_db=options["log_db"],
        log=not options["no_log"],
        chat=options["chat"],
        record=options["record_path"],
        otel=options["otel"],
        pause_on_approval=options["pause_on_approval"],
        approvals=approvals_from(options),
    )
    run(request, out=sys.stdout, err=sys.stderr, startup=startup)  # a run that did not complete raises
