"""The contract between the run loop and a provider.

A provider keeps its own API state (Assistants: thread and run ids; Responses: the previous
response id or the input items; Chat: the message list), so the loop never branches on which API
is in use. Providers know nothing of resolvers; resolvers know nothing of providers.

Each turn is an async iterator of events (``TextDelta``, ``Notice``) that ends with exactly one
``TurnResult``. A turn that ends without a terminal event from the server raises ``ProviderError``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import AsyncIterator, Sequence, Union

from runner.calls import ToolCall, ToolResult
from runner.events import Notice, TextDelta


# Terminal statuses of a turn. "tool_calls" means: resolve these calls, then submit.
TURN_STATUSES = ("tool_calls", "completed", "failed", "incomplete", "cancelled", "expired")


@dataclass(frozen=True)
class TurnResult:
    status: str  # one of TURN_STATUSES
    tool_calls: tuple[ToolCall, ...] = ()
    text: str = ""
    usage: dict[str, int] | None = None  # {"input_tokens", "output_tokens", "total_tokens"}
    error: str | None = None  # the server's message for failed / incomplete / expired runs
    error_code: str | None = None
    meta: dict = field(default_factory=dict)  # response / run ids, for logs


TurnEvent = Union[TextDelta, Notice, TurnResult]


@dataclass(frozen=True)
class ModelSettings:
    """What a provider needs to know about the model, resolved from the file and the CLI."""

    api: str
    model: str
    base_url: str | None
    api_key: str
    api_key_env: str = "OPENAI_API_KEY"  # named in messages ("check OPENAI_API_KEY"), never the key
    instructions: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_output_tokens: int | None = None
    parallel_tool_calls: bool | None = None
    tool_choice: str | None = None
    keep_tool_choice: bool = False  # send tool_choice after tool rounds too (else required -> auto)
    assistant_id: str | None = None
    store: bool | None = None
    background: bool = False  # Responses only: a cut stream is resumed (starting_after); needs store
    seed: int | None = None
    tools: tuple[dict, ...] = ()  # {"name", "description", "parameters", "strict"} per tool
    output: dict | None = None  # {"name", "schema", "strict"}: the final answer's JSON Schema
    timeout: float = 600.0
    max_retries: int = 2
    extra_headers: tuple[tuple[str, str], ...] = ()


class Provider(ABC):
    """One conversation on one API. Create, then ``send_message``, then ``submit_tool_outputs``
    for as long as the model asks for tools, then ``aclose``."""

    api: str

    @abstractmethod
    def send_message(self, text: str) -> AsyncIterator[TurnEvent]:
        """Add a user message and stream the model's turn."""

    @abstractmethod
    def submit_tool_outputs(self, results: Sequence[ToolResult]) -> AsyncIterator[TurnEvent]:
        """Send every output of the last turn at once and stream the next turn."""

    def snapshot(self, *, hand_over: bool = True) -> dict:
        """After a turn that asked for tools: a JSON-able record of what this conversation needs
        to go on in another process (``restore``, then ``submit_tool_outputs``), so a run paused
        for an approval can be resumed later. Raises ``ProviderError`` when it cannot.
        ``hand_over``: the run pauses now, so what the snapshot names (an assistant made for the
        run) is left for the resumed run; without it, ``hand_over()`` does that later."""
        from runner.errors import ProviderError

        raise ProviderError(f"a run on the {self.api} API cannot be paused")

    def hand_over(self) -> None:
        """The run pauses with a snapshot taken earlier (``snapshot(hand_over=False)``): leave
        what it names to the resumed run instead of releasing it at ``aclose``."""

    def restore(self, snapshot: dict) -> None:
        """Take up a conversation ``snapshot`` described, on a provider just created with the
        same settings. The snapshot comes from a file: a malformed one raises ``SnapshotError``."""
        from runner.providers.snapshot import SnapshotError

        raise SnapshotError(f"a run on the {self.api} API cannot be resumed")

    async def resumable(self, *, resending: bool = False) -> tuple[str, str] | None:
        """After ``restore``: None when the server still waits for the tool outputs, else the
        run's status and why not (an Assistants run that expired). Asked before any tool runs.
        ``resending``: the outputs were sent once already and that request failed; the server
        may have taken them after all, and then the run goes on from there."""
        return None

    async def cancel(self) -> None:
        """Cancel the turn in flight on the server, where the API allows it. Idempotent."""

    async def aclose(self) -> None:
        """Release network resources."""
