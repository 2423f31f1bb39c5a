"""flowrun's events as OpenTelemetry spans, after the GenAI semantic conventions.

One ``invoke_agent`` span per run, a ``chat`` span per model turn and an ``execute_tool`` span per
tool call, both children of the run's span. Spans take their times from the events, so a run
exported later from the run log (``flowrun logs export --otlp``) shows when things really
happened. Message content (the input, the answer, tool arguments and results) is attached only
when ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` is true; it arrives here already
masked (the live run's fan-out and the run log both mask before anything else sees it).

Only imported when tracing is asked for; ``opentelemetry`` is the optional ``flowrun[otel]`` extra.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

PROVIDER = "openai"  # all three APIs are OpenAI's protocols, whichever server speaks them
CAPTURE_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"


def capture_content(env: dict[str, str] | None = None) -> bool:
    value = (env if env is not None else os.environ).get(CAPTURE_ENV, "")
    return value.strip().lower() in ("true", "1", "yes")


def _ns(ts: Any) -> int:
    return int((ts if isinstance(ts, (int, float)) else time.time()) * 1e9)


def _text_message(role: str, text: str, finish: str | None = None) -> str:
    message: dict[str, Any] = {"role": role, "parts": [{"type": "text", "content": text}]}
    if finish:
        message["finish_reason"] = finish
    return json.dumps([message], ensure_ascii=False)


class SpanBuilder:
    """Feeds one run's events (dicts, as ``to_dict`` makes them) into spans on ``tracer``."""

    def __init__(self, tracer: trace.Tracer, *, content: bool):
        self.tracer = tracer
        self.content = content
        self.run_span: trace.Span | None = None
        self.run_ctx = None
        self.chat: trace.Span | None = None
        self.chat_text: list[str] = []
        self.model = ""
        self.run_id = ""
        self.requested: dict[str, dict] = {}
        self.usage = {"input_tokens": 0, "output_tokens": 0}

    def __call__(self, event: Any) -> None:
        data = event if isinstance(event, dict) else event.to_dict()
        handler = getattr(self, "_" + str(data.get("type", "")).replace(".", "_"), None)
        if handler is not None:
            handler(data)

    def _common(self, operation: str) -> dict[str, Any]:
        attrs = {"gen_ai.operation.name": operation, "gen_ai.provider.name": PROVIDER,
                 "gen_ai.conversation.id": self.run_id}
        if self.model:
            attrs["gen_ai.request.model"] = self.model
        return attrs

    def _run_started(self, e: dict) -> None:
        self.run_id, self.model = str(e.get("run_id", "")), str(e.get("model", ""))
        agent = Path(str(e.get("workflow", "workflow"))).stem
        attrs = {**self._common("invoke_agent"), "gen_ai.agent.name": agent, "flowrun.api": str(e.get("api", "")),
                 "flowrun.workflow": str(e.get("workflow", "")), "flowrun.offline": bool(e.get("offline"))}
        if self.content:
            attrs["gen_ai.input.messages"] = _text_message("user", str(e.get("input", "")))
        self.run_span = self.tracer.start_span(f"invoke_agent {agent}", kind=SpanKind.INTERNAL,
                                               start_time=_ns(e.get("ts")), attributes=attrs)
        self.run_ctx = trace.set_span_in_context(self.run_span)

    def _turn_started(self, e: dict) -> None:
        self._end_chat(e.get("ts"), None, None)
        self.chat_text = []
        self.chat = self.tracer.start_span(f"chat {self.model}".strip(), context=self.run_ctx, kind=SpanKind.CLIENT,
                                           start_time=_ns(e.get("ts")), attributes=self._common("chat"))

    def _text_delta(self, e: dict) -> None:
        self.chat_text.append(str(e.get("text", "")))

    def _turn_completed(self, e: dict) -> None:
        self._end_chat(e.get("ts"), str(e.get("status", "")), e.get("usage"))

    def _end_chat(self, ts: Any, status: str | None, usage: Any) -> None:
        if self.chat is None:
            return
        span, self.chat = self.chat, None
        if status:
            span.set_attribute("gen_ai.response.finish_reasons", [status])
        if isinstance(usage, dict):
            for key in ("input_tokens", "output_tokens"):
                if isinstance(usage.get(key), int):
                    span.set_attribute(f"gen_ai.usage.{key}", usage[key])
                    self.usage[key] += usage[key]
        if self.content and self.chat_text:
            span.set_attribute("gen_ai.output.messages", _text_message("assistant", "".join(self.chat_text), status))
        span.end(end_time=_ns(ts))

    def _tool_call_requested(self, e: dict) -> None:
        self.requested[str(e.get("call_id"))] = e

    def _tool_call_completed(self, e: dict) -> None:
        call_id = str(e.get("call_id", ""))
        asked = self.requested.pop(call_id, {})
        end = _ns(e.get("ts"))
        ms = e.get("duration_ms")
        start = end - int(ms * 1e6) if isinstance(ms, (int, float)) and ms >= 0 else _ns(asked.get("ts"))
        name = str(e.get("name", ""))
        attrs = {**self._common("execute_tool"), "gen_ai.tool.name": name, "gen_ai.tool.call.id": call_id,
                 "gen_ai.tool.type": "function"}
        if self.content:
            attrs["gen_ai.tool.call.arguments"] = str(asked.get("arguments", ""))
            attrs["gen_ai.tool.call.result"] = str(e.get("output", ""))
        span = self.tracer.start_span(f"execute_tool {name}", context=self.run_ctx, kind=SpanKind.INTERNAL,
                                      start_time=start, attributes=attrs)
        if e.get("is_error"):
            span.set_attribute("error.type", "tool_error")
            span.set_status(Status(StatusCode.ERROR, "the tool returned an error output"))
        span.end(end_time=end)

    def _run_completed(self, e: dict) -> None:
        self._end_run(e, error=None)

    def _run_failed(self, e: dict) -> None:
        self._end_run(e, error=str(e.get("status") or "failed"))

    def _end_run(self, e: dict, error: str | None) -> None:
        self._end_chat(e.get("ts"), None, None)
        if self.run_span is None:
            return
        span, self.run_span = self.run_span, None
        usage = e.get("usage") if isinstance(e.get("usage"), dict) else self.usage
        for key in ("input_tokens", "output_tokens"):
            if isinstance(usage.get(key), int):
                span.set_attribute(f"gen_ai.usage.{key}", usage[key])
        if self.content and e.get("final_text"):
            span.set_attribute("gen_ai.output.messages", _text_message("assistant", str(e["final_text"])))
        if error:
            span.set_attribute("error.type", error)
            span.set_status(Status(StatusCode.ERROR, str(e.get("message") or error)))
        span.end(end_time=_ns(e.get("ts")))

    def close(self) -> None:
        """A run cut short (crash, Ctrl-C before the last event): end what is open, now."""
        now = time.time()
        self._end_chat(now, None, None)
        if self.run_span is not None:
            self._end_run({"ts": now, "status": "interrupted", "message": "the run ended without its last event"},
                          error="interrupted")
