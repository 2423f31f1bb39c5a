"""``flowrun view``: the run log as a web page on 127.0.0.1, until Ctrl-C.

The server and its page are imported only here (and by ``flowrun logs --web``), never by a run.
"""

from __future__ import annotations

import sys
import webbrowser
from pathlib import Path
from urllib.parse import quote, urlencode

import click

from runner.commands.entry import Command
from runner.commands.logs import _LOG_DB
from runner.runlog.log import default_log_path


def serve_until_interrupted(log_db: Path | None, *, port: int, open_browser: bool,
                            filters: dict[str, str] | None = None, batch: str | None = None) -> None:
    """Serve until Ctrl-C; ``filters`` (as the page names them) open the list already filtered,
    ``batch`` (an id or a prefix) opens that batch's page."""
    from runner.view.data import RunLogView
    from runner.view.server import ViewServer

    path = (log_db or default_log_path()).expanduser()
    server = ViewServer(RunLogView(path), port=port)  # listening from here: the browser may connect early
    try:
        url = server.url
        chosen = {k: v for k, v in (filters or {}).items() if v}
        if batch:
            url += "#/batch/" + quote(batch, safe="")
        elif chosen:
            url += "#/?" + urlencode(chosen)
        click.echo(f"flowrun view: {url}")
        click.echo(f"  run log {path} (read-only); Ctrl-C stops the server", err=True)
        sys.stdout.flush()
        if open_browser:
            try:
                webbrowser.open(url)
            except webbrowser.Error:
                click.echo("  (no browser found: open the address above)", err=True)
        server.serve_forever()  # until Ctrl-C
    finally:
        server.server_close()


@click.command("view", cls=Command, epilog="""
\\b
Examples:
  flowrun view                      # opens the browser on the run log
  flowrun view --no-open --port 8765
""")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default="a free port",
              help="The port on 127.0.0.1 to serve on.")
@click.option("--no-open", is_flag=True, help="Print the address, do not open a browser.")
@_LOG_DB
def view_command(port: int, no_open: bool, log_db: Path | None) -> None:
    """Browse the run log in a web page: runs, filters, one run's timeline, two runs compared.

    Served on 127.0.0.1 only, read-only, at an address with a random token (other users of
    this machine cannot read your runs). Ctrl-C stops it.
    """
    serve_until_interrupted(log_db, port=port, open_browser=not no_open)
