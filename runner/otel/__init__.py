"""OpenTelemetry traces of runs (the optional ``flowrun[otel]`` extra), after the GenAI conventions.

Nothing imports this package unless tracing is asked for (``--otel``, ``OTEL_EXPORTER_OTLP_ENDPOINT``
or ``flowrun logs export --otlp``).
"""

MISSING_HINT = "install the extra: pip install 'flowrun[otel]'"


def wanted(flag: bool, env: dict[str, str]) -> bool:
    """On with ``--otel`` or when the standard OTLP endpoint variable is set."""
    return flag or bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
