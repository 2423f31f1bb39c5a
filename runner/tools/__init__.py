"""The tool side of a run: each call the model makes, resolved through the workflow file.

``Dispatcher`` is the entry point; ``static_tool``, ``python_tool`` and ``http_tool`` are the
resolvers; ``netguard`` and ``http_request`` keep the HTTP tool's requests where they belong.
"""

from runner.tools.dispatcher import Dispatcher, parse_arguments

__all__ = ["Dispatcher", "parse_arguments"]
