"""What the three SDK-backed providers share: the client, the masker, visible retries, error
mapping, and the rule for pairing tool results with the calls they answer."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any, AsyncIterator, Awaitable, Callable, Sequence, TypeVar
from urllib.parse import urlsplit

import openai

from runner.errors import ProviderError
from runner.events import Notice
from runner.providers.api_errors import map_api_error, server_message
from runner.calls import ToolCall, ToolResult
from runner.providers.base import ModelSettings, Provider, TurnResult
from runner.providers.retry_policy import Started, retrying
from runner.providers.stream_reader import OpenedStream, open_stream
from runner.providers.turn_stream import TurnStream
from runner.secrets.masker import Masker

T = TypeVar("T")

NO_OUTPUT = "error: no output was produced for this call"


def is_openai(base_url: str | None) -> bool:
    """True for OpenAI's own endpoint (the SDK default when no base URL is set)."""
    if not base_url:
        return True
    host = urlsplit(base_url).hostname or ""
    return host == "api.openai.com" or host.endswith(".openai.com")


def get_field(obj: Any, name: str) -> Any:
    """``obj.name`` for SDK objects, ``obj[name]`` for dicts; None when absent."""
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def as_dict(obj: Any) -> dict[str, Any]:
    """A plain dict of an SDK object (unset fields left out) or of a dict; {} for None."""
    if obj is None:
        return {}
    if isinstance(obj, dict):
        return obj
    dump = getattr(obj, "model_dump", None)
    if dump is not None:
        # warnings=False: servers' objects differ from the SDK's types (ISO timestamps where the
        # SDK expects unix seconds); the dump is what we read, pydantic's complaints are noise
        return dump(mode="json", exclude_unset=True, by_alias=True, warnings=False)
    return dict(getattr(obj, "__dict__", {}))


def is_stream_error(exc: BaseException) -> bool:
    """An error object the server put *inside* a 200 stream (the SDK raises plain ``APIError``)."""
    return isinstance(exc, openai.APIError) and not isinstance(
        exc, (openai.APIStatusError, openai.APIConnectionError, openai.APIResponseValidationError)
    )


def normalize_usage(usage: Any) -> dict[str, int] | None:
    """{input_tokens, output_tokens, total_tokens} from any of the three APIs' usage objects."""
    if usage is None:
        return None
    get = usage.get if isinstance(usage, dict) else (lambda k: getattr(usage, k, None))
    inp = get("input_tokens")
    out = get("output_tokens")
    if inp is None and out is None:
        inp, out = get("prompt_tokens"), get("completion_tokens")
    inp, out = int(inp or 0), int(out or 0)
    total = get("total_tokens")
    return {"input_tokens": inp, "output_tokens": out, "total_tokens": int(total if total is not None else inp + out)}


def given(**values: Any) -> dict[str, Any]:
    """The settings that are set: optional fields are sent only then, so servers that reject
    unknown or unsupported fields are not bothered."""
    return {k: v for k, v in values.items() if v is not None}


def turn_settings(settings: ModelSettings, *, after_tools: bool) -> ModelSettings:
    """The settings for one request. ``tool_choice: required`` holds for the first request of a
    user turn only: sent again after the tool outputs, the model must call a tool forever and the
    run can only end at ``--max-turns`` (the OpenAI Agents SDK resets it for the same reason).
    ``keep_tool_choice`` keeps forcing when that is really wanted."""
    if after_tools and settings.tool_choice == "required" and not settings.keep_tool_choice:
        return replace(settings, tool_choice="auto")
    return settings


def pair_results(
    calls: Sequence[ToolCall], results: Sequence[ToolResult]
) -> tuple[list[tuple[ToolCall, str]], list[str]]:
    """Exactly one output per call id, in call order (docs/protocols.md §1.8 G12, §3.3). A missing result
    becomes an error output; results for unknown or repeated ids are dropped. Returns the pairs and
    warnings for each repair."""
    by_id: dict[str, ToolResult] = {}
    warnings: list[str] = []
    known = {c.call_id for c in calls}
    for r in results:
        if r.call_id not in known:
            warnings.append(f"dropped an output for unknown call id {r.call_id} ({r.name})")
        elif r.call_id in by_id:
            warnings.append(f"dropped a second output for call id {r.call_id} ({r.name})")
        else:
            by_id[r.call_id] = r
    pairs: list[tuple[ToolCall, str]] = []
    seen: set[str] = set()
    for c in calls:
        if c.call_id in seen:
            continue
        seen.add(c.call_id)
        r = by_id.get(c.call_id)
        if r is None:
            warnings.append(f"no output for call {c.call_id} ({c.name}); sent an error instead")
        pairs.append((c, r.output if r is not None else NO_OUTPUT))
    return pairs, warnings


