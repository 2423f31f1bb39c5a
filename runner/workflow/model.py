"""Frozen spec objects built from a validated workflow file.

Everything downstream (providers, resolvers, the run loop, ``flowrun test``) reads these and never
the raw YAML. Field names follow the YAML keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
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
    keep_tool_choice: bool = False  # required stays required after the first tool round
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


# HTTP methods that only read: an http tool using one runs without asking unless the file says otherwise.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


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


@dataclass(frozen=True)
class McpResolver:
    """A tool an MCP server provides. Built at run time from the server's listing, never read from
    the file: ``server`` is the source's server name, ``tool`` the name the server knows it by."""

    server: str
    tool: str


Resolver = Union[StaticResolver, PythonResolver, HttpResolver, McpResolver]


@dataclass(frozen=True)
class McpServerSpec:
    """How to reach one MCP server: ``command`` (stdio) or ``url`` (streamable HTTP)."""

    name: str
    command: str | None = None
    args: tuple[str, ...] = ()
    cwd: str | None = None  # relative to the workflow's folder
    env: tuple[str, ...] = ()  # NAMES of environment variables passed to the server
    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)  # values may use ${{ env.NAME }}
    allow_private_network: bool = False
    startup_timeout: float = 30.0

    @property
    def transport(self) -> str:
        return "stdio" if self.command else "http"


@dataclass(frozen=True)
class ApprovalRule:
    """``allow``/``ask``/``deny`` the calls whose arguments match ``match`` (argument name or
    JSON Pointer -> pattern, or a list of patterns of which any may match)."""

    action: str  # allow | ask | deny
    match: dict[str, Any]
    line: int = 0


@dataclass(frozen=True)
class ApprovalSpec:
    """A tool's ``approval:``: its rules, then ``default`` when none matches (None: the file's
    ``approval:``, else the default for the tool's kind)."""

    default: str | None = None
    rules: tuple[ApprovalRule, ...] = ()
    line: int = 0
    origin: str = ""  # where it was written, for messages, when not on the tool itself (an MCP source)


@dataclass(frozen=True)
class McpOverride:
    description: str | None = None
    timeout: float | None = None
    approval: ApprovalSpec | None = None


@dataclass(frozen=True)
class McpSource:
    """A ``tools:`` item with ``mcp:``: which server, and which of its tools the model sees."""

    server: McpServerSpec
    include: tuple[str, ...] | None = None  # None: every tool the server lists
    exclude: tuple[str, ...] = ()
    prefix: str = ""
    timeout: float = 60.0
    strict: bool | None = None
    overrides: dict[str, McpOverride] = field(default_factory=dict)
    line: int = 0
    approval: ApprovalSpec | None = None  # for every tool of the server, unless overridden


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
    bind: dict[str, Any] = field(default_factory=dict)  # argument -> value fixed by the file
    model_schema: dict[str, Any] | None = None  # parameters without the bound ones; None: all
    approval: ApprovalSpec | None = None  # None: the file's approval, else the kind's default
    read_only: bool | None = None  # MCP tools: the server's readOnlyHint

    @property
    def model_parameters(self) -> dict[str, Any]:
        """The schema the model gets: bound arguments are not the model's to see or choose."""
        return self.parameters if self.model_schema is None else self.model_schema


def without_bound(parameters: dict[str, Any], bound: Any) -> dict[str, Any]:
    """``parameters`` with the ``bound`` arguments left out of properties and required."""
    names = set(bound)
    out = dict(parameters)
    if isinstance(out.get("properties"), dict):
        out["properties"] = {k: v for k, v in out["properties"].items() if k not in names}
    if isinstance(out.get("required"), list):
        out["required"] = [r for r in out["required"] if r not in names]
    return out


@dataclass(frozen=True)
class OutputSpec:
    """The structured answer a workflow asks for: the final text must parse as JSON matching
    ``schema``; ``attempts`` is how many times the model is asked again when it does not."""

    name: str
    schema: dict[str, Any]
    strict: bool = True
    attempts: int = 2


