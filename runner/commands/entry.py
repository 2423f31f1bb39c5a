"""How every command ends: errors written once for the user, the exit code chosen in one place.

``flowrun`` itself (``runner.cli``) and each command invoked on its own (as tests do) end the same
way: commands raise, ``report`` writes the one message and picks the exit code.
"""

from __future__ import annotations

import sys
from typing import TextIO

import click


def report(exc: BaseException, err: TextIO) -> int:
    """The one place an error is written for the user (on ``err``) and given its exit code.
    A FlowrunError's text was masked by whoever raised it; ``shown``: the user saw it already."""
    from runner.errors import FlowrunError, Interrupted

    if isinstance(exc, click.exceptions.Exit):
        return exc.exit_code
    if isinstance(exc, click.ClickException):
        exc.show(file=err)
        return 2
    if isinstance(exc, (click.exceptions.Abort, KeyboardInterrupt)):
        exc = Interrupted()
    if isinstance(exc, FlowrunError):
        if not exc.shown:
            err.write("\nflowrun: interrupted\n" if isinstance(exc, Interrupted) else f"flowrun: error: {exc}\n")
        return exc.exit_code
    if isinstance(exc, BrokenPipeError):
        return 1
    raise exc


class Entry:
    """Run as a program (``main``), a command reports its errors and exits with its code the
    same way whether it is ``flowrun`` itself or one command that a test invokes directly."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except SystemExit:
            raise
        except BaseException as exc:  # noqa: BLE001 - report() re-raises what it does not know
            sys.exit(report(exc, sys.stderr))
        sys.exit(code if isinstance(code, int) else 0)


class Command(Entry, click.Command):
    pass


class Group(Entry, click.Group):
    pass