class SDKProvider(Provider):
    """Base for the providers that drive ``openai.AsyncOpenAI``."""

    def __init__(
        self,
        settings: ModelSettings,
        client: openai.AsyncOpenAI,
        *,
        masker: Masker | None = None,
        owns_client: bool = True,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        now: Callable[[], float] | None = None,
        on_notice: Callable[[Notice], None] | None = None,
    ):
        self.settings = settings
        self.client = client
        self.masker = masker if masker is not None else Masker()
        self.masker.add(settings.api_key)
        for _, value in settings.extra_headers:
            self.masker.add(value)
        self._owns_client = owns_client
        self._sleep = sleep or asyncio.sleep
        self._now = now or time.time
        self._on_notice = on_notice
        self.notices: list[Notice] = []  # notices raised outside a turn (aclose)
        self._closed = False

    # --- errors -------------------------------------------------------------------------------

    def error(self, exc: BaseException, *, mid_stream: bool = False) -> ProviderError:
        return map_api_error(
            exc,
            self.masker,
            api_key=self.settings.api_key,
            key_env=self.settings.api_key_env,
            mid_stream=mid_stream,
            timeout=self.settings.timeout,
        )

    def stream_failure(self, exc: openai.APIError, **meta: Any) -> TurnResult:
        """An error object inside the stream ends the turn as failed; no tool call runs."""
        said = self.masker.mask(server_message(exc) or "the server reported an error")
        return TurnResult(status="failed", error=said, error_code=exc.code, meta=meta)

    def rejected_outputs(self, err: ProviderError) -> TurnResult | None:
        """The failed turn for a 400/422 answer to a submission of tool outputs: the run cannot
        go on, and saying which request the server refused beats a generic "bad request"."""
        cause = err.__cause__
        if not isinstance(cause, openai.APIStatusError) or cause.status_code not in (400, 422):
            return None
        said = self.masker.mask(server_message(cause))
        return TurnResult(
            status="failed",
            error=f"the server rejected the tool outputs (HTTP {cause.status_code})" + (f": {said}" if said else ""),
            error_code="tool_outputs_rejected",
        )

    async def submission(self, stream: AsyncIterator[Any]) -> AsyncIterator[Any]:
        """Pass a submission's turn through, turning a rejection (400/422) into a failed turn."""
        try:
            async for event in stream:
                yield event
        except ProviderError as err:
            rejected = self.rejected_outputs(err)
            if rejected is None:
                raise
            yield rejected

    def warn(self, message: str) -> Notice:
        return Notice("warning", self.masker.mask(message))

    def notify(self, notice: Notice) -> None:
        """Report a notice outside a turn: kept in ``self.notices`` and passed to ``on_notice``."""
        self.notices.append(notice)
        if self._on_notice is not None:
            self._on_notice(notice)

    # --- requests -----------------------------------------------------------------------------

    async def attempt(self, start: Callable[[], Awaitable[T]]) -> AsyncIterator[Notice | Started[T]]:
        """``start`` with visible retries: retry Notices, then ``Started(value)``. Failures become
        ``ProviderError``, except an in-stream error object, which the caller turns into a result."""
        try:
            async for item in retrying(start, max_retries=self.settings.max_retries, sleep=self._sleep):
                yield self.warn(item.message) if isinstance(item, Notice) else item
        except openai.APIError as exc:
            if is_stream_error(exc):
                raise
            raise self.error(exc) from exc

    def open_events(self, create: Callable[[], Awaitable[Any]]) -> Awaitable[OpenedStream]:
        """Make the streamed request ``create`` and wait for its first event, with the model's
        ``timeout`` as the idle limit between events."""
        return open_stream(create, idle=self.settings.timeout)

    def turn_stream(self, create: Callable[[], Awaitable[Any]]) -> TurnStream:
        """The stream of one turn: ``create`` opened with visible retries (see ``TurnStream``)."""
        return TurnStream(self.attempt, lambda: self.open_events(create))

    async def call(self, start: Callable[[], Awaitable[T]], notices: list[Notice]) -> T:
        """A plain (non-stream) request with retries; retry notices are appended to ``notices``."""
        async for item in self.attempt(start):
            if isinstance(item, Started):
                return item.value
            notices.append(item)
        raise AssertionError("attempt() ended without a result")  # pragma: no cover

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._owns_client:
            try:
                await self.client.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass


def json_schema_format(output: dict) -> dict:
    """The ``json_schema`` object every API takes for structured output (name, schema, strict)."""
    return {"name": output["name"], "schema": output["schema"], "strict": bool(output.get("strict", True))}
