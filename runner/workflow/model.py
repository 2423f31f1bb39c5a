"""Frozen spec objects built from a validated workflow file.

Everything downstream (providers, resolvers, the run loop, ``flowrun test``) reads these and never
the raw YAML. Field names follow the YAML keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from runner.templating import TemplateError, references_in

APIS = ("responses", "chat", "assistants")


@dataclass(frozen=True)
class ModelSpec:
    api: str = "responses"  # responses | chat | assistants
    name: str = "gpt-4o-mini"
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float | None = None
    top_p: float | None = None
    max_output_tokens: int | None = None
    parallel_tool_calls: bool | None = None
    tool_choice: str | None = None  # auto | none | required
    assistant_id: str | None = None  # Assistants only: reuse instead of creating
    store: bool | None = None  # Responses only: False re-sends the items each turn
    background: bool = False  # Responses only: resume a cut stream with starting_after
    seed: int | None = None
    timeout: float = 600.0  # seconds for each API request


@dataclass(frozen=True)
class StaticResolver:
    value: Any  # str, number, bool, list or mapping; templating applies to strings inside


@dataclass(frozen=True)
class PythonResolver:
    entrypoint: str  # "module:function" or "package.module:object.attr"


@dataclass(frozen=True)
class HttpResolver:
    url: str
    method: str = "GET"
    query: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None  # JSON body; strings inside are templated, ``${{ args.x }}`` alone keeps x's type
    timeout: float = 30.0
    expect_status: tuple[int, ...] = ()  # empty: any 2xx
    extract: str | None = None  # JSON Pointer into a JSON response, e.g. /current/temperature_2m
    allow_hosts: tuple[str, ...] = ()  # extra hosts a model-chosen URL may reach
    allow_private_network: bool = False  # allow loopback, private, link-local targets
    max_response_bytes: int = 1_048_576
    max_redirects: int = 0
    retries: int = 2  # only for idempotent methods, connection errors, 429/503


Resolver = Union[StaticResolver, PythonResolver, HttpResolver]


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]
    resolver: Resolver
    timeout: float = 60.0  # seconds; the call is abandoned and reported after this
    strict: bool | None = None
    isolation: str = "thread"  # python tools: "thread" or "process" (a worker killed at the timeout)
    line: int = 0  # where the tool starts in the file, for messages


@dataclass(frozen=True)
class InputSpec:
    name: str
    description: str = ""
    default: Any = None
    required: bool = False


@dataclass(frozen=True)
class ScriptedCall:
    """A tool call the scripted model makes. ``arguments`` is a mapping, or a raw string sent as
    is (to script invalid JSON)."""

    name: str
    arguments: Any = field(default_factory=dict)


@dataclass(frozen=True)
class ScriptedTurn:
    """One model turn: either tool calls, or final text (``${{ outputs.TOOL }}`` allowed)."""

    tool_calls: tuple[ScriptedCall, ...] = ()
    text: str | None = None


@dataclass(frozen=True)
class TestCase:
    __test__ = False  # not a pytest class

    name: str
    turns: tuple[ScriptedTurn, ...]
    input: str | None = None  # None: the workflow's input
    vars: dict[str, Any] = field(default_factory=dict)
    expect: dict[str, Any] = field(default_factory=dict)  # see schemas/workflow.schema.json
    mock_http: dict[str, Any] = field(default_factory=dict)  # tool name -> canned response
    line: int = 0


@dataclass(frozen=True)
class Workflow:
    path: Path
    name: str
    model: ModelSpec
    tools: tuple[ToolSpec, ...]
    version: int = 1
    description: str = ""
    instructions: str | None = None
    input: str | None = None
    inputs: tuple[InputSpec, ...] = ()
    tests: tuple[TestCase, ...] = ()
    source_sha256: str = ""

    @property
    def folder(self) -> Path:
        return self.path.parent

    def env_names(self) -> frozenset[str]:
        """Every environment variable the tools read (``${{ env.NAME }}``): the values a run needs
        before anything is sent, and the values no output may ever show."""
        names: set[str] = set()
        for tool in self.tools:
            r = tool.resolver
            values: list = []
            if isinstance(r, StaticResolver):
                values = [r.value]
            elif isinstance(r, HttpResolver):
                values = [r.url, r.query, r.headers, r.body]
            try:
                names |= {ref.name for ref in references_in(values) if ref.context == "env"}
            except TemplateError:  # reported by validation; nothing to read here
                continue
        return frozenset(names)

    def tool(self, name: str) -> ToolSpec | None:
        for t in self.tools:
            if t.name == name:
                return t
        return None
