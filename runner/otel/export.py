"""Sending spans over OTLP/HTTP: the live-run sink and the export of a recorded run.

Where to: ``--otlp-endpoint``, else the standard ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (the whole
URL) or ``OTEL_EXPORTER_OTLP_ENDPOINT`` (``/v1/traces`` appended), else the collector's default
``http://localhost:4318``. Export failures are warnings: tracing must never fail a run.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Iterable

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from runner import __version__
from runner.otel.spans import SpanBuilder, capture_content

DEFAULT_ENDPOINT = "http://localhost:4318"
TIMEOUT_S = 10.0


def traces_endpoint(endpoint: str | None = None, env: dict[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    if not endpoint and env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
    base = endpoint or env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or DEFAULT_ENDPOINT
    return base.rstrip("/") + "/v1/traces"


class _Tracked(SpanExporter):
    """The OTLP exporter, remembering whether any batch was refused (``force_flush`` does not say)."""

    def __init__(self, inner: SpanExporter):
        self.inner = inner
        self.failed = False

    def export(self, spans) -> SpanExportResult:
        result = self.inner.export(spans)
        self.failed |= result is not SpanExportResult.SUCCESS
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


def provider(url: str) -> tuple[TracerProvider, _Tracked]:
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or "flowrun",
                                "service.version": __version__})
    tracer_provider = TracerProvider(resource=resource)
    exporter = _Tracked(OTLPSpanExporter(endpoint=url, timeout=TIMEOUT_S))
    tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
    return tracer_provider, exporter


def _finish(tracer_provider: TracerProvider, exporter: _Tracked) -> bool:
    flushed = tracer_provider.force_flush(int(TIMEOUT_S * 1000))
    tracer_provider.shutdown()
    return flushed and not exporter.failed


class OtelSink:
    """An event sink for a live run: ``sink(event)`` for every event, ``close()`` at the end."""

    def __init__(self, endpoint: str | None = None, env: dict[str, str] | None = None):
        self.url = traces_endpoint(endpoint, env)
        self._provider, self._exporter = provider(self.url)
        self._builder = SpanBuilder(self._provider.get_tracer("flowrun", __version__), content=capture_content(env))

    def __call__(self, event: Any) -> None:
        try:
            self._builder(event)
        except Exception as exc:  # noqa: BLE001 -- tracing must not fail the run
            print(f"flowrun: warning: OpenTelemetry: {type(exc).__name__}: {exc}", file=sys.stderr)

    def close(self) -> None:
        self._builder.close()
        if not _finish(self._provider, self._exporter):
            print(f"flowrun: warning: OpenTelemetry: the collector at {self.url} did not take "
                  "this run's spans", file=sys.stderr)


def export_run(events: Iterable[dict], endpoint: str | None = None) -> bool:
    """Send one recorded run's spans; True when the collector took them."""
    tracer_provider, exporter = provider(traces_endpoint(endpoint))
    builder = SpanBuilder(tracer_provider.get_tracer("flowrun", __version__), content=capture_content())
    for event in events:
        builder(event)
    builder.close()
    return _finish(tracer_provider, exporter)