# What each run policy may be set to; the first value is the default. The workflow schema's
# ``policies`` lists the same (a test holds the two together).
POLICY_CHOICES: dict[str, tuple[str, ...]] = {
    "on_tool_error": ("continue", "fail"),  # continue: the model reads the error output and may recover
    "on_empty_answer": ("fail", "warn"),  # fail: a run with no answer is never a silent success
    "on_unknown_tool": ("continue", "fail"),  # continue: the model is told which tools exist
}


@dataclass(frozen=True)
class RunPolicies:
    """How a run treats what goes wrong on the model's or a tool's side: ``policies:`` in the
    file, ``--policy NAME=VALUE`` on the command line. Values as in ``POLICY_CHOICES``."""

    on_tool_error: str = "continue"
    on_empty_answer: str = "fail"
    on_unknown_tool: str = "continue"

    def changed(self, overrides: dict[str, str]) -> "RunPolicies":
        """These policies with ``overrides`` (already checked against ``POLICY_CHOICES``)."""
        return replace(self, **overrides) if overrides else self


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
class CaseAnswer:
    """How a test case answers a call that asks for approval (``approvals:`` in the case)."""

    answer: str  # approve | deny
    reason: str | None = None  # a refusal's reason, what the model reads


@dataclass(frozen=True)
class CaseAnswers:
    """A case's answers for one tool: ``every`` answers all its calls; else ``per_call[i]``
    answers its i-th call that asks, and a call past the end is unanswered."""

    every: CaseAnswer | None = None
    per_call: tuple[CaseAnswer, ...] = ()

    def for_call(self, n: int) -> CaseAnswer | None:
        """The answer to the tool's ``n``-th call that asks (0-based), if the case has one."""
        if self.every is not None:
            return self.every
        return self.per_call[n] if n < len(self.per_call) else None


@dataclass(frozen=True)
class TestCase:
    __test__ = False  # not a pytest class

    name: str
    turns: tuple[ScriptedTurn, ...]
    input: str | None = None  # None: the workflow's input
    vars: dict[str, Any] = field(default_factory=dict)
    expect: dict[str, Any] = field(default_factory=dict)  # see schemas/workflow.schema.json
    mock_http: dict[str, Any] = field(default_factory=dict)  # tool name -> canned response
    mock_mcp: dict[str, Any] = field(default_factory=dict)  # server -> tool name -> canned result
    # tool name -> the case's answers: one for every call, or one per call in the order asked
    approvals: dict[str, "CaseAnswers"] = field(default_factory=dict)
    line: int = 0


@dataclass(frozen=True)
class Workflow:
    path: Path
    name: str
    model: ModelSpec
    tools: tuple[ToolSpec, ...]  # the file's own tools; MCP tools join them once their servers answer
    version: int = 1
    description: str = ""
    instructions: str | None = None
    input: str | None = None
    inputs: tuple[InputSpec, ...] = ()
    tests: tuple[TestCase, ...] = ()
    output: OutputSpec | None = None
    source_sha256: str = ""
    mcp: tuple[McpSource, ...] = ()  # tool sources: the MCP servers whose tools the model may call
    approval: str | None = None  # the file-wide approval default: allow | ask | deny
    policies: RunPolicies = field(default_factory=RunPolicies)

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
            values.append(tool.bind)  # a bound value read from the environment is sent too
            try:
                names |= {ref.name for ref in references_in(values) if ref.context == "env"}
            except TemplateError:  # reported by validation; nothing to read here
                continue
        for source in self.mcp:  # what an MCP server receives: its env names, its headers' values
            names |= set(source.server.env)
            try:
                names |= {ref.name for ref in references_in(source.server.headers) if ref.context == "env"}
            except TemplateError:
                continue
        return frozenset(names)

    def tool(self, name: str) -> ToolSpec | None:
        for t in self.tools:
            if t.name == name:
                return t
        return None
